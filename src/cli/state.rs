//! The state store as the commands see it: opened from `--state`, and the [`Recorder`] that
//! `run` and `replay` hand every processed event to.

use super::Exit;
use super::args::GlobalArgs;
use crate::cancel::CancelToken;
use crate::engine::{Engine, EventOutcome};
use crate::secrets::Masker;
use crate::state::{RecordOptions, StateLocation, Store};
use crate::workflow::WorkflowSet;

pub fn location(global: &GlobalArgs) -> StateLocation {
    StateLocation::from_flag(&global.state)
}

/// The folder the state store is in, where caches (`gitops` clones) live beside it; `None` for
/// `:memory:`, which keeps nothing.
pub fn folder(global: &GlobalArgs) -> Option<std::path::PathBuf> {
    match location(global) {
        StateLocation::File(path) => Some(match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        }),
        StateLocation::Memory => None,
    }
}

/// Opens the store for reading commands; `None` (and nothing created) where there is none yet.
/// An unusable store is reported, and is exit status 2.
pub fn open_existing(global: &GlobalArgs, masker: &Masker) -> Result<Option<Store>, Exit> {
    Store::open_existing(&location(global), masker.clone()).map_err(|error| {
        eprintln!("error: {error}");
        Exit::Invalid
    })
}

/// Records real runs; does nothing for plans and dry runs, which are not history.
pub struct Recorder {
    /// Shared with the `Coordinator`: one connection per process, so that the two never wait
    /// on each other's write locks.
    store: Option<std::sync::Arc<std::sync::Mutex<Store>>>,
    masker: Masker,
    cancel: CancelToken,
    replay_of: Option<String>,
    /// Records that could not be written; the first error is printed, the rest counted.
    failures: usize,
}

impl Recorder {
    /// Opens the store unless the engine only plans. A store that cannot be opened stops the
    /// command before anything runs: a run that cannot be recorded should not start.
    pub fn open(global: &GlobalArgs, engine: &Engine) -> Result<Recorder, Exit> {
        let store = if engine.options.dry_run {
            None
        } else {
            let store = Store::open(&location(global), engine.masker.clone()).map_err(|error| {
                eprintln!("error: {error}");
                Exit::Invalid
            })?;
            Some(std::sync::Arc::new(std::sync::Mutex::new(store)))
        };
        Ok(Recorder {
            store,
            masker: engine.masker.clone(),
            cancel: engine.cancel.clone(),
            replay_of: None,
            failures: 0,
        })
    }

    /// The open store, for coordination with other processes (`None` when only planning).
    pub fn shared_store(&self) -> Option<std::sync::Arc<std::sync::Mutex<Store>>> {
        self.store.clone()
    }

    /// Marks what is recorded from now on as a replay of `run_id`.
    pub fn replaying(mut self, run_id: &str) -> Recorder {
        self.replay_of = Some(run_id.to_string());
        self
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
            if self.failures == 0 {
                eprintln!("error: {}", self.masker.mask(&error.to_string()));
            }
            self.failures += 1;
            return false;
        }
        true
    }

    /// Exit status 2 when a record could not be written.
    pub fn exit(&self) -> Exit {
        if self.failures > 1 {
            eprintln!(
                "error: {} events' runs could not be recorded in the state store",
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
