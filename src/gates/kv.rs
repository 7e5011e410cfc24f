//! Gate state in a JetStream KV bucket, for `queue: nats://…` (the `gates` bucket): one entry
//! per workflow and key, named `<workflow>.<key>` (each part made a KV token by
//! [`crate::broker::kv_key`]), holding the key's state and deadline as JSON.
//!
//! Every change is a revision compare-and-swap ([`plan`]): a new key is written expecting no
//! entry (or a deleted one), a changed key expecting the revision it was read at, a finished key
//! deleted at that revision. On a conflict — another process changed the key since — the pure
//! [`super::decide`] is called again on what is there now. Two machines deciding on one key so
//! decide one after the other, never both on the same state.
//!
//! Timers: a due key is fired by publishing the run it owes to the queue under its deterministic
//! fire id (`Nats-Msg-Id`), and only then deleting it at the revision it was read at. A process
//! that dies between the two leaves the key due; whoever fires it next publishes the same id,
//! which JetStream drops as a duplicate. A decision that finds its key overdue fires it the same
//! way first, then decides on a fresh key: an owed run is always a fire, whoever notices it.
//!
//! Every process keeps an index of the bucket (each entry's workflow and deadline), fed by a
//! watch: the due keys to look at and the live keys per workflow (for `max-keys`), without
//! listing the bucket.

use super::{FireOutcome, Gate, GateRow, GateState, fire, fire_envelope, fire_id};
use crate::broker::{JetStream, kv_key, runtime};
use crate::config::NatsQueue;
use crate::state::{Enqueued, QueueItem, StoredGate};
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Decisions made again on conflicts before one gives up (each conflict is another process's
/// write that succeeded: many in a row means a storm on one key, not a livelock).
const ATTEMPTS: usize = 100;

/// The kept events of one entry stop here: below the server's default message limit (1 MiB).
const MAX_ENTRY_BYTES: usize = 512 * 1024;

/// How long a decision waits for the index to hold the whole bucket (the watch's first pass).
const INDEX_WAIT: Duration = Duration::from_secs(5);

/// An entry's value.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    workflow: String,
    key: String,
    kind: String,
    state: GateState,
    #[serde(default)]
    due_ms: Option<i64>,
    #[serde(default)]
    updated_ms: i64,
}

/// One live entry as this process's index knows it.
struct Indexed {
    workflow: String,
    due_ms: Option<i64>,
    revision: u64,
}

#[derive(Default)]
struct Index {
    entries: HashMap<String, Indexed>,
    /// The watch has delivered everything the bucket held when it started.
    current: bool,
}

impl Index {
    /// A put seen at `revision` (by the watch or by this process's own write); an older one than
    /// what is known is ignored (the watch can lag behind this process's writes).
    fn put(&mut self, name: &str, workflow: &str, due_ms: Option<i64>, revision: u64) {
        if self
            .entries
            .get(name)
            .is_some_and(|known| known.revision > revision)
        {
            return;
        }
        self.entries.insert(
            name.to_string(),
            Indexed {
                workflow: workflow.to_string(),
                due_ms,
                revision,
            },
        );
    }

    /// A delete seen at `revision` (a delete marker's, or at least one past the revision the key
    /// was deleted at).
    fn delete(&mut self, name: &str, revision: u64) {
        if self
            .entries
            .get(name)
            .is_some_and(|known| known.revision < revision)
        {
            self.entries.remove(name);
        }
    }
}

/// What a decision writes, given the revision its key was read at (0: no entry), whether the
/// entry there is live (not a delete marker), whether the decision changed the row, and whether
/// it keeps one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Nothing,
    /// Written only if the key is still at `expect` (0: still absent).
    Put {
        expect: u64,
    },
    /// Deleted only if the key is still at `expect`.
    Delete {
        expect: u64,
    },
}

pub fn plan(revision: u64, live: bool, changed: bool, keeps: bool) -> Write {
    match (keeps, live) {
        (true, false) => Write::Put { expect: revision },
        (true, true) if changed => Write::Put { expect: revision },
        (false, true) => Write::Delete { expect: revision },
        _ => Write::Nothing,
    }
}

/// The gates' bucket of one NATS queue, shared by everything in this process that uses it.
pub struct KvGates {
    broker: Arc<JetStream>,
    bucket: kv::Store,
    /// The queue's subject: where fires are published.
    subject: String,
    index: OnceLock<Arc<Mutex<Index>>>,
}

/// The buckets opened by this process: (server, bucket, queue subject) → bucket.
type Opened = HashMap<(String, String, String), Arc<KvGates>>;

/// The entry name of a workflow's key: `.` separates the two, and neither part holds one.
fn entry_name(workflow: &str, key: &str) -> String {
    format!("{}.{}", kv_key(workflow), kv_key(key))
}

/// The kept events of `state`, cut where the entry would pass [`MAX_ENTRY_BYTES`] (the count
/// goes on, as past [`super::MAX_KEPT_EVENTS`]).
fn fit(state: &mut GateState) {
    let mut size = 0;
    let keep = state
        .events
        .iter()
        .take_while(|event| {
            size += event.to_string().len() + 1;
            size < MAX_ENTRY_BYTES
        })
        .count();
    state.events.truncate(keep);
}

impl KvGates {
    /// The bucket of `settings` (created where missing), one per process and queue.
    pub fn open(settings: &NatsQueue) -> Result<Arc<KvGates>, String> {
        static OPEN: OnceLock<Mutex<Opened>> = OnceLock::new();
        let id = (
            settings.url.clone(),
            settings.gates.clone(),
            settings.subject.clone(),
        );
        // Held while opening: two threads opening at once share one index.
        let mut open = OPEN
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(gates) = open.get(&id) {
            return Ok(Arc::clone(gates));
        }
        let broker = JetStream::connect(&settings.url).map_err(|error| error.to_string())?;
        // Gate state never expires: a key lives until its gate is done with it.
        let bucket = broker
            .bucket(&settings.gates, Duration::ZERO)
            .map_err(|error| error.to_string())?;
        let gates = Arc::new(KvGates {
            broker,
            bucket,
            subject: settings.subject.clone(),
            index: OnceLock::new(),
        });
        open.insert(id, Arc::clone(&gates));
        Ok(gates)
    }

    /// The index, started by the first call (which waits for the bucket's current entries): a
    /// watch of the whole bucket (its current entries, then every change), restarted when it
    /// breaks.
    fn index(&self) -> Arc<Mutex<Index>> {
        let index = self.index.get_or_init(|| {
            let index = Arc::new(Mutex::new(Index::default()));
            let bucket = self.bucket.clone();
            let empty = runtime()
                .block_on(bucket.status())
                .is_ok_and(|status| status.values() == 0);
            index.lock().unwrap_or_else(PoisonError::into_inner).current = empty;
            let fed = Arc::clone(&index);
            runtime().spawn(async move {
                loop {
                    match bucket.watch_with_history(">").await {
                        Ok(mut watch) => {
                            while let Some(entry) = watch.next().await {
                                let Ok(entry) = entry else { break };
                                let mut index = fed.lock().unwrap_or_else(PoisonError::into_inner);
                                match entry.operation {
                                    kv::Operation::Put => {
                                        match serde_json::from_slice::<Stored>(&entry.value) {
                                            Ok(stored) => index.put(
                                                &entry.key,
                                                &stored.workflow,
                                                stored.due_ms,
                                                entry.revision,
                                            ),
                                            Err(_) => index.delete(&entry.key, entry.revision),
                                        }
                                    }
                                    _ => index.delete(&entry.key, entry.revision),
                                }
                                if entry.delta == 0 {
                                    index.current = true;
                                }
                            }
                        }
                        Err(error) => tracing::warn!("gates: cannot watch the KV bucket: {error}"),
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
            // Once, for the first pass; a watch that cannot start only warns, and the index
            // fills as it can.
            let started = Instant::now();
            while !index.lock().unwrap_or_else(PoisonError::into_inner).current
                && started.elapsed() < INDEX_WAIT
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            index
        });
        Arc::clone(index)
    }

    /// How many live keys `workflow` has besides `name`, as far as this process has seen:
    /// another process's new key counts once the watch brings it (milliseconds later).
    fn live_keys(&self, workflow: &str, name: &str) -> u64 {
        self.index()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .iter()
            .filter(|(other, entry)| entry.workflow == workflow && *other != name)
            .count() as u64
    }

    /// One key's row, if it is live (for a plan, which reads and never writes).
    pub fn row(&self, workflow: &str, key: &str) -> Result<Option<GateRow>, String> {
        let (_, _, stored) = self.read(&entry_name(workflow, key))?;
        Ok(stored.map(|stored| GateRow {
            state: stored.state,
            due_ms: stored.due_ms,
        }))
    }

    /// How many live keys `workflow` has, as far as this process has seen.
    pub fn keys(&self, workflow: &str) -> u64 {
        self.live_keys(workflow, "")
    }

    /// The key's entry: its revision (0: none), whether it is live, and its value (`None` where
    /// deleted, or unreadable by this vane: then the key starts over).
    fn read(&self, name: &str) -> Result<(u64, bool, Option<Stored>), String> {
        match runtime().block_on(self.bucket.entry(name)) {
            Ok(None) => Ok((0, false, None)),
            Ok(Some(entry)) if entry.operation == kv::Operation::Put => Ok((
                entry.revision,
                true,
                serde_json::from_slice(&entry.value).ok(),
            )),
            Ok(Some(entry)) => Ok((entry.revision, false, None)),
            Err(error) => Err(format!("cannot read the gate key `{name}`: {error}")),
        }
    }

    /// Applies `write`; false on a conflict (the key is no longer at the revision expected).
    fn apply(&self, name: &str, write: Write, stored: Option<&Stored>) -> Result<bool, String> {
        let index = self.index.get();
        match (write, stored) {
            (Write::Put { expect }, Some(stored)) => {
                let value = serde_json::to_vec(stored).unwrap_or_default();
                match runtime().block_on(self.bucket.update(name, value.into(), expect)) {
                    Ok(revision) => {
                        if let Some(index) = index {
                            index.lock().unwrap_or_else(PoisonError::into_inner).put(
                                name,
                                &stored.workflow,
                                stored.due_ms,
                                revision,
                            );
                        }
                        Ok(true)
                    }
                    Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                        Ok(false)
                    }
                    Err(error) => Err(format!("cannot write the gate key `{name}`: {error}")),
                }
            }
            (Write::Delete { expect }, _) => {
                match runtime().block_on(self.bucket.delete_expect_revision(name, Some(expect))) {
                    Ok(()) => {
                        if let Some(index) = index {
                            index
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .delete(name, expect + 1);
                        }
                        Ok(true)
                    }
                    Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                        Ok(false)
                    }
                    Err(error) => Err(format!("cannot delete the gate key `{name}`: {error}")),
                }
            }
            _ => Ok(true),
        }
    }

    /// Publishes the run a key owes under its fire id; true when JetStream took it (false: a
    /// duplicate, published before by this or another process).
    fn publish_fire(
        &self,
        workflow: &str,
        key: &str,
        due_ms: i64,
        (context, kept): (Json, Json),
    ) -> Result<bool, String> {
        let id = fire_id(workflow, key, due_ms);
        let item = QueueItem {
            delivery: id.clone(),
            source: "vane.gate".to_string(),
            event: fire_envelope(workflow, &id, &context, &kept).to_string(),
        };
        let outcomes =
            runtime().block_on(crate::queue::publish(&self.broker, &self.subject, &[item]))?;
        Ok(outcomes.first() == Some(&Enqueued::Accepted))
    }

    /// Decides for one event (see the module's comment): `decide` is called with the key's row,
    /// the workflow's live keys and whether the key keeps the event already, until its decision
    /// is committed.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &self,
        workflow: &str,
        key: &str,
        kind: &str,
        gate: &Gate,
        now_ms: i64,
        decide: &mut dyn FnMut(Option<&GateRow>, u64, bool) -> super::Decision,
        event_id: &str,
    ) -> Result<super::Decision, String> {
        let name = entry_name(workflow, key);
        for _ in 0..ATTEMPTS {
            let (revision, live, stored) = self.read(&name)?;
            let mut row = stored.map(|stored| GateRow {
                state: stored.state,
                due_ms: stored.due_ms,
            });
            let mut fired = false;
            if let Some(overdue) = &row
                && let Some(due_ms) = overdue.due_ms.filter(|due| *due <= now_ms)
                && let Some(owed) = fire(gate, key, overdue)
            {
                self.publish_fire(workflow, key, due_ms, owed)?;
                row = None;
                fired = true;
            }
            let live_keys = if row.is_none() {
                self.live_keys(workflow, &name)
            } else {
                0
            };
            let seen = row
                .as_ref()
                .is_some_and(|row| super::keeps(&row.state, event_id));
            let mut decision = decide(row.as_ref(), live_keys, seen);
            if decision.verdict == super::Verdict::Refused {
                return Ok(decision);
            }
            if let Some(new) = &mut decision.row {
                fit(&mut new.state);
            }
            let changed = fired || decision.row.as_ref() != row.as_ref();
            let write = plan(revision, live, changed, decision.row.is_some());
            let stored = decision.row.as_ref().map(|row| Stored {
                workflow: workflow.to_string(),
                key: key.to_string(),
                kind: kind.to_string(),
                state: row.state.clone(),
                due_ms: row.due_ms,
                updated_ms: chrono::Utc::now().timestamp_millis(),
            });
            if self.apply(&name, write, stored.as_ref())? {
                return Ok(decision);
            }
            tracing::debug!("gates: `{name}` changed while deciding; deciding again");
        }
        Err(format!(
            "gate key `{key}` of `{workflow}`: changed by other processes {ATTEMPTS} times while deciding"
        ))
    }

    /// Fires every key due at `now_ms` (see the module's comment). A key of a workflow that
    /// `gate_of` does not know is left to a process that does (machines of a cluster between two
    /// deploys): it is not this one's to drop.
    pub fn fire_due(
        &self,
        now_ms: i64,
        gate_of: &dyn Fn(&str) -> Option<Arc<Gate>>,
    ) -> Result<FireOutcome, String> {
        let mut due: Vec<(i64, String)> = self
            .index()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .iter()
            .filter_map(|(name, entry)| {
                let due = entry.due_ms.filter(|due| *due <= now_ms)?;
                Some((due, name.clone(), entry.workflow.clone()))
            })
            .filter(|(_, _, workflow)| gate_of(workflow).is_some())
            .map(|(due, name, _)| (due, name))
            .collect();
        due.sort();
        let mut outcome = FireOutcome::default();
        for (_, name) in due {
            let (revision, live, stored) = self.read(&name)?;
            let Some(stored) = stored else {
                if live {
                    // Unreadable by this vane: nothing it could fire.
                    self.apply(&name, Write::Delete { expect: revision }, None)?;
                } else if let Some(index) = self.index.get() {
                    index
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .delete(&name, revision.max(1));
                }
                continue;
            };
            let Some(due_ms) = stored.due_ms.filter(|due| *due <= now_ms) else {
                continue;
            };
            let row = GateRow {
                state: stored.state,
                due_ms: Some(due_ms),
            };
            let Some(gate) = gate_of(&stored.workflow) else {
                continue;
            };
            let owed = fire(&gate, &stored.key, &row);
            let owes = owed.is_some();
            if let Some(owed) = owed {
                self.publish_fire(&stored.workflow, &stored.key, due_ms, owed)?;
            }
            // Lost to another process's change: it decided (and fired) on what it read.
            if self.apply(&name, Write::Delete { expect: revision }, None)? {
                if owes {
                    outcome.fired += 1;
                } else {
                    outcome.expired += 1;
                }
            }
        }
        Ok(outcome)
    }

    /// The entry names of the bucket's live keys.
    fn names(&self) -> Result<Vec<String>, String> {
        runtime().block_on(async {
            let mut keys = self
                .bucket
                .keys()
                .await
                .map_err(|error| format!("cannot list the gates bucket: {error}"))?;
            let mut names = Vec::new();
            while let Some(name) = keys.next().await {
                names.push(name.map_err(|error| format!("cannot list the gates bucket: {error}"))?);
            }
            Ok(names)
        })
    }

    /// Every live key (of one workflow), by workflow and key, as `vane gates` lists them.
    pub fn stored(&self, workflow: Option<&str>) -> Result<Vec<StoredGate>, String> {
        let prefix = workflow.map(|workflow| format!("{}.", kv_key(workflow)));
        let mut gates = Vec::new();
        for name in self.names()? {
            if prefix
                .as_ref()
                .is_some_and(|prefix| !name.starts_with(prefix))
            {
                continue;
            }
            if let (_, _, Some(stored)) = self.read(&name)? {
                gates.push(StoredGate {
                    workflow: stored.workflow,
                    key: stored.key,
                    kind: stored.kind,
                    row: GateRow {
                        state: stored.state,
                        due_ms: stored.due_ms,
                    },
                    updated_ms: stored.updated_ms,
                });
            }
        }
        gates.sort_by(|a, b| (&a.workflow, &a.key).cmp(&(&b.workflow, &b.key)));
        Ok(gates)
    }

    /// Forgets the live keys of `workflow` (only `key`, when given); how many.
    pub fn clear(&self, workflow: &str, key: Option<&str>) -> Result<usize, String> {
        let prefix = format!("{}.", kv_key(workflow));
        let exact = key.map(|key| entry_name(workflow, key));
        let mut cleared = 0;
        for name in self.names()? {
            let matches = match &exact {
                Some(exact) => &name == exact,
                None => name.starts_with(&prefix),
            };
            if matches {
                runtime()
                    .block_on(self.bucket.delete(&name))
                    .map_err(|error| format!("cannot delete the gate key `{name}`: {error}"))?;
                cleared += 1;
            }
        }
        Ok(cleared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_writes_only_at_the_revision_it_read() {
        // A new key: created only where there is still no entry (0), or over the delete marker
        // it read.
        assert_eq!(plan(0, false, true, true), Write::Put { expect: 0 });
        assert_eq!(plan(7, false, true, true), Write::Put { expect: 7 });
        // A changed key: updated at its revision; a finished one deleted at it.
        assert_eq!(plan(9, true, true, true), Write::Put { expect: 9 });
        assert_eq!(plan(9, true, true, false), Write::Delete { expect: 9 });
        assert_eq!(plan(9, true, false, false), Write::Delete { expect: 9 });
        // Nothing changed, or nothing there and nothing kept: nothing written.
        assert_eq!(plan(9, true, false, true), Write::Nothing);
        assert_eq!(plan(0, false, false, false), Write::Nothing);
        assert_eq!(plan(4, false, true, false), Write::Nothing);
    }

    #[test]
    fn the_index_never_goes_back_to_an_older_revision() {
        let mut index = Index::default();
        index.put("w.k", "w", Some(10), 5);
        // The watch delivering an older put after this process's own write: ignored.
        index.put("w.k", "w", Some(3), 4);
        assert_eq!(index.entries["w.k"].due_ms, Some(10));
        // A delete at or below the known revision is older than what is known.
        index.delete("w.k", 5);
        assert!(index.entries.contains_key("w.k"));
        index.delete("w.k", 6);
        assert!(index.entries.is_empty());
    }

    #[test]
    fn large_kept_events_are_cut_to_fit_an_entry() {
        let big = serde_json::json!({"id": "e", "data": "x".repeat(100 * 1024)});
        let mut state = GateState {
            count: 8,
            events: vec![big; 8],
            ..GateState::default()
        };
        fit(&mut state);
        assert_eq!(state.events.len(), 5);
        assert_eq!(state.count, 8);
    }

    #[test]
    fn entry_names_keep_workflow_and_key_apart() {
        assert_eq!(entry_name("sensor", "d1"), "sensor.d1");
        assert_ne!(entry_name("a.b", "c"), entry_name("a", "b.c"));
        assert!(!entry_name("a", "x.y").contains(".."));
    }
}
