//! `vane serve`: the daemon ([`crate::serve::run_daemon`]) started from the command line.

use super::Exit;
use super::args::GlobalArgs;
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

pub fn serve(global: &GlobalArgs, args: &ServeArgs) -> Exit {
    let Some(config) = global.loaded.clone() else {
        tracing::error!(
            "`vane serve` needs a vane.yaml (`--config FILE`, or ./vane.yaml) with \
             `serve.webhooks` or `sources` (see `vane init`)"
        );
        return Exit::Invalid;
    };
    let masker = Masker::new();
    let endpoints = match crate::serve::endpoints(&config, &masker) {
        Ok(endpoints) => endpoints,
        Err(problems) => {
            for problem in problems {
                tracing::error!(place = %config.file.display(), "{problem}");
            }
            return Exit::Invalid;
        }
    };
    let prepared = match super::drain::prepare(global, &masker, args.parallel, true) {
        Ok(prepared) => prepared,
        Err(exit) => return exit,
    };
    let listen = args.listen.clone().unwrap_or(config.serve.listen.clone());
    crate::serve::run_daemon(
        config,
        &prepared.settings,
        crate::serve::reload::Workflows::for_daemon(
            prepared.set,
            &global.workflows,
            &global.templates,
            global.workflows_ref.as_deref(),
            args.watch,
        ),
        masker,
        prepared.queue,
        endpoints,
        listen,
    )
}
