//! `vane replay RUN`: the run's stored event sent through the current workflows again (SPEC §4.5),
//! reported like `vane run` and recorded as a replay of that run; `--dry-run` plans it instead.

use super::Exit;
use super::args::GlobalArgs;
use super::state::Recorder;
use crate::cancel::CancelToken;
use crate::engine::{Engine, EngineOptions};
use crate::event::{self, Event, InputOptions};
use crate::report::{Format, ReportOptions, Reporter, Totals, use_color};
use crate::secrets::Masker;
use crate::state::StateError;
use clap::Args;
use std::collections::VecDeque;
use std::io::IsTerminal;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The run's id, or a prefix of it that only one run has.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Plan instead of executing, as `vane plan` would; nothing is recorded.
    #[arg(long)]
    pub dry_run: bool,
    /// Also say why every other workflow did not match.
    #[arg(long)]
    pub explain: bool,
}

pub fn replay(global: &GlobalArgs, args: &ReplayArgs) -> Exit {
    let masker = Masker::new();
    let (run_id, event) = match stored_event(global, &args.run, &masker) {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    let Some(set) = super::run::load_or_report(global, &masker) else {
        return Exit::Invalid;
    };
    let cancel = CancelToken::from_signals();
    let mut engine = Engine {
        set: &set,
        options: EngineOptions {
            dry_run: args.dry_run,
            workspace: global.workspace.clone(),
            state_folder: super::state::folder(global),
        },
        masker: masker.clone(),
        cancel: cancel.clone(),
        recommendations: crate::state::Recommendations::in_memory(),
    };
    let mut recorder = match Recorder::open(global, &engine) {
        Ok(recorder) => recorder.replaying(&run_id),
        Err(exit) => return exit,
    };
    if let Some(store) = recorder.shared_store() {
        engine.recommendations = crate::state::Recommendations::in_store(store);
    }
    let stdout = std::io::stdout();
    let options = ReportOptions {
        format: if global.json {
            Format::Json
        } else if global.quiet {
            Format::Quiet
        } else {
            Format::Human
        },
        color: use_color(stdout.is_terminal()),
        github: crate::report::github::enabled(global.github),
        explain: args.explain,
        dry_run: args.dry_run,
    };
    let mut reporter = Reporter::new(stdout.lock(), options, masker.clone());
    let mut totals = Totals::default();
    let mut exit = Exit::Success;
    // The event and everything its `emit` steps produce, in order, as `vane run` does.
    let mut queue = VecDeque::from([(event, 0usize)]);
    while let Some((event, depth)) = queue.pop_front() {
        let outcome = engine.process(event, depth);
        let _ = recorder.record(&outcome, &set);
        totals.add(&outcome);
        reporter.event(&outcome, &set);
        if outcome.failed() {
            exit = exit.worst(Exit::RunFailed);
        }
        queue.extend(
            outcome
                .emitted
                .into_iter()
                .map(|emitted| (emitted, depth + 1)),
        );
    }
    reporter.summary(&totals);
    exit = exit.worst(recorder.exit());
    if cancel.is_cancelled() {
        exit = Exit::Interrupted;
    }
    exit
}

/// The run's full id and its event, rebuilt from the stored envelope.
fn stored_event(
    global: &GlobalArgs,
    prefix: &str,
    masker: &Masker,
) -> Result<(String, Event), Exit> {
    let fail = |message: String| {
        eprintln!("error: {message}");
        Exit::Invalid
    };
    let store = super::state::open_existing(global, masker)?.ok_or_else(|| {
        fail(
            StateError::RunNotFound {
                prefix: prefix.to_string(),
            }
            .to_string(),
        )
    })?;
    let run = store
        .find_run(prefix)
        .map_err(|error| fail(error.to_string()))?;
    let event =
        event::from_text(&run.event.to_string(), &InputOptions::default()).map_err(|error| {
            fail(format!(
                "run `{}`: the recorded event cannot be read: {}",
                run.summary.id, error.message
            ))
        })?;
    Ok((run.summary.id, event))
}
