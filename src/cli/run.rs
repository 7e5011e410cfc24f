//! `vane run` and `vane plan`: read events, process each (and what it emits), report, exit.

use super::Exit;
use super::args::{EventArgs, GlobalArgs};
use crate::cancel::CancelToken;
use crate::diagnostic::Diagnostic;
use crate::engine::{Engine, EngineOptions, StreamItem, StreamOptions, run_stream};
use crate::event::{self, Event, EventError, EventStream, InputOptions};
use crate::report::{Format, ReportOptions, Reporter, Totals, progress, use_color};
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::time::Duration;

pub fn run(global: &GlobalArgs, args: &EventArgs, dry_run: bool) -> Exit {
    let masker = Masker::new();
    let Some(set) = load_or_report(global, &masker) else {
        return Exit::Invalid;
    };
    let input = InputOptions {
        kind: args.kind.clone(),
        source: args.source.clone(),
        delivery_id: None,
    };

    let source = match open_input(args) {
        Ok(source) => source,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Invalid;
        }
    };
    let (origin, mut events): (
        String,
        Box<dyn Iterator<Item = Result<Event, EventError>> + Send>,
    ) = match source {
        Some((origin, reader)) => {
            let parsers = std::thread::available_parallelism().map_or(1, |count| count.get());
            (
                origin,
                Box::new(EventStream::spawn(
                    reader,
                    args.max_event_size,
                    input.clone(),
                    parsers,
                )),
            )
        }
        None => ("stdin".to_string(), Box::new(std::iter::empty())),
    };
    // In GitHub Actions stdin is neither a terminal nor an event: with nothing on it, the run's
    // own event is the input.
    let first = events.next();
    let (origin, events): (
        String,
        Box<dyn Iterator<Item = Result<Event, EventError>> + Send>,
    ) = match first {
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
    let drive = Drive {
        origin,
        events,
        dry_run,
        explain: args.explain,
        parallel: args.parallel.map(usize::from),
        lock_timeout: args.lock_timeout,
        cancel: None,
        on_recorded: None,
    };
    drive.run(global, &set, masker)
}

/// Runs (or plans) one event built by the caller (`vane dispatch`, `vane replay`).
pub fn run_event(
    global: &GlobalArgs,
    set: &WorkflowSet,
    masker: Masker,
    event: Event,
    dry_run: bool,
) -> Exit {
    let drive = Drive {
        origin: "event".to_string(),
        events: Box::new(std::iter::once(Ok(event))),
        dry_run,
        explain: false,
        parallel: None,
        lock_timeout: Duration::from_secs(600),
        cancel: None,
        on_recorded: None,
    };
    drive.run(global, set, masker)
}

pub type Events = Box<dyn Iterator<Item = Result<Event, EventError>> + Send>;

/// Called with each event whose runs were recorded (a queue takes it off then).
pub type OnRecorded = Box<dyn FnMut(&crate::engine::EventOutcome) + Send>;

/// Events on their way through the engine to the reporter, the state store and GitHub Actions.
pub struct Drive {
    /// Where bad inputs are reported from (`stdin`, a file name).
    pub origin: String,
    pub events: Events,
    pub dry_run: bool,
    pub explain: bool,
    pub parallel: Option<usize>,
    pub lock_timeout: Duration,
    /// What stops the runs; default: SIGINT/SIGTERM. A daemon passes its own, so that a
    /// shutdown lets the runs in flight finish.
    pub cancel: Option<CancelToken>,
    pub on_recorded: Option<OnRecorded>,
}

impl Drive {
    pub fn run(self, global: &GlobalArgs, set: &WorkflowSet, masker: Masker) -> Exit {
        let Drive {
            origin,
            events,
            dry_run,
            explain,
            parallel,
            lock_timeout,
            cancel,
            mut on_recorded,
        } = self;
        let cancel = cancel.unwrap_or_else(CancelToken::from_signals);
        let mut engine = Engine {
            set,
            options: EngineOptions {
                dry_run,
                workspace: global.workspace.clone(),
                state_folder: super::state::folder(global),
            },
            masker: masker.clone(),
            cancel: cancel.clone(),
            recommendations: crate::state::Recommendations::in_memory(),
        };
        let mut recorder = match super::state::Recorder::open(global, &engine) {
            Ok(recorder) => recorder,
            Err(exit) => return exit,
        };
        // Real runs keep `scale` recommendations in the store, where the next process finds them.
        if let Some(store) = recorder.shared_store() {
            engine.recommendations = crate::state::Recommendations::in_store(store);
        }
        let stdout = std::io::stdout();
        let format = if global.json {
            Format::Json
        } else if global.quiet {
            Format::Quiet
        } else {
            Format::Human
        };
        let github = crate::report::github::enabled(global.github);
        if github {
            // Workflow commands go where the runner reads them; with `--json`, stdout holds only JSON.
            if global.json {
                crate::report::github::announce_masks(set, &masker, &mut std::io::stderr());
            } else {
                crate::report::github::announce_masks(set, &masker, &mut std::io::stdout());
            }
        }
        // Live lines on stderr only where someone watches output meant for people: not in a pipe,
        // not with `--json` or `--quiet`, not in a GitHub Actions log.
        if format == Format::Human && !github && std::io::stderr().is_terminal() {
            progress::install(masker.clone());
        }
        let mut actions = crate::report::github::ActionsReport::default();
        let options = ReportOptions {
            format,
            color: use_color(stdout.is_terminal()) && !github,
            explain,
            dry_run,
            github,
        };
        let mut reporter = Reporter::new(stdout.lock(), options, masker.clone());
        let shared_store = recorder.shared_store();
        let mut totals = Totals::default();
        let mut exit = Exit::Success;
        // What happens with each finished event, whichever way it ran.
        let mut handle = |outcome: &crate::engine::EventOutcome,
                          reporter: &mut Reporter<_>,
                          totals: &mut Totals| {
            if recorder.record(outcome, set)
                && let Some(on_recorded) = on_recorded.as_mut()
            {
                on_recorded(outcome);
            }
            totals.add(outcome);
            crate::metrics::outcome(outcome);
            if github {
                actions.record(outcome, set);
            }
            reporter.event(outcome, set);
            progress::event_done(totals);
            if outcome.failed() {
                exit = exit.worst(Exit::RunFailed);
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

        if dry_run {
            // A plan has no effects to overlap or serialize: events go through one at a time, each
            // followed by the events its `emit` steps would send.
            for parsed in events {
                if cancel.is_cancelled() {
                    break;
                }
                match parsed {
                    Ok(event) => {
                        let mut queue = VecDeque::from([(event, 0usize)]);
                        while let Some((event, depth)) = queue.pop_front() {
                            let mut outcome = engine.process(event, depth);
                            handle(&outcome, &mut reporter, &mut totals);
                            queue.extend(
                                outcome
                                    .emitted
                                    .drain(..)
                                    .map(|emitted| (emitted, depth + 1)),
                            );
                        }
                    }
                    Err(error) => bad_input(error, &origin, &mut totals),
                }
            }
        } else {
            let options = StreamOptions {
                parallel: parallel.unwrap_or_else(default_parallelism),
            };
            let coordinator = match shared_store {
                Some(store) => crate::state::Coordinator::new(
                    store,
                    &super::state::location(global),
                    lock_timeout,
                    set.revision.clone(),
                ),
                None => Ok(None),
            };
            let local: Box<dyn crate::engine::GroupLocks + Send> = match coordinator {
                Ok(Some(coordinator)) => Box::new(coordinator),
                Ok(None) => Box::new(crate::engine::LocalOnly),
                Err(error) => {
                    eprintln!("error: {error}");
                    return Exit::Invalid;
                }
            };
            let locks = match group_locks(global, local, lock_timeout) {
                Ok(locks) => locks,
                Err(message) => {
                    eprintln!("error: {message}");
                    return Exit::Invalid;
                }
            };
            run_stream(
                &engine,
                events,
                &options,
                locks.as_ref(),
                &mut |item| match item {
                    StreamItem::Outcome(outcome) => handle(&outcome, &mut reporter, &mut totals),
                    StreamItem::BadInput(error) => bad_input(error, &origin, &mut totals),
                },
            );
        }
        progress::finish();
        reporter.summary(&totals);
        exit = exit.worst(recorder.exit());
        if github && let Err(error) = actions.finish(&masker) {
            eprintln!("error: cannot write the GitHub Actions outputs: {error}");
            exit = exit.worst(Exit::Invalid);
        }
        if totals.bad_inputs > 0 {
            exit = exit.worst(Exit::Invalid);
        }
        if cancel.is_cancelled() {
            exit = Exit::Interrupted;
        }
        exit
    }
}

/// Where concurrency groups are locked: with `queue: nats://…` in a JetStream KV bucket, shared
/// by every process of the cluster; otherwise in the state store (`local`).
fn group_locks(
    global: &GlobalArgs,
    local: Box<dyn crate::engine::GroupLocks + Send>,
    lock_timeout: Duration,
) -> Result<Box<dyn crate::engine::GroupLocks>, String> {
    let Some(crate::config::Queue::Nats(settings)) =
        global.loaded.as_ref().map(|config| &config.queue)
    else {
        return Ok(local);
    };
    let broker =
        crate::broker::JetStream::connect(&settings.url).map_err(|error| error.to_string())?;
    crate::broker::KvGroupLocks::open(
        &broker,
        &settings.locks,
        settings.lock_lease,
        lock_timeout,
        local,
    )
    .map(|locks| Box::new(locks) as Box<dyn crate::engine::GroupLocks>)
    .map_err(|error| error.to_string())
}

type Input = Option<(String, Box<dyn BufRead + Send>)>;

/// Runs at once by default: one per core.
fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |count| count.get())
}

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
    let github = crate::report::github::enabled(global.github);
    for diagnostic in &diagnostics {
        eprintln!("{diagnostic}");
        if github {
            println!("{}", crate::report::github::annotation(diagnostic));
        }
    }
    eprintln!(
        "error: {} problem(s) in the workflows; nothing was run (see `vane validate`)",
        errors.len()
    );
    None
}
