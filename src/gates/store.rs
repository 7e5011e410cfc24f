//! Where gate state lives, and the engine's one call into gates ([`GateStore::admit`]): the
//! state store for real runs (decisions committed with the runs they create), the JetStream KV
//! bucket of a NATS queue ([`super::kv`]: decisions committed by compare-and-swap, then the
//! run's `running` row written to this process's store), or an overlay for plans and tests (read
//! from the store or bucket where there is one, changed only in memory: a plan reads gate state
//! and never changes it). The clock is the system's, `VANE_NOW`, or a test's own.

use super::{Arrival, Decision, GateNote, GateRow, Verdict, decide, time_text, unwrap_fire};
use crate::event::Event;
use crate::plan::Selection;
use crate::state::{QueueItem, RunningRow, StateLocation, Store};
use crate::template::{EventObject, Templates};
use crate::workflow::{Workflow, WorkflowSet};
use minijinja::Value;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

enum Backend {
    Store(Arc<Mutex<Store>>),
    Kv {
        gates: Arc<super::kv::KvGates>,
        /// Where the runs a decision lets through, and refusals, are recorded (`None`: a timer
        /// thread, which decides nothing).
        local: Option<Arc<Mutex<Store>>>,
    },
    Overlay {
        base: Option<Base>,
        rows: Mutex<HashMap<(String, String), Option<GateRow>>>,
    },
}

/// Where an overlay reads the state it starts from.
enum Base {
    Store(Box<Mutex<Store>>),
    Kv(Arc<super::kv::KvGates>),
}

impl Base {
    fn row(&self, workflow: &str, key: &str) -> Option<GateRow> {
        match self {
            Base::Store(store) => store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .gate_row(workflow, key)
                .ok()
                .flatten(),
            Base::Kv(gates) => gates.row(workflow, key).ok().flatten(),
        }
    }

    fn keys(&self, workflow: &str) -> u64 {
        match self {
            Base::Store(store) => store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .gate_keys(workflow)
                .unwrap_or(0),
            Base::Kv(gates) => gates.keys(workflow),
        }
    }
}

/// Gate state and the clock gates read. Cheap to clone (shared).
#[derive(Clone)]
pub struct GateStore {
    backend: Arc<Backend>,
    /// A simulated clock (Unix ms), set by `vane test`.
    clock: Arc<Mutex<Option<i64>>>,
}

/// A matched event as the gates left it.
pub struct Admitted {
    pub event: Arc<Event>,
    pub event_value: Value,
    pub selections: Vec<(usize, Selection)>,
    /// Runs a gate let through: workflow index → (run id chosen with the decision, `gate`).
    pub runs: HashMap<usize, (Option<String>, Json)>,
    pub notes: Vec<(usize, GateNote)>,
}

/// What one round of due timers did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FireOutcome {
    /// Runs queued.
    pub fired: usize,
    /// Keys whose time ran out with nothing owed (dropped).
    pub expired: usize,
}

impl GateStore {
    /// Real runs: the state store.
    pub fn in_store(store: Arc<Mutex<Store>>) -> GateStore {
        GateStore {
            backend: Arc::new(Backend::Store(store)),
            clock: Arc::new(Mutex::new(None)),
        }
    }

    /// Real runs with `queue: nats://…`: the queue's KV bucket, and `local` for the records.
    pub fn in_kv(
        settings: &crate::config::NatsQueue,
        local: Option<Arc<Mutex<Store>>>,
    ) -> Result<GateStore, String> {
        Ok(GateStore {
            backend: Arc::new(Backend::Kv {
                gates: super::kv::KvGates::open(settings)?,
                local,
            }),
            clock: Arc::new(Mutex::new(None)),
        })
    }

    /// For the daemon's timers (and `poll --once`): where the due timers of `queue` are, if
    /// anywhere — the KV bucket of a NATS queue, or the store of the store's own queue (not
    /// `:memory:`, which no other process shares).
    pub fn for_timers(
        config: &crate::config::Queue,
        state: &StateLocation,
        queue: &dyn crate::queue::Queue,
        masker: crate::secrets::Masker,
    ) -> Result<Option<GateStore>, String> {
        match config {
            crate::config::Queue::Nats(settings) => GateStore::in_kv(settings, None).map(Some),
            _ if queue.in_store() && !matches!(state, StateLocation::Memory) => {
                let store = Store::open(state, masker).map_err(|error| error.to_string())?;
                Ok(Some(GateStore::in_store(Arc::new(Mutex::new(store)))))
            }
            _ => Ok(None),
        }
    }

    /// A plan: the store at `location` read where it exists, never written.
    pub fn overlay(location: Option<&StateLocation>) -> GateStore {
        let base = location
            .and_then(|location| {
                Store::open_existing(location, crate::secrets::Masker::new())
                    .ok()
                    .flatten()
            })
            .map(|store| Base::Store(Box::new(Mutex::new(store))));
        GateStore::over(base)
    }

    /// A plan with `queue: nats://…`: the queue's KV bucket read, never written.
    pub fn overlay_kv(settings: &crate::config::NatsQueue) -> Result<GateStore, String> {
        Ok(GateStore::over(Some(Base::Kv(super::kv::KvGates::open(
            settings,
        )?))))
    }

    fn over(base: Option<Base>) -> GateStore {
        GateStore {
            backend: Arc::new(Backend::Overlay {
                base,
                rows: Mutex::new(HashMap::new()),
            }),
            clock: Arc::new(Mutex::new(None)),
        }
    }

    /// Nothing stored anywhere (a test case).
    pub fn in_memory() -> GateStore {
        GateStore::overlay(None)
    }

    /// Sets the simulated clock.
    pub fn set_clock(&self, now_ms: i64) {
        *self.clock.lock().unwrap_or_else(PoisonError::into_inner) = Some(now_ms);
    }

    /// Now, in Unix ms: the simulated clock, `VANE_NOW`, or the system clock.
    pub fn now_ms(&self) -> i64 {
        self.clock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or_else(|| crate::sources::now().timestamp_millis())
    }

    fn decide_in(
        &self,
        (workflow, key): (&str, &str),
        gate: &super::Gate,
        now_ms: i64,
        decide: &mut dyn FnMut(Option<&GateRow>, u64, bool) -> Decision,
        running: Option<&RunningRow>,
        event: (&str, &Json),
    ) -> Result<Decision, String> {
        let kind = gate.name();
        match &*self.backend {
            Backend::Kv { gates, local } => {
                let decision = gates.decide(workflow, key, kind, gate, now_ms, decide, event.0)?;
                // After the decision is committed: a process dying in between leaves the run
                // unrecorded, and the event, not yet acked, comes back (see docs/gates.md).
                if let Some(local) = local {
                    let mut local = local.lock().unwrap_or_else(PoisonError::into_inner);
                    let recorded = match (&decision.verdict, running) {
                        (Verdict::Run { .. }, Some(run)) => local.gate_running(run),
                        (Verdict::Refused, _) => {
                            local.gate_refused(workflow, key, &decision.reason)
                        }
                        _ => Ok(()),
                    };
                    if let Err(error) = recorded {
                        tracing::error!("gates: {error}");
                    }
                }
                Ok(decision)
            }
            Backend::Store(store) => store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .gate_decide(workflow, key, kind, decide, running, event)
                .map_err(|error| error.to_string()),
            Backend::Overlay { base, rows } => {
                let mut rows = rows.lock().unwrap_or_else(PoisonError::into_inner);
                let id = (workflow.to_string(), key.to_string());
                let row = match rows.get(&id) {
                    Some(row) => row.clone(),
                    None => base.as_ref().and_then(|base| base.row(workflow, key)),
                };
                let live = if row.is_none() {
                    let stored = base.as_ref().map_or(0, |base| base.keys(workflow));
                    let added = rows
                        .iter()
                        .filter(|((name, _), row)| name == workflow && row.is_some())
                        .count() as u64;
                    stored + added
                } else {
                    0
                };
                let seen = row
                    .as_ref()
                    .is_some_and(|row| super::keeps(&row.state, event.0));
                let decision = decide(row.as_ref(), live, seen);
                if decision.verdict != Verdict::Refused {
                    rows.insert(id, decision.row.clone());
                }
                Ok(decision)
            }
        }
    }

    /// The earliest deadline of the overlay's rows (a test's next timer).
    pub fn next_due(&self) -> Option<i64> {
        let Backend::Overlay { rows, .. } = &*self.backend else {
            return None;
        };
        rows.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter_map(|row| row.as_ref()?.due_ms)
            .min()
    }

    /// Live rows due at `now_ms` (overlay: the memory's and the base's).
    fn due(&self, now_ms: i64) -> Vec<(String, String, GateRow)> {
        match &*self.backend {
            Backend::Store(store) => store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .gates_due(now_ms)
                .map(|rows| {
                    rows.into_iter()
                        .map(|gate| (gate.workflow, gate.key, gate.row))
                        .collect()
                })
                .unwrap_or_default(),
            Backend::Kv { .. } => Vec::new(),
            Backend::Overlay { rows, .. } => {
                let rows = rows.lock().unwrap_or_else(PoisonError::into_inner);
                let mut due: Vec<(String, String, GateRow)> = rows
                    .iter()
                    .filter_map(|((workflow, key), row)| {
                        let row = row.as_ref()?;
                        (row.due_ms? <= now_ms)
                            .then(|| (workflow.clone(), key.clone(), row.clone()))
                    })
                    .collect();
                due.sort_by_key(|(_, _, row)| row.due_ms);
                due
            }
        }
    }

    /// Fires every timer due at now into the store's queue (one transaction per key, under a
    /// deterministic id): what debounces, `flush: end` windows and timed-out correlations owe.
    /// With the KV bucket, into the NATS queue ([`super::kv::KvGates::fire_due`]).
    pub fn fire_due(
        &self,
        gate_of: &dyn Fn(&str) -> Option<Arc<super::Gate>>,
    ) -> Result<FireOutcome, String> {
        let store = match &*self.backend {
            Backend::Store(store) => store,
            Backend::Kv { gates, .. } => return gates.fire_due(self.now_ms(), gate_of),
            Backend::Overlay { .. } => return Ok(FireOutcome::default()),
        };
        let now = self.now_ms();
        let mut outcome = FireOutcome::default();
        for (workflow, key, row) in self.due(now) {
            let Some(due_ms) = row.due_ms else { continue };
            let mut row = row;
            row.state.events = store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .gate_events(&workflow, &key)
                .map_err(|error| error.to_string())?;
            let gate = gate_of(&workflow);
            let owed = gate.and_then(|gate| super::fire(&gate, &key, &row));
            let item = owed.map(|(context, kept)| {
                let id = super::fire_id(&workflow, &key, due_ms);
                QueueItem {
                    delivery: id.clone(),
                    source: "vane.gate".to_string(),
                    event: super::fire_envelope(&workflow, &id, &context, &kept).to_string(),
                }
            });
            let fired = store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .gate_fire(&workflow, &key, due_ms, item.as_ref())
                .map_err(|error| error.to_string())?;
            if fired {
                if item.is_some() {
                    outcome.fired += 1;
                } else {
                    outcome.expired += 1;
                }
            }
        }
        Ok(outcome)
    }

    /// For a plan or test: the fire events of the timers due at now, applied to the overlay (the
    /// rows are dropped from memory), in deadline order.
    pub fn fire_due_in_memory(&self, set: &WorkflowSet) -> Vec<Event> {
        let Backend::Overlay { rows, .. } = &*self.backend else {
            return Vec::new();
        };
        let now = self.now_ms();
        let mut events = Vec::new();
        for (workflow, key, row) in self.due(now) {
            rows.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert((workflow.clone(), key.clone()), None);
            let Some(due_ms) = row.due_ms else { continue };
            let gate = set.get(&workflow).and_then(|found| found.gate.as_deref());
            if let Some((context, kept)) = gate.and_then(|gate| super::fire(gate, &key, &row)) {
                let id = super::fire_id(&workflow, &key, due_ms);
                let envelope = super::fire_envelope(&workflow, &id, &context, &kept);
                if let Ok(event) =
                    crate::event::from_value(&envelope, &crate::event::InputOptions::default())
                {
                    events.push(event);
                }
            }
        }
        events
    }

    /// Matches the event ([`crate::plan::select`]) and applies each matched workflow's gate.
    /// A timer's fire event goes to its own workflow only, as the event it kept.
    pub fn admit(&self, set: &WorkflowSet, event: Event, dry_run: bool) -> Admitted {
        if let Some((workflow, inner, context)) = unwrap_fire(&event) {
            let event = Arc::new(inner);
            let event_value = EventObject::value(event.clone());
            let mut runs = HashMap::new();
            let selections = match set
                .workflows
                .iter()
                .position(|found| found.name == workflow)
            {
                Some(index) => {
                    runs.insert(index, (None, context.clone()));
                    vec![(index, Selection::Matched)]
                }
                None => Vec::new(),
            };
            let notes = runs
                .keys()
                .map(|index| {
                    (
                        *index,
                        GateNote {
                            gate: set.workflows[*index]
                                .gate
                                .as_deref()
                                .map_or("gate", |gate| gate.name()),
                            key: context["key"].as_str().unwrap_or_default().to_string(),
                            decision: "fired",
                            reason: format!(
                                "{}: key `{}`: its timer fired",
                                context["kind"].as_str().unwrap_or("gate"),
                                context["key"].as_str().unwrap_or_default()
                            ),
                            due: None,
                            suppressed: 0,
                        },
                    )
                })
                .collect();
            return Admitted {
                event,
                event_value,
                selections,
                runs,
                notes,
            };
        }
        let event = Arc::new(event);
        let event_value = EventObject::value(event.clone());
        let mut selections = crate::plan::select(set, &event, &event_value);
        let mut runs = HashMap::new();
        let mut notes = Vec::new();
        for (index, selection) in selections.iter_mut() {
            if *selection != Selection::Matched {
                continue;
            }
            let workflow = &set.workflows[*index];
            let Some(gate) = workflow.gate.as_deref() else {
                continue;
            };
            match self.gate_one(set, workflow, gate, &event, &event_value, dry_run) {
                Ok((decision, key, run_id)) => {
                    let due = decision
                        .row
                        .as_ref()
                        .and_then(|row| row.due_ms)
                        .map(time_text);
                    notes.push((
                        *index,
                        GateNote {
                            gate: gate.name(),
                            key,
                            decision: decision.verdict.word(),
                            reason: decision.reason.clone(),
                            due,
                            suppressed: decision.suppressed,
                        },
                    ));
                    match decision.verdict {
                        Verdict::Run { context } => {
                            runs.insert(*index, (run_id, context));
                        }
                        Verdict::Suppress | Verdict::Refused => {
                            if !dry_run {
                                crate::metrics::gate_suppressed(&workflow.name, gate.name());
                            }
                            *selection = Selection::NotMatched(decision.reason);
                        }
                        Verdict::Hold => *selection = Selection::NotMatched(decision.reason),
                    }
                }
                Err(message) => *selection = Selection::Broken(message),
            }
        }
        Admitted {
            event,
            event_value,
            selections,
            runs,
            notes,
        }
    }

    /// One workflow's gate for one event: the decision, the key, and the run id it committed.
    fn gate_one(
        &self,
        set: &WorkflowSet,
        workflow: &Workflow,
        gate: &super::Gate,
        event: &Arc<Event>,
        event_value: &Value,
        dry_run: bool,
    ) -> Result<(Decision, String, Option<String>), String> {
        let context = minijinja::context! {
            event => event_value.clone(),
            inputs => crate::plan::inputs_value(event, event_value),
            workflow => crate::plan::workflow_value(workflow, set.revision.as_deref()),
        };
        let render = |tree: &crate::template::TemplateTree, key: &str| {
            tree.render(&context)
                .map(|value| match value {
                    Json::String(text) => text,
                    other => other.to_string(),
                })
                .map_err(|error| {
                    let path = crate::yaml::YamlPath::default().key(gate.name()).key(key);
                    format!(
                        "{}: {}.{key}: {}",
                        workflow.place(&path),
                        gate.name(),
                        error.error.message
                    )
                })
        };
        let key = render(&gate.key, "key")?;
        let value = match &gate.kind {
            super::GateKind::Throttle {
                unless_changed: Some(tree),
                ..
            } => Some(render(tree, "unless-changed")?),
            super::GateKind::Window {
                distinct: Some(tree),
                ..
            } => Some(render(tree, "distinct")?),
            _ => None,
        };
        let mut members = Vec::new();
        if let super::GateKind::Correlate {
            members: all_of, ..
        } = &gate.kind
        {
            for member in all_of {
                if !member.listens_to(&event.kind) {
                    continue;
                }
                let passes = match &member.condition {
                    Some(condition) => {
                        let context = minijinja::context! {
                            event => event_value.clone(),
                            inputs => crate::plan::inputs_value(event, event_value),
                            workflow => crate::plan::workflow_value(workflow, set.revision.as_deref()),
                        };
                        Templates::eval(&condition.expression, &context)
                            .map_err(|error| {
                                format!(
                                    "{}: if: {}",
                                    workflow.place(&condition.path),
                                    error.message
                                )
                            })?
                            .is_true()
                    }
                    None => true,
                };
                if passes {
                    members.push(member.name.clone());
                }
            }
        }
        // An id that is not the payload's content id was given (a delivery id): only that id
        // seen again is a redelivery rather than a repeat of the same payload.
        let explicit_id = event.id() != crate::event::content_id(event.data.value());
        let envelope = serde_json::to_value(&**event).unwrap_or(Json::Null);
        let run_id = uuid::Uuid::new_v4().to_string();
        let now_ms = self.now_ms();
        let running = (!dry_run).then(|| RunningRow {
            id: run_id.clone(),
            workflow: workflow.name.clone(),
            file: workflow.file.display().to_string(),
            revision: set.revision.clone(),
            event_id: event.id().to_string(),
            event_type: event.kind.clone(),
            event: envelope.to_string(),
        });
        let mut decide_with = |row: Option<&GateRow>, live_keys: u64, seen: bool| {
            decide(
                gate,
                row,
                &Arrival {
                    key: &key,
                    event_id: event.id(),
                    explicit_id,
                    seen,
                    envelope: &envelope,
                    value: value.clone(),
                    members: members.clone(),
                    now_ms,
                    run_id: &run_id,
                    live_keys,
                },
            )
        };
        let decision = self.decide_in(
            (&workflow.name, &key),
            gate,
            now_ms,
            &mut decide_with,
            running.as_ref(),
            (event.id(), &envelope),
        )?;
        Ok((decision, key, Some(run_id)))
    }
}

/// For `vane worker`: fires the gates' due timers every 100 ms into the queue, until `stop`.
pub fn spawn_timers(
    timers: Arc<super::timers::Timers>,
    stop: crate::cancel::CancelToken,
) -> Result<std::thread::JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name("vane-gate-timers".to_string())
        .spawn(move || {
            while !stop.is_cancelled() {
                if let Err(error) = timers.fire_due() {
                    tracing::error!("gates: {error}");
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
        .map_err(|error| format!("cannot start the gate timers: {error}"))
}
