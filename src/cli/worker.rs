//! `vane worker`: takes events from the queue and runs them, until SIGINT/SIGTERM — the workers
//! of `vane serve` without the HTTP side, to add capacity beside it. It also runs the
//! subscription sources of vane.yaml (`nats:`, `mqtt:`), which push into the same queue.

use super::Outcome;
use super::args::GlobalArgs;
use crate::cancel::CancelToken;
use crate::pipeline::{Until, drain};
use crate::secrets::Masker;
use clap::Args;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Runs at once, at most (default: `serve.workers` in vane.yaml, else the number of cores).
    #[arg(long, env = "VANE_PARALLEL", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
}

pub fn worker(global: &GlobalArgs, args: &WorkerArgs) -> Outcome {
    let masker = Masker::new();
    let prepared = super::drain::prepare(global, &masker, args.parallel, true)?;
    // The first signal stops taking events and lets the runs in flight finish; the runs are
    // not cancelled (a second signal exits at once).
    let stop = CancelToken::from_signals();
    let subscriptions = global.loaded.as_ref().map_or_else(Vec::new, |config| {
        let queue = Arc::clone(&prepared.queue);
        crate::broker::spawn_subscriptions(Arc::clone(config), queue, stop.clone())
    });
    let (settings, set) = (&prepared.settings, &prepared.set);
    let exit = drain(settings, set, masker, prepared.queue, Until::Stopped(stop));
    for subscription in subscriptions {
        let _ = subscription.join();
    }
    Ok(exit.for_daemon())
}
