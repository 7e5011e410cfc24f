//! The event pipeline every command drives: events in; matched, run (or planned) by the engine;
//! the run-event stream handed to its consumers (the reporter, GitHub Actions, the state
//! recorder, metrics, live progress); an exit status out. `run`, `plan`, `dispatch`, `replay`,
//! `poll`, `worker` and `serve` differ only in where their events come from and in the
//! [`Settings`] they resolve once from their flags and `vane.yaml`.

mod consumers;
mod drain;
mod exit;
mod input;
pub mod intake;
mod locks;
mod recorder;
mod settings;

pub use drain::{Until, drain, open_queue};
pub use exit::Exit;
pub use input::open_events;
pub use recorder::{OnRecorded, state_folder};
pub use settings::{OutputMode, Settings};

use crate::cancel::CancelToken;
use crate::engine::{Engine, EngineOptions, Observer, Overrides, RunEvent, StreamItem};
use crate::event::{Event, EventError};
use crate::report::{Totals, progress};
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// The events a pipeline reads, each one or why it is none.
pub type Events = Box<dyn Iterator<Item = Result<Event, EventError>> + Send>;

/// A reader of the run-event stream that keeps its own state (the [`Fanout`] serializes calls).
pub trait Consumer: Send {
    fn observe(&mut self, event: &RunEvent<'_>);

    /// The stream has ended; what this consumer has to add to the exit status.
    fn finish(&mut self, _totals: &Totals) -> Exit {
        Exit::Success
    }
}

/// Hands every event to each consumer in turn, one event at a time: a consumer never sees two
/// events at once, and every consumer sees the same order.
#[derive(Default)]
pub struct Fanout<'a> {
    consumers: Mutex<Vec<Box<dyn Consumer + 'a>>>,
}

impl<'a> Fanout<'a> {
    pub fn push(&self, consumer: Box<dyn Consumer + 'a>) {
        self.lock().push(consumer);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Box<dyn Consumer + 'a>>> {
        // A consumer that panicked left its own state behind, not the list's.
        self.consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The end of the stream: each consumer's say in the exit status, the worst of them.
    pub fn finish(&self, totals: &Totals) -> Exit {
        self.lock()
            .iter_mut()
            .fold(Exit::Success, |exit, consumer| {
                exit.worst(consumer.finish(totals))
            })
    }
}

impl Observer for Fanout<'_> {
    fn observe(&self, event: &RunEvent<'_>) {
        for consumer in self.lock().iter_mut() {
            consumer.observe(event);
        }
    }
}

/// Where the engine's gates keep their state: with `queue: nats://…` the queue's KV bucket
/// (shared by every machine; the runs they let through recorded in `store`), else the state
/// store. A plan reads that state (bucket or store) and keeps its own decisions in memory.
fn gate_store(
    settings: &Settings,
    set: &WorkflowSet,
    store: Option<&std::sync::Arc<Mutex<crate::state::Store>>>,
) -> Result<crate::gates::GateStore, String> {
    let gated = set.workflows.iter().any(|workflow| workflow.gate.is_some());
    Ok(match (store, settings.queue()) {
        (Some(store), crate::config::Queue::Nats(queue)) if gated => {
            crate::gates::GateStore::in_kv(&queue, Some(std::sync::Arc::clone(store)))?
        }
        (Some(store), _) => crate::gates::GateStore::in_store(std::sync::Arc::clone(store)),
        // A plan is still made without the server, from no gate state, and says so.
        (None, crate::config::Queue::Nats(queue)) if gated => {
            crate::gates::GateStore::overlay_kv(&queue).unwrap_or_else(|message| {
                tracing::warn!("gates: {message}; planned from no gate state");
                crate::gates::GateStore::overlay(None)
            })
        }
        (None, _) => crate::gates::GateStore::overlay(Some(&settings.state)),
    })
}

/// One pass of events through the engine to the consumers.
pub struct Pipeline<'a> {
    pub settings: &'a Settings,
    pub set: &'a WorkflowSet,
    pub masker: Masker,
    /// What stops the runs; default: SIGINT/SIGTERM. A daemon passes its own, so that a
    /// shutdown lets the runs in flight finish.
    pub cancel: Option<CancelToken>,
    /// Called with each event whose runs were recorded (a queue takes it off then).
    pub on_recorded: Option<OnRecorded>,
    /// What is recorded is a replay of this run.
    pub replay_of: Option<String>,
    /// Log each run started and finished (a daemon's log).
    pub log_runs: bool,
    /// While this says so, no run starts (a queue drain whose store cannot be written).
    pub hold: Option<crate::engine::Hold>,
}

impl<'a> Pipeline<'a> {
    pub fn new(settings: &'a Settings, set: &'a WorkflowSet, masker: Masker) -> Pipeline<'a> {
        Pipeline {
            settings,
            set,
            masker,
            cancel: None,
            on_recorded: None,
            replay_of: None,
            log_runs: false,
            hold: None,
        }
    }

    /// Runs (or plans) one event built by the caller (`vane dispatch`, `vane replay`).
    pub fn run_one(self, event: Event) -> Exit {
        self.run("event", Box::new(std::iter::once(Ok(event))))
    }

    /// Runs (or plans) every event of `events`; `origin` names where bad inputs came from
    /// (`stdin`, a file name, `queue`).
    pub fn run(self, origin: &str, events: Events) -> Exit {
        let Pipeline {
            settings,
            set,
            masker,
            cancel,
            on_recorded,
            replay_of,
            log_runs,
            hold,
        } = self;
        let cancel = cancel.unwrap_or_else(CancelToken::from_signals);
        let recorder = match recorder::Recorder::open(settings, &masker, &cancel, replay_of) {
            Ok(recorder) => recorder,
            Err(exit) => return exit,
        };
        let store = recorder.store();
        let gates = match gate_store(settings, set, store.as_ref()) {
            Ok(gates) => gates,
            Err(message) => {
                tracing::error!("{message}");
                return Exit::Invalid;
            }
        };
        let fanout = Fanout::default();
        let engine = Engine {
            set,
            options: EngineOptions {
                dry_run: settings.dry_run,
                workspace: settings.workspace.clone(),
                state_folder: state_folder(&settings.state),
                max_emitted: settings.max_emitted,
            },
            masker: masker.clone(),
            cancel: cancel.clone(),
            // Real runs keep `scale` recommendations in the store, where the next process
            // finds them; a plan keeps them in memory.
            recommendations: match &store {
                Some(store) => {
                    crate::state::Recommendations::in_store(std::sync::Arc::clone(store))
                }
                None => crate::state::Recommendations::in_memory(),
            },
            gates,
            observer: &fanout,
        };
        consumers::attach(
            &fanout,
            settings,
            set,
            &masker,
            recorder,
            on_recorded,
            log_runs,
        );

        let mut totals = Totals::default();
        let mut sequence = 0u64;
        let finished = |outcome: &crate::engine::EventOutcome, totals: &mut Totals| {
            totals.add(outcome);
            fanout.observe(&RunEvent::EventFinished {
                sequence: outcome.sequence,
                outcome,
            });
            progress::event_done(totals);
        };
        let bad_input = |sequence: u64, error: EventError, totals: &mut Totals| {
            totals.bad_inputs += 1;
            let place = match error.line {
                Some(line) => format!("{origin}:{line}"),
                None => origin.to_string(),
            };
            fanout.observe(&RunEvent::BadInput {
                sequence,
                place: &place,
                message: &masker.mask(&error.message),
            });
        };

        if settings.dry_run {
            // A plan has no effects to overlap or serialize: events go through one at a time, each
            // followed by the events its `emit` steps would send.
            for parsed in events {
                if cancel.is_cancelled() {
                    break;
                }
                let event = match parsed {
                    Ok(event) => event,
                    Err(error) => {
                        bad_input(sequence, error, &mut totals);
                        sequence += 1;
                        continue;
                    }
                };
                let mut queue = VecDeque::from([(event, 0usize)]);
                while let Some((event, depth)) = queue.pop_front() {
                    let overrides = Overrides {
                        sequence,
                        ..Overrides::default()
                    };
                    sequence += 1;
                    let mut outcome = engine.process_with(event, depth, &overrides);
                    finished(&outcome, &mut totals);
                    queue.extend(
                        outcome
                            .emitted
                            .drain(..)
                            .map(|emitted| (emitted, depth + 1)),
                    );
                }
            }
        } else {
            let locks = match locks::group_locks(settings, store, set.revision.clone()) {
                Ok(locks) => locks,
                Err(message) => {
                    tracing::error!("{message}");
                    return Exit::Invalid;
                }
            };
            let options = crate::engine::StreamOptions {
                parallel: settings.parallel,
                hold,
            };
            crate::engine::run_stream(&engine, events, &options, locks.as_ref(), &mut |item| {
                match item {
                    StreamItem::Outcome(outcome) => finished(&outcome, &mut totals),
                    StreamItem::BadInput(sequence, error) => {
                        bad_input(sequence, error, &mut totals)
                    }
                }
            });
        }
        progress::finish();
        let mut exit = fanout.finish(&totals);
        if totals.failed > 0 {
            exit = exit.worst(Exit::RunFailed);
        }
        if totals.broken > 0 || totals.bad_inputs > 0 {
            exit = exit.worst(Exit::Invalid);
        }
        if cancel.is_cancelled() {
            exit = Exit::Interrupted;
        }
        exit
    }
}
