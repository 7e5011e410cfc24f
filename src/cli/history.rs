//! `vane history`: the recorded runs, newest first, as a table or one JSON object per line.

use super::Exit;
use super::args::GlobalArgs;
use crate::secrets::Masker;
use crate::state::{HistoryFilter, RUN_STATUSES, parse_since};
use clap::Args;
use clap::builder::PossibleValuesParser;
use std::io::Write;

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

pub fn history(global: &GlobalArgs, args: &HistoryArgs) -> Exit {
    let since = match args
        .since
        .as_deref()
        .map(|since| parse_since(since, chrono::Utc::now()))
        .transpose()
    {
        Ok(since) => since,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Invalid;
        }
    };
    let filter = HistoryFilter {
        workflow: args.workflow.clone(),
        status: args.status.clone(),
        since,
        limit: (args.limit > 0).then_some(args.limit),
    };
    let store = match super::state::open_existing(global, &Masker::new()) {
        Ok(Some(store)) => store,
        // No store yet: no runs, and looking must not create one.
        Ok(None) => return print(global, &[]),
        Err(exit) => return exit,
    };
    match store.history(&filter) {
        Ok(runs) => print(global, &runs),
        Err(error) => {
            eprintln!("error: {error}");
            Exit::Invalid
        }
    }
}

fn print(global: &GlobalArgs, runs: &[crate::state::RunSummary]) -> Exit {
    let mut text = String::new();
    if global.json {
        for run in runs {
            text.push_str(&serde_json::to_string(run).unwrap_or_default());
            text.push('\n');
        }
    } else if runs.is_empty() {
        text.push_str("no recorded runs\n");
    } else {
        text = crate::report::history_table(runs);
    }
    // A closed stdout (`vane history | head`) is not an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Exit::Success
}
