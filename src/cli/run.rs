//! `vane run` and `vane plan`: read events, process each (and what it emits), report, exit.

use super::Exit;
use super::args::{EventArgs, GlobalArgs};
use crate::cancel::CancelToken;
use crate::diagnostic::Diagnostic;
use crate::engine::{Engine, EngineOptions};
use crate::event::{self, Event, EventError, EventStream, InputOptions};
use crate::report::{Format, ReportOptions, Reporter, Totals, progress, use_color};
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, IsTerminal, Read};

pub fn run(global: &GlobalArgs, args: &EventArgs, dry_run: bool) -> Exit {
    let masker = Masker::new();
    let Some(set) = load_or_report(global, &masker) else {
        return Exit::Invalid;
    };
    let cancel = CancelToken::from_signals();
    let engine = Engine {
        set: &set,
        options: EngineOptions {
            dry_run,
            workspace: global.workspace.clone(),
        },
        masker: masker.clone(),
        cancel: cancel.clone(),
    };
    let mut recorder = match super::state::Recorder::open(global, &engine) {
        Ok(recorder) => recorder,
        Err(exit) => return exit,
    };
    let mut recorder = match super::state::Recorder::open(global, &engine) {
        Ok(recorder) => recorder,
        Err(exit) => return exit,
    };
    let stdout = std::io::stdout();
    let format = if global.json {
        Format::Json
    } else if global.quiet {
        Format::Quiet
    } else {
        Format::Human
    };
    // Live lines on stderr only where someone watches output meant for people: not in a pipe,
    // not with `--json` or `--quiet`.
    if format == Format::Human && std::io::stderr().is_terminal() {
        progress::install(masker.clone());
    }
    let options = ReportOptions {
        format,
        color: use_color(stdout.is_terminal()),
        explain: args.explain,
        dry_run,
    };
    let mut reporter = Reporter::new(stdout.lock(), options, masker.clone());
    let input = InputOptions {
        kind: args.kind.clone(),
        source: args.source.clone(),
        delivery_id: None,
    };

    let mut totals = Totals::default();
    let mut exit = Exit::Success;
    let mut process = |event: Event, reporter: &mut Reporter<_>, totals: &mut Totals| {
        let mut queue = VecDeque::from([(event, 0usize)]);
        while let Some((event, depth)) = queue.pop_front() {
            let outcome = engine.process(event, depth);
            recorder.record(&outcome, &set);
            recorder.record(&outcome, &set);
            totals.add(&outcome);
            reporter.event(&outcome, &set);
            progress::event_done(totals);
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
    };

    let bad_input = |error: EventError, origin: &str, totals: &mut Totals| {
        totals.bad_inputs += 1;
        let place = match error.line {
            Some(line) => format!("{origin}:{line}"),
            None => origin.to_string(),
        };
        progress::suspend(|| eprintln!("{place}: error: {}", masker.mask(&error.message)));
    };

    let source = match open_input(args) {
        Ok(source) => source,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Invalid;
        }
    };
    let mut saw_input = false;
    if let Some((origin, reader)) = source {
        let parsers = std::thread::available_parallelism().map_or(1, |count| count.get());
        let stream = EventStream::spawn(reader, args.max_event_size, input.clone(), parsers);
        for parsed in stream {
            if cancel.is_cancelled() {
                break;
            }
            saw_input = true;
            match parsed {
                Ok(event) => process(event, &mut reporter, &mut totals),
                Err(error) => bad_input(error, &origin, &mut totals),
            }
        }
    }
    if !saw_input && !cancel.is_cancelled() {
        // In GitHub Actions stdin is neither a terminal nor an event: the run's own event is.
        match event::actions_event(&|name| std::env::var(name).ok()) {
            Some(Ok(event)) => process(event, &mut reporter, &mut totals),
            Some(Err(error)) => bad_input(error, "GITHUB_EVENT_PATH", &mut totals),
            None => {
                eprintln!("error: no event: pass `--event FILE`, or pipe JSON on stdin");
                return Exit::Invalid;
            }
        }
    }
    progress::finish();
    reporter.summary(&totals);
    exit = exit.worst(recorder.exit());
    exit = exit.worst(recorder.exit());
    if totals.bad_inputs > 0 {
        exit = exit.worst(Exit::Invalid);
    }
    if cancel.is_cancelled() {
        exit = Exit::Interrupted;
    }
    exit
}

type Input = Option<(String, Box<dyn BufRead + Send>)>;

/// `--event FILE`, else stdin unless it is a terminal (nothing would ever arrive).
fn open_input(args: &EventArgs) -> Result<Input, String> {
    match &args.event {
        Some(path) if path.as_os_str() == "-" => Ok(Some((
            "stdin".to_string(),
            Box::new(BufReader::new(std::io::stdin())),
        ))),
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|error| {
                format!("cannot read the event file `{}`: {error}", path.display())
            })?;
            Ok(Some((
                path.display().to_string(),
                Box::new(BufReader::with_capacity(256 * 1024, file)),
            )))
        }
        None if std::io::stdin().is_terminal() => Ok(None),
        None => Ok(Some((
            "stdin".to_string(),
            Box::new(BufReader::with_capacity(
                256 * 1024,
                std::io::stdin().take(u64::MAX),
            )),
        ))),
    }
}

/// Loads the workflows; prints every problem and returns `None` when any is an error.
pub fn load_or_report(global: &GlobalArgs, _masker: &Masker) -> Option<WorkflowSet> {
    let (set, diagnostics) = super::workflows::load(global, &[]).ok()?;
    let errors: Vec<&Diagnostic> = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.is_error())
        .collect();
    if errors.is_empty() {
        if global.verbose > 0 {
            for warning in &diagnostics {
                eprintln!("{warning}");
            }
        }
        return Some(set);
    }
    for diagnostic in &diagnostics {
        eprintln!("{diagnostic}");
    }
    eprintln!(
        "error: {} problem(s) in the workflows; nothing was run (see `vane validate`)",
        errors.len()
    );
    None
}
