//! The state recorder: the consumer that writes every finished event's runs to the state store
//! (real runs only: plans and dry runs are not history), and tells the caller once they are
//! recorded (a queue takes the event off then).

use super::{Consumer, Exit, Settings};
use crate::cancel::CancelToken;
use crate::engine::{EventOutcome, RunEvent};
use crate::report::Totals;
use crate::secrets::Masker;
use crate::state::{RecordOptions, StateLocation, Store};
use crate::workflow::WorkflowSet;
use std::sync::{Arc, Mutex};

/// Called with each event whose runs were recorded.
pub type OnRecorded = Box<dyn FnMut(&EventOutcome) + Send>;

/// The folder the state store is in, where caches (`gitops` clones) live beside it; `None` for
/// `:memory:`, which keeps nothing.
pub fn state_folder(location: &StateLocation) -> Option<std::path::PathBuf> {
    match location {
        StateLocation::File(path) => Some(match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        }),
        StateLocation::Memory => None,
    }
}

pub struct Recorder {
    /// Shared with the concurrency-group coordinator and `scale`'s recommendations: one
    /// connection per process, so that they never wait on each other's write locks.
    store: Option<Arc<Mutex<Store>>>,
    masker: Masker,
    cancel: CancelToken,
    replay_of: Option<String>,
    /// Records that could not be written; the first error is printed, the rest counted.
    failures: usize,
}

impl Recorder {
    /// Opens the store unless the pipeline only plans. A store that cannot be opened stops the
    /// command before anything runs: a run that cannot be recorded should not start.
    pub fn open(
        settings: &Settings,
        masker: &Masker,
        cancel: &CancelToken,
        replay_of: Option<String>,
    ) -> Result<Recorder, Exit> {
        let store = if settings.dry_run {
            None
        } else {
            let store = Store::open(&settings.state, masker.clone()).map_err(|error| {
                tracing::error!("{error}");
                Exit::Invalid
            })?;
            Some(Arc::new(Mutex::new(store)))
        };
        Ok(Recorder {
            store,
            masker: masker.clone(),
            cancel: cancel.clone(),
            replay_of,
            failures: 0,
        })
    }

    /// The open store (`None` when only planning).
    pub fn store(&self) -> Option<Arc<Mutex<Store>>> {
        self.store.clone()
    }

    /// Writes the event's runs; true when they are recorded (or there is nothing to record in).
    /// A failure is reported and remembered for the exit status; the remaining events still run
    /// (their effects matter more than their record).
    pub fn record(&mut self, outcome: &EventOutcome, set: &WorkflowSet) -> bool {
        let Some(store) = &self.store else {
            return true;
        };
        let Ok(mut store) = store.lock() else {
            return false;
        };
        let options = RecordOptions {
            interrupted: self.cancel.is_cancelled(),
            replay_of: self.replay_of.as_deref(),
            dry_run: false,
        };
        if let Err(error) = store.record(outcome, set, &options) {
            super::intake::pause(&self.masker.mask(&error.to_string()));
            if self.failures == 0 {
                tracing::error!("{}", self.masker.mask(&error.to_string()));
            }
            self.failures += 1;
            return false;
        }
        true
    }

    /// Exit status 2 when a record could not be written.
    fn exit(&self) -> Exit {
        if self.failures > 1 {
            tracing::error!(
                "{} events' runs could not be recorded in the state store",
                self.failures
            );
        }
        if self.failures > 0 {
            Exit::Invalid
        } else {
            Exit::Success
        }
    }
}

/// The recorder as a consumer of the stream.
pub struct Recording<'a> {
    pub recorder: Recorder,
    pub set: &'a WorkflowSet,
    pub on_recorded: Option<OnRecorded>,
    /// Outcomes of a queue's events that could not be recorded (the store could not be
    /// written), oldest first: recorded, and only then taken off the queue, once it can.
    pub unrecorded: Vec<EventOutcome>,
}

impl Recording<'_> {
    /// Records `outcome`; an event of a queue that could not be recorded is kept to retry.
    fn record(&mut self, outcome: &EventOutcome) -> bool {
        if !self.recorder.record(outcome, self.set) {
            if self.on_recorded.is_some() {
                self.unrecorded.push(outcome.clone());
            }
            return false;
        }
        if let Some(on_recorded) = self.on_recorded.as_mut() {
            on_recorded(outcome);
        }
        true
    }

    /// Records what could not be recorded before, oldest first; true when nothing is left.
    fn retry(&mut self) -> bool {
        while !self.unrecorded.is_empty() {
            let outcome = self.unrecorded.remove(0);
            if !self.recorder.record(&outcome, self.set) {
                self.unrecorded.insert(0, outcome);
                return false;
            }
            // Recorded after all: not a failure of the exit status.
            self.recorder.failures = self.recorder.failures.saturating_sub(1);
            if let Some(on_recorded) = self.on_recorded.as_mut() {
                on_recorded(&outcome);
            }
        }
        true
    }
}

impl Consumer for Recording<'_> {
    fn observe(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::EventFinished { outcome, .. } = event {
            let retried = self.retry();
            if self.record(outcome) && retried {
                super::intake::resume();
            }
        }
    }

    fn finish(&mut self, _totals: &Totals) -> Exit {
        if !self.unrecorded.is_empty() && self.retry() {
            super::intake::resume();
        }
        self.recorder.exit()
    }
}
