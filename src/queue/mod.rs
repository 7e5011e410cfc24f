//! Where accepted events wait to be run (SPEC §6): the store's own table by default, a NATS
//! JetStream stream when several vane processes share the work. `vane serve` and the pollers
//! push; workers take, run, record, and only then mark the event done — at-least-once delivery,
//! with delivery ids deduplicated so that a replay is never a second run.

mod jetstream;
mod sqlite;

pub use crate::state::{Enqueued, QueueItem};
pub use jetstream::JetStreamQueue;
pub(crate) use jetstream::publish;
pub use sqlite::SqliteQueue;

use std::time::Duration;

/// Called with what became of pushed items.
pub type Reply = Box<dyn FnOnce(Result<Vec<Enqueued>, String>) + Send>;

/// An event handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub delivery: String,
    pub source: String,
    /// The envelope as JSON.
    pub event: String,
    /// How many times it was handed out, this time included: more than 1 after a worker died.
    pub attempts: i64,
    /// The queue's own handle for acknowledging it (a JetStream message), 0 where unused.
    pub handle: u64,
}

/// A queue of events, shared by the threads of a process (and, for JetStream, by processes).
pub trait Queue: Send + Sync {
    /// Stores the items durably, each unless its delivery id was accepted before, and moves a
    /// source's cursor with them; returns only once they survive a crash of this process.
    fn push(
        &self,
        items: &[QueueItem],
        cursor: Option<(&str, &str)>,
    ) -> Result<Vec<Enqueued>, String>;

    /// [`Queue::push`] without waiting: `reply` is called with the outcome once the items are
    /// durable (or could not be stored). The daemon's request handlers await it without holding a
    /// thread. The default pushes at once, on the caller's thread.
    fn push_then(&self, items: Vec<QueueItem>, cursor: Option<(String, String)>, reply: Reply) {
        let cursor = cursor
            .as_ref()
            .map(|(source, value)| (source.as_str(), value.as_str()));
        reply(self.push(&items, cursor));
    }

    /// Up to `limit` events to run, waiting at most `wait` for the first.
    fn take(&self, limit: usize, wait: Duration) -> Result<Vec<Taken>, String>;

    /// The event's runs are recorded: it leaves the queue.
    fn done(&self, taken: &Taken) -> Result<(), String>;

    /// Events taken but not run (a shutdown) go back for another worker.
    fn give_back(&self, taken: &[Taken]);

    /// Whether an attempt that died after recording the event's runs, but before `done`, left
    /// them: then the event is done, not run again.
    fn already_recorded(&self, taken: &Taken) -> bool;

    /// Events waiting or running, where the queue can tell.
    fn depth(&self) -> Option<u64>;

    /// Whether events can be stored and taken now, or why not (a broker that is down); answers
    /// at once, without a round trip.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether the queue is the state store's own table: then a gate's timer queues the run it
    /// owes in the same transaction as its decision.
    fn in_store(&self) -> bool {
        false
    }

    /// A source's cursor, as its poller stored it with [`Queue::push`].
    fn cursor(&self, source: &str) -> Result<Option<String>, String>;
}
