//! The gates whose due timers a process fires: those of the workflows it runs now. A daemon that
//! reloads its workflows hands the new set to [`Timers::reload`], so that a gate a reload adds,
//! changes or removes is fired by its new definition — and a daemon started without any gate
//! fires the first one a reload brings.

use super::{FireOutcome, Gate, GateStore};
use crate::workflow::WorkflowSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// Opens where the timers are ([`GateStore::for_timers`]); `None` where there is nowhere.
pub type Opener = Box<dyn Fn() -> Result<Option<GateStore>, String> + Send + Sync>;

/// The gated workflows by name, and where their state is.
pub struct Timers {
    gated: RwLock<Vec<(String, Arc<Gate>)>>,
    /// Opened on first need: a process whose workflows have no gate opens no store or bucket.
    store: Mutex<Option<Option<GateStore>>>,
    open: Opener,
}

impl Timers {
    /// The timers of `set`'s gates; where they are is opened now when there is a gate (so that a
    /// daemon that cannot reach it says so at start), else when a reload brings one.
    pub fn new(set: &WorkflowSet, open: Opener) -> Result<Timers, String> {
        let timers = Timers {
            gated: RwLock::new(gated(set)),
            store: Mutex::new(None),
            open,
        };
        if timers.has_gates() {
            timers.store()?;
        }
        Ok(timers)
    }

    /// The timers of `set`'s gates on `queue` (see [`GateStore::for_timers`]).
    pub fn for_queue(
        set: &WorkflowSet,
        config: &crate::config::Queue,
        state: &crate::state::StateLocation,
        queue: Arc<dyn crate::queue::Queue>,
        masker: crate::secrets::Masker,
    ) -> Result<Timers, String> {
        let (config, state) = (config.clone(), state.clone());
        let open: Opener = Box::new(move || {
            GateStore::for_timers(&config, &state, queue.as_ref(), masker.clone())
        });
        Timers::new(set, open)
    }

    /// Takes the gates of a reloaded set.
    pub fn reload(&self, set: &WorkflowSet) {
        *self.gated.write().unwrap_or_else(PoisonError::into_inner) = gated(set);
    }

    pub fn has_gates(&self) -> bool {
        !self
            .gated
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Fires what is due now, each under its deterministic id (once across processes). A key of
    /// a workflow this process no longer has is left for one that has it.
    pub fn fire_due(&self) -> Result<FireOutcome, String> {
        if !self.has_gates() {
            return Ok(FireOutcome::default());
        }
        let Some(store) = self.store()? else {
            return Ok(FireOutcome::default());
        };
        let gated = self.gated.read().unwrap_or_else(PoisonError::into_inner);
        store.fire_due(&|workflow| {
            gated
                .iter()
                .find(|(name, _)| name == workflow)
                .map(|(_, gate)| Arc::clone(gate))
        })
    }

    fn store(&self) -> Result<Option<GateStore>, String> {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        if store.is_none() {
            *store = Some((self.open)()?);
        }
        Ok(store.clone().flatten())
    }
}

fn gated(set: &WorkflowSet) -> Vec<(String, Arc<Gate>)> {
    set.workflows
        .iter()
        .filter_map(|workflow| Some((workflow.name.clone(), workflow.gate.clone()?)))
        .collect()
}
