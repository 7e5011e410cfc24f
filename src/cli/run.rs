//! `vane run` and `vane plan`: read events, send them down the pipeline, exit with its status.

use super::Exit;
use super::args::{EventArgs, GlobalArgs};
use crate::diagnostic::Diagnostic;
use crate::event::{self, Event, EventStream, InputOptions};
use crate::pipeline::{Events, Pipeline, Settings};
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use std::io::{BufRead, BufReader, IsTerminal, Read};

pub fn run(global: &GlobalArgs, args: &EventArgs, dry_run: bool) -> Exit {
    let masker = Masker::new();
    let Some(set) = load_or_report(global) else {
        return Exit::Invalid;
    };
    let input = InputOptions {
        kind: args.kind.clone(),
        source: args.source.clone(),
        delivery_id: None,
    };
    let (origin, mut events): (String, Events) = match open_input(args) {
        Ok(Some((origin, reader))) => {
            let parsers = Settings::default_parallelism();
            let stream = EventStream::spawn(reader, args.max_event_size, input, parsers);
            (origin, Box::new(stream))
        }
        Ok(None) => ("stdin".to_string(), Box::new(std::iter::empty())),
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Invalid;
        }
    };
    // In GitHub Actions stdin is neither a terminal nor an event: with nothing on it, the run's
    // own event is the input.
    let (origin, events): (String, Events) = match events.next() {
        Some(first) => (origin, Box::new(std::iter::once(first).chain(events))),
        None => match event::actions_event(&|name| std::env::var(name).ok()) {
            Some(item) => (
                "GITHUB_EVENT_PATH".to_string(),
                Box::new(std::iter::once(item)),
            ),
            None => {
                eprintln!("error: no event: pass `--event FILE`, or pipe JSON on stdin");
                return Exit::Invalid;
            }
        },
    };
    let settings = super::settings::resolve(global, Some(args), dry_run);
    Pipeline::new(&settings, &set, masker).run(&origin, events)
}

/// Runs (or plans) one event built by the caller (`vane dispatch`, `vane replay`).
pub fn run_event(pipeline: Pipeline, event: Event) -> Exit {
    pipeline.run("event", Box::new(std::iter::once(Ok(event))))
}

type Input = Box<dyn BufRead + Send>;

/// `--event FILE`, else stdin unless it is a terminal (nothing would ever arrive).
fn open_input(args: &EventArgs) -> Result<Option<(String, Input)>, String> {
    let stdin = || -> Input {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            std::io::stdin().take(u64::MAX),
        ))
    };
    match &args.event {
        Some(path) if path.as_os_str() == "-" => Ok(Some(("stdin".to_string(), stdin()))),
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|error| {
                format!("cannot read the event file `{}`: {error}", path.display())
            })?;
            let reader = Box::new(BufReader::with_capacity(256 * 1024, file));
            Ok(Some((path.display().to_string(), reader)))
        }
        None if std::io::stdin().is_terminal() => Ok(None),
        None => Ok(Some(("stdin".to_string(), stdin()))),
    }
}

/// Loads the workflows; prints every problem and returns `None` when any is an error.
pub fn load_or_report(global: &GlobalArgs) -> Option<WorkflowSet> {
    let (set, diagnostics) = super::workflows::load(global, &[]).ok()?;
    let errors = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.is_error())
        .count();
    if errors == 0 {
        if global.verbose > 0 {
            diagnostics.iter().for_each(Diagnostic::log);
        }
        return Some(set);
    }
    let github = crate::report::github::enabled(global.github);
    for diagnostic in &diagnostics {
        diagnostic.log();
        if github {
            println!("{}", crate::report::github::annotation(diagnostic));
        }
    }
    tracing::error!("{errors} problem(s) in the workflows; nothing was run (see `vane validate`)");
    None
}
