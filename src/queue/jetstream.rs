//! The shared queue: a NATS JetStream work-queue stream that several vane processes (on several
//! machines) take events from through one durable pull consumer.
//!
//! - push: each event is published with `Nats-Msg-Id` = its delivery id, so JetStream itself
//!   drops a replay within the stream's duplicate window; `push` returns after the publish acks.
//! - take: messages are handed out with explicit ack; while a worker holds them, a heartbeat
//!   sends in-progress acks (`+WPI`) every third of `ack_wait`, so a long run is not redelivered
//!   while its worker lives, and a killed worker's messages come back after `ack_wait`.
//! - done: acked (and the ack confirmed by the server) only after the runs are recorded.
//! - dead: the consumer delivers one time more than `max_deliver`; a worker that receives that
//!   extra delivery runs nothing: it publishes the message to the dead-letter subject, records
//!   the event as `dead`, and terminates the message (`+TERM`).
//! - cursors: in a KV bucket, so that pollers on several machines share them.

use super::{Enqueued, Queue, QueueItem, Taken};
use crate::broker::JetStream;
use crate::config::NatsQueue;
use crate::state::{StateLocation, Store};
use async_nats::HeaderMap;
use async_nats::jetstream::{consumer, kv, stream};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The header that carries the name of the source that accepted an event.
const SOURCE_HEADER: &str = "Vane-Source";
/// The header JetStream deduplicates on.
const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// The messages handed to this process and not yet acknowledged.
#[derive(Default)]
struct Held {
    /// Handle → the `$JS.ACK…` reply subject of the message's latest delivery.
    replies: HashMap<u64, async_nats::Subject>,
    /// Delivery id → handle: a message JetStream delivers again while this process still runs
    /// it (its in-progress acks were lost, as when the broker restarts) is the same event.
    handles: HashMap<String, u64>,
}

impl Held {
    /// Holds a delivered message under a new handle; `None` when its event is already held here
    /// (a redelivery of a message this process is running): the held one then acks with the
    /// latest delivery's subject, and the copy is not run twice.
    fn hold(&mut self, delivery: &str, reply: async_nats::Subject, handle: u64) -> Option<u64> {
        if let Some(held) = self.handles.get(delivery) {
            self.replies.insert(*held, reply);
            return None;
        }
        self.handles.insert(delivery.to_string(), handle);
        self.replies.insert(handle, reply);
        Some(handle)
    }

    fn release(&mut self, handle: u64) -> Option<async_nats::Subject> {
        let reply = self.replies.remove(&handle)?;
        self.handles.retain(|_, held| *held != handle);
        Some(reply)
    }
}

pub struct JetStreamQueue {
    broker: Arc<JetStream>,
    settings: NatsQueue,
    stream: stream::Stream,
    consumer: consumer::PullConsumer,
    cursors: kv::Store,
    held: Arc<Mutex<Held>>,
    next_handle: AtomicU64,
    /// This process's state store: where dead events are recorded, and where a redelivered
    /// event's runs may already be (a worker of this store died between recording and ack).
    store: Mutex<Store>,
}

impl JetStreamQueue {
    /// Connects, creates what is missing (stream, consumer, dead-letter stream, cursor bucket),
    /// and starts the in-progress heartbeat.
    pub fn open(
        settings: &NatsQueue,
        location: &StateLocation,
        masker: crate::secrets::Masker,
    ) -> Result<JetStreamQueue, String> {
        let broker = JetStream::connect(&settings.url).map_err(|error| error.to_string())?;
        let (stream, consumer) = broker
            .work_queue(settings)
            .map_err(|error| error.to_string())?;
        broker
            .dead_letters(settings)
            .map_err(|error| error.to_string())?;
        // Cursors never expire.
        let cursors = broker
            .bucket(&settings.cursors, Duration::ZERO)
            .map_err(|error| error.to_string())?;
        let store = Store::open(location, masker).map_err(|error| error.to_string())?;
        let held: Arc<Mutex<Held>> = Arc::default();
        heartbeat(
            broker.client.clone(),
            Arc::downgrade(&held),
            settings.ack_wait / 3,
        );
        Ok(JetStreamQueue {
            broker,
            settings: settings.clone(),
            stream,
            consumer,
            cursors,
            held,
            next_handle: AtomicU64::new(1),
            store: Mutex::new(store),
        })
    }

    /// Publishes and waits for every publish ack; `duplicate` tells a replay.
    async fn publish(&self, items: &[QueueItem]) -> Result<Vec<Enqueued>, String> {
        publish(&self.broker, &self.settings.subject, items).await
    }
}

/// [`JetStreamQueue::publish`] over owned parts, for a publish spawned on the broker's runtime
/// (and for the gates' timers, which publish the runs they owe).
pub(crate) async fn publish(
    broker: &JetStream,
    subject: &str,
    items: &[QueueItem],
) -> Result<Vec<Enqueued>, String> {
    {
        let mut pending = Vec::with_capacity(items.len());
        for item in items {
            let mut headers = HeaderMap::new();
            headers.insert(MSG_ID_HEADER, item.delivery.as_str());
            headers.insert(SOURCE_HEADER, item.source.as_str());
            let ack = broker
                .context
                .publish_with_headers(subject.to_string(), headers, item.event.clone().into())
                .await
                .map_err(|error| format!("cannot publish event {}: {error}", item.delivery))?;
            pending.push((item, ack));
        }
        let mut outcomes = Vec::with_capacity(pending.len());
        for (item, ack) in pending {
            let ack = ack.await.map_err(|error| {
                format!(
                    "event {}: JetStream did not confirm the publish: {error}",
                    item.delivery
                )
            })?;
            outcomes.push(if ack.duplicate {
                Enqueued::Duplicate
            } else {
                Enqueued::Accepted
            });
        }
        Ok(outcomes)
    }
}

impl JetStreamQueue {
    /// The messages the server has for this consumer now, without waiting; or, when there are
    /// none, the first to arrive within `wait` (and what came with it).
    async fn pull(
        &self,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<async_nats::jetstream::Message>, String> {
        let mut messages = self.fetch(limit).await?;
        // The server refuses pull requests that expire in under a millisecond.
        if messages.is_empty() && wait >= Duration::from_millis(10) {
            let mut batch = self
                .consumer
                .batch()
                .max_messages(1)
                .expires(wait)
                .messages()
                .await
                .map_err(|error| format!("cannot pull from `{}`: {error}", self.settings.stream))?;
            while let Some(message) = batch.next().await {
                match message {
                    Ok(message) => messages.push(message),
                    Err(error) => return Err(format!("cannot pull: {error}")),
                }
            }
            if !messages.is_empty() && limit > 1 {
                messages.extend(self.fetch(limit - 1).await?);
            }
        }
        Ok(messages)
    }

    async fn fetch(&self, limit: usize) -> Result<Vec<async_nats::jetstream::Message>, String> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(limit)
            .messages()
            .await
            .map_err(|error| format!("cannot pull from `{}`: {error}", self.settings.stream))?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            match message {
                Ok(message) => messages.push(message),
                Err(error) => return Err(format!("cannot pull: {error}")),
            }
        }
        Ok(messages)
    }

    /// Gives up on a message that was delivered `max_deliver` times without being handled.
    async fn bury(&self, message: &async_nats::jetstream::Message, taken: &Taken) {
        let reason = format!(
            "delivered {} times without being handled (max-deliver {}); sent to `{}`",
            taken.attempts - 1,
            self.settings.max_deliver,
            self.settings.dead_letter
        );
        let mut headers = message.headers.clone().unwrap_or_default();
        // Not the original id: the dead-letter stream must keep it even when it deduplicates.
        headers.insert(MSG_ID_HEADER, format!("dead-{}", taken.delivery).as_str());
        headers.insert("Vane-Delivery", taken.delivery.as_str());
        headers.insert("Vane-Dead-Reason", reason.as_str());
        let published = match self
            .broker
            .context
            .publish_with_headers(
                self.settings.dead_letter.clone(),
                headers,
                message.payload.clone(),
            )
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = published {
            // Not acknowledged: the message stays, unterminated; the next take retries.
            tracing::error!(
                "event {}: cannot publish it to the dead-letter subject `{}`: {error}",
                taken.delivery,
                self.settings.dead_letter
            );
            let _ = message
                .ack_with(async_nats::jetstream::AckKind::Nak(None))
                .await;
            return;
        }
        if let Ok(mut store) = self.store.lock()
            && let Err(error) = store.record_dead(&taken.delivery, &taken.event, &reason)
        {
            tracing::error!(
                "event {} is dead but could not be recorded: {error}",
                taken.delivery
            );
        }
        tracing::warn!("event {}: {reason}", taken.delivery);
        let _ = message
            .double_ack_with(async_nats::jetstream::AckKind::Term)
            .await;
    }

    /// See [`Held::hold`].
    fn hold(&self, delivery: &str, reply: async_nats::Subject) -> Option<u64> {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .hold(delivery, reply, handle)
    }

    fn release(&self, handle: u64) -> Option<async_nats::Subject> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .release(handle)
    }
}

/// Keeps every held message from redelivery while this process lives: `+WPI` resets its
/// `ack_wait`. Ends when the queue is dropped.
fn heartbeat(client: async_nats::Client, held: Weak<Mutex<Held>>, every: Duration) {
    let every = every.max(Duration::from_millis(100));
    crate::broker::runtime().spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(held) = held.upgrade() else { return };
            let replies: Vec<async_nats::Subject> = match held.lock() {
                Ok(held) => held.replies.values().cloned().collect(),
                Err(_) => return,
            };
            drop(held);
            for reply in replies {
                let _ = client.publish(reply, "+WPI".into()).await;
            }
        }
    });
}

/// What a message says about the event it carries.
fn taken_from(message: &async_nats::jetstream::Message, handle: u64) -> Taken {
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(name))
            .map(|value| value.as_str().to_string())
    };
    let event = String::from_utf8_lossy(&message.payload).into_owned();
    let attempts = message.info().map(|info| info.delivered).unwrap_or(1);
    // An envelope published by hand, without a delivery id: its own id (or content id).
    let delivery = header(MSG_ID_HEADER).unwrap_or_else(|| {
        crate::event::from_text(&event, &crate::event::InputOptions::default())
            .map(|event| event.id().to_string())
            .unwrap_or_else(|_| {
                message
                    .info()
                    .map(|info| format!("{}-{}", info.stream, info.stream_sequence))
                    .unwrap_or_default()
            })
    });
    Taken {
        delivery,
        source: header(SOURCE_HEADER).unwrap_or_else(|| "nats".to_string()),
        event,
        attempts,
        handle,
    }
}

impl Queue for JetStreamQueue {
    /// Without a cursor, the publish runs on the broker's runtime and `reply` is called from
    /// there: the caller may itself be on an async runtime (`vane serve`'s request handlers),
    /// where blocking on another runtime is not allowed.
    fn push_then(
        &self,
        items: Vec<QueueItem>,
        cursor: Option<(String, String)>,
        reply: super::Reply,
    ) {
        if let Some((source, value)) = cursor {
            reply(self.push(&items, Some((&source, &value))));
            return;
        }
        let broker = Arc::clone(&self.broker);
        let subject = self.settings.subject.clone();
        crate::broker::runtime().spawn(async move {
            reply(publish(&broker, &subject, &items).await);
        });
    }

    fn push(
        &self,
        items: &[QueueItem],
        cursor: Option<(&str, &str)>,
    ) -> Result<Vec<Enqueued>, String> {
        crate::broker::runtime().block_on(async {
            let outcomes = self.publish(items).await?;
            // After the events: a cursor never gets ahead of what it found.
            if let Some((source, value)) = cursor {
                self.cursors
                    .put(
                        crate::broker::kv_key(source),
                        value.to_string().into_bytes().into(),
                    )
                    .await
                    .map_err(|error| format!("cannot store the cursor of `{source}`: {error}"))?;
            }
            Ok(outcomes)
        })
    }

    fn take(&self, limit: usize, wait: Duration) -> Result<Vec<Taken>, String> {
        crate::broker::runtime().block_on(async {
            let messages = self.pull(limit.max(1), wait).await?;
            let mut taken = Vec::with_capacity(messages.len());
            for message in messages {
                let Some(reply) = message.reply.clone() else {
                    continue;
                };
                let mut event = taken_from(&message, 0);
                if event.attempts > self.settings.max_deliver {
                    self.bury(&message, &event).await;
                    continue;
                }
                match self.hold(&event.delivery, reply) {
                    Some(handle) => {
                        event.handle = handle;
                        taken.push(event);
                    }
                    None => tracing::info!(
                        delivery = %event.delivery,
                        "event {} delivered again while this worker runs it: not run twice",
                        event.delivery
                    ),
                }
            }
            Ok(taken)
        })
    }

    fn done(&self, taken: &Taken) -> Result<(), String> {
        let Some(reply) = self.release(taken.handle) else {
            return Ok(());
        };
        crate::broker::runtime().block_on(async {
            // A request, not a publish: the server confirms the ack, so `done` means done.
            match tokio::time::timeout(
                Duration::from_secs(5),
                self.broker.client.request(reply.clone(), "+ACK".into()),
            )
            .await
            {
                Ok(Ok(_)) => Ok(()),
                _ => {
                    // Unconfirmed (a server without ack replies, or a reconnect): sent plainly.
                    self.broker
                        .client
                        .publish(reply, "+ACK".into())
                        .await
                        .map_err(|error| error.to_string())?;
                    self.broker
                        .client
                        .flush()
                        .await
                        .map_err(|error| error.to_string())
                }
            }
        })
    }

    fn give_back(&self, taken: &[Taken]) {
        let replies: Vec<async_nats::Subject> = taken
            .iter()
            .filter_map(|taken| self.release(taken.handle))
            .collect();
        if replies.is_empty() {
            return;
        }
        crate::broker::runtime().block_on(async {
            for reply in replies {
                let _ = self.broker.client.publish(reply, "-NAK".into()).await;
            }
            let _ = self.broker.client.flush().await;
        });
    }

    /// Asked of every delivery, not only of those JetStream counts as redelivered: a broker that
    /// restarts may have lost the acks (and the delivery counts) it had not yet written, and
    /// hands out again, as a first delivery, an event this worker ran and recorded.
    fn already_recorded(&self, taken: &Taken) -> bool {
        self.store
            .lock()
            .ok()
            .and_then(|store| store.has_finished_runs(&taken.delivery).ok())
            .unwrap_or(false)
    }

    fn health(&self) -> Result<(), String> {
        match self.broker.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(format!(
                "the NATS server {} is not connected ({state:?})",
                self.settings.url
            )),
        }
    }

    fn depth(&self) -> Option<u64> {
        // Work-queue retention: what is in the stream is waiting or running.
        crate::broker::runtime()
            .block_on(self.stream.get_info())
            .ok()
            .map(|info| info.state.messages)
    }

    fn cursor(&self, source: &str) -> Result<Option<String>, String> {
        crate::broker::runtime()
            .block_on(self.cursors.get(crate::broker::kv_key(source)))
            .map(|value| value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
            .map_err(|error| format!("cannot read the cursor of `{source}`: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::Held;

    #[test]
    fn a_redelivery_of_a_held_event_is_not_handed_out_and_the_latest_subject_acks() {
        let mut held = Held::default();
        assert_eq!(held.hold("d-1", "ack.1".into(), 1), Some(1));
        assert_eq!(held.hold("d-2", "ack.2".into(), 2), Some(2));
        // JetStream delivers d-1 again while it runs here.
        assert_eq!(held.hold("d-1", "ack.3".into(), 3), None);
        assert_eq!(held.replies.len(), 2);
        assert_eq!(held.release(1).as_deref(), Some("ack.3"));
        assert_eq!(held.release(1), None);
        // Once done, a later delivery of it is handed out again (and found recorded).
        assert_eq!(held.hold("d-1", "ack.4".into(), 4), Some(4));
        assert_eq!(held.release(2).as_deref(), Some("ack.2"));
    }
}
