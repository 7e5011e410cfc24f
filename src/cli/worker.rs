//! `vane worker`: takes events from the queue and runs them, until SIGINT/SIGTERM — the workers
//! of `vane serve` without the HTTP side ([`crate::serve::run_worker`]).

use super::Exit;
use super::args::GlobalArgs;
use crate::secrets::Masker;
use clap::Args;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Runs at once, at most (default: `serve.workers` in vane.yaml, else the number of cores).
    #[arg(long, env = "VANE_PARALLEL", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    /// Reload the workflows when a file under the workflows or templates folder changes
    /// (content hashes compared every 2 s); SIGHUP reloads too.
    #[arg(long, env = "VANE_WATCH")]
    pub watch: bool,
}

pub fn worker(global: &GlobalArgs, args: &WorkerArgs) -> Exit {
    let masker = Masker::new();
    let prepared = match super::drain::prepare(global, &masker, args.parallel, true) {
        Ok(prepared) => prepared,
        Err(exit) => return exit,
    };
    let workflows = super::workflows::reloadable(global, prepared.set, args.watch);
    let config = global.loaded.clone();
    crate::serve::run_worker(
        config,
        &prepared.settings,
        workflows,
        masker,
        prepared.queue,
    )
}
