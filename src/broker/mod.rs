//! Message brokers: NATS JetStream as the queue's, the cursors' and the concurrency groups' home
//! when several vane processes share the work, and the subscription sources (NATS, MQTT) that
//! turn broker messages into queued events.
//!
//! The clients are async (tokio); vane's engine is threads. One small runtime per process runs
//! every broker task, and the synchronous edges (`Queue`, `GroupLocks`) `block_on` it from the
//! engine's threads — never from inside the runtime.

mod group_locks;
mod jetstream;
mod mqtt;
mod nats;
mod subscriptions;

pub use group_locks::KvGroupLocks;
pub use jetstream::{JetStream, JetStreamError, kv_key};
pub use mqtt::{apply_tls, mqtt_event, parse_mqtt_url};
pub use nats::nats_event;
pub use subscriptions::{spawn_subscriptions, subscription_sources};

use std::sync::OnceLock;

/// The process's broker runtime: two threads are plenty for sockets that mostly wait.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vane-broker")
            .enable_all()
            .build()
            // Building a runtime fails only when the OS refuses threads or a timer: nothing
            // vane could do without it either.
            .expect("the broker runtime starts")
    })
}
