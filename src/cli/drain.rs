//! What the commands that run queued events (`poll`, `serve`, `worker`) start from: the
//! workflows (their problems reported), the settings and the queue.

use super::Exit;
use super::args::GlobalArgs;
use crate::pipeline::{Settings, open_queue};
use crate::queue::Queue;
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use std::sync::Arc;

pub struct Prepared {
    pub set: WorkflowSet,
    pub settings: Settings,
    pub queue: Arc<dyn Queue>,
}

/// `parallel`: the command's `--parallel`; a daemon's default is `serve.workers` of vane.yaml.
pub fn prepare(
    global: &GlobalArgs,
    masker: &Masker,
    parallel: Option<u16>,
    daemon: bool,
) -> Result<Prepared, Exit> {
    let set = super::run::load_or_report(global).ok_or(Exit::Invalid)?;
    let mut settings = super::settings::resolve(global, None, false);
    let configured = global
        .loaded
        .as_ref()
        .and_then(|config| config.serve.workers);
    if let Some(parallel) = parallel.map(usize::from).or(configured.filter(|_| daemon)) {
        settings.parallel = parallel;
    }
    let queue = open_queue(&settings, masker).map_err(|message| {
        tracing::error!("{message}");
        Exit::Invalid
    })?;
    Ok(Prepared {
        set,
        settings,
        queue,
    })
}
