//! `vane completions SHELL`: completions generated from the clap definitions, to stdout.

use super::Outcome;
use super::args::{Cli, CompletionsArgs};
use clap::CommandFactory;

pub fn completions(args: &CompletionsArgs) -> Outcome {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "vane", &mut script);
    super::schema::write_stdout(&script)
}
