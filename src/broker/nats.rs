//! The NATS source: each message on a subject one event — an envelope, a CloudEvent, or a raw
//! payload of the source's `type` — whose `subject` is the NATS subject. A core subscription
//! joins the queue group `vane-<source>` (or `queue-group`), a JetStream one binds the durable
//! consumer `vane-<source>`: either way the vane processes of a cluster get each message once
//! between them, and push it into the queue.

use super::JetStream;
use super::subscriptions::{Backoff, push_until_stopped};
use crate::cancel::CancelToken;
use crate::config::{NatsSource, Source};
use crate::event::{Event, InputOptions};
use crate::queue::Queue;
use async_nats::jetstream::consumer;
use futures_util::StreamExt;
use serde_json::Value as Json;
use std::time::Duration;

/// The type of raw messages when the source does not say.
pub const DEFAULT_NATS_TYPE: &str = "nats.message";

/// How long one wait for a message lasts before the stop flag is looked at again.
const POLL: Duration = Duration::from_millis(200);

/// The event one message carries. `message_id` (a `Nats-Msg-Id`, a stream position) is the id
/// where the message has none of its own; failing both, the content id.
pub fn nats_event(
    kind: Option<&str>,
    subject: &str,
    payload: &[u8],
    message_id: Option<String>,
) -> Result<Event, String> {
    let mut event = broker_event("nats", kind.unwrap_or(DEFAULT_NATS_TYPE), payload)?;
    if event.subject.is_none() {
        event.subject = Some(subject.to_string());
    }
    if !event.has_id()
        && let Some(id) = message_id
    {
        event.set_id(id);
    }
    Ok(event)
}

/// An envelope or CloudEvent as it is; anything else the `data` of an event of `kind`: JSON as
/// it is, except a bare number, which becomes `{"value": N}` (sensors publish bare readings),
/// and text that is not JSON, which becomes `{"value": "…"}`.
pub(super) fn broker_event(source: &str, kind: &str, payload: &[u8]) -> Result<Event, String> {
    let text =
        std::str::from_utf8(payload).map_err(|_| "the message is not UTF-8 text".to_string())?;
    let value: Option<Json> = serde_json::from_str(text).ok();
    if let Some(Json::Object(object)) = &value
        && (object.contains_key("specversion")
            || (object.contains_key("type") && object.contains_key("data")))
    {
        return crate::event::from_text(text, &InputOptions::default())
            .map_err(|error| error.message);
    }
    let data = match value {
        Some(number @ Json::Number(_)) => serde_json::json!({ "value": number }),
        Some(value) => value,
        None => serde_json::json!({ "value": text.trim() }),
    };
    crate::event::from_value(
        &data,
        &InputOptions {
            kind: Some(kind.to_string()),
            source: Some(source.to_string()),
            delivery_id: None,
        },
    )
    .map_err(|error| error.message)
}

/// Runs one NATS source until `stop`: reconnecting, resubscribing, pushing every message.
pub(super) fn run(source: &Source, settings: &NatsSource, queue: &dyn Queue, stop: &CancelToken) {
    let mut backoff = Backoff::default();
    while !stop.is_cancelled() {
        let result = JetStream::connect(&settings.url)
            .map_err(|error| error.to_string())
            .and_then(|broker| match &settings.stream {
                None => core(&broker, source, settings, queue, stop, &mut backoff),
                Some(stream) => {
                    durable(&broker, stream, source, settings, queue, stop, &mut backoff)
                }
            });
        if let Err(message) = result {
            tracing::error!("source `{}`: {message}", source.name);
            backoff.sleep(stop);
        }
    }
}

fn core(
    broker: &JetStream,
    source: &Source,
    settings: &NatsSource,
    queue: &dyn Queue,
    stop: &CancelToken,
    backoff: &mut Backoff,
) -> Result<(), String> {
    let group = settings
        .queue_group
        .clone()
        .unwrap_or_else(|| format!("vane-{}", source.name));
    let mut subscription = super::runtime()
        .block_on(
            broker
                .client
                .queue_subscribe(settings.subject.clone(), group),
        )
        .map_err(|error| format!("cannot subscribe to `{}`: {error}", settings.subject))?;
    backoff.reset();
    while !stop.is_cancelled() {
        let next = super::runtime()
            .block_on(async { tokio::time::timeout(POLL, subscription.next()).await });
        let message = match next {
            Err(_) => continue,
            Ok(None) => return Err("the subscription ended".to_string()),
            Ok(Some(message)) => message,
        };
        forward(source, settings, &message, None, queue, stop);
    }
    Ok(())
}

fn durable(
    broker: &JetStream,
    stream: &str,
    source: &Source,
    settings: &NatsSource,
    queue: &dyn Queue,
    stop: &CancelToken,
    backoff: &mut Backoff,
) -> Result<(), String> {
    let name = format!("vane-{}", source.name);
    let consumer: consumer::PullConsumer = super::runtime().block_on(async {
        let stream = broker
            .context
            .get_stream(stream)
            .await
            .map_err(|error| format!("no JetStream stream `{stream}`: {error}"))?;
        stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    filter_subject: settings.subject.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|error| format!("cannot set up the consumer `{name}`: {error}"))
    })?;
    backoff.reset();
    while !stop.is_cancelled() {
        let messages = super::runtime().block_on(async {
            let mut batch = consumer
                .batch()
                .max_messages(64)
                .expires(POLL)
                .messages()
                .await
                .map_err(|error| error.to_string())?;
            let mut messages = Vec::new();
            while let Some(message) = batch.next().await {
                messages.push(message.map_err(|error| error.to_string())?);
            }
            Ok::<_, String>(messages)
        })?;
        for message in messages {
            let position = message
                .info()
                .ok()
                .map(|info| format!("{}-{}", info.stream, info.stream_sequence));
            // Acknowledged only once queued: a crash in between redelivers it.
            if !forward(source, settings, &message, position, queue, stop) {
                return Ok(());
            }
            let _ = super::runtime().block_on(message.double_ack());
        }
    }
    Ok(())
}

/// Queues the event a message carries (its id: its own, else `Nats-Msg-Id`, else `fallback`);
/// a message that is no event is reported and dropped. False when stopped before it was queued.
fn forward(
    source: &Source,
    settings: &NatsSource,
    message: &async_nats::Message,
    fallback: Option<String>,
    queue: &dyn Queue,
    stop: &CancelToken,
) -> bool {
    let message_id = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get("Nats-Msg-Id"))
        .map(|value| value.as_str().to_string())
        .or(fallback);
    match nats_event(
        settings.kind.as_deref(),
        message.subject.as_str(),
        &message.payload,
        message_id,
    ) {
        Ok(event) => push_until_stopped(queue, &source.name, &event, stop),
        Err(problem) => {
            tracing::error!(
                "source `{}`: a message on `{}` is not an event: {problem}",
                source.name,
                message.subject
            );
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_events_by_their_form() {
        let cloud =
            br#"{"specversion":"1.0","id":"ce-1","source":"ci","type":"deploy","data":{"x":1}}"#;
        let event = nats_event(None, "events.deploy", cloud, Some("m-1".into())).unwrap();
        assert_eq!(event.kind, "deploy");
        assert_eq!(event.id(), "ce-1");
        assert_eq!(event.subject.as_deref(), Some("events.deploy"));

        let raw = nats_event(Some("metric"), "m.cpu", b"0.93", Some("m-2".into())).unwrap();
        assert_eq!(raw.kind, "metric");
        assert_eq!(raw.source, "nats");
        assert_eq!(raw.id(), "m-2");
        assert_eq!(raw.data.value(), &serde_json::json!({"value": 0.93}));

        let text = nats_event(None, "t", b"hello", None).unwrap();
        assert_eq!(text.kind, DEFAULT_NATS_TYPE);
        assert_eq!(text.data.value(), &serde_json::json!({"value": "hello"}));
        assert_eq!(text.id().len(), 64, "a content id");
    }
}
