//! `vane history`: the recorded runs, newest first, as a table or one JSON object per line.

use super::args::GlobalArgs;
use super::{Outcome, invalid};
use crate::state::{HistoryFilter, RUN_STATUSES, parse_since};
use clap::Args;
use clap::builder::PossibleValuesParser;

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
    // No store yet: no runs, and looking must not create one.
    let runs = match super::show::open_existing(global)? {
        Some(store) => store.history(&filter).map_err(invalid)?,
        None => Vec::new(),
    };
    let text = crate::report::history_text(&runs, global.json);
    super::schema::write_stdout(text.as_bytes())
}
