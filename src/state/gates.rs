//! Gate state in the store (the `gates` table): one row per workflow and key. A decision that
//! lets an event run is committed in the same transaction as the run's `running` row; a timer's
//! fire in the same transaction as the queue row of the run it owes.

use super::coordination::now_ms;
use super::{QueueItem, StateError, Store};
use crate::gates::{Decision, GateRow, GateState, Verdict};
use rusqlite::{OptionalExtension, Transaction, params};

/// The `running` row of a run a gate lets through, written with the decision.
#[derive(Debug, Clone)]
pub struct RunningRow {
    pub id: String,
    pub workflow: String,
    pub file: String,
    pub revision: Option<String>,
    pub event_id: String,
    pub event_type: String,
    /// The envelope, masked.
    pub event: String,
}

/// One live key, as `vane gates` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredGate {
    pub workflow: String,
    pub key: String,
    pub kind: String,
    pub row: GateRow,
    pub updated_ms: i64,
}

/// Keys refused over `max-keys`, per workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusals {
    pub workflow: String,
    pub count: u64,
    pub last_key: String,
    pub last_ms: i64,
}

fn read_row(
    transaction: &rusqlite::Connection,
    workflow: &str,
    key: &str,
) -> rusqlite::Result<Option<GateRow>> {
    transaction
        .prepare_cached("SELECT state, due_ms FROM gates WHERE workflow = ?1 AND key = ?2")?
        .query_row(params![workflow, key], |row| {
            let state: String = row.get(0)?;
            let due_ms: Option<i64> = row.get(1)?;
            Ok((state, due_ms))
        })
        .optional()
        .map(|found| found.map(|(state, due_ms)| to_row(&state, due_ms)))
}

fn to_row(state: &str, due_ms: Option<i64>) -> GateRow {
    GateRow {
        // A state this vane cannot read starts over rather than stopping the workflow.
        state: serde_json::from_str::<GateState>(state).unwrap_or_default(),
        due_ms,
    }
}

fn put_row(
    transaction: &Transaction,
    workflow: &str,
    key: &str,
    kind: &str,
    row: Option<&GateRow>,
) -> rusqlite::Result<()> {
    match row {
        Some(row) => {
            // The events live in `gate_events`, a row each.
            let state = serde_json::to_string(&GateState {
                events: Vec::new(),
                ..row.state.clone()
            })
            .unwrap_or_default();
            transaction
                .prepare_cached(
                    "INSERT INTO gates (workflow, key, kind, state, due_ms, suppressed, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (workflow, key) DO UPDATE SET kind = excluded.kind,
                     state = excluded.state, due_ms = excluded.due_ms,
                     suppressed = excluded.suppressed, updated_ms = excluded.updated_ms",
                )?
                .execute(params![
                    workflow,
                    key,
                    kind,
                    state,
                    row.due_ms,
                    row.state.suppressed as i64,
                    now_ms()
                ])?;
        }
        None => {
            transaction
                .prepare_cached("DELETE FROM gates WHERE workflow = ?1 AND key = ?2")?
                .execute(params![workflow, key])?;
            forget_events(transaction, workflow, key)?;
        }
    }
    Ok(())
}

fn insert_refusal(
    transaction: &Transaction,
    workflow: &str,
    key: &str,
    reason: &str,
) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT INTO gate_refusals (workflow, count, last_key, last_ms, reason)
             VALUES (?1, 1, ?2, ?3, ?4)
             ON CONFLICT (workflow) DO UPDATE SET count = count + 1,
             last_key = excluded.last_key, last_ms = excluded.last_ms,
             reason = excluded.reason",
        )?
        .execute(params![workflow, key, now_ms(), reason])?;
    Ok(())
}

fn insert_running(
    transaction: &Transaction,
    masker: &crate::secrets::Masker,
    run: &RunningRow,
) -> rusqlite::Result<()> {
    let event = masker.mask(&run.event);
    let now = super::timestamp(chrono::Utc::now());
    transaction
        .prepare_cached(
            "INSERT OR REPLACE INTO runs (id, workflow, file, revision, event_id, event_type, event, \
             status, started, finished, duration_ms, error, dry_run, replay_of, pid) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8, ?8, 0, NULL, 0, NULL, ?9)",
        )?
        .execute(params![
            run.id,
            run.workflow,
            run.file,
            run.revision,
            run.event_id,
            run.event_type,
            event,
            now,
            i64::from(std::process::id()),
        ])?;
    Ok(())
}

fn forget_events(transaction: &Transaction, workflow: &str, key: &str) -> rusqlite::Result<()> {
    transaction
        .prepare_cached("DELETE FROM gate_events WHERE workflow = ?1 AND key = ?2")?
        .execute(params![workflow, key])?;
    Ok(())
}

fn read_events(
    connection: &rusqlite::Connection,
    workflow: &str,
    key: &str,
) -> rusqlite::Result<Vec<serde_json::Value>> {
    let mut statement = connection.prepare_cached(
        "SELECT event FROM gate_events WHERE workflow = ?1 AND key = ?2 ORDER BY seq",
    )?;
    statement
        .query_map(params![workflow, key], |row| {
            let text: String = row.get(0)?;
            Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
        })?
        .collect()
}

impl Store {
    /// One key's row, if it is live.
    pub fn gate_row(&self, workflow: &str, key: &str) -> Result<Option<GateRow>, StateError> {
        read_row(&self.connection, workflow, key)
            .map_err(|source| self.sqlite_error("read a gate", source))
    }

    /// The events a key keeps, in arrival order.
    pub fn gate_events(
        &self,
        workflow: &str,
        key: &str,
    ) -> Result<Vec<serde_json::Value>, StateError> {
        read_events(&self.connection, workflow, key)
            .map_err(|source| self.sqlite_error("read a gate's events", source))
    }

    /// How many live keys `workflow` has.
    pub fn gate_keys(&self, workflow: &str) -> Result<u64, StateError> {
        self.connection
            .prepare_cached("SELECT COUNT(*) FROM gates WHERE workflow = ?1")
            .and_then(|mut statement| {
                statement.query_row(params![workflow], |row| row.get::<_, i64>(0))
            })
            .map(|count| count as u64)
            .map_err(|source| self.sqlite_error("count a workflow's gate keys", source))
    }

    /// Decides for one event in one transaction: reads the key's row, calls `decide` with it and
    /// the workflow's live key count, writes the new row, and — when the verdict is a run — the
    /// run's `running` row, so that neither exists without the other. A refusal is counted.
    pub fn gate_decide(
        &mut self,
        workflow: &str,
        key: &str,
        kind: &str,
        decide: &mut dyn FnMut(Option<&GateRow>, u64, bool) -> Decision,
        running: Option<&RunningRow>,
        (event_id, envelope): (&str, &serde_json::Value),
    ) -> Result<Decision, StateError> {
        let masker = self.masker.clone();
        self.write("decide a gate", |transaction| {
            let row = read_row(transaction, workflow, key)?;
            let live = if row.is_none() {
                transaction
                    .prepare_cached("SELECT COUNT(*) FROM gates WHERE workflow = ?1")?
                    .query_row(params![workflow], |row| row.get::<_, i64>(0))?
                    as u64
            } else {
                0
            };
            let seen = row.is_some()
                && transaction
                    .prepare_cached(
                        "SELECT 1 FROM gate_events WHERE workflow = ?1 AND key = ?2 AND event_id = ?3",
                    )?
                    .exists(params![workflow, key, event_id])?;
            // Decided without the kept events first (a read of one small row); a decision that
            // runs needs them for the run's `gate`, and is made again with them.
            let mut decision = decide(row.as_ref(), live, seen);
            if matches!(decision.verdict, Verdict::Run { .. })
                && let Some(row) = &row
                && row.state.count > 0
            {
                let mut full = row.clone();
                full.state.events = read_events(transaction, workflow, key)?;
                decision = decide(Some(&full), live, seen);
            }
            match &decision.verdict {
                Verdict::Refused => {
                    insert_refusal(transaction, workflow, key, &decision.reason)?;
                    return Ok(decision);
                }
                Verdict::Run { .. } => {
                    if let Some(run) = running {
                        insert_running(transaction, &masker, run)?;
                    }
                }
                Verdict::Hold | Verdict::Suppress => {}
            }
            if decision.row.as_ref() != row.as_ref() {
                put_row(transaction, workflow, key, kind, decision.row.as_ref())?;
            }
            if let Some(new) = &decision.row {
                let old = row.as_ref().map(|row| &row.state);
                let reset = old.is_none_or(|old| old.first_ms != new.state.first_ms);
                if reset && old.is_some() {
                    forget_events(transaction, workflow, key)?;
                }
                let before = if reset { 0 } else { old.map_or(0, |old| old.count) };
                if new.state.count > before
                    && new.state.count <= crate::gates::MAX_KEPT_EVENTS as u64
                    && kind != "throttle"
                {
                    transaction
                        .prepare_cached(
                            "INSERT OR REPLACE INTO gate_events (workflow, key, seq, event_id, event)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )?
                        .execute(params![
                            workflow,
                            key,
                            new.state.count as i64,
                            event_id,
                            envelope.to_string()
                        ])?;
                }
            }
            Ok(decision)
        })
    }

    /// The `running` row of a run a gate decided elsewhere (the KV bucket of a NATS queue),
    /// written right after the decision was committed there.
    pub fn gate_running(&mut self, run: &RunningRow) -> Result<(), StateError> {
        let masker = self.masker.clone();
        self.write("record a gated run", |transaction| {
            insert_running(transaction, &masker, run)
        })
    }

    /// Counts a key refused over `max-keys` by a decision made elsewhere (the KV bucket).
    pub fn gate_refused(
        &mut self,
        workflow: &str,
        key: &str,
        reason: &str,
    ) -> Result<(), StateError> {
        self.write("count a gate refusal", |transaction| {
            insert_refusal(transaction, workflow, key, reason)
        })
    }

    /// Keys whose timer is due at `now_ms`, oldest deadline first.
    pub fn gates_due(&self, now_ms: i64) -> Result<Vec<StoredGate>, StateError> {
        self.gates_where(
            "WHERE due_ms IS NOT NULL AND due_ms <= ?1 ORDER BY due_ms",
            now_ms,
        )
    }

    /// Every live key (of one workflow), by workflow and key.
    pub fn gates(&self, workflow: Option<&str>) -> Result<Vec<StoredGate>, StateError> {
        let mut all = self.gates_where("WHERE ?1 = ?1 ORDER BY workflow, key", 0)?;
        if let Some(workflow) = workflow {
            all.retain(|gate| gate.workflow == workflow);
        }
        Ok(all)
    }

    fn gates_where(&self, clause: &str, value: i64) -> Result<Vec<StoredGate>, StateError> {
        let sql =
            format!("SELECT workflow, key, kind, state, due_ms, updated_ms FROM gates {clause}");
        let read = || -> rusqlite::Result<Vec<StoredGate>> {
            let mut statement = self.connection.prepare(&sql)?;
            statement
                .query_map(params![value], |row| {
                    let state: String = row.get(3)?;
                    Ok(StoredGate {
                        workflow: row.get(0)?,
                        key: row.get(1)?,
                        kind: row.get(2)?,
                        row: to_row(&state, row.get(4)?),
                        updated_ms: row.get(5)?,
                    })
                })?
                .collect()
        };
        read().map_err(|source| self.sqlite_error("read the gates", source))
    }

    /// Fires a due key: deletes its row — if it is still the row due at `due_ms` — and queues
    /// the run it owes (`item`, under its deterministic id) in the same transaction. False when
    /// another process fired it first.
    pub fn gate_fire(
        &mut self,
        workflow: &str,
        key: &str,
        due_ms: i64,
        item: Option<&QueueItem>,
    ) -> Result<bool, StateError> {
        let now = now_ms();
        self.write("fire a gate", |transaction| {
            let row = read_row(transaction, workflow, key)?;
            if row.and_then(|row| row.due_ms) != Some(due_ms) {
                return Ok(false);
            }
            put_row(transaction, workflow, key, "", None)?;
            if let Some(item) = item
                && transaction.execute(
                    "INSERT OR IGNORE INTO deliveries (id, source, received_ms) VALUES (?1, ?2, ?3)",
                    params![item.delivery, item.source, now],
                )? > 0
            {
                transaction.execute(
                    "INSERT INTO queue (delivery, source, event, enqueued_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![item.delivery, item.source, item.event, now],
                )?;
            }
            Ok(true)
        })
    }

    /// Forgets the live keys of `workflow` (only `key`, when given); how many.
    pub fn gates_clear(&mut self, workflow: &str, key: Option<&str>) -> Result<usize, StateError> {
        self.write("clear gates", |transaction| {
            let cleared = match key {
                Some(key) => {
                    forget_events(transaction, workflow, key)?;
                    transaction.execute(
                        "DELETE FROM gates WHERE workflow = ?1 AND key = ?2",
                        params![workflow, key],
                    )?
                }
                None => {
                    transaction.execute(
                        "DELETE FROM gate_refusals WHERE workflow = ?1",
                        params![workflow],
                    )?;
                    transaction.execute(
                        "DELETE FROM gate_events WHERE workflow = ?1",
                        params![workflow],
                    )?;
                    transaction
                        .execute("DELETE FROM gates WHERE workflow = ?1", params![workflow])?
                }
            };
            Ok(cleared)
        })
    }

    /// The refusals over `max-keys`, per workflow.
    pub fn gate_refusals(&self) -> Result<Vec<Refusals>, StateError> {
        let read = || -> rusqlite::Result<Vec<Refusals>> {
            let mut statement = self.connection.prepare(
                "SELECT workflow, count, last_key, last_ms FROM gate_refusals ORDER BY workflow",
            )?;
            statement
                .query_map([], |row| {
                    Ok(Refusals {
                        workflow: row.get(0)?,
                        count: row.get::<_, i64>(1)? as u64,
                        last_key: row.get(2)?,
                        last_ms: row.get(3)?,
                    })
                })?
                .collect()
        };
        read().map_err(|source| self.sqlite_error("read the gate refusals", source))
    }
}
