//! `vane worker`: takes events from the queue and runs them, until SIGINT/SIGTERM — the workers
//! of `vane serve` without the HTTP side, to add capacity beside it. It also runs the
//! subscription sources of vane.yaml (`nats:`, `mqtt:`), which push into the same queue.

use super::Exit;
use super::args::GlobalArgs;
use crate::cancel::CancelToken;
use crate::pipeline::{Until, drain};
use crate::secrets::Masker;
use clap::Args;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Runs at once, at most (default: `serve.workers` in vane.yaml, else the number of cores).
    #[arg(long, env = "VANE_PARALLEL", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
}

pub fn worker(global: &GlobalArgs, args: &WorkerArgs) -> Exit {
    let masker = Masker::new();
    let prepared = match super::drain::prepare(global, &masker, args.parallel, true) {
        Ok(prepared) => prepared,
        Err(exit) => return exit,
    };
    // The first signal stops taking events and lets the runs in flight finish; the runs are
    // not cancelled (a second signal exits at once).
    let stop = CancelToken::from_signals();
    let subscriptions = match &global.loaded {
        Some(config) => crate::broker::spawn_subscriptions(
            std::sync::Arc::clone(config),
            std::sync::Arc::clone(&prepared.queue),
            stop.clone(),
        ),
        None => Vec::new(),
    };
    let timer_stop = CancelToken::new();
    let timers = match crate::gates::store::spawn_timers(
        &prepared.set,
        &prepared.settings.state,
        prepared.queue.as_ref(),
        timer_stop.clone(),
    ) {
        Ok(timers) => timers,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Invalid;
        }
    };
    let until = Until::Stopped(stop);
    let exit = drain(
        &prepared.settings,
        &prepared.set,
        masker,
        prepared.queue,
        until,
    );
    for subscription in subscriptions {
        let _ = subscription.join();
    }
    timer_stop.cancel();
    if let Some(timers) = timers {
        let _ = timers.join();
    }
    exit.for_daemon()
}
