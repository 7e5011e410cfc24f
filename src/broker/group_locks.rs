//! Concurrency groups across machines (SPEC §4.4 with `queue: nats://…`): a group's lock is a key
//! in a JetStream KV bucket. Taking it is a create, which succeeds only where the key is absent
//! (or deleted); the holder renews it with revision-checked updates every third of the lease,
//! and the bucket's `max_age` (the lease) removes a lock whose holder died without releasing it.

use super::JetStream;
use crate::cancel::CancelToken;
use crate::engine::{GroupLease, GroupLocks, Renewer};
use crate::event::Event;
use crate::workflow::Workflow;
use async_nats::jetstream::kv;
use std::time::{Duration, Instant};

/// How often a waiting run tries the lock again.
const RETRY: Duration = Duration::from_millis(50);

/// Group locks in a KV bucket; everything else (the record of runs in progress) stays with the
/// process's own store through `local`.
pub struct KvGroupLocks {
    bucket: kv::Store,
    lease: Duration,
    timeout: Duration,
    local: Box<dyn GroupLocks + Send>,
}

impl KvGroupLocks {
    /// Locks in `bucket` on `broker`, created where missing with `lease` as its entries' age.
    pub fn open(
        broker: &JetStream,
        bucket: &str,
        lease: Duration,
        timeout: Duration,
        local: Box<dyn GroupLocks + Send>,
    ) -> Result<KvGroupLocks, super::JetStreamError> {
        let bucket = broker.bucket(bucket, lease)?;
        Ok(KvGroupLocks {
            bucket,
            lease,
            timeout,
            local,
        })
    }
}

impl GroupLocks for KvGroupLocks {
    fn acquire(
        &self,
        group: &str,
        run_id: &str,
        cancel: &CancelToken,
    ) -> Result<Box<dyn GroupLease>, String> {
        let key = super::jetstream::kv_key(group);
        let started = Instant::now();
        loop {
            let attempt = super::runtime().block_on(
                self.bucket
                    .create(&key, run_id.to_string().into_bytes().into()),
            );
            match attempt {
                Ok(revision) => {
                    return Ok(Box::new(KvLease::hold(
                        self.bucket.clone(),
                        key,
                        run_id.to_string(),
                        revision,
                        self.lease,
                    )));
                }
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(error) => {
                    return Err(format!(
                        "cannot take the lock of concurrency group `{group}`: {error}"
                    ));
                }
            }
            if cancel.is_cancelled() {
                return Err(format!(
                    "cancelled while waiting for concurrency group `{group}`"
                ));
            }
            if started.elapsed() >= self.timeout {
                let holder = super::runtime()
                    .block_on(self.bucket.get(&key))
                    .ok()
                    .flatten()
                    .map(|value| String::from_utf8_lossy(&value).into_owned())
                    .unwrap_or_else(|| "another process".to_string());
                return Err(format!(
                    "timed out after {} waiting for concurrency group `{group}`, held by run {holder} (`--lock-timeout`)",
                    crate::duration::format_duration(self.timeout),
                ));
            }
            std::thread::sleep(RETRY);
        }
    }

    fn started(&self, run_id: &str, workflow: &Workflow, event: &Event) {
        self.local.started(run_id, workflow, event);
    }
}

/// A held lock: renewed until dropped, then deleted (if still ours).
struct KvLease {
    /// Its state is the key's revision, which moves with every renewal.
    renewer: Renewer<u64>,
    bucket: kv::Store,
    key: String,
}

impl KvLease {
    fn hold(bucket: kv::Store, key: String, owner: String, revision: u64, lease: Duration) -> Self {
        let renewer = {
            let (bucket, key) = (bucket.clone(), key.clone());
            Renewer::start(lease, revision, move |revision| {
                let renewed = super::runtime().block_on(bucket.update(
                    &key,
                    owner.clone().into_bytes().into(),
                    *revision,
                ));
                match renewed {
                    Ok(next) => *revision = next,
                    Err(error) => {
                        tracing::warn!(
                            "cannot renew the lock `{key}` held by run {owner}: {error}"
                        );
                    }
                }
            })
        };
        KvLease {
            renewer,
            bucket,
            key,
        }
    }
}

impl GroupLease for KvLease {}

impl Drop for KvLease {
    fn drop(&mut self) {
        let Some(revision) = self.renewer.stop() else {
            return;
        };
        // Only our own revision: a lock that expired and was taken by another run stays its.
        let _ = super::runtime().block_on(
            self.bucket
                .delete_expect_revision(&self.key, Some(revision)),
        );
    }
}
