//! `vane gates`: the gates' live keys, with state and next deadline; `vane gates clear` resets.
//! The listing and clearing are `crate::gates::list`'s.

use super::args::GlobalArgs;
use super::{Outcome, invalid};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct GatesArgs {
    #[command(subcommand)]
    pub action: Option<GatesAction>,
    /// Only the keys of this workflow (by name).
    #[arg(long, value_name = "NAME")]
    pub workflow: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum GatesAction {
    /// Forget a workflow's live keys (only KEY, when given): held events are dropped.
    Clear {
        /// The workflow (by name).
        workflow: String,
        /// One key, as `vane gates` lists it.
        key: Option<String>,
    },
}

pub fn gates(global: &GlobalArgs, args: &GatesArgs) -> Outcome {
    // No store yet: no keys, and looking or clearing must not create one.
    let store = super::show::open_existing(global)?;
    let text = match (&args.action, store) {
        (None, store) => {
            crate::gates::list::list(store.as_ref(), args.workflow.as_deref(), global.json)
        }
        (Some(GatesAction::Clear { workflow, key }), store) => {
            crate::gates::list::clear(store, workflow, key.as_deref(), global.json)
        }
    };
    super::schema::write_stdout(text.map_err(invalid)?.as_bytes())
}
