//! `vane man [COMMAND]`: `vane(1)`, or the page of one subcommand (`vane-run(1)`), as roff.

use super::args::Cli;
use super::{Outcome, invalid};
use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (`vane man run` is vane-run(1)); none: vane(1).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

pub fn man(args: &ManArgs) -> Outcome {
    let page = crate::manpage::render(Cli::command(), args.command.as_deref()).map_err(invalid)?;
    super::schema::write_stdout(page.as_bytes())
}
