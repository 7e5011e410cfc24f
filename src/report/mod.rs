//! Output: human lines on a terminal, one JSON object per event with `--json`, or only the
//! summary with `--quiet`. Every string goes through the secret masker on its way out.

pub mod github;
mod history;
mod human;
mod json;
pub mod progress;

pub use history::{history_table, history_text, run_view};
pub use human::LiveReporter;

use crate::engine::{EventOutcome, RunEvent, RunStatus};
use crate::pipeline::{Consumer, Exit};
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use std::io::Write;

/// Why each workflow that did not run for the event did not: the verdict matching recorded, or
/// (for the workflows an index ruled out without looking) the one `explain` gives now. In the
/// workflows' order; every reporter that explains uses this one walk.
fn not_run(outcome: &EventOutcome, set: &WorkflowSet) -> Vec<(usize, crate::plan::Selection)> {
    let event_object = crate::template::EventObject::value(outcome.event.clone());
    set.workflows
        .iter()
        .enumerate()
        .filter(|(index, _)| !outcome.runs.iter().any(|(run, _)| run == index))
        .map(|(index, workflow)| {
            let selection = outcome
                .selections
                .iter()
                .find(|(candidate, _)| *candidate == index)
                .map(|(_, selection)| selection.clone())
                .unwrap_or_else(|| crate::plan::explain(workflow, &outcome.event, &event_object));
            (index, selection)
        })
        .collect()
}

/// How output looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Quiet,
}

#[derive(Debug, Clone, Copy)]
pub struct ReportOptions {
    pub format: Format,
    pub color: bool,
    /// Say why every other workflow did not match.
    pub explain: bool,
    pub dry_run: bool,
    /// GitHub Actions mode: fold each run's lines into a `::group::`.
    pub github: bool,
}

/// Counts for the closing line: `3 events, 2 runs, 2 succeeded, 0 failed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub events: usize,
    pub runs: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub planned: usize,
    pub bad_inputs: usize,
    /// Workflows that broke on an event (an `if` or a concurrency group that cannot be
    /// evaluated): errors in the workflows, counted among `failed` too.
    pub broken: usize,
}

impl Totals {
    pub fn add(&mut self, outcome: &EventOutcome) {
        self.events += 1;
        for (_, run) in &outcome.runs {
            self.runs += 1;
            match run.status {
                RunStatus::Success => self.succeeded += 1,
                RunStatus::Failure => self.failed += 1,
                RunStatus::Cancelled => self.cancelled += 1,
                RunStatus::Planned => self.planned += 1,
            }
        }
        let broken = outcome
            .selections
            .iter()
            .filter(|(_, selection)| matches!(selection, crate::plan::Selection::Broken(_)))
            .count();
        self.failed += broken;
        self.broken += broken;
    }

    pub fn line(&self, dry_run: bool) -> String {
        let plural = |count: usize, one: &str, many: &str| {
            format!("{count} {}", if count == 1 { one } else { many })
        };
        let mut parts = vec![
            plural(self.events, "event", "events"),
            plural(self.runs, "run", "runs"),
        ];
        if dry_run {
            parts.push(format!("{} planned", self.planned));
            if self.failed > 0 {
                parts.push(format!("{} failed", self.failed));
            }
        } else {
            parts.push(format!("{} succeeded", self.succeeded));
            parts.push(format!("{} failed", self.failed));
            if self.cancelled > 0 {
                parts.push(format!("{} cancelled", self.cancelled));
            }
        }
        if self.bad_inputs > 0 {
            parts.push(plural(self.bad_inputs, "bad input", "bad inputs"));
        }
        parts.join(", ")
    }
}

/// Writes each event whole once it has finished: plans (a block per event), `--json` (an object
/// per event) and `--quiet` (only the closing line). Real runs in human output are told as they
/// happen instead ([`human::LiveReporter`]).
pub struct Reporter<'a, W: Write + Send> {
    out: W,
    set: &'a WorkflowSet,
    options: ReportOptions,
    masker: Masker,
}

impl<'a, W: Write + Send> Reporter<'a, W> {
    pub fn new(
        out: W,
        set: &'a WorkflowSet,
        options: ReportOptions,
        masker: Masker,
    ) -> Reporter<'a, W> {
        Reporter {
            out,
            set,
            options,
            masker,
        }
    }

    /// One event and what happened for it. A closed stdout (`vane run | head`) is not an error.
    fn event(&mut self, outcome: &EventOutcome) {
        let text = match self.options.format {
            Format::Quiet => return,
            Format::Json => json::event_line(outcome, self.set, &self.masker),
            Format::Human => {
                self.masker
                    .mask(&human::event_block(outcome, self.set, &self.options))
            }
        };
        // Live progress lines (on stderr) are cleared while the block is written.
        progress::suspend(|| {
            let _ = self.out.write_all(text.as_bytes());
            let _ = self.out.flush();
        });
    }
}

impl<W: Write + Send> Consumer for Reporter<'_, W> {
    fn observe(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::EventFinished { outcome, .. } => self.event(outcome),
            RunEvent::BadInput { place, message, .. } => {
                tracing::error!(place, "{message}");
            }
            _ => {}
        }
    }

    /// The closing line: on stdout for human and quiet output, on stderr with `--json`
    /// (stdout then holds only JSON objects).
    fn finish(&mut self, totals: &Totals) -> Exit {
        let line = totals.line(self.options.dry_run);
        progress::suspend(|| {
            match self.options.format {
                Format::Json => {
                    let _ = writeln!(std::io::stderr(), "{line}");
                }
                _ => {
                    let _ = writeln!(self.out, "{line}");
                }
            }
            let _ = self.out.flush();
        });
        Exit::Success
    }
}

/// Whether to colour by default: on a terminal, and never with `NO_COLOR` (https://no-color.org);
/// `CLICOLOR_FORCE` (not `0`) colours even into a pipe (https://bixense.com/clicolors).
pub fn use_color(stream_is_terminal: bool) -> bool {
    let set = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    decide_color(
        ColorChoice::Auto,
        stream_is_terminal,
        set("NO_COLOR").is_some(),
        set("CLICOLOR_FORCE").is_some_and(|value| value != "0"),
    )
}

/// `--color`: when human output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, without `NO_COLOR`; or wherever `CLICOLOR_FORCE` is set.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream. `auto` leaves GitHub Actions logs plain (they carry workflow
    /// commands, not a terminal's escapes); an explicit choice wins over everything.
    pub fn enabled(self, stream_is_terminal: bool, github: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => use_color(stream_is_terminal) && !github,
        }
    }
}

/// The colour rule as a pure function. As anstream does, a forced colour wins over `NO_COLOR`:
/// it is the more specific request.
fn decide_color(choice: ColorChoice, terminal: bool, no_color: bool, force: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => force || (terminal && !no_color),
    }
}

#[cfg(test)]
mod color_tests {
    use super::*;

    #[test]
    fn colour_follows_the_flag_then_the_environment_then_the_terminal() {
        use ColorChoice::*;
        for (choice, terminal, no_color, force, expected) in [
            (Auto, true, false, false, true),
            (Auto, false, false, false, false),
            (Auto, true, true, false, false),
            (Auto, false, false, true, true),
            (Auto, true, true, true, true),
            (Always, false, true, false, true),
            (Never, true, false, true, false),
        ] {
            assert_eq!(
                decide_color(choice, terminal, no_color, force),
                expected,
                "{choice:?} terminal={terminal} NO_COLOR={no_color} CLICOLOR_FORCE={force}"
            );
        }
    }
}

/// The exit status when stdout (or stderr) is closed under vane (`vane validate | head -1`):
/// 141, what a shell reports for a process ended by `SIGPIPE`.
pub const BROKEN_PIPE_EXIT: i32 = 141;

/// Makes a closed stdout or stderr end the process quietly with [`BROKEN_PIPE_EXIT`] rather
/// than a panic (exit 101). Rust ignores `SIGPIPE`, so a write to a closed pipe fails with
/// `EPIPE`, and `println!` panics on that; restoring `SIGPIPE` instead would also kill vane when a
/// step's process closes its stdin early. Any other panic keeps the default report.
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_broken_pipe_panic(message) {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default(info);
    }));
}

/// std's message for a failed `print!`/`eprint!` on a closed pipe.
fn is_broken_pipe_panic(message: &str) -> bool {
    (message.starts_with("failed printing to stdout")
        || message.starts_with("failed printing to stderr"))
        && message.contains("os error 32")
}

#[cfg(test)]
mod broken_pipe_tests {
    #[test]
    fn only_print_failures_on_a_closed_pipe_count() {
        assert!(super::is_broken_pipe_panic(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!super::is_broken_pipe_panic(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!super::is_broken_pipe_panic("index out of bounds"));
    }
}
