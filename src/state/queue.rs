//! The durable queue in the store (SPEC §6): events accepted by `vane serve` or found by
//! `vane poll` wait here until a worker has run them and recorded the runs.
//!
//! At-least-once with dedup: an accepted delivery id is remembered (`deliveries`), so a replay is
//! answered without a second run; an event claimed by a process that died is claimed again, and
//! what the dead attempt left in `runs` (`running` / `interrupted` rows) is replaced by the new
//! attempt — so `history` shows each delivery's runs once.

use super::coordination::{holder_gone, instance_id, now_ms};
use super::{StateError, Store};
use rusqlite::{OptionalExtension, params};

/// One event to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    /// The dedup key: the event's id (a delivery id, or a content id).
    pub delivery: String,
    /// The webhook endpoint or source that accepted it.
    pub source: String,
    /// The envelope as JSON.
    pub event: String,
}

/// What became of a pushed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored; it will be run.
    Accepted,
    /// Its delivery id was accepted before: nothing stored, nothing will run again.
    Duplicate,
}

/// A queued event claimed by this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub delivery: String,
    pub source: String,
    pub event: String,
    /// How many times it has been claimed, this time included: more than 1 after a crash.
    pub attempts: i64,
}

/// Who claims queued events: a process (its id, for a quick check that it is gone on this
/// machine) and its instance (a random id: process ids are reused, PID 1 in every container),
/// holding its claims for `lease` unless it renews them ([`Store::renew_claims`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimer {
    pub pid: u32,
    pub instance: String,
    pub lease: std::time::Duration,
}

impl Claimer {
    /// This process, with the lease of [`super::coordination::configured_lease`].
    pub fn this_process() -> Claimer {
        Claimer {
            pid: std::process::id(),
            instance: instance_id().to_string(),
            lease: super::coordination::configured_lease(),
        }
    }

    fn expires(&self) -> i64 {
        now_ms() + self.lease.as_millis() as i64
    }
}

impl Store {
    /// Queues `items` in one transaction, each unless its delivery id was accepted before, and
    /// moves `cursor` (a source's name and new value) in the same transaction: a poller's cursor
    /// never gets ahead of the events it found.
    pub fn enqueue(
        &mut self,
        items: &[QueueItem],
        cursor: Option<(&str, &str)>,
    ) -> Result<Vec<Enqueued>, StateError> {
        let now = now_ms();
        self.write("queue events", |transaction| {
            let mut remember = transaction.prepare_cached(
                "INSERT OR IGNORE INTO deliveries (id, source, received_ms) VALUES (?1, ?2, ?3)",
            )?;
            let mut insert = transaction.prepare_cached(
                "INSERT INTO queue (delivery, source, event, enqueued_ms) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                if remember.execute(params![item.delivery, item.source, now])? == 0 {
                    outcomes.push(Enqueued::Duplicate);
                    continue;
                }
                insert.execute(params![item.delivery, item.source, item.event, now])?;
                outcomes.push(Enqueued::Accepted);
            }
            if let Some((source, value)) = cursor {
                transaction.execute(
                    "INSERT INTO cursors (source, value, updated_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (source) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                    params![source, value, now],
                )?;
            }
            Ok(outcomes)
        })
    }

    /// Claims up to `limit` waiting events for `claimer`, oldest first. Events whose claimer is
    /// gone — its lease ran out, or its process no longer exists — wait again; the runs their
    /// dead attempt left unfinished are removed, to be recorded by the new attempt.
    pub fn claim(&mut self, claimer: &Claimer, limit: usize) -> Result<Vec<Claimed>, StateError> {
        self.write("claim queued events", |transaction| {
            let abandoned: Vec<(String, i64, Option<String>, Option<i64>)> = {
                let mut statement = transaction.prepare_cached(
                    // `> 0`, not `IS NOT NULL`: SQLite searches its index for a range, but scans
                    // the whole table (whole events) for `IS NOT NULL` — measured as the
                    // workers' bottleneck with 50,000 events queued.
                    "SELECT delivery, claimed_pid, claimed_by, claim_expires_ms
                     FROM queue INDEXED BY queue_waiting
                     WHERE claimed_pid > 0 AND claimed_by IS NOT ?1",
                )?;
                statement
                    .query_map(params![claimer.instance], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?
            };
            let now = now_ms();
            for (delivery, pid, instance, expires) in abandoned {
                let expired = expires.is_some_and(|expires| expires < now);
                if !expired && !holder_gone(pid, instance.as_deref()) {
                    continue;
                }
                transaction.execute(
                    "UPDATE queue SET claimed_pid = NULL, claimed_by = NULL, claim_expires_ms = NULL
                     WHERE delivery = ?1",
                    params![delivery],
                )?;
                transaction.execute(
                    "DELETE FROM runs WHERE event_id = ?1 AND status IN ('running', 'interrupted')",
                    params![delivery],
                )?;
            }
            let mut select = transaction.prepare_cached(
                "SELECT seq, delivery, source, event, attempts FROM queue INDEXED BY queue_waiting
                 WHERE claimed_pid IS NULL ORDER BY seq LIMIT ?1",
            )?;
            let rows: Vec<(i64, Claimed)> = select
                .query_map(params![limit as i64], |row| {
                    Ok((
                        row.get(0)?,
                        Claimed {
                            delivery: row.get(1)?,
                            source: row.get(2)?,
                            event: row.get(3)?,
                            attempts: row.get::<_, i64>(4)? + 1,
                        },
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut mark = transaction.prepare_cached(
                "UPDATE queue SET claimed_pid = ?1, claimed_by = ?2, claim_expires_ms = ?3,
                 attempts = attempts + 1 WHERE seq = ?4",
            )?;
            let expires = claimer.expires();
            for (seq, _) in &rows {
                mark.execute(params![claimer.pid, claimer.instance, expires, seq])?;
            }
            Ok(rows.into_iter().map(|(_, claimed)| claimed).collect())
        })
    }

    /// Extends the lease of every claim `claimer` holds; called every third of the lease while
    /// the claimer lives.
    pub fn renew_claims(&mut self, claimer: &Claimer) -> Result<usize, StateError> {
        let expires = claimer.expires();
        self.write("renew queue claims", |transaction| {
            transaction.execute(
                "UPDATE queue SET claim_expires_ms = ?2 WHERE claimed_by = ?1",
                params![claimer.instance, expires],
            )
        })
    }

    /// The event's runs are recorded: it leaves the queue.
    pub fn acknowledge(&mut self, delivery: &str) -> Result<(), StateError> {
        self.write("remove a run event from the queue", |transaction| {
            transaction.execute("DELETE FROM queue WHERE delivery = ?1", params![delivery])?;
            Ok(())
        })
    }

    /// Events claimed by `claimer` but not run (a shutdown) wait again for the next process.
    pub fn release(&mut self, claimer: &Claimer, deliveries: &[String]) -> Result<(), StateError> {
        self.write("return events to the queue", |transaction| {
            let mut statement = transaction.prepare_cached(
                "UPDATE queue SET claimed_pid = NULL, claimed_by = NULL, claim_expires_ms = NULL,
                 attempts = max(attempts - 1, 0)
                 WHERE delivery = ?1 AND claimed_by = ?2",
            )?;
            for delivery in deliveries {
                statement.execute(params![delivery, claimer.instance])?;
            }
            Ok(())
        })
    }

    /// Events waiting or running.
    pub fn queue_depth(&self) -> Result<u64, StateError> {
        self.connection
            // The narrow index, not the table: its rows hold whole events, and counting them was
            // measured at ~150 ms for 40,000 queued pushes, against ~1 ms through the index.
            .query_row(
                "SELECT count(*) FROM queue INDEXED BY queue_waiting",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(|count| count as u64)
            .map_err(|source| self.sqlite_error("count queued events", source))
    }

    /// Whether runs of this event were recorded as finished (by an attempt that died before it
    /// could take the event off the queue).
    pub fn has_finished_runs(&self, event_id: &str) -> Result<bool, StateError> {
        self.connection
            .query_row(
                "SELECT 1 FROM runs WHERE event_id = ?1 AND status NOT IN ('running', 'interrupted') LIMIT 1",
                params![event_id],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|source| self.sqlite_error("look up an event's runs", source))
    }

    /// Whether the store can be written now: a write of 64 KiB, undone in the same transaction
    /// (SQLite still has to find room for it).
    pub fn probe_write(&mut self) -> Result<(), StateError> {
        self.write("probe the store", |transaction| {
            transaction.execute(
                "INSERT OR REPLACE INTO cursors (source, value, updated_ms) \
                 VALUES (' vane probe', hex(zeroblob(32768)), 0)",
                [],
            )?;
            transaction.execute("DELETE FROM cursors WHERE source = ' vane probe'", [])
        })
        .map(|_| ())
    }

    /// A source's cursor, as its poller stored it.
    pub fn cursor(&self, source: &str) -> Result<Option<String>, StateError> {
        self.connection
            .query_row(
                "SELECT value FROM cursors WHERE source = ?1",
                params![source],
                |row| row.get(0),
            )
            .optional()
            .map_err(|source| self.sqlite_error("read a source's cursor", source))
    }

    /// Forgets delivery ids accepted longer than `window` ago: a replay after that is a new
    /// delivery.
    pub fn forget_old_deliveries(
        &mut self,
        window: std::time::Duration,
    ) -> Result<usize, StateError> {
        let before = now_ms() - window.as_millis() as i64;
        self.write("forget old delivery ids", |transaction| {
            transaction.execute(
                "DELETE FROM deliveries WHERE received_ms < ?1",
                params![before],
            )
        })
    }

    /// Drops the payload of every run that finished longer than `retention` ago: its recorded
    /// event keeps only its id, type and source, marked `payload_pruned` (a replay says so).
    pub fn forget_old_payloads(
        &mut self,
        retention: std::time::Duration,
    ) -> Result<usize, StateError> {
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let before = chrono::Utc::now()
            .checked_sub_signed(retention)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let before = super::timestamp(before);
        self.write("forget old run payloads", |transaction| {
            transaction.execute(
                "UPDATE runs SET event = json_object('id', json_extract(event, '$.id'),
                   'type', json_extract(event, '$.type'), 'source', json_extract(event, '$.source'),
                   'payload_pruned', json('true'))
                 WHERE status != 'running' AND finished < ?1
                   AND json_extract(event, '$.payload_pruned') IS NULL",
                params![before],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Masker;
    use crate::state::StateLocation;

    fn item(delivery: &str) -> QueueItem {
        QueueItem {
            delivery: delivery.to_string(),
            source: "github".to_string(),
            event: format!(r#"{{"id":"{delivery}"}}"#),
        }
    }

    fn store() -> Store {
        Store::open(&StateLocation::Memory, Masker::new()).unwrap()
    }

    #[test]
    fn a_replayed_delivery_is_not_queued_twice_even_after_it_ran() {
        let mut store = store();
        let first = store
            .enqueue(&[item("a"), item("b"), item("a")], None)
            .unwrap();
        assert_eq!(
            first,
            [Enqueued::Accepted, Enqueued::Accepted, Enqueued::Duplicate]
        );
        let claimed = store.claim(&Claimer::this_process(), 10).unwrap();
        assert_eq!(claimed.len(), 2);
        store.acknowledge("a").unwrap();
        assert_eq!(
            store.enqueue(&[item("a")], None).unwrap(),
            [Enqueued::Duplicate]
        );
        assert_eq!(store.queue_depth().unwrap(), 1);
    }

    #[test]
    fn claims_are_oldest_first_and_never_handed_out_twice() {
        let mut store = store();
        store
            .enqueue(&[item("1"), item("2"), item("3")], None)
            .unwrap();
        let me = Claimer::this_process();
        let first: Vec<String> = store
            .claim(&me, 2)
            .unwrap()
            .into_iter()
            .map(|claimed| claimed.delivery)
            .collect();
        assert_eq!(first, ["1", "2"]);
        let second = store.claim(&me, 2).unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].delivery, "3");
        assert!(store.claim(&me, 2).unwrap().is_empty());
        store.release(&me, &["2".to_string()]).unwrap();
        let again = store.claim(&me, 2).unwrap();
        assert_eq!(again[0].delivery, "2");
        assert_eq!(again[0].attempts, 1, "a release is not an attempt");
    }

    #[test]
    fn a_dead_claimers_events_are_claimed_again() {
        let mut store = store();
        store.enqueue(&[item("x")], None).unwrap();
        // A process id that cannot exist (above the kernel's pid_max).
        let dead = Claimer {
            pid: u32::MAX >> 1,
            instance: "dead".to_string(),
            ..Claimer::this_process()
        };
        store.claim(&dead, 1).unwrap();
        let again = store.claim(&Claimer::this_process(), 1).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
    }

    #[test]
    fn an_earlier_process_with_this_process_id_is_another_claimer() {
        let mut store = store();
        store.enqueue(&[item("x")], None).unwrap();
        // PID 1 in a container that was killed and started again: same id, another process.
        let earlier = Claimer {
            instance: "the process before".to_string(),
            ..Claimer::this_process()
        };
        store.claim(&earlier, 1).unwrap();
        let again = store.claim(&Claimer::this_process(), 1).unwrap();
        assert_eq!(again.len(), 1, "its claim is not this process's");
    }

    #[test]
    fn a_live_claimer_keeps_its_claims_while_it_renews_them_and_loses_them_after() {
        let mut store = store();
        store.enqueue(&[item("x")], None).unwrap();
        // Alive (the test's parent process), on another instance, with a short lease.
        let other = Claimer {
            pid: std::os::unix::process::parent_id(),
            instance: "alive elsewhere".to_string(),
            lease: std::time::Duration::from_millis(300),
        };
        store.claim(&other, 1).unwrap();
        let me = Claimer::this_process();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(store.renew_claims(&other).unwrap(), 1);
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            store.claim(&me, 1).unwrap().is_empty(),
            "renewed: still held"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(store.claim(&me, 1).unwrap().len(), 1, "the lease ran out");
    }

    #[test]
    fn the_cursor_moves_with_the_events_it_found() {
        let mut store = store();
        assert_eq!(store.cursor("repo").unwrap(), None);
        store
            .enqueue(&[item("p")], Some(("repo", r#"{"main":"abc"}"#)))
            .unwrap();
        assert_eq!(
            store.cursor("repo").unwrap().as_deref(),
            Some(r#"{"main":"abc"}"#)
        );
        store.enqueue(&[], Some(("repo", "2"))).unwrap();
        assert_eq!(store.cursor("repo").unwrap().as_deref(), Some("2"));
    }
}
