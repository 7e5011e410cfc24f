//! The `Event` envelope every input becomes, and the adapters that build it (SPEC §1).

mod canonical;
mod cloudevents;
mod dispatch;
mod github;
mod gitlab;
mod input;
mod payload;
mod reader;
mod stream;

pub use canonical::content_id;
pub use dispatch::dispatch_event;
pub use input::{EventError, InputOptions, actions_event, from_text, from_value};
pub use payload::Payload;
pub use reader::{EventReader, ReadItem, describe_json_error};
pub use stream::EventStream;

use serde::Serialize;
use serde::ser::SerializeStruct;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The largest event vane accepts by default: GitHub's own cap on webhook payloads.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 25 * 1024 * 1024;

/// One event, whatever it came from. Templates see it as `event`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The delivery id, or (computed on first use) the content id of the payload.
    id: OnceLock<String>,
    pub source: String,
    pub kind: String,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub time: String,
    pub repo: Option<String>,
    pub git_ref: Option<String>,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub sha: Option<String>,
    pub actor: Option<String>,
    pub files: Option<Vec<String>>,
    /// The id of the event whose `emit` step produced this one.
    pub parent: Option<String>,
    /// The payload exactly as received.
    pub data: Payload,
    /// How many events the input this one came from has caused through `emit` steps.
    pub emit_chain: EmitChain,
}

/// The count of events emitted from one input, shared by every event of its `emit` chain, so that
/// one input's whole fan-out is bounded (`--max-emitted`). Bookkeeping, not part of the event: it
/// is never serialized and never makes two events unequal.
#[derive(Debug, Clone, Default)]
pub struct EmitChain(OnceLock<Arc<AtomicUsize>>);

impl PartialEq for EmitChain {
    fn eq(&self, _other: &EmitChain) -> bool {
        true
    }
}

impl EmitChain {
    fn counter(&self) -> &Arc<AtomicUsize> {
        self.0.get_or_init(Arc::default)
    }

    /// Counts one more emitted event, unless the chain already has `limit` of them.
    pub fn spend(&self, limit: usize) -> bool {
        let counter = self.counter();
        if counter.fetch_add(1, Ordering::SeqCst) >= limit {
            counter.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The same chain, for an event emitted from this one.
    pub fn share(&self) -> EmitChain {
        let shared = OnceLock::new();
        let _ = shared.set(Arc::clone(self.counter()));
        EmitChain(shared)
    }
}

impl Event {
    /// A bare event of `kind` from `source`, with no derived fields; its id is content-derived.
    pub fn new(source: &str, kind: &str, data: impl Into<Payload>) -> Event {
        Event {
            id: OnceLock::new(),
            source: source.to_string(),
            kind: kind.to_string(),
            action: None,
            subject: None,
            time: now_rfc3339(),
            repo: None,
            git_ref: None,
            branch: None,
            tag: None,
            sha: None,
            actor: None,
            files: None,
            parent: None,
            data: data.into(),
            emit_chain: EmitChain::default(),
        }
    }

    /// A bare event with a known id (a delivery id, a CloudEvents id).
    pub fn with_id(id: String, source: &str, kind: &str, data: impl Into<Payload>) -> Event {
        let mut event = Event::new(source, kind, data);
        event.set_id(id);
        event
    }

    /// The delivery id where there is one; otherwise the hex SHA-256 of the payload's canonical
    /// JSON, computed on first use (SPEC §1.1).
    pub fn id(&self) -> &str {
        self.id.get_or_init(|| content_id(self.data.value()))
    }

    pub fn set_id(&mut self, id: String) {
        self.id = OnceLock::from(id);
    }

    /// Whether the id was given (a delivery id, an envelope or CloudEvents `id`) or fixed
    /// already, rather than left to the content: a transport's own message id only fills a gap.
    pub fn has_id(&self) -> bool {
        self.id.get().is_some()
    }

    /// Fills `branch` and `tag` from a full ref (`refs/heads/x`, `refs/tags/v1`).
    pub fn set_ref(&mut self, full_ref: &str) {
        self.git_ref = Some(full_ref.to_string());
        if let Some(branch) = full_ref.strip_prefix("refs/heads/") {
            self.branch = Some(branch.to_string());
            self.tag = None;
        } else if let Some(tag) = full_ref.strip_prefix("refs/tags/") {
            self.tag = Some(tag.to_string());
            self.branch = None;
        }
    }

    /// A short description for human output: `push acme/api main@9f2c1a2`.
    pub fn headline(&self) -> String {
        let mut parts = vec![match &self.action {
            Some(action) => format!("{}.{}", self.kind, action),
            None => self.kind.clone(),
        }];
        if let Some(repo) = self.repo.as_ref().or(self.subject.as_ref()) {
            parts.push(repo.clone());
        }
        let place = self.branch.as_ref().or(self.tag.as_ref());
        match (place, &self.sha) {
            (Some(place), Some(sha)) => parts.push(format!("{place}@{}", short_sha(sha))),
            (Some(place), None) => parts.push(place.clone()),
            (None, Some(sha)) => parts.push(short_sha(sha).to_string()),
            (None, None) => {}
        }
        parts.join(" ")
    }
}

impl Serialize for Event {
    /// The envelope of SPEC §1.1, in its order; `parent` only where there is one.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("Event", 15)?;
        state.serialize_field("id", self.id())?;
        state.serialize_field("source", &self.source)?;
        state.serialize_field("type", &self.kind)?;
        state.serialize_field("action", &self.action)?;
        state.serialize_field("subject", &self.subject)?;
        state.serialize_field("time", &self.time)?;
        state.serialize_field("repo", &self.repo)?;
        state.serialize_field("ref", &self.git_ref)?;
        state.serialize_field("branch", &self.branch)?;
        state.serialize_field("tag", &self.tag)?;
        state.serialize_field("sha", &self.sha)?;
        state.serialize_field("actor", &self.actor)?;
        state.serialize_field("files", &self.files)?;
        if self.parent.is_some() {
            state.serialize_field("parent", &self.parent)?;
        }
        state.serialize_field("data", &self.data)?;
        state.end()
    }
}

fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// The current time as RFC 3339 in UTC, second precision, as event envelopes carry it.
///
/// Every event without a `time` gets one, so a stream formats it per event: the text of the
/// current second is kept per thread and formatted again only when the second changes (chrono's
/// formatter was a quarter of a dry run's instructions, issue 15). Same text as formatting anew.
pub fn now_rfc3339() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let now = chrono::Utc::now();
    let second = now.timestamp();
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != second {
            *last = (second, now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        last.1.clone()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_the_current_second_as_envelopes_carry_it() {
        let before = chrono::Utc::now().timestamp();
        let first = super::now_rfc3339();
        let second = super::now_rfc3339();
        let after = chrono::Utc::now().timestamp();
        for text in [&first, &second] {
            assert_eq!(text.len(), 20, "{text}");
            assert!(text.ends_with('Z'), "{text}");
            let at = chrono::DateTime::parse_from_rfc3339(text)
                .unwrap()
                .timestamp();
            assert!(before <= at && at <= after, "{text}");
        }
    }
}
