//! GitHub REST API polling: `GET {api-url}/repos/{repo}/actions/runs`, ETag-conditional, turned
//! into `workflow_run` events shaped like the webhook (`action`, `workflow_run`, `repository`,
//! `sender`; `source: github`, so the envelope fields derive as for a webhook).
//!
//! The cursor remembers each listed run's `status:conclusion:attempt`; a run that is new or whose
//! state changed is one event, `action` from its status (`requested` for queued/waiting/pending,
//! `in_progress`, `completed`). Its id is `github:<source>:workflow_run:<run>:<attempt>:<action>`,
//! so two pollers that see the same change queue it once. A `304` costs no rate limit and emits
//! nothing. When GitHub says the limit is spent (`X-RateLimit-Remaining: 0`, `Retry-After`),
//! polls are skipped until its reset, and stderr says so.

use super::Found;
use super::rate_limit::{self, Limits};
use crate::config::GithubSource;
use crate::event::{Event, InputOptions};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    /// Run id → `status:conclusion:attempt`, for the runs of the last page.
    #[serde(default)]
    runs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<i64>,
}

/// Runs asked for per poll: GitHub lists the newest first.
const PER_PAGE: u32 = 50;

/// Polls `source` once.
pub fn poll(
    name: &str,
    source: &GithubSource,
    client: &reqwest::blocking::Client,
    cursor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Found, String> {
    let first = cursor.is_none();
    let previous: Cursor = super::read_cursor(cursor)?;
    if let Some(skipped) = rate_limit::skipped(previous.not_before, now) {
        return Ok(skipped);
    }
    let url = format!(
        "{}/repos/{}/actions/runs?per_page={PER_PAGE}",
        source.api_url.trim_end_matches('/'),
        source.repo
    );
    let shown = crate::steps::gitops::repo::scrub_url(&url);
    let mut request = client
        .get(&url)
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28");
    if let Some(token) = &source.token {
        let token = token
            .resolve()
            .map_err(|message| format!("token: {message}"))?;
        request = request.bearer_auth(token);
    }
    if let Some(etag) = &previous.etag {
        request = request.header("If-None-Match", etag.as_str());
    }
    let response = request
        .send()
        .map_err(|error| format!("GET `{shown}`: {}", error.without_url()))?;
    let limits = Limits::of(&response);
    let wait = limits.not_before(now.timestamp());
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED || (wait.is_some() && !status.is_success()) {
        // Nothing new; only a wait (if GitHub asked for one) is stored.
        let cursor = wait.map(|until| Cursor {
            not_before: Some(until),
            ..previous.clone()
        });
        return Ok(Found {
            events: Vec::new(),
            cursor: cursor.and_then(|cursor| serde_json::to_string(&cursor).ok()),
            note: wait.and_then(|until| rate_limit::skip(Some(until), now)),
        });
    }
    if !status.is_success() {
        let hint = match status.as_u16() {
            401 => " (the token was refused)",
            404 => " (no such repository, or the token cannot see it)",
            _ => "",
        };
        return Err(format!("GET `{shown}` answered {status}{hint}"));
    }
    let etag = response
        .headers()
        .get("etag")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body: Value = response.json().map_err(|error| {
        format!(
            "GET `{shown}`: the response is not the JSON of a list of runs: {}",
            error.without_url()
        )
    })?;
    let Some(runs) = body.get("workflow_runs").and_then(Value::as_array) else {
        return Err(format!(
            "GET `{shown}`: the response has no `workflow_runs` list"
        ));
    };
    let record_only = first && source.first == crate::config::FirstPoll::Record;
    let (changed, states) = changes(&previous.runs, runs, record_only);
    let events = changed
        .into_iter()
        .map(|(run, action)| event(name, run, action))
        .collect::<Result<Vec<_>, _>>()?;
    let next = Cursor {
        etag,
        runs: states,
        not_before: wait,
    };
    Ok(Found {
        events,
        cursor: serde_json::to_string(&next).ok(),
        note: wait.and_then(|until| rate_limit::skip(Some(until), now)),
    })
}

/// The runs that are new or changed since `previous` (oldest first, as they happened), with the
/// action of each, and the states to remember. `record_only`: remember, emit nothing.
fn changes<'a>(
    previous: &BTreeMap<String, String>,
    runs: &'a [Value],
    record_only: bool,
) -> (Vec<(&'a Value, &'static str)>, BTreeMap<String, String>) {
    let mut changed = Vec::new();
    let mut states = BTreeMap::new();
    // GitHub lists the newest first.
    for run in runs.iter().rev() {
        let Some(id) = run.get("id").map(|id| match id {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }) else {
            continue;
        };
        let text = |key: &str| run.get(key).and_then(Value::as_str).unwrap_or("");
        let attempt = run.get("run_attempt").and_then(Value::as_u64).unwrap_or(1);
        let state = format!("{}:{}:{attempt}", text("status"), text("conclusion"));
        if !record_only && previous.get(&id) != Some(&state) {
            let action = match text("status") {
                "completed" => "completed",
                "in_progress" => "in_progress",
                _ => "requested",
            };
            changed.push((run, action));
        }
        states.insert(id, state);
    }
    (changed, states)
}

/// A run as the `workflow_run` webhook would have delivered it.
fn event(name: &str, run: &Value, action: &str) -> Result<Event, String> {
    let id = run.get("id").cloned().unwrap_or(Value::Null);
    let attempt = run.get("run_attempt").and_then(Value::as_u64).unwrap_or(1);
    let sender = run
        .get("triggering_actor")
        .or_else(|| run.get("actor"))
        .cloned()
        .unwrap_or(Value::Null);
    let envelope = json!({
        "id": format!("github:{name}:workflow_run:{id}:{attempt}:{action}"),
        "source": "github",
        "type": "workflow_run",
        "subject": name,
        "data": {
            "action": action,
            "workflow_run": run,
            "repository": run.get("repository").cloned().unwrap_or(Value::Null),
            "sender": sender,
        },
    });
    crate::event::from_value(&envelope, &InputOptions::default())
        .map_err(|error| format!("run {id}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: u64, status: &str, conclusion: Option<&str>) -> Value {
        json!({"id": id, "status": status, "conclusion": conclusion, "run_attempt": 1,
               "head_branch": "main", "head_sha": "abc",
               "repository": {"full_name": "acme/api"}, "actor": {"login": "octocat"}})
    }

    #[test]
    fn new_and_changed_runs_are_events_once() {
        let page = vec![run(2, "queued", None), run(1, "in_progress", None)];
        let (changed, first) = changes(&BTreeMap::new(), &page, true);
        assert!(changed.is_empty(), "the first poll records");
        let page = vec![
            run(3, "queued", None),
            run(2, "queued", None),
            run(1, "completed", Some("failure")),
        ];
        let (changed, states) = changes(&first, &page, false);
        let actions: Vec<(u64, &str)> = changed
            .iter()
            .map(|(run, action)| (run["id"].as_u64().unwrap(), *action))
            .collect();
        assert_eq!(actions, vec![(1, "completed"), (3, "requested")]);
        let (changed, _) = changes(&states, &page, false);
        assert!(changed.is_empty(), "nothing new, nothing emitted");
    }

    #[test]
    fn a_run_becomes_a_webhook_shaped_event() {
        let event = event("ci", &run(7, "completed", Some("failure")), "completed").unwrap();
        assert_eq!(event.id(), "github:ci:workflow_run:7:1:completed");
        assert_eq!(event.action.as_deref(), Some("completed"));
        assert_eq!(event.repo.as_deref(), Some("acme/api"));
        assert_eq!(event.branch.as_deref(), Some("main"));
        assert_eq!(event.sha.as_deref(), Some("abc"));
        assert_eq!(event.actor.as_deref(), Some("octocat"));
    }
}
