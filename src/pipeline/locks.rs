//! Where concurrency groups are locked: with `queue: nats://…` in a JetStream KV bucket shared by
//! every process of the cluster; otherwise in the state store, shared by the processes that use
//! it; with no store (`:memory:`, plans) only within this process.

use super::Settings;
use crate::engine::{GroupLocks, LocalOnly};
use crate::state::{Coordinator, Store};
use std::sync::{Arc, Mutex};

pub fn group_locks(
    settings: &Settings,
    store: Option<Arc<Mutex<Store>>>,
    revision: Option<String>,
) -> Result<Box<dyn GroupLocks>, String> {
    let local: Box<dyn GroupLocks + Send> = match store {
        Some(store) => {
            match Coordinator::new(store, &settings.state, settings.lock_timeout, revision) {
                Ok(Some(coordinator)) => Box::new(coordinator),
                Ok(None) => Box::new(LocalOnly),
                Err(error) => return Err(error.to_string()),
            }
        }
        None => Box::new(LocalOnly),
    };
    let crate::config::Queue::Nats(queue) = settings.queue() else {
        return Ok(local);
    };
    let broker =
        crate::broker::JetStream::connect(&queue.url).map_err(|error| error.to_string())?;
    crate::broker::KvGroupLocks::open(
        &broker,
        &queue.locks,
        queue.lock_lease,
        settings.lock_timeout,
        local,
    )
    .map(|locks| Box::new(locks) as Box<dyn GroupLocks>)
    .map_err(|error| error.to_string())
}
