//! `vane serve`: the daemon ([`crate::serve::run_daemon`]) started from the command line.

use super::args::GlobalArgs;
use super::{Exit, Outcome, invalid};
use crate::secrets::Masker;
use clap::Args;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (default: `serve.listen` in vane.yaml, else 127.0.0.1:8080);
    /// port 0 picks a free port, printed at startup.
    #[arg(long, env = "VANE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Runs at once, at most (default: `serve.workers` in vane.yaml, else the number of cores).
    #[arg(long, env = "VANE_PARALLEL", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    /// Reload the workflows when a workflow or template file changes (looked at every 2 s).
    #[arg(long, env = "VANE_WATCH")]
    pub watch: bool,
}

pub fn serve(global: &GlobalArgs, args: &ServeArgs) -> Outcome {
    let config = global.loaded.clone().ok_or_else(|| {
        invalid(
            "`vane serve` needs a vane.yaml (`--config FILE`, or ./vane.yaml) with \
             `serve.webhooks` or `sources` (see `vane init`)",
        )
    })?;
    let masker = Masker::new();
    let endpoints = crate::serve::endpoints(&config, &masker).map_err(|problems| {
        for problem in problems {
            eprintln!("{}: error: {problem}", config.file.display());
        }
        Exit::Invalid
    })?;
    let (workflows, settings, queue) =
        super::drain::prepare_daemon(global, &masker, args.parallel, args.watch)?;
    let listen = args.listen.clone().unwrap_or(config.serve.listen.clone());
    Ok(crate::serve::run_daemon(
        config, &settings, workflows, masker, queue, endpoints, listen,
    ))
}
