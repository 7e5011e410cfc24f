//! HTTP polling: a GET of a JSON resource whose response (or the part a JSON pointer picks) is
//! `data` of an event of the configured type, `source: http`, `subject` the source's name.
//!
//! With `emit: changed` the request carries the last `ETag` as `If-None-Match`; a `304`, or a
//! body whose content hash is the last one, emits nothing. With `emit: always` every poll emits.
//! The cursor holds the ETag, the hash, a count of events (part of the ids, so that a value that
//! comes back later is a new event, not a duplicate) and a rate-limit wait. The first poll emits:
//! a resource's current state is news, unlike the history of a repository.

use super::Found;
use super::rate_limit::{self, Limits};
use crate::config::{Emit, HeaderValue, HttpSource};
use crate::event::Event;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    #[serde(default)]
    count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<i64>,
}

/// What the server answered, reduced to what the decision needs.
#[derive(Debug)]
enum Answer {
    NotModified,
    Body { etag: Option<String>, hash: String },
}

/// Whether an answer is an event, and the cursor after it (`None`: unchanged).
fn judge(emit: Emit, previous: &Cursor, answer: Answer) -> (bool, Option<Cursor>) {
    match answer {
        Answer::NotModified => (false, None),
        Answer::Body { etag, hash } => {
            let changed = previous.hash.as_deref() != Some(hash.as_str());
            let emits = emit == Emit::Always || changed;
            let next = Cursor {
                etag,
                hash: Some(hash),
                count: previous.count + u64::from(emits),
                not_before: None,
            };
            (emits, (next != *previous).then_some(next))
        }
    }
}

/// Polls `source` once.
pub fn poll(
    name: &str,
    source: &HttpSource,
    client: &reqwest::blocking::Client,
    cursor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Found, String> {
    let previous: Cursor = super::read_cursor(cursor)?;
    if let Some(skipped) = rate_limit::skipped(previous.not_before, now) {
        return Ok(skipped);
    }
    let shown = crate::steps::gitops::repo::scrub_url(&source.url);
    let mut request = client.get(&source.url);
    for (header, value) in &source.headers {
        let value = match value {
            HeaderValue::Text(text) => text.clone(),
            HeaderValue::Secret(secret) => secret
                .resolve()
                .map_err(|message| format!("header `{header}`: {message}"))?,
        };
        request = request.header(header.as_str(), value);
    }
    if source.emit == Emit::Changed
        && let Some(etag) = &previous.etag
    {
        request = request.header("If-None-Match", etag.as_str());
    }
    let response = request
        .send()
        .map_err(|error| format!("GET `{shown}`: {}", error.without_url()))?;
    let limits = Limits::of(&response);
    if let Some(until) = limits.not_before(now.timestamp())
        && !response.status().is_success()
        && response.status() != reqwest::StatusCode::NOT_MODIFIED
    {
        let waiting = Cursor {
            not_before: Some(until),
            ..previous
        };
        return Ok(Found {
            events: Vec::new(),
            cursor: serde_json::to_string(&waiting).ok(),
            note: rate_limit::skip(Some(until), now),
        });
    }
    let status = response.status();
    let answer = if status == reqwest::StatusCode::NOT_MODIFIED {
        None
    } else if status.is_success() {
        let etag = response
            .headers()
            .get("etag")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let body = response
            .bytes()
            .map_err(|error| format!("GET `{shown}`: {}", error.without_url()))?;
        if body.len() > crate::event::DEFAULT_MAX_EVENT_SIZE {
            return Err(format!(
                "GET `{shown}`: the response is {} bytes, more than an event may be",
                body.len()
            ));
        }
        let document: Value = serde_json::from_slice(&body).map_err(|error| {
            format!(
                "GET `{shown}`: the response is not JSON ({})",
                crate::event::describe_json_error(&error)
            )
        })?;
        let data = match &source.pointer {
            Some(pointer) => document.pointer(pointer).cloned().ok_or_else(|| {
                format!("GET `{shown}`: pointer `{pointer}` selects nothing in the response")
            })?,
            None => document,
        };
        Some((etag, data))
    } else {
        return Err(format!("GET `{shown}` answered {status}"));
    };
    let Some((etag, data)) = answer else {
        return Ok(judged(
            name,
            source,
            &previous,
            Answer::NotModified,
            Value::Null,
        ));
    };
    let hash = crate::event::content_id(&data);
    Ok(judged(
        name,
        source,
        &previous,
        Answer::Body { etag, hash },
        data,
    ))
}

fn judged(
    name: &str,
    source: &HttpSource,
    previous: &Cursor,
    answer: Answer,
    data: Value,
) -> Found {
    let (emits, next) = judge(source.emit, previous, answer);
    let events = match (&next, emits) {
        (Some(next), true) => {
            let hash = next.hash.as_deref().unwrap_or_default();
            let mut event = Event::with_id(
                format!("http:{name}:{}:{}", next.count, &hash[..hash.len().min(16)]),
                "http",
                &source.kind,
                data,
            );
            event.subject = Some(name.to_string());
            vec![event]
        }
        _ => Vec::new(),
    };
    Found {
        events,
        cursor: next.and_then(|next| serde_json::to_string(&next).ok()),
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(etag: Option<&str>, hash: &str) -> Answer {
        Answer::Body {
            etag: etag.map(str::to_string),
            hash: hash.to_string(),
        }
    }

    #[test]
    fn changed_emits_only_for_new_content() {
        let start = Cursor::default();
        let (emits, first) = judge(Emit::Changed, &start, body(Some("\"a\""), "h1"));
        assert!(emits, "the first answer is news");
        let first = first.unwrap();
        assert_eq!((first.count, first.etag.as_deref()), (1, Some("\"a\"")));
        // 304: nothing, the cursor stays.
        assert_eq!(
            judge(Emit::Changed, &first, Answer::NotModified),
            (false, None)
        );
        // Same content without ETag support: nothing, nothing to store.
        let (emits, next) = judge(Emit::Changed, &first, body(Some("\"a\""), "h1"));
        assert!(!emits && next.is_none());
        // Same content under a new ETag: nothing emitted, the new ETag kept.
        let (emits, next) = judge(Emit::Changed, &first, body(Some("\"b\""), "h1"));
        assert!(!emits);
        assert_eq!(next.unwrap().etag.as_deref(), Some("\"b\""));
        // New content: an event, counted.
        let (emits, next) = judge(Emit::Changed, &first, body(None, "h2"));
        assert!(emits);
        assert_eq!(next.unwrap().count, 2);
    }

    #[test]
    fn always_emits_every_body() {
        let first = judge(Emit::Always, &Cursor::default(), body(None, "h1"))
            .1
            .unwrap();
        let (emits, next) = judge(Emit::Always, &first, body(None, "h1"));
        assert!(emits);
        assert_eq!(next.unwrap().count, 2, "a new id for the same content");
    }
}
