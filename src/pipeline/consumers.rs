//! Which consumers read a pipeline's stream, chosen once from its settings.

use super::recorder::{Recorder, Recording};
use super::{Consumer, Fanout, OnRecorded, Settings};
use crate::engine::RunEvent;
use crate::report::{Format, LiveReporter, ReportOptions, Reporter, github, progress};
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use std::collections::HashMap;
use std::io::IsTerminal;

pub fn attach<'a>(
    fanout: &Fanout<'a>,
    settings: &Settings,
    set: &'a WorkflowSet,
    masker: &Masker,
    recorder: Recorder,
    on_recorded: Option<OnRecorded>,
    log_runs: bool,
) {
    if settings.github {
        // Before anything else is printed, so that no later line can show a secret. Workflow
        // commands go where the runner reads them; with `--json`, stdout holds only JSON.
        if settings.format == Format::Json {
            github::announce_masks(set, masker, &mut std::io::stderr());
        } else {
            github::announce_masks(set, masker, &mut std::io::stdout());
        }
    }
    // Live lines on stderr only where someone watches output meant for people: not in a pipe,
    // not with `--json` or `--quiet`, not in a GitHub Actions log.
    if settings.format == Format::Human && !settings.github && std::io::stderr().is_terminal() {
        progress::install(masker.clone());
        fanout.push(Box::new(progress::Progress { set }));
    }
    // Recorded first: what the reporter says has happened is in the history already.
    fanout.push(Box::new(Recording {
        recorder,
        set,
        on_recorded,
        unrecorded: Vec::new(),
    }));
    let options = ReportOptions {
        format: settings.format,
        color: settings.color,
        explain: settings.explain,
        dry_run: settings.dry_run,
        github: settings.github,
    };
    let stdout = std::io::stdout();
    if settings.format == Format::Human && !settings.dry_run {
        fanout.push(Box::new(LiveReporter::new(
            stdout,
            set,
            options,
            settings.output,
            masker.clone(),
        )));
    } else {
        fanout.push(Box::new(Reporter::new(
            stdout,
            set,
            options,
            masker.clone(),
        )));
    }
    if settings.github {
        // Human output carries the failed steps' annotations itself; the others get them here.
        let annotations: Option<Box<dyn std::io::Write + Send>> = match settings.format {
            Format::Human => None,
            Format::Json => Some(Box::new(std::io::stderr())),
            Format::Quiet => Some(Box::new(std::io::stdout())),
        };
        fanout.push(Box::new(github::Actions {
            report: github::ActionsReport::default(),
            set,
            masker: masker.clone(),
            annotations,
        }));
    }
    fanout.push(Box::new(Metrics));
    if log_runs {
        fanout.push(Box::new(RunLog {
            set,
            events: HashMap::new(),
        }));
    }
}

/// A daemon's log of its runs: each run started and finished, with its id.
struct RunLog<'a> {
    set: &'a WorkflowSet,
    /// The id of each event in flight, by sequence.
    events: HashMap<u64, String>,
}

impl Consumer for RunLog<'_> {
    fn observe(&mut self, event: &RunEvent<'_>) {
        let name = |workflow: usize| {
            self.set
                .workflows
                .get(workflow)
                .map_or("", |workflow| workflow.name.as_str())
        };
        match event {
            RunEvent::Matched {
                sequence, event, ..
            } => {
                self.events.insert(*sequence, event.id().to_string());
            }
            RunEvent::RunStarted {
                sequence,
                workflow,
                run_id,
            } => {
                let event = self.events.get(sequence).map_or("", String::as_str);
                let workflow = name(*workflow);
                tracing::info!(
                    run = run_id,
                    workflow,
                    event,
                    revision = self.set.revision.as_deref().unwrap_or(""),
                    "run {run_id} of `{workflow}` started for event {event}"
                );
            }
            RunEvent::RunFinished {
                sequence,
                workflow,
                record,
            } => {
                let event = self.events.get(sequence).map_or("", String::as_str);
                let workflow = name(*workflow);
                let status = record.status.as_str();
                tracing::info!(
                    run = %record.id,
                    workflow,
                    event,
                    status,
                    duration_ms = record.duration_ms,
                    error = record.error.as_deref().unwrap_or(""),
                    "run {} of `{workflow}` finished: {status}",
                    record.id
                );
            }
            RunEvent::EventFinished { sequence, .. } => {
                self.events.remove(sequence);
            }
            _ => {}
        }
    }
}

/// The process's counters for `/metrics`.
struct Metrics;

impl Consumer for Metrics {
    fn observe(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::EventFinished { outcome, .. } = event {
            crate::metrics::outcome(outcome);
        }
    }
}
