//! `vane worker`: takes events from the queue and runs them, until SIGINT/SIGTERM — the workers
//! of `vane serve` without the HTTP side ([`crate::serve::run_worker`]).

use super::Outcome;
use super::args::GlobalArgs;
use crate::secrets::Masker;
use clap::Args;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Runs at once, at most (default: `serve.workers` in vane.yaml, else the number of cores).
    #[arg(long, env = "VANE_PARALLEL", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    /// Reload the workflows when a workflow or template file changes (looked at every 2 s).
    #[arg(long, env = "VANE_WATCH")]
    pub watch: bool,
}

pub fn worker(global: &GlobalArgs, args: &WorkerArgs) -> Outcome {
    let masker = Masker::new();
    let (workflows, settings, queue) =
        super::drain::prepare_daemon(global, &masker, args.parallel, args.watch)?;
    let config = global.loaded.clone();
    Ok(crate::serve::run_worker(
        config, &settings, workflows, masker, queue,
    ))
}
