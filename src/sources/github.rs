//! GitHub REST API polling, ETag-conditional, turned into events shaped like the webhooks
//! (`source: github`, so the envelope fields derive as for a webhook):
//!
//! - `workflow_run`: `GET {api-url}/repos/{repo}/actions/runs` (the newest 50). A run that is new
//!   or whose `status:conclusion:attempt` changed is one event, `action` from its status
//!   (`requested` for queued/waiting/pending, `in_progress`, `completed`); id
//!   `github:<source>:workflow_run:<run>:<attempt>:<action>`.
//! - `check_run`: `GET {api-url}/repos/{repo}/commits/{branch}/check-runs` for each of the
//!   source's `branches` — the check runs of each branch's head commit. As GitHub's webhook does,
//!   a new check run is `created`, a finished one `completed` (once per conclusion); id
//!   `github:<source>:check_run:<run>:<action>:<conclusion>`.
//!
//! The cursor remembers each listed run's state (per branch for check runs) and each list's ETag;
//! a `304` costs no rate limit and emits nothing. Two pollers that see the same change queue it
//! once. When GitHub says the limit is spent (`X-RateLimit-Remaining: 0`, `Retry-After`), polls
//! are skipped until its reset, and stderr says so.

use super::Found;
use super::rate_limit::{self, Limits};
use crate::config::{FirstPoll, GithubSource};
use crate::event::{Event, InputOptions};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Id → state of the runs of one list.
type States = BTreeMap<String, String>;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// The ETag of the workflow runs list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    /// Run id → `status:conclusion:attempt`, for the runs of the last page; `None` before the
    /// first poll of `workflow_run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    runs: Option<States>,
    /// Branch → check run id → `status:conclusion`; a branch is absent before its first poll.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    checks: BTreeMap<String, States>,
    /// Branch → the ETag of its check runs list.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    check_etags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<i64>,
}

/// Items asked for per list: GitHub lists the newest first.
const PER_PAGE: u32 = 50;

/// One list read from the API.
enum Fetched {
    NotModified,
    /// GitHub asked to wait until then (Unix seconds); nothing was read.
    Wait(i64),
    Page {
        etag: Option<String>,
        items: Vec<Value>,
        /// The limit is spent with this answer: wait until then before the next poll.
        wait: Option<i64>,
    },
}

/// The API of one repository, as one poll asks it.
struct Api<'a> {
    client: &'a reqwest::blocking::Client,
    base: String,
    token: Option<String>,
    now: i64,
}

impl Api<'_> {
    /// GETs `path` (with `If-None-Match: etag`) and reads the array under `key`.
    fn list(&self, path: &str, etag: Option<&str>, key: &str) -> Result<Fetched, String> {
        let url = format!("{}{path}", self.base);
        let shown = crate::steps::gitops::repo::scrub_url(&url);
        let mut request = self
            .client
            .get(&url)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        let response = request
            .send()
            .map_err(|error| format!("GET `{shown}`: {}", error.without_url()))?;
        let wait = Limits::of(&response).not_before(self.now);
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(wait.map_or(Fetched::NotModified, Fetched::Wait));
        }
        if let Some(until) = wait
            && !status.is_success()
        {
            return Ok(Fetched::Wait(until));
        }
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 => " (the token was refused)",
                404 => " (no such repository or branch, or the token cannot see it)",
                _ => "",
            };
            return Err(format!("GET `{shown}` answered {status}{hint}"));
        }
        let etag = response
            .headers()
            .get("etag")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let mut body: Value = response.json().map_err(|error| {
            format!(
                "GET `{shown}`: the response is not JSON: {}",
                error.without_url()
            )
        })?;
        let Some(Value::Array(items)) = body.get_mut(key).map(Value::take) else {
            return Err(format!("GET `{shown}`: the response has no `{key}` list"));
        };
        Ok(Fetched::Page { etag, items, wait })
    }
}

/// Polls `source` once.
pub fn poll(
    name: &str,
    source: &GithubSource,
    client: &reqwest::blocking::Client,
    cursor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Found, String> {
    let previous: Cursor = super::read_cursor(cursor)?;
    if let Some(skipped) = rate_limit::skipped(previous.not_before, now) {
        return Ok(skipped);
    }
    let token = super::token(source.token.as_ref())?;
    let api = Api {
        client,
        base: format!(
            "{}/repos/{}",
            source.api_url.trim_end_matches('/'),
            source.repo
        ),
        token,
        now: now.timestamp(),
    };
    let record = source.first == FirstPoll::Record;
    let wants = |kind: &str| source.events.iter().any(|event| event == kind);
    let mut next = Cursor {
        not_before: None,
        ..previous.clone()
    };
    let mut events = Vec::new();
    // Each list in turn; a wait GitHub asks for stops the poll where it is.
    'lists: {
        if wants("workflow_run") {
            let path = format!("/actions/runs?per_page={PER_PAGE}");
            match api.list(&path, previous.etag.as_deref(), "workflow_runs")? {
                Fetched::NotModified => {}
                Fetched::Wait(until) => {
                    next.not_before = Some(until);
                    break 'lists;
                }
                Fetched::Page { etag, items, wait } => {
                    let known = previous.runs.as_ref();
                    let record_only = known.is_none() && record;
                    let (changed, states) =
                        changes(known, &items, record_only, run_state, run_action);
                    for (run, action) in changed {
                        events.push(run_event(name, run, action)?);
                    }
                    next.etag = etag;
                    next.runs = Some(states);
                    if wait.is_some() {
                        next.not_before = wait;
                        break 'lists;
                    }
                }
            }
        }
        if wants("check_run") {
            for branch in &source.branches {
                let path = format!(
                    "/commits/{}/check-runs?per_page={PER_PAGE}",
                    branch.replace('/', "%2F")
                );
                let etag = previous.check_etags.get(branch).map(String::as_str);
                match api.list(&path, etag, "check_runs")? {
                    Fetched::NotModified => {}
                    Fetched::Wait(until) => {
                        next.not_before = Some(until);
                        break 'lists;
                    }
                    Fetched::Page { etag, items, wait } => {
                        let known = previous.checks.get(branch);
                        let record_only = known.is_none() && record;
                        let (changed, states) =
                            changes(known, &items, record_only, check_state, check_action);
                        for (check, action) in changed {
                            events.push(check_event(name, &source.repo, branch, check, action)?);
                        }
                        match etag {
                            Some(etag) => next.check_etags.insert(branch.clone(), etag),
                            None => next.check_etags.remove(branch),
                        };
                        next.checks.insert(branch.clone(), states);
                        if wait.is_some() {
                            next.not_before = wait;
                            break 'lists;
                        }
                    }
                }
            }
        }
    }
    let note = rate_limit::skip(next.not_before, now);
    let cursor = (cursor.is_none() || next != previous)
        .then(|| serde_json::to_string(&next).ok())
        .flatten();
    Ok(Found {
        events,
        cursor,
        note,
    })
}

/// The id of a listed item, as text.
fn id_of(item: &Value) -> Option<String> {
    item.get("id").map(|id| match id {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    })
}

fn text<'a>(item: &'a Value, key: &str) -> &'a str {
    item.get(key).and_then(Value::as_str).unwrap_or("")
}

fn run_state(run: &Value) -> String {
    let attempt = run.get("run_attempt").and_then(Value::as_u64).unwrap_or(1);
    format!(
        "{}:{}:{attempt}",
        text(run, "status"),
        text(run, "conclusion")
    )
}

/// A workflow run is an event at every change of state.
fn run_action(run: &Value, before: Option<&String>, now: &String) -> Option<&'static str> {
    (before != Some(now)).then(|| match text(run, "status") {
        "completed" => "completed",
        "in_progress" => "in_progress",
        _ => "requested",
    })
}

fn check_state(check: &Value) -> String {
    format!("{}:{}", text(check, "status"), text(check, "conclusion"))
}

/// A check run is `created` when first seen unfinished and `completed` when it finishes (again
/// with another conclusion after a re-run); GitHub's webhook says nothing in between.
fn check_action(check: &Value, before: Option<&String>, now: &String) -> Option<&'static str> {
    if text(check, "status") == "completed" {
        (before != Some(now)).then_some("completed")
    } else {
        before.is_none().then_some("created")
    }
}

/// The items that are events since `previous` (oldest first, as they happened), with their
/// actions, and the states to remember. `record_only`: remember, emit nothing.
fn changes<'a>(
    previous: Option<&States>,
    items: &'a [Value],
    record_only: bool,
    state_of: fn(&Value) -> String,
    action_of: fn(&Value, Option<&String>, &String) -> Option<&'static str>,
) -> (Vec<(&'a Value, &'static str)>, States) {
    let mut changed = Vec::new();
    let mut states = BTreeMap::new();
    // GitHub lists the newest first.
    for item in items.iter().rev() {
        let Some(id) = id_of(item) else {
            continue;
        };
        let state = state_of(item);
        let before = previous.and_then(|previous| previous.get(&id));
        if !record_only && let Some(action) = action_of(item, before, &state) {
            changed.push((item, action));
        }
        states.insert(id, state);
    }
    (changed, states)
}

/// A run as the `workflow_run` webhook would have delivered it.
fn run_event(name: &str, run: &Value, action: &str) -> Result<Event, String> {
    let id = run.get("id").cloned().unwrap_or(Value::Null);
    let attempt = run.get("run_attempt").and_then(Value::as_u64).unwrap_or(1);
    let sender = run
        .get("triggering_actor")
        .or_else(|| run.get("actor"))
        .cloned()
        .unwrap_or(Value::Null);
    envelope(
        format!("github:{name}:workflow_run:{id}:{attempt}:{action}"),
        name,
        "workflow_run",
        json!({
            "action": action,
            "workflow_run": run,
            "repository": run.get("repository").cloned().unwrap_or(Value::Null),
            "sender": sender,
        }),
    )
}

/// A check run as the `check_run` webhook would have delivered it. The API's `check_suite` has
/// only an id; the webhook's `head_branch`, which branch filters read, is the branch polled.
fn check_event(
    name: &str,
    repo: &str,
    branch: &str,
    check: &Value,
    action: &str,
) -> Result<Event, String> {
    let mut check = check.clone();
    match check.get_mut("check_suite").and_then(Value::as_object_mut) {
        Some(suite) => {
            suite.entry("head_branch").or_insert_with(|| json!(branch));
        }
        None => check["check_suite"] = json!({"head_branch": branch}),
    }
    let id = check.get("id").cloned().unwrap_or(Value::Null);
    let conclusion = text(&check, "conclusion").to_string();
    let sender = check.pointer("/app/owner").cloned().unwrap_or(Value::Null);
    let short_name = repo.rsplit('/').next().unwrap_or(repo);
    envelope(
        format!("github:{name}:check_run:{id}:{action}:{conclusion}"),
        name,
        "check_run",
        json!({
            "action": action,
            "check_run": check,
            "repository": {"full_name": repo, "name": short_name},
            "sender": sender,
        }),
    )
}

fn envelope(id: String, name: &str, kind: &str, data: Value) -> Result<Event, String> {
    let envelope =
        json!({"id": id, "source": "github", "type": kind, "subject": name, "data": data});
    crate::event::from_value(&envelope, &InputOptions::default())
        .map_err(|error| format!("event {id}: {error}"))
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
        let (changed, first) = changes(None, &page, true, run_state, run_action);
        assert!(changed.is_empty(), "the first poll records");
        let page = vec![
            run(3, "queued", None),
            run(2, "queued", None),
            run(1, "completed", Some("failure")),
        ];
        let (changed, states) = changes(Some(&first), &page, false, run_state, run_action);
        let actions: Vec<(u64, &str)> = changed
            .iter()
            .map(|(run, action)| (run["id"].as_u64().unwrap(), *action))
            .collect();
        assert_eq!(actions, vec![(1, "completed"), (3, "requested")]);
        let (changed, _) = changes(Some(&states), &page, false, run_state, run_action);
        assert!(changed.is_empty(), "nothing new, nothing emitted");
    }

    #[test]
    fn a_run_becomes_a_webhook_shaped_event() {
        let event = run_event("ci", &run(7, "completed", Some("failure")), "completed").unwrap();
        assert_eq!(event.id(), "github:ci:workflow_run:7:1:completed");
        assert_eq!(event.action.as_deref(), Some("completed"));
        assert_eq!(event.repo.as_deref(), Some("acme/api"));
        assert_eq!(event.branch.as_deref(), Some("main"));
        assert_eq!(event.sha.as_deref(), Some("abc"));
        assert_eq!(event.actor.as_deref(), Some("octocat"));
    }

    #[test]
    fn check_runs_are_created_then_completed_like_the_webhook() {
        let check = |id: u64, status: &str, conclusion: Option<&str>| {
            json!({"id": id, "status": status, "conclusion": conclusion, "head_sha": "abc",
                   "check_suite": {"id": 9}, "app": {"owner": {"login": "github"}}})
        };
        let actions = |previous: Option<&States>, page: &[Value]| {
            let (changed, states) = changes(previous, page, false, check_state, check_action);
            let actions: Vec<(u64, &str)> = changed
                .iter()
                .map(|(item, action)| (item["id"].as_u64().unwrap(), *action))
                .collect();
            (actions, states)
        };
        let (found, states) = actions(Some(&States::new()), &[check(1, "queued", None)]);
        assert_eq!(found, vec![(1, "created")]);
        // queued → in_progress: the webhook says nothing.
        let (found, states) = actions(Some(&states), &[check(1, "in_progress", None)]);
        assert!(found.is_empty());
        let (found, states) = actions(Some(&states), &[check(1, "completed", Some("failure"))]);
        assert_eq!(found, vec![(1, "completed")]);
        let (found, _) = actions(Some(&states), &[check(1, "completed", Some("failure"))]);
        assert!(found.is_empty());
        let event = check_event(
            "ci",
            "acme/api",
            "main",
            &check(1, "completed", Some("failure")),
            "completed",
        )
        .unwrap();
        assert_eq!(event.id(), "github:ci:check_run:1:completed:failure");
        assert_eq!(event.kind, "check_run");
        assert_eq!(event.repo.as_deref(), Some("acme/api"));
        assert_eq!(event.branch.as_deref(), Some("main"));
        assert_eq!(event.sha.as_deref(), Some("abc"));
        assert_eq!(event.actor.as_deref(), Some("github"));
    }
}
