//! Running what waits in the queue (`vane poll`, `vane serve`, `vane worker`): events are taken,
//! run through the same [`Pipeline`] as `vane run`, recorded, and only then marked done.

use super::{Events, Exit, Pipeline, Settings};
use crate::cancel::CancelToken;
use crate::event::{Event, EventError, InputOptions};
use crate::queue::{Queue, Taken};
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// When a drain ends.
#[derive(Debug, Clone)]
pub enum Until {
    /// As soon as the queue is empty (`vane poll --once`).
    Empty,
    /// When this token is cancelled (a daemon's shutdown); events taken but not started go back.
    Stopped(CancelToken),
}

/// How long a waiting worker sleeps before looking for events pushed by other processes.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// Runs queued events until `until`; the exit status is `vane run`'s.
pub fn drain(
    settings: &Settings,
    set: &WorkflowSet,
    masker: Masker,
    queue: Arc<dyn Queue>,
    until: Until,
) -> Exit {
    let in_flight: Arc<Mutex<HashMap<String, Taken>>> = Arc::default();
    let probe = Arc::new(StoreProbe {
        state: settings.state.clone(),
        masker: masker.clone(),
        store: Mutex::new(None),
        last: Mutex::new(None),
    });
    let events: Events = Box::new(QueueEvents {
        queue: Arc::clone(&queue),
        buffer: VecDeque::new(),
        in_flight: Arc::clone(&in_flight),
        until: until.clone(),
        batch: settings.parallel.max(1) * 2,
        probe: Arc::clone(&probe),
        paused: false,
    });
    let mut pipeline = Pipeline::new(settings, set, masker);
    // Runs taken before the store filled wait too; a stop lets them go (what they cannot record
    // is run again by the next process).
    pipeline.hold = Some(Arc::new({
        let until = until.clone();
        move || {
            let stopping = matches!(&until, Until::Stopped(token) if token.is_cancelled());
            !stopping && probe.held()
        }
    }));
    // A daemon's runs are not cancelled by its shutdown: they finish, then it exits.
    pipeline.log_runs = matches!(until, Until::Stopped(_));
    pipeline.cancel = match &until {
        Until::Empty => None,
        Until::Stopped(_) => Some(CancelToken::new()),
    };
    pipeline.on_recorded = Some(Box::new(move |outcome| {
        if outcome.depth > 0 {
            return;
        }
        let taken = in_flight
            .lock()
            .ok()
            .and_then(|mut in_flight| in_flight.remove(outcome.event.id()));
        if let Some(taken) = taken
            && let Err(message) = queue.done(&taken)
        {
            tracing::error!(
                "event {}: its runs are recorded but it stays queued (it will be \
                 recognised as done): {message}",
                taken.delivery
            );
        }
    }));
    pipeline.run("queue", events)
}

/// The queue as the event iterator [`Drive`] reads.
struct QueueEvents {
    queue: Arc<dyn Queue>,
    /// Taken, not yet handed to the engine.
    buffer: VecDeque<Taken>,
    /// Handed to the engine, not yet recorded: delivery → what `done` needs.
    in_flight: Arc<Mutex<HashMap<String, Taken>>>,
    until: Until,
    batch: usize,
    probe: Arc<StoreProbe>,
    /// Whether this drain has said that it paused.
    paused: bool,
}

/// Tells, while intake is paused, whether the store still cannot be written: a probe write at
/// most every [`IDLE_WAIT`]; the first that succeeds resumes intake.
struct StoreProbe {
    state: crate::state::StateLocation,
    masker: Masker,
    store: Mutex<Option<crate::state::Store>>,
    last: Mutex<Option<std::time::Instant>>,
}

impl StoreProbe {
    fn held(&self) -> bool {
        if crate::pipeline::intake::paused().is_none() {
            return false;
        }
        if let Ok(mut last) = self.last.lock() {
            if last.is_some_and(|last| last.elapsed() < IDLE_WAIT) {
                return true;
            }
            *last = Some(std::time::Instant::now());
        }
        let Ok(mut store) = self.store.lock() else {
            return true;
        };
        if store.is_none() {
            *store = crate::state::Store::open(&self.state, self.masker.clone()).ok();
        }
        let writable = store
            .as_mut()
            .is_some_and(|store| store.probe_write().is_ok());
        if writable {
            crate::pipeline::intake::resume();
        }
        !writable
    }
}

impl QueueEvents {
    fn stopped(&self) -> bool {
        matches!(&self.until, Until::Stopped(token) if token.is_cancelled())
    }

    /// While the store cannot be written: gives back what was taken and says so, once.
    fn pause(&mut self, reason: &str) {
        if !self.paused {
            self.paused = true;
            crate::metrics::intake_paused(true);
            tracing::error!(
                reason,
                "the state store cannot be written ({reason}); taking no more events until it can"
            );
            let rest: Vec<Taken> = self.buffer.drain(..).collect();
            self.queue.give_back(&rest);
        }
    }
}

impl Iterator for QueueEvents {
    type Item = Result<Event, EventError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.stopped() {
                let rest: Vec<Taken> = self.buffer.drain(..).collect();
                self.queue.give_back(&rest);
                return None;
            }
            if let Some(reason) = crate::pipeline::intake::paused() {
                self.pause(&reason);
                if self.probe.held() {
                    std::thread::sleep(IDLE_WAIT);
                    continue;
                }
            }
            if self.paused {
                self.paused = false;
                crate::metrics::intake_paused(false);
                tracing::info!("the state store can be written again; taking events");
            }
            if let Some(taken) = self.buffer.pop_front() {
                if self.queue.already_recorded(&taken) {
                    let _ = self.queue.done(&taken);
                    continue;
                }
                return Some(match parse(&taken) {
                    Ok(event) => {
                        if let Ok(mut in_flight) = self.in_flight.lock() {
                            in_flight.insert(event.id().to_string(), taken);
                        }
                        Ok(event)
                    }
                    Err(error) => {
                        // Checked before it was queued, so this is damage: it must not block
                        // the queue forever.
                        let _ = self.queue.done(&taken);
                        Err(error)
                    }
                });
            }
            let wait = match self.until {
                Until::Empty => Duration::ZERO,
                Until::Stopped(_) => IDLE_WAIT,
            };
            match self.queue.take(self.batch, wait) {
                Ok(taken) if taken.is_empty() => {
                    if matches!(self.until, Until::Empty) {
                        return None;
                    }
                }
                Ok(taken) => self.buffer.extend(taken),
                Err(message) => {
                    tracing::error!("cannot take events from the queue: {message}");
                    if matches!(self.until, Until::Empty) {
                        return None;
                    }
                    std::thread::sleep(IDLE_WAIT);
                }
            }
        }
    }
}

/// The queued envelope, as the event it was.
fn parse(taken: &Taken) -> Result<Event, EventError> {
    let mut event =
        crate::event::from_text(&taken.event, &InputOptions::default()).map_err(|error| {
            EventError::new(format!(
                "queued event {} from `{}` is damaged: {}",
                taken.delivery, taken.source, error.message
            ))
        })?;
    // The queue's key is the event's identity, whatever the envelope says.
    event.set_id(taken.delivery.clone());
    Ok(event)
}

/// The queue `vane.yaml` names (`queue:`), over the state store by default.
pub fn open_queue(settings: &Settings, masker: &Masker) -> Result<Arc<dyn Queue>, String> {
    match settings.queue() {
        crate::config::Queue::Sqlite => {
            crate::queue::SqliteQueue::open(&settings.state, masker.clone())
                .map(|queue| Arc::new(queue) as Arc<dyn Queue>)
                .map_err(|error| error.to_string())
        }
        crate::config::Queue::Nats(queue) => {
            crate::queue::JetStreamQueue::open(&queue, &settings.state, masker.clone())
                .map(|opened| Arc::new(opened) as Arc<dyn Queue>)
                .map_err(|message| format!("`queue: {}`: {message}", queue.url))
        }
    }
}
