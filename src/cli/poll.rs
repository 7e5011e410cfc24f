//! `vane poll`: polls the sources of `vane.yaml` and fires the workflows' schedules, queues what
//! is new with the sources' cursors, and runs it. `--once` (the default) is one round for cron;
//! `--every DURATION` polls on that interval (schedules on time) until SIGINT/SIGTERM.

use super::args::GlobalArgs;
use super::drain::Prepared;
use super::{Outcome, invalid};
use crate::config::Config;
use crate::secrets::Masker;
use crate::sources::Poller;
use clap::Args;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct PollArgs {
    /// Poll every source once, fire the schedules that came due, run what was found, exit
    /// (the default).
    /// `--once` wins over `--every` (and `VANE_POLL_EVERY`).
    #[arg(long)]
    pub once: bool,
    /// Poll every source on this interval (schedules fire on time) until SIGINT/SIGTERM.
    #[arg(long, env = "VANE_POLL_EVERY", value_name = "DURATION", value_parser = crate::duration::parse_duration)]
    pub every: Option<Duration>,
    /// Poll only these sources (repeatable); schedules fire only when no `--source` is given.
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// Runs at once, at most (default: the number of cores).
    #[arg(long, env = "VANE_PARALLEL", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    /// Say, per tag of each `registry` source, why it won or was left out (on stderr).
    #[arg(long)]
    pub explain: bool,
}

pub fn poll(global: &GlobalArgs, args: &PollArgs) -> Outcome {
    let config = global.loaded.clone().unwrap_or_else(Config::unnamed);
    crate::sources::check_selection(&config, &args.sources).map_err(invalid)?;
    let every = args.every.filter(|_| !args.once);
    if every.is_some() && !args.sources.is_empty() {
        return Err(invalid(
            "`--source` goes with `--once`; `--every` polls every source",
        ));
    }
    let masker = Masker::new();
    let Prepared {
        set,
        settings,
        queue,
    } = super::drain::prepare(global, &masker, args.parallel, false)?;
    let state = &settings.state;
    let poller = Poller::new(
        Arc::clone(&config),
        &set,
        Arc::clone(&queue),
        state,
        masker.clone(),
    )
    .map_err(invalid)?
    .explaining(args.explain);
    let names = (args.sources.as_slice(), global.verbose > 0);
    Ok(crate::serve::run_poller(
        poller, every, names, &settings, &set, masker, queue,
    ))
}
