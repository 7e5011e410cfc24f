//! The store's schema, versioned in the binary: migration N takes a database from
//! `PRAGMA user_version` N to N + 1. Append new migrations; never edit a released one.

use rusqlite::{Connection, TransactionBehavior};

/// Every migration, in order. The schema version this vane writes is their count.
const MIGRATIONS: &[&str] = &[
    // 1: runs and their steps.
    "CREATE TABLE runs (
        id          TEXT PRIMARY KEY NOT NULL,
        workflow    TEXT NOT NULL,
        file        TEXT NOT NULL,
        revision    TEXT,
        event_id    TEXT NOT NULL,
        event_type  TEXT NOT NULL,
        event       TEXT NOT NULL,              -- the envelope (SPEC §1.1) as JSON, masked
        status      TEXT NOT NULL,              -- success, failure, cancelled, skipped, interrupted
        started     TEXT NOT NULL,              -- RFC 3339 UTC with milliseconds: sorts as text
        finished    TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        error       TEXT,
        dry_run     INTEGER NOT NULL DEFAULT 0,
        replay_of   TEXT                        -- the run this one replayed
    );
    CREATE INDEX runs_by_started ON runs (started);
    CREATE INDEX runs_by_workflow ON runs (workflow, started);
    CREATE TABLE steps (
        run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,           -- the order the steps were recorded in
        job         TEXT,
        step_id     TEXT NOT NULL,
        name        TEXT,
        kind        TEXT NOT NULL,
        status      TEXT NOT NULL,
        rendered    TEXT NOT NULL,              -- the action as executed, JSON, masked
        outputs     TEXT,                       -- JSON, masked
        exit_code   INTEGER,
        attempts    INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        error       TEXT,
        log         TEXT,                       -- the output's tail, at most 64 KiB, masked
        PRIMARY KEY (run_id, position)
    ) WITHOUT ROWID;",
    // 2: coordination between processes — which process runs a run (so a killed one's runs end
    // `interrupted`), and concurrency-group leases.
    "ALTER TABLE runs ADD COLUMN pid INTEGER;
    CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
    CREATE TABLE locks (
        name        TEXT PRIMARY KEY NOT NULL,  -- the concurrency group
        owner       TEXT NOT NULL,              -- the run holding it
        pid         INTEGER NOT NULL,           -- the process holding it
        expires_ms  INTEGER NOT NULL            -- Unix milliseconds; renewed while the run lasts
    ) WITHOUT ROWID;",
    // 3: scale recommendations, for the stabilization windows of `scale` steps (SPEC §2.3).
    "CREATE TABLE scale_recommendations (
        key         TEXT NOT NULL,              -- the step's `key`
        at_ms       INTEGER NOT NULL,           -- Unix milliseconds of the decision
        replicas    INTEGER NOT NULL            -- what it recommended, before stabilization
    );
    CREATE INDEX scale_recommendations_by_key ON scale_recommendations (key, at_ms);",
    // 4: the durable queue of `vane serve` and `vane poll` (SPEC §6), the delivery ids already
    // accepted (replays are answered without a second run), and the pollers' cursors.
    "CREATE TABLE queue (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order
        delivery    TEXT NOT NULL UNIQUE,       -- the event's id: a delivery id or content id
        source      TEXT NOT NULL,              -- the webhook or source that accepted it
        event       TEXT NOT NULL,              -- the envelope (SPEC §1.1) as JSON, as received
        enqueued_ms INTEGER NOT NULL,
        claimed_pid INTEGER,                    -- the process running it; NULL while it waits
        attempts    INTEGER NOT NULL DEFAULT 0  -- how many times it was claimed
    );
    CREATE INDEX queue_waiting ON queue (claimed_pid, seq);
    CREATE TABLE deliveries (
        id          TEXT PRIMARY KEY NOT NULL,  -- every delivery id accepted, kept for a while
        source      TEXT NOT NULL,
        received_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_by_age ON deliveries (received_ms);
    CREATE TABLE cursors (
        source      TEXT PRIMARY KEY NOT NULL,  -- the source's name in vane.yaml
        value       TEXT NOT NULL,              -- JSON, the source's own shape
        updated_ms  INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 5: claims, locks and runs owned by a process instance (a random id per process), not only
    // a process id — PID 1 in a restarted container is another process — and queue claims held
    // by a lease the claimer renews while it lives.
    "ALTER TABLE queue ADD COLUMN claimed_by TEXT;  -- the claimer's instance id
    ALTER TABLE queue ADD COLUMN claim_expires_ms INTEGER;  -- Unix ms; renewed while it runs
    ALTER TABLE locks ADD COLUMN instance TEXT;
    ALTER TABLE runs ADD COLUMN instance TEXT;",
    // 6: which definition a run ran: the content digest of its workflow file (`sha256:<hex>`),
    // beside the revision — a daemon that reloads its workflows runs several definitions.
    "ALTER TABLE runs ADD COLUMN digest TEXT;",
    // 7: gates (`throttle`, `debounce`, `window`, `correlate`): one row per workflow and key, with
    // the key's next deadline, and the keys refused over `max-keys`.
    "CREATE TABLE gates (
        workflow    TEXT NOT NULL,
        key         TEXT NOT NULL,              -- the gate's key, as rendered for the event
        kind        TEXT NOT NULL,              -- throttle, debounce, window, correlate
        state       TEXT NOT NULL,              -- JSON: the kind's own state (events kept, runs)
        due_ms      INTEGER,                    -- Unix milliseconds of the next timer; NULL: none
        suppressed  INTEGER NOT NULL DEFAULT 0, -- events dropped since the key's last run
        updated_ms  INTEGER NOT NULL,
        PRIMARY KEY (workflow, key)
    ) WITHOUT ROWID;
    CREATE INDEX gates_due ON gates (due_ms) WHERE due_ms IS NOT NULL;
    CREATE TABLE gate_refusals (
        workflow    TEXT PRIMARY KEY NOT NULL,
        count       INTEGER NOT NULL,           -- new keys refused over `max-keys`
        last_key    TEXT NOT NULL,
        last_ms     INTEGER NOT NULL,
        reason      TEXT NOT NULL
    ) WITHOUT ROWID;",
    // 8: the events a gate key keeps (a window's, a burst's), one row each, so that a decision
    // appends one event rather than rewriting them all.
    "CREATE TABLE gate_events (
        workflow    TEXT NOT NULL,
        key         TEXT NOT NULL,
        seq         INTEGER NOT NULL,           -- 1, 2, … within the key's current window or burst
        event_id    TEXT NOT NULL,
        event       TEXT NOT NULL,              -- the envelope as JSON
        PRIMARY KEY (workflow, key, seq)
    ) WITHOUT ROWID;
    CREATE INDEX gate_events_by_id ON gate_events (workflow, key, event_id);",
    // 9: a run found by its event: a worker asks of every event it takes whether its runs are
    // already recorded (a redelivery), and `replay` finds an event's runs.
    "CREATE INDEX runs_by_event ON runs (event_id);",
];

/// The schema version this vane writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn user_version(connection: &Connection) -> rusqlite::Result<i64> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Outcome of [`migrate`]: the version found, when it is newer than [`SCHEMA_VERSION`].
pub enum Migration {
    Current,
    TooNew(i64),
}

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction. The version is read again under
/// the write lock: two processes opening a new store at once must not both create the tables.
pub fn migrate(connection: &mut Connection) -> rusqlite::Result<Migration> {
    if user_version(connection)? == SCHEMA_VERSION {
        return Ok(Migration::Current);
    }
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = user_version(&transaction)?;
    if found > SCHEMA_VERSION {
        return Ok(Migration::TooNew(found));
    }
    for migration in &MIGRATIONS[found.max(0) as usize..] {
        transaction.execute_batch(migration)?;
    }
    transaction.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    transaction.commit()?;
    Ok(Migration::Current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_is_brought_to_the_current_version_once() {
        let mut connection = Connection::open_in_memory().unwrap();
        assert!(matches!(
            migrate(&mut connection).unwrap(),
            Migration::Current
        ));
        assert_eq!(user_version(&connection).unwrap(), SCHEMA_VERSION);
        // Idempotent: a second open finds the tables and does nothing.
        assert!(matches!(
            migrate(&mut connection).unwrap(),
            Migration::Current
        ));
    }

    #[test]
    fn a_newer_version_is_reported_not_migrated() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.pragma_update(None, "user_version", 999).unwrap();
        assert!(matches!(
            migrate(&mut connection).unwrap(),
            Migration::TooNew(999)
        ));
        assert_eq!(user_version(&connection).unwrap(), 999);
    }
}
