//! Coordination between vane processes that share one store (SPEC §4.4): a lease per concurrency
//! group, so that two processes never run one group at once, and the record of runs in progress,
//! so that a process killed mid-run leaves its runs `interrupted`, never `running` forever.

use super::{StateError, StateLocation, Store, timestamp};
use crate::cancel::CancelToken;
use crate::engine::{GroupLease, GroupLocks, Renewer};
use crate::event::Event;
use crate::workflow::Workflow;
use rusqlite::{OptionalExtension, params};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a lease lasts unless renewed. The holder renews it every third of this, so only a
/// process that stopped renewing (hung, or killed on another machine) loses it; a holder killed on
/// this machine is noticed at once by its process id.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Leases and run records, over their own connection to the store.
pub struct Coordinator {
    store: Arc<Mutex<Store>>,
    lease: Duration,
    timeout: Duration,
    revision: Option<String>,
}

impl Coordinator {
    /// Coordination over the process's open store (shared with the recorder), after recovering
    /// what killed processes left behind. `None` for `--state :memory:`: no other process can
    /// share it.
    pub fn new(
        store: Arc<Mutex<Store>>,
        location: &StateLocation,
        timeout: Duration,
        revision: Option<String>,
    ) -> Result<Option<Coordinator>, StateError> {
        if *location == StateLocation::Memory {
            return Ok(None);
        }
        if let Ok(mut open) = store.lock() {
            recover(&mut open)?;
        }
        let lease = configured_lease();
        Ok(Some(Coordinator {
            store,
            lease,
            timeout,
            revision,
        }))
    }
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as i64)
        .unwrap_or_default()
}

/// This process's instance id: random, so that a claim or a run of an earlier process with the
/// same process id (PID 1 in a container, restarted) is never taken for one of this process.
pub fn instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| uuid::Uuid::new_v4().simple().to_string())
}

/// The lease of claims and locks: `VANE_LOCK_LEASE`, else [`DEFAULT_LEASE`].
pub fn configured_lease() -> Duration {
    std::env::var("VANE_LOCK_LEASE")
        .ok()
        .and_then(|text| crate::duration::parse_duration(&text).ok())
        .filter(|lease| !lease.is_zero())
        .unwrap_or(DEFAULT_LEASE)
}

/// Whether the holder of a claim, lock or run — process `pid`, instance `instance` — is surely
/// gone: its process no longer exists, or its process id is this process's own while its instance
/// is another (an earlier process that had the same id: PID 1 in a container, restarted).
pub(super) fn holder_gone(pid: i64, instance: Option<&str>) -> bool {
    if pid == i64::from(std::process::id()) {
        return instance != Some(instance_id());
    }
    !process_alive(pid)
}

/// Whether process `pid` still exists on this machine.
pub(super) fn process_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Runs left `running` by a process that no longer exists become `interrupted`.
fn recover(store: &mut Store) -> Result<(), StateError> {
    store.write("recover interrupted runs", |transaction| {
        let mut statement =
            transaction.prepare("SELECT id, pid, instance FROM runs WHERE status = 'running'")?;
        let stale: Vec<(String, Option<i64>, Option<String>)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<Result<_, _>>()?;
        drop(statement);
        let finished = timestamp(chrono::Utc::now());
        for (id, pid, instance) in stale {
            if pid.is_some_and(|pid| !holder_gone(pid, instance.as_deref())) {
                continue;
            }
            let message = match pid {
                Some(pid) => format!("the vane process (pid {pid}) ended while this run was in progress"),
                None => "the vane process ended while this run was in progress".to_string(),
            };
            transaction.execute(
                "UPDATE runs SET status = 'interrupted', finished = ?2, error = ?3 WHERE id = ?1 AND status = 'running'",
                params![id, finished, message],
            )?;
        }
        Ok(())
    })
}

impl GroupLocks for Coordinator {
    fn acquire(
        &self,
        group: &str,
        run_id: &str,
        cancel: &CancelToken,
    ) -> Result<Box<dyn GroupLease>, String> {
        let started = Instant::now();
        let pid = i64::from(std::process::id());
        loop {
            let lease_ms = self.lease.as_millis() as i64;
            let attempt = {
                let Ok(mut store) = self.store.lock() else {
                    return Err("the state store lock is poisoned".into());
                };
                store.write("take a concurrency group lock", |transaction| {
                    let holder: Option<(String, i64, i64, Option<String>)> = transaction
                        .query_row(
                            "SELECT owner, pid, expires_ms, instance FROM locks WHERE name = ?1",
                            params![group],
                            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                        )
                        .optional()?;
                    let now = now_ms();
                    let free = match &holder {
                        None => true,
                        Some((_, holder_pid, expires, instance)) => {
                            *expires < now || holder_gone(*holder_pid, instance.as_deref())
                        }
                    };
                    if free {
                        transaction.execute(
                            "INSERT OR REPLACE INTO locks (name, owner, pid, expires_ms, instance) \
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![group, run_id, pid, now + lease_ms, instance_id()],
                        )?;
                        Ok(None)
                    } else {
                        Ok(holder.map(|(owner, _, _, _)| owner))
                    }
                })
            };
            let holder = match attempt {
                Ok(None) => {
                    return Ok(Box::new(Lease::hold(
                        Arc::clone(&self.store),
                        group,
                        run_id,
                        self.lease,
                    )));
                }
                Ok(Some(owner)) => owner,
                Err(error) => return Err(error.to_string()),
            };
            if cancel.is_cancelled() {
                return Err(format!(
                    "cancelled while waiting for concurrency group `{group}`"
                ));
            }
            if started.elapsed() >= self.timeout {
                return Err(format!(
                    "timed out after {} waiting for concurrency group `{group}`, held by run {} (`--lock-timeout`)",
                    crate::duration::format_duration(self.timeout),
                    holder
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn started(&self, run_id: &str, workflow: &Workflow, event: &Event) {
        let Ok(mut store) = self.store.lock() else {
            return;
        };
        let masker = store.masker.clone();
        let mut event_json = serde_json::to_value(event).unwrap_or_default();
        masker.mask_json(&mut event_json);
        let now = timestamp(chrono::Utc::now());
        // A failure here loses only the trace of a kill; the run's own record is written after it.
        let _ = store.write("record a run as running", |transaction| {
            // Cached: one run after another, the statement is parsed once.
            transaction.prepare_cached(
                "INSERT OR REPLACE INTO runs (id, workflow, file, revision, event_id, event_type, event, \
                 status, started, finished, duration_ms, error, dry_run, replay_of, pid, instance) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8, ?8, 0, NULL, 0, NULL, ?9, ?10)",
            )?
            .execute(params![
                    run_id,
                    workflow.name,
                    workflow.file.display().to_string(),
                    self.revision,
                    event.id(),
                    event.kind,
                    event_json.to_string(),
                    now,
                    i64::from(std::process::id()),
                    instance_id(),
                ],
            )
        });
    }
}

/// A held lease: renewed on a thread until dropped, then released.
struct Lease {
    renewer: Renewer<()>,
    store: Arc<Mutex<Store>>,
    group: String,
    owner: String,
}

impl Lease {
    fn hold(store: Arc<Mutex<Store>>, group: &str, owner: &str, lease: Duration) -> Lease {
        let renewer = {
            let (store, group, owner) = (Arc::clone(&store), group.to_string(), owner.to_string());
            Renewer::start(lease, (), move |()| {
                if let Ok(mut store) = store.lock() {
                    let expires = now_ms() + lease.as_millis() as i64;
                    let _ = store.write("renew a concurrency group lock", |transaction| {
                        transaction.execute(
                            "UPDATE locks SET expires_ms = ?3 WHERE name = ?1 AND owner = ?2",
                            params![group, owner, expires],
                        )
                    });
                }
            })
        };
        Lease {
            renewer,
            store,
            group: group.to_string(),
            owner: owner.to_string(),
        }
    }
}

impl GroupLease for Lease {}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.stop();
        if let Ok(mut store) = self.store.lock() {
            let _ = store.write("release a concurrency group lock", |transaction| {
                transaction.execute(
                    "DELETE FROM locks WHERE name = ?1 AND owner = ?2",
                    params![self.group, self.owner],
                )
            });
        }
    }
}
