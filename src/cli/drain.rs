//! What the commands that run queued events (`poll`, `serve`, `worker`) start from: the
//! workflows (their problems reported), the settings and the queue.

use super::args::GlobalArgs;
use super::{Exit, invalid};
use crate::pipeline::{Settings, open_queue};
use crate::queue::Queue;
use crate::secrets::Masker;
use crate::serve::reload::Workflows;
use crate::workflow::WorkflowSet;
use std::sync::Arc;

/// The workflows a daemon reloads, its settings and its queue.
type Daemon = (Arc<Workflows>, Settings, Arc<dyn Queue>);

/// What `serve` and `worker` start from: the workflows as a set they reload ([`Workflows`]).
pub fn prepare_daemon(
    global: &GlobalArgs,
    masker: &Masker,
    parallel: Option<u16>,
    watch: bool,
) -> Result<Daemon, Exit> {
    let prepared = prepare(global, masker, parallel, true)?;
    let (folder, templates) = (&global.workflows, &global.templates);
    let revision = global.workflows_ref.as_deref();
    let workflows = Workflows::for_daemon(prepared.set, folder, templates, revision, watch);
    Ok((workflows, prepared.settings, prepared.queue))
}

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
    let set = super::workflows::load_checked(global)?;
    let mut settings = super::settings::resolve(global, None, false);
    let configured = global.loaded.as_ref().and_then(|c| c.serve.workers);
    if let Some(parallel) = parallel.map(usize::from).or(configured.filter(|_| daemon)) {
        settings.parallel = parallel;
    }
    let queue = open_queue(&settings, masker).map_err(invalid)?;
    Ok(Prepared {
        set,
        settings,
        queue,
    })
}
