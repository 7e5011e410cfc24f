//! The commands that read the state store: `vane history` (the recorded runs, newest first, as a
//! table or one JSON object per line), `vane show RUN` (one run with its steps, rendered actions,
//! outputs and log tails) and `vane gates` (the gates' live keys with state and next deadline;
//! `vane gates clear` resets them — `crate::gates::list`'s). Where there is no store yet, there is
//! nothing to show, and looking creates none.

use super::args::GlobalArgs;
use super::{Exit, Outcome, invalid};
use crate::secrets::Masker;
use crate::state::{HistoryFilter, RUN_STATUSES, StateLocation, Store, parse_since};
use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only runs of this workflow (by name).
    #[arg(long, value_name = "NAME")]
    pub workflow: Option<String>,
    /// Only runs that ended with this status.
    #[arg(long, value_parser = PossibleValuesParser::new(RUN_STATUSES))]
    pub status: Option<String>,
    /// Only runs started since this time (RFC 3339) or this long ago (`90m`, `1h`, `7d`).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// At most this many runs (0: all).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
}

pub fn history(global: &GlobalArgs, args: &HistoryArgs) -> Outcome {
    let now = chrono::Utc::now();
    let since = args.since.as_deref().map(|since| parse_since(since, now));
    let filter = HistoryFilter {
        workflow: args.workflow.clone(),
        status: args.status.clone(),
        since: since.transpose().map_err(invalid)?,
        limit: (args.limit > 0).then_some(args.limit),
    };
    let runs = match open_existing(global)? {
        Some(store) => store.history(&filter).map_err(invalid)?,
        None => Vec::new(),
    };
    let text = crate::report::history_text(&runs, global.json);
    super::about::write_stdout(text.as_bytes())
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run's id, or a prefix of it that only one run has.
    #[arg(value_name = "RUN")]
    pub run: String,
}

pub fn show(global: &GlobalArgs, args: &ShowArgs) -> Outcome {
    let location = StateLocation::from_flag(&global.state);
    let run = Store::find_run_at(&location, Masker::new(), &args.run).map_err(invalid)?;
    let text = if global.json {
        format!("{}\n", serde_json::to_string(&run).unwrap_or_default())
    } else {
        crate::report::run_view(&run)
    };
    super::about::write_stdout(text.as_bytes())
}

/// The store for the reading commands; `None` (and nothing created) where there is none yet.
fn open_existing(global: &GlobalArgs) -> Result<Option<Store>, Exit> {
    Store::open_existing(&StateLocation::from_flag(&global.state), Masker::new()).map_err(invalid)
}

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
    let (store, json) = (open_existing(global)?, global.json);
    let queue = global.loaded.as_ref().map(|config| config.queue.clone());
    let queue = queue.unwrap_or_default();
    let text = match &args.action {
        None => crate::gates::list::list(store.as_ref(), &queue, args.workflow.as_deref(), json),
        Some(GatesAction::Clear { workflow, key }) => {
            crate::gates::list::clear(store, &queue, workflow, key.as_deref(), json)
        }
    };
    super::about::write_stdout(text.map_err(invalid)?.as_bytes())
}
