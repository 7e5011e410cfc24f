//! Gates: workflows that reason over time. A gate (`throttle`, `debounce`, `window`,
//! `correlate`) sits after a workflow's `on` and `if` and decides, per key rendered from each
//! event, whether the event runs the workflow now, is held for later (a timer fires it), or is
//! dropped. The decisions are pure functions of the gate, the key's stored state and the clock
//! ([`decide`], [`fire`]); where the state lives is [`store`]'s business.

mod compile;
pub mod kv;
pub mod list;
pub mod store;
pub mod timers;

pub use compile::compile_gate;
pub use store::{FireOutcome, GateStore};

use crate::duration::format_duration;
use crate::glob::Glob;
use crate::template::TemplateTree;
use crate::workflow::Condition;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The event type of a timer's fire: the run a held gate owes, queued under a deterministic id.
pub const FIRE_EVENT: &str = "vane.gate";

/// Live keys per workflow when `max-keys` is not given.
pub const DEFAULT_MAX_KEYS: u64 = 10_000;

/// At most this many events are kept in a key's state (the count goes on).
pub const MAX_KEPT_EVENTS: usize = 1_000;

/// One workflow's gate, compiled.
#[derive(Debug)]
pub struct Gate {
    pub kind: GateKind,
    pub key: TemplateTree,
    pub max_keys: u64,
}

#[derive(Debug)]
pub enum GateKind {
    Throttle {
        once_within: Option<Duration>,
        limit: Option<(u64, Duration)>,
        unless_changed: Option<TemplateTree>,
    },
    Window {
        within: Duration,
        count: u64,
        distinct: Option<TemplateTree>,
        flush_end: bool,
    },
    Debounce {
        quiet: Duration,
        max_wait: Option<Duration>,
        keep_first: bool,
    },
    Correlate {
        within: Duration,
        members: Vec<Member>,
        run_on_timeout: bool,
    },
}

/// One member of `correlate.all-of`.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub on: String,
    pub on_glob: Option<Glob>,
    pub condition: Option<Condition>,
}

impl Member {
    pub fn listens_to(&self, kind: &str) -> bool {
        match &self.on_glob {
            Some(glob) => glob.is_match(kind),
            None => self.on == kind,
        }
    }
}

impl Gate {
    /// The gate's key in YAML (`throttle`), as reasons and `vane gates` name it.
    pub fn name(&self) -> &'static str {
        match self.kind {
            GateKind::Throttle { .. } => "throttle",
            GateKind::Window { .. } => "window",
            GateKind::Debounce { .. } => "debounce",
            GateKind::Correlate { .. } => "correlate",
        }
    }
}

/// A key's stored state: one row of the `gates` table. Every kind uses the fields it needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateState {
    /// When the key's current burst, window or correlation began (Unix ms).
    #[serde(default)]
    pub first_ms: i64,
    /// When its last event arrived.
    #[serde(default)]
    pub last_ms: i64,
    /// Events counted (more than `events` holds once past [`MAX_KEPT_EVENTS`]).
    #[serde(default)]
    pub count: u64,
    /// The events kept, as envelopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Json>,
    /// A window's distinct values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distinct: Vec<String>,
    /// A correlation's members seen: name → envelope.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<String, Json>,
    /// A throttle's runs (Unix ms), newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<i64>,
    /// The run the throttle last let through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The event that run was for: the same event again (a redelivery) runs again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_event: Option<String>,
    /// `unless-changed`'s value at the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<String>,
    /// Events dropped since the key's last run.
    #[serde(default)]
    pub suppressed: u64,
}

/// A key's row: its state and the next deadline its timer fires at.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRow {
    pub state: GateState,
    /// Unix ms; `None`: no timer.
    pub due_ms: Option<i64>,
}

/// What a gate did with one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Run now; `context` is the run's `gate`.
    Run { context: Json },
    /// Kept for later: a timer (or more events) will decide.
    Hold,
    /// Dropped.
    Suppress,
    /// A new key over `max-keys`: refused, nothing kept.
    Refused,
}

/// A decision: the verdict, why, and the key's new row (`None`: the row is deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: String,
    pub row: Option<GateRow>,
    /// The key's suppressed count after this event.
    pub suppressed: u64,
}

/// A gate's decision for one event and one workflow, machine-readable (`--json`'s `gate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateNote {
    pub gate: &'static str,
    pub key: String,
    /// `run`, `hold`, `suppress`, `refuse`, `fired`.
    pub decision: &'static str,
    pub reason: String,
    /// The key's next deadline (RFC 3339), where it has one.
    pub due: Option<String>,
    pub suppressed: u64,
}

impl Verdict {
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Run { .. } => "run",
            Verdict::Hold => "hold",
            Verdict::Suppress => "suppress",
            Verdict::Refused => "refuse",
        }
    }
}

/// What a decision needs to know about the event.
pub struct Arrival<'a> {
    pub key: &'a str,
    pub event_id: &'a str,
    /// Whether the id was given (a delivery id) rather than derived from the content: only then
    /// is the same id again a redelivery, not a repeat.
    pub explicit_id: bool,
    /// The key already keeps an event of this (given) id: a redelivery, not counted again.
    pub seen: bool,
    /// The envelope.
    pub envelope: &'a Json,
    /// `unless-changed` / `distinct`, rendered.
    pub value: Option<String>,
    /// The `correlate` members this event satisfies.
    pub members: Vec<String>,
    pub now_ms: i64,
    /// The run's id, should it run now.
    pub run_id: &'a str,
    /// How many live keys the workflow has (checked only for a new key).
    pub live_keys: u64,
}

/// RFC 3339 of Unix ms, to the second.
pub fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%H:%M:%SZ")
        .to_string()
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn keep_event(state: &mut GateState, arrival: &Arrival) {
    state.count += 1;
    state.last_ms = arrival.now_ms;
    if state.events.len() < MAX_KEPT_EVENTS {
        state.events.push(arrival.envelope.clone());
    }
}

/// Whether the event is already kept by the key (a redelivery of the same delivery id).
fn seen(arrival: &Arrival) -> bool {
    arrival.explicit_id && arrival.seen
}

/// Whether a key's kept events include one of this id (for [`Arrival::seen`], where the events
/// are in memory).
pub fn keeps(state: &GateState, event_id: &str) -> bool {
    state
        .events
        .iter()
        .any(|event| event["id"].as_str() == Some(event_id))
}

/// Decides what `gate` does with one event, given the key's row (`None`: a new key).
pub fn decide(gate: &Gate, row: Option<&GateRow>, arrival: &Arrival) -> Decision {
    let key = arrival.key;
    let now = arrival.now_ms;
    if row.is_none() && arrival.live_keys >= gate.max_keys {
        return Decision {
            verdict: Verdict::Refused,
            reason: format!(
                "{}: key `{key}` refused: the workflow has {} live keys (max-keys {})",
                gate.name(),
                arrival.live_keys,
                gate.max_keys
            ),
            row: None,
            suppressed: 0,
        };
    }
    match &gate.kind {
        GateKind::Throttle {
            once_within,
            limit,
            unless_changed,
        } => decide_throttle(row, arrival, *once_within, *limit, unless_changed.is_some()),
        GateKind::Window {
            within,
            count,
            distinct,
            flush_end,
        } => {
            let mut state = row.map(|row| row.state.clone()).unwrap_or_default();
            let expired = row.is_some() && now >= state.first_ms + ms(*within);
            // A window whose end passed without its timer firing (no daemon was running): with
            // `flush: end` it runs now, and this event opens the next window.
            let overdue = if expired && *flush_end && window_reached(&state, *count) {
                Some(window_context(key, &state, *within))
            } else {
                None
            };
            if row.is_none() || expired {
                state = GateState {
                    first_ms: now,
                    ..GateState::default()
                };
            }
            if !(row.is_some() && !expired && seen(arrival)) {
                keep_event(&mut state, arrival);
                if let Some(value) = &arrival.value
                    && !state.distinct.contains(value)
                {
                    state.distinct.push(value.clone());
                }
            }
            let _ = distinct;
            let reached = window_reached(&state, *count);
            let ends = state.first_ms + ms(*within);
            let have = window_have(&state, *count);
            if let Some(context) = overdue {
                return Decision {
                    verdict: Verdict::Run { context },
                    reason: format!(
                        "window: key `{key}`: the last window ended unflushed; it runs now, and this event opens the next (ends {})",
                        clock(ends)
                    ),
                    row: Some(GateRow {
                        state,
                        due_ms: Some(ends),
                    }),
                    suppressed: 0,
                };
            }
            if reached && !*flush_end {
                return Decision {
                    verdict: Verdict::Run {
                        context: window_context(key, &state, *within),
                    },
                    reason: format!(
                        "window: key `{key}` reached {have} within {} (since {}): runs with {} event(s)",
                        format_duration(*within),
                        clock(state.first_ms),
                        state.count
                    ),
                    row: None,
                    suppressed: 0,
                };
            }
            let reason = if *flush_end {
                format!(
                    "window: key `{key}` has {have} so far; the window ends at {} (flush: end){}",
                    clock(ends),
                    if reached {
                        ", and runs then"
                    } else {
                        ", and runs then if the count is reached"
                    }
                )
            } else {
                format!(
                    "window: key `{key}` has {have} within {} (since {}); the window ends at {}",
                    format_duration(*within),
                    clock(state.first_ms),
                    clock(ends)
                )
            };
            Decision {
                verdict: Verdict::Hold,
                reason,
                row: Some(GateRow {
                    state,
                    due_ms: Some(ends),
                }),
                suppressed: 0,
            }
        }
        GateKind::Debounce {
            quiet,
            max_wait,
            keep_first,
        } => {
            let mut state = row.map(|row| row.state.clone()).unwrap_or_default();
            let overdue = row.and_then(|row| row.due_ms).is_some_and(|due| now >= due);
            let owed = overdue.then(|| debounce_context(key, &state, *keep_first));
            if row.is_none() || overdue {
                state = GateState {
                    first_ms: now,
                    ..GateState::default()
                };
            }
            if !(row.is_some() && !overdue && seen(arrival)) {
                keep_event(&mut state, arrival);
            }
            let mut due = now + ms(*quiet);
            if let Some(max_wait) = max_wait {
                due = due.min(state.first_ms + ms(*max_wait));
            }
            let limit = match max_wait {
                Some(max_wait) => format!(", max-wait {}", format_duration(*max_wait)),
                None => String::new(),
            };
            let row = Some(GateRow {
                state,
                due_ms: Some(due),
            });
            if let Some((context, _)) = owed {
                return Decision {
                    verdict: Verdict::Run { context },
                    reason: format!(
                        "debounce: key `{key}`: the last burst went quiet without its timer firing; it runs now, and this event starts the next (runs at {} unless another arrives)",
                        clock(due)
                    ),
                    row,
                    suppressed: 0,
                };
            }
            let count = row.as_ref().map_or(0, |row| row.state.count);
            Decision {
                verdict: Verdict::Hold,
                reason: format!(
                    "debounce: key `{key}` has {count} event(s) since {}; runs at {} unless another arrives (quiet {}{limit})",
                    clock(row.as_ref().map_or(now, |row| row.state.first_ms)),
                    clock(due),
                    format_duration(*quiet)
                ),
                row,
                suppressed: 0,
            }
        }
        GateKind::Correlate {
            within,
            members,
            run_on_timeout,
        } => {
            let names: Vec<&str> = members.iter().map(|member| member.name.as_str()).collect();
            if arrival.members.is_empty() {
                return Decision {
                    verdict: Verdict::Suppress,
                    reason: format!(
                        "correlate: the event is none of [{}] (each member's `on` and `if`)",
                        names.join(", ")
                    ),
                    row: row.cloned(),
                    suppressed: row.map_or(0, |row| row.state.suppressed),
                };
            }
            let mut state = row.map(|row| row.state.clone()).unwrap_or_default();
            let expired = row.is_some() && now >= state.first_ms + ms(*within);
            let owed =
                (expired && *run_on_timeout).then(|| correlation_context(key, &state, members));
            if row.is_none() || expired {
                state = GateState {
                    first_ms: now,
                    ..GateState::default()
                };
            }
            for name in &arrival.members {
                state.members.insert(name.clone(), arrival.envelope.clone());
            }
            state.last_ms = now;
            state.count += 1;
            let ends = state.first_ms + ms(*within);
            let missing: Vec<&str> = names
                .iter()
                .copied()
                .filter(|name| !state.members.contains_key(*name))
                .collect();
            let have: Vec<&str> = names
                .iter()
                .copied()
                .filter(|name| state.members.contains_key(*name))
                .collect();
            if let Some(context) = owed {
                return Decision {
                    verdict: Verdict::Run { context },
                    reason: format!(
                        "correlate: key `{key}`: the last correlation timed out unfired (on-timeout: run); it runs now, and this event opens the next"
                    ),
                    row: Some(GateRow {
                        state,
                        due_ms: Some(ends),
                    }),
                    suppressed: 0,
                };
            }
            if missing.is_empty() {
                return Decision {
                    verdict: Verdict::Run {
                        context: correlation_context(key, &state, members),
                    },
                    reason: format!(
                        "correlate: key `{key}` has all of [{}] within {} (since {})",
                        names.join(", "),
                        format_duration(*within),
                        clock(state.first_ms)
                    ),
                    row: None,
                    suppressed: 0,
                };
            }
            Decision {
                verdict: Verdict::Hold,
                reason: format!(
                    "correlate: key `{key}` has [{}], waiting for [{}] until {} (on-timeout: {})",
                    have.join(", "),
                    missing.join(", "),
                    clock(ends),
                    if *run_on_timeout { "run" } else { "drop" }
                ),
                row: Some(GateRow {
                    state,
                    due_ms: Some(ends),
                }),
                suppressed: 0,
            }
        }
    }
}

fn decide_throttle(
    row: Option<&GateRow>,
    arrival: &Arrival,
    once_within: Option<Duration>,
    limit: Option<(u64, Duration)>,
    unless_changed: bool,
) -> Decision {
    let key = arrival.key;
    let now = arrival.now_ms;
    let mut state = row.map(|row| row.state.clone()).unwrap_or_default();
    let ran = |state: &mut GateState, reason: String, window: Duration| {
        let suppressed = 0;
        state.suppressed = 0;
        state.run_id = Some(arrival.run_id.to_string());
        state.ran_event = Some(arrival.event_id.to_string());
        state.changed = arrival.value.clone();
        state.last_ms = now;
        state.runs.push(now);
        let due = now + ms(window);
        Decision {
            verdict: Verdict::Run {
                context: json!({
                    "kind": "throttle",
                    "key": key,
                    "throttle": {
                        "suppressed": row.map_or(0, |row| row.state.suppressed),
                        "previous_run": row.and_then(|row| row.state.run_id.clone()),
                    },
                }),
            },
            reason,
            row: Some(GateRow {
                state: state.clone(),
                due_ms: Some(due),
            }),
            suppressed,
        }
    };
    let changed = unless_changed
        && row.is_some()
        && state.changed.is_some()
        && arrival.value != state.changed;
    // A redelivery of the event that ran (its process died before recording the run) runs again.
    let redelivered = arrival.explicit_id && state.ran_event.as_deref() == Some(arrival.event_id);
    if let Some(within) = once_within {
        let last = state.runs.last().copied();
        let until = last.map(|last| last + ms(within));
        let reason = match (row, until) {
            (None, _) | (_, None) => format!("throttle: key `{key}` runs (its first event)"),
            _ if redelivered => {
                format!("throttle: key `{key}` runs (a redelivery of the event that ran)")
            }
            _ if changed => format!(
                "throttle: key `{key}` runs: unless-changed went from `{}` to `{}`",
                state.changed.clone().unwrap_or_default(),
                arrival.value.clone().unwrap_or_default()
            ),
            (_, Some(until)) if now >= until => format!(
                "throttle: key `{key}` runs: once-within {} has passed since {}",
                format_duration(within),
                clock(until - ms(within))
            ),
            (_, Some(until)) => {
                state.suppressed += 1;
                let suppressed = state.suppressed;
                return Decision {
                    verdict: Verdict::Suppress,
                    reason: format!(
                        "throttle: key `{key}` ran at {} (run {}…); suppressed until {} (once-within {}; {} suppressed so far)",
                        clock(until - ms(within)),
                        short(state.run_id.as_deref().unwrap_or("?")),
                        clock(until),
                        format_duration(within),
                        suppressed
                    ),
                    row: Some(GateRow {
                        state,
                        due_ms: Some(until),
                    }),
                    suppressed,
                };
            }
        };
        state.runs.clear();
        return ran(&mut state, reason, within);
    }
    let (limit, per) = limit.unwrap_or((1, Duration::from_secs(60)));
    state.runs.retain(|at| *at > now - ms(per));
    if (state.runs.len() as u64) < limit || changed || redelivered {
        let reason = if changed {
            format!(
                "throttle: key `{key}` runs: unless-changed went from `{}` to `{}`",
                state.changed.clone().unwrap_or_default(),
                arrival.value.clone().unwrap_or_default()
            )
        } else {
            format!(
                "throttle: key `{key}` runs ({} of {limit} per {})",
                state.runs.len() + 1,
                format_duration(per)
            )
        };
        return ran(&mut state, reason, per);
    }
    state.suppressed += 1;
    let suppressed = state.suppressed;
    let next = state.runs.first().copied().unwrap_or(now) + ms(per);
    let due = state.runs.last().copied().unwrap_or(now) + ms(per);
    Decision {
        verdict: Verdict::Suppress,
        reason: format!(
            "throttle: key `{key}` ran {} time(s) in the last {} (limit {limit}); suppressed until {} ({} suppressed so far)",
            state.runs.len(),
            format_duration(per),
            clock(next),
            suppressed
        ),
        row: Some(GateRow {
            state,
            due_ms: Some(due),
        }),
        suppressed,
    }
}

fn window_reached(state: &GateState, count: u64) -> bool {
    window_count(state) >= count
}

fn window_count(state: &GateState) -> u64 {
    if state.distinct.is_empty() {
        state.count
    } else {
        state.distinct.len() as u64
    }
}

fn window_have(state: &GateState, count: u64) -> String {
    if state.distinct.is_empty() {
        format!("{} of {count} event(s)", state.count)
    } else {
        format!("{} of {count} distinct value(s)", state.distinct.len())
    }
}

fn window_context(key: &str, state: &GateState, within: Duration) -> Json {
    json!({
        "kind": "window",
        "key": key,
        "window": {
            "events": state.events,
            "count": state.count,
            "distinct": state.distinct,
            "started": time_text(state.first_ms),
            "ends": time_text(state.first_ms + ms(within)),
        },
    })
}

/// The run's `gate` and the event it sees (`keep: first` or `last`).
fn debounce_context(key: &str, state: &GateState, keep_first: bool) -> (Json, Json) {
    let kept = if keep_first {
        state.events.first()
    } else {
        state.events.last()
    }
    .cloned()
    .unwrap_or(Json::Null);
    (
        json!({
            "kind": "debounce",
            "key": key,
            "debounce": {
                "events": state.events,
                "count": state.count,
                "first": time_text(state.first_ms),
                "last": time_text(state.last_ms),
            },
        }),
        kept,
    )
}

fn correlation_context(key: &str, state: &GateState, members: &[Member]) -> Json {
    let missing: Vec<&str> = members
        .iter()
        .map(|member| member.name.as_str())
        .filter(|name| !state.members.contains_key(*name))
        .collect();
    json!({
        "kind": "correlate",
        "key": key,
        "correlation": {
            "events": state.members,
            "missing": missing,
            "started": time_text(state.first_ms),
        },
    })
}

/// What a due timer does with a key's row: the run it owes (its `gate` context and the event it
/// sees), if any. The row is deleted either way.
pub fn fire(gate: &Gate, key: &str, row: &GateRow) -> Option<(Json, Json)> {
    let state = &row.state;
    match &gate.kind {
        GateKind::Throttle { .. } => None,
        GateKind::Window {
            within,
            count,
            flush_end,
            ..
        } => (*flush_end && window_reached(state, *count)).then(|| {
            (
                window_context(key, state, *within),
                state.events.last().cloned().unwrap_or(Json::Null),
            )
        }),
        GateKind::Debounce { keep_first, .. } => Some(debounce_context(key, state, *keep_first)),
        GateKind::Correlate {
            run_on_timeout,
            members,
            ..
        } => run_on_timeout.then(|| {
            (
                correlation_context(key, state, members),
                state.events.last().cloned().unwrap_or_else(|| {
                    state.members.values().last().cloned().unwrap_or(Json::Null)
                }),
            )
        }),
    }
}

/// The deterministic id of the fire of `workflow`'s `key` due at `due_ms`: every process that
/// fires it fires the same id, so the queue keeps one.
pub fn fire_id(workflow: &str, key: &str, due_ms: i64) -> String {
    format!("gate:{workflow}:{key}:{due_ms}")
}

/// The queued event of a fire: the kept event, under the fire id, carrying the gate context.
pub fn fire_envelope(workflow: &str, id: &str, context: &Json, kept: &Json) -> Json {
    json!({
        "id": id,
        "source": "vane.gate",
        "type": FIRE_EVENT,
        "subject": workflow,
        "data": { "workflow": workflow, "gate": context, "event": kept },
    })
}

/// A fire event unwrapped: the workflow it is for, the event its run sees (under the fire's id),
/// and the run's `gate`.
pub fn unwrap_fire(event: &crate::event::Event) -> Option<(String, crate::event::Event, Json)> {
    if event.kind != FIRE_EVENT {
        return None;
    }
    let data = event.data.value();
    let workflow = data["workflow"].as_str()?.to_string();
    let context = data["gate"].clone();
    let mut inner = match &data["event"] {
        Json::Object(_) => {
            crate::event::from_value(&data["event"], &crate::event::InputOptions::default()).ok()?
        }
        _ => crate::event::Event::new("vane.gate", FIRE_EVENT, json!({})),
    };
    inner.set_id(event.id().to_string());
    Some((workflow, inner, context))
}

#[cfg(test)]
mod tests;
