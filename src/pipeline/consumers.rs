//! Which consumers read a pipeline's stream, chosen once from its settings.

use super::recorder::{Recorder, Recording};
use super::{Consumer, Fanout, OnRecorded, Settings};
use crate::engine::RunEvent;
use crate::report::{Format, LiveReporter, ReportOptions, Reporter, github, progress};
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use std::io::IsTerminal;

pub fn attach<'a>(
    fanout: &Fanout<'a>,
    settings: &Settings,
    set: &'a WorkflowSet,
    masker: &Masker,
    recorder: Recorder,
    on_recorded: Option<OnRecorded>,
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
