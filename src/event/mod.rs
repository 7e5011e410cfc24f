//! The `Event` envelope every input becomes, and the adapters that build it (SPEC §1).

mod canonical;
mod cloudevents;
mod github;
mod gitlab;
mod input;
mod reader;

pub use canonical::content_id;
pub use input::{EventError, InputOptions, actions_event, from_document};
pub use reader::{EventReader, ReadItem};

use serde::Serialize;
use std::sync::Arc;

/// The largest event vane accepts by default: GitHub's own cap on webhook payloads.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 25 * 1024 * 1024;

/// One event, whatever it came from. Templates see it as `event`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub time: String,
    pub repo: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub sha: Option<String>,
    pub actor: Option<String>,
    pub files: Option<Vec<String>>,
    /// The id of the event whose `emit` step produced this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The payload exactly as received. Shared: every workflow's context points at the same tree.
    pub data: Arc<serde_json::Value>,
}

impl Event {
    /// A bare event of `kind` from `source`, with no derived fields; `id` is content-derived.
    pub fn new(source: &str, kind: &str, data: serde_json::Value) -> Event {
        let id = content_id(&data);
        Event::with_id(id, source, kind, data)
    }

    /// A bare event with a known id (a delivery id, a CloudEvents id).
    pub fn with_id(id: String, source: &str, kind: &str, data: serde_json::Value) -> Event {
        Event {
            id,
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
            data: Arc::new(data),
        }
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

fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// The current time as RFC 3339 in UTC, second precision, as event envelopes carry it.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
