//! One NATS connection per server URL and process, with the JetStream objects vane keeps there:
//! the work-queue stream of events, its durable consumer, the dead-letter stream, and the KV
//! buckets of cursors and concurrency-group locks — each created where missing.

use crate::config::NatsQueue;
use async_nats::jetstream::{self, consumer, kv, stream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Why the JetStream side could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum JetStreamError {
    #[error("cannot connect to NATS at `{url}`: {message}")]
    Connect { url: String, message: String },
    #[error("JetStream at `{url}`: cannot set up {what} `{name}`: {message}")]
    Setup {
        url: String,
        what: &'static str,
        name: String,
        message: String,
    },
}

/// A connected client and its JetStream context, shared by the queue, the locks and the sources.
pub struct JetStream {
    pub url: String,
    pub client: async_nats::Client,
    pub context: jetstream::Context,
}

/// How long connecting may take before vane reports the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl JetStream {
    /// The process's connection to `url`, opened on first use. Later failures (a restarted
    /// server) are the client's business: it reconnects by itself.
    pub fn connect(url: &str) -> Result<Arc<JetStream>, JetStreamError> {
        static OPEN: OnceLock<Mutex<HashMap<String, Arc<JetStream>>>> = OnceLock::new();
        let open = OPEN.get_or_init(Mutex::default);
        if let Ok(open) = open.lock()
            && let Some(connection) = open.get(url)
        {
            return Ok(Arc::clone(connection));
        }
        let client = super::runtime()
            .block_on(
                async_nats::ConnectOptions::new()
                    .connection_timeout(CONNECT_TIMEOUT)
                    .name("vane")
                    .connect(url),
            )
            .map_err(|error| JetStreamError::Connect {
                url: url.to_string(),
                message: error.to_string(),
            })?;
        // The context spawns its publish-ack task on the current runtime.
        let context = {
            let _inside = super::runtime().enter();
            jetstream::new(client.clone())
        };
        let connection = Arc::new(JetStream {
            url: url.to_string(),
            client,
            context,
        });
        if let Ok(mut open) = open.lock() {
            open.insert(url.to_string(), Arc::clone(&connection));
        }
        Ok(connection)
    }

    fn setup_error(&self, what: &'static str, name: &str, error: impl ToString) -> JetStreamError {
        JetStreamError::Setup {
            url: self.url.clone(),
            what,
            name: name.to_string(),
            message: error.to_string(),
        }
    }

    /// The events stream (work-queue retention: a message leaves once acknowledged) and the
    /// durable pull consumer all workers share.
    pub fn work_queue(
        &self,
        settings: &NatsQueue,
    ) -> Result<(stream::Stream, consumer::PullConsumer), JetStreamError> {
        super::runtime().block_on(async {
            let stream = self
                .context
                .get_or_create_stream(stream::Config {
                    name: settings.stream.clone(),
                    subjects: vec![settings.subject.clone()],
                    retention: stream::RetentionPolicy::WorkQueue,
                    storage: stream::StorageType::File,
                    duplicate_window: settings.dedup_window,
                    description: Some("vane: events waiting to be run".to_string()),
                    ..Default::default()
                })
                .await
                .map_err(|error| self.setup_error("stream", &settings.stream, error))?;
            let consumer = stream
                .get_or_create_consumer(
                    &settings.consumer,
                    consumer::pull::Config {
                        durable_name: Some(settings.consumer.clone()),
                        description: Some("vane workers".to_string()),
                        ack_policy: consumer::AckPolicy::Explicit,
                        ack_wait: settings.ack_wait,
                        // One delivery more than the configured attempts: the extra one is the
                        // worker's cue that the message is dead (see `JetStreamQueue::take`).
                        max_deliver: settings.max_deliver + 1,
                        filter_subject: settings.subject.clone(),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|error| self.setup_error("consumer", &settings.consumer, error))?;
            Ok((stream, consumer))
        })
    }

    /// A stream keeping what is published on the dead-letter subject, unless one already does.
    pub fn dead_letters(&self, settings: &NatsQueue) -> Result<(), JetStreamError> {
        let name = format!("{}_DEAD", settings.stream);
        super::runtime().block_on(async {
            if self
                .context
                .stream_by_subject(settings.dead_letter.clone())
                .await
                .is_ok()
            {
                return Ok(());
            }
            self.context
                .get_or_create_stream(stream::Config {
                    name: name.clone(),
                    subjects: vec![settings.dead_letter.clone()],
                    storage: stream::StorageType::File,
                    description: Some("vane: events no worker could handle".to_string()),
                    ..Default::default()
                })
                .await
                .map(|_| ())
                .map_err(|error| self.setup_error("stream", &name, error))
        })
    }

    /// A KV bucket, created where missing; `max_age` expires entries nobody renews.
    ///
    /// The bucket's stream is created here, with the client's own KV conventions, rather than by
    /// `create_key_value`: that one first asks for the account's info, whose reply from servers
    /// before 2.10 this client cannot read.
    pub fn bucket(&self, name: &str, max_age: Duration) -> Result<kv::Store, JetStreamError> {
        super::runtime().block_on(async {
            if let Ok(store) = self.context.get_key_value(name).await {
                return Ok(store);
            }
            let created = self
                .context
                .get_or_create_stream(stream::Config {
                    name: format!("KV_{name}"),
                    subjects: vec![format!("$KV.{name}.>")],
                    max_messages_per_subject: 1,
                    max_age,
                    storage: stream::StorageType::File,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    discard: stream::DiscardPolicy::New,
                    num_replicas: 1,
                    description: Some(format!("vane: {name}")),
                    ..Default::default()
                })
                .await;
            if let Err(error) = created {
                return Err(self.setup_error("KV bucket", name, error));
            }
            self.context
                .get_key_value(name)
                .await
                .map_err(|error| self.setup_error("KV bucket", name, error))
        })
    }
}

/// A KV key for any text: KV keys allow `[-/_=.a-zA-Z0-9]`, so other bytes (and `=` itself)
/// become `=XX`, and so does `.` (a token separator: `a..b` would not be a key).
pub fn kv_key(text: &str) -> String {
    let mut key = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'/' | b'_') {
            key.push(char::from(byte));
        } else {
            key.push_str(&format!("={byte:02X}"));
        }
    }
    if key.is_empty() {
        key.push_str("=00");
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_text_becomes_a_valid_distinct_key() {
        assert_eq!(kv_key("api-repo"), "api-repo");
        assert_eq!(kv_key("deploy acme/api"), "deploy=20acme/api");
        assert_eq!(kv_key("a=b"), "a=3Db");
        assert_eq!(kv_key(".x..y"), "=2Ex=2E=2Ey");
        assert_eq!(kv_key(""), "=00");
        assert_ne!(kv_key("a b"), kv_key("a=20b"));
    }
}
