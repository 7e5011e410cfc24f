//! `vane gates`: the gates' live keys, with state and next deadline; `vane gates clear` resets.
//! The listing and clearing are `crate::gates::list`'s.

use super::Exit;
use super::args::GlobalArgs;
use crate::secrets::Masker;
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

pub fn gates(global: &GlobalArgs, args: &GatesArgs) -> Exit {
    let store = match super::state::open_existing(global, &Masker::new()) {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    let result = match (&args.action, store) {
        (None, store) => {
            crate::gates::list::list(store.as_ref(), args.workflow.as_deref(), global.json)
        }
        (Some(GatesAction::Clear { workflow, key }), Some(mut store)) => {
            crate::gates::list::clear(&mut store, workflow, key.as_deref(), global.json)
        }
        // No store yet: nothing to clear, and clearing must not create one.
        (Some(GatesAction::Clear { workflow, key }), None) => Ok(if global.json {
            format!(
                "{}\n",
                serde_json::json!({"workflow": workflow, "key": key, "cleared": 0})
            )
        } else {
            format!("cleared 0 key(s) of {workflow}\n")
        }),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            Exit::Success
        }
        Err(message) => {
            eprintln!("error: {message}");
            Exit::Invalid
        }
    }
}
