//! `vane show RUN`: one recorded run with its steps, rendered actions, outputs and log tails.

use super::Exit;
use super::args::GlobalArgs;
use crate::secrets::Masker;
use crate::state::StateError;
use clap::Args;
use std::io::Write;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run's id, or a prefix of it that only one run has.
    #[arg(value_name = "RUN")]
    pub run: String,
}

pub fn show(global: &GlobalArgs, args: &ShowArgs) -> Exit {
    let store = match super::state::open_existing(global, &Masker::new()) {
        Ok(Some(store)) => store,
        Ok(None) => {
            eprintln!(
                "error: {}",
                StateError::RunNotFound {
                    prefix: args.run.clone()
                }
            );
            return Exit::Invalid;
        }
        Err(exit) => return exit,
    };
    let run = match store.find_run(&args.run) {
        Ok(run) => run,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Invalid;
        }
    };
    let text = if global.json {
        let mut line = serde_json::to_string(&run).unwrap_or_default();
        line.push('\n');
        line
    } else {
        crate::report::run_view(&run)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Exit::Success
}
