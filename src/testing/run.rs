//! Running one case: its event goes through the engine in a dry run (nothing is executed), the
//! events its `emit` steps produce are followed as `plan` follows them, and then every
//! expectation is checked against what was matched and rendered.

use super::case::{Check, FieldCheck, TestCase};
use crate::cancel::CancelToken;
use crate::engine::{
    Engine, EngineOptions, EventOutcome, Overrides, RunRecord, RunStatus, StepRecord, StepStatus,
};
use crate::event::Event;
use crate::plan::{Selection, explain};
use crate::secrets::Masker;
use crate::template::EventObject;
use crate::workflow::WorkflowSet;
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::VecDeque;
use std::path::Path;

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The expectation as the test file writes it: `match: deploy`, `deploy.apply.run`.
    pub expectation: String,
    /// What happened instead: why the workflow did (not) match, or what the field held.
    pub message: String,
    /// For a rendered field that differs from `equals`: a unified diff, expected → actual.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The workflow itself is broken for this event (an `if` or a concurrency group that cannot
    /// be evaluated): an error in the workflows, as `vane plan` reports it, not a failed case.
    #[serde(skip)]
    pub broken: bool,
}

impl Failure {
    fn new(expectation: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            expectation: expectation.into(),
            message: message.into(),
            diff: None,
            broken: false,
        }
    }
}

/// Runs a case and returns the expectations that did not hold (none: the case passed).
pub fn run_case(case: &TestCase, set: &WorkflowSet, workspace: &Path) -> Vec<Failure> {
    let gates = crate::gates::GateStore::in_memory();
    let engine = Engine {
        set,
        options: EngineOptions {
            dry_run: true,
            workspace: workspace.to_path_buf(),
            state_folder: None,
            max_emitted: crate::steps::emit::DEFAULT_MAX_EMITTED,
        },
        // Nothing is printed from the records that a test did not write itself: the secrets in
        // them are the case's own made-up values.
        masker: Masker::new(),
        cancel: CancelToken::new(),
        recommendations: crate::state::Recommendations::in_memory(),
        gates: gates.clone(),
        observer: &crate::engine::Unobserved,
    };
    let mut outcomes: Vec<EventOutcome> = Vec::new();
    if case.timeline.is_empty() {
        process(&engine, case.event.clone(), &case.overrides, &mut outcomes);
        return expectations(
            set,
            &outcomes,
            0,
            Expected {
                matched: &case.expect_match,
                not_matched: &case.expect_no_match,
                checks: &case.checks,
                runs: case.expect_runs,
            },
            "",
        );
    }
    // A timed sequence on a simulated clock: before each event, the timers due by its time fire
    // (each at its own deadline); after the last, every timer left fires.
    let start = crate::sources::now().timestamp_millis();
    let mut failures = Vec::new();
    for (number, timed) in case.timeline.iter().enumerate() {
        let from = outcomes.len();
        fire_until(
            &engine,
            &gates,
            start + timed.at_ms,
            &case.overrides,
            &mut outcomes,
        );
        gates.set_clock(start + timed.at_ms);
        let own = outcomes.len() - from;
        process(&engine, timed.event.clone(), &case.overrides, &mut outcomes);
        failures.extend(expectations(
            set,
            &outcomes[from..],
            own,
            Expected {
                matched: &timed.expect_match,
                not_matched: &timed.expect_no_match,
                checks: &timed.checks,
                runs: timed.expect_runs,
            },
            &format!("events[{number}] (at {}): ", format_at(timed.at_ms)),
        ));
    }
    fire_until(&engine, &gates, i64::MAX, &case.overrides, &mut outcomes);
    failures.extend(expectations(
        set,
        &outcomes,
        0,
        Expected {
            matched: &case.expect_match,
            not_matched: &case.expect_no_match,
            checks: &case.checks,
            runs: case.expect_runs,
        },
        "",
    ));
    // A broken plan of one event is said once, not again for the whole case.
    let mut seen = std::collections::HashSet::new();
    failures.retain(|failure| seen.insert((failure.expectation.clone(), failure.message.clone())));
    failures
}

/// `10s` for an offset in ms.
fn format_at(ms: i64) -> String {
    crate::duration::format_duration(std::time::Duration::from_millis(ms.max(0) as u64))
}

/// The event and the events its steps emit, as `plan` follows them.
fn process(engine: &Engine, event: Event, overrides: &Overrides, outcomes: &mut Vec<EventOutcome>) {
    let mut queue = VecDeque::from([(event, 0usize)]);
    while let Some((event, depth)) = queue.pop_front() {
        let mut outcome = engine.process_with(event, depth, overrides);
        queue.extend(
            std::mem::take(&mut outcome.emitted)
                .into_iter()
                .map(|emitted| (emitted, depth + 1)),
        );
        outcomes.push(outcome);
    }
}

/// Fires, in deadline order, every gate timer due by `until`, the clock set to each deadline.
fn fire_until(
    engine: &Engine,
    gates: &crate::gates::GateStore,
    until: i64,
    overrides: &Overrides,
    outcomes: &mut Vec<EventOutcome>,
) {
    while let Some(due) = gates.next_due().filter(|due| *due <= until) {
        gates.set_clock(due);
        for event in gates.fire_due_in_memory(engine.set) {
            process(engine, event, overrides, outcomes);
        }
    }
}

/// What one event (or the whole case) must do.
struct Expected<'a> {
    matched: &'a [usize],
    not_matched: &'a [usize],
    checks: &'a [FieldCheck],
    runs: Option<u64>,
}

/// The expectations that did not hold over `outcomes`; `own` is the outcome of the event the
/// expectations belong to (reasons are given for it), `prefix` names it in messages.
fn expectations(
    set: &WorkflowSet,
    outcomes: &[EventOutcome],
    own: usize,
    expected: Expected,
    prefix: &str,
) -> Vec<Failure> {
    let verdicts = Verdicts { set, outcomes, own };
    let mut failures = Vec::new();
    if let Some(wanted) = expected.runs {
        let mut names: Vec<&str> = outcomes
            .iter()
            .flat_map(|outcome| outcome.runs.iter())
            .map(|(index, _)| set.workflows[*index].name.as_str())
            .collect();
        let got = names.len() as u64;
        if got != wanted {
            names.dedup();
            failures.push(Failure::new(
                format!("{prefix}runs: {wanted}"),
                format!(
                    "{got} run(s){}",
                    if names.is_empty() {
                        format!(": {}", verdicts.gate_reasons())
                    } else {
                        format!(" ({})", names.join(", "))
                    }
                ),
            ));
        }
    }
    for &index in expected.matched {
        if verdicts.first_run(index).is_none() {
            let name = &set.workflows[index].name;
            failures.push(Failure::new(
                format!("{prefix}match: {name}"),
                format!("`{name}` did not match: {}", verdicts.reason(index)),
            ));
        }
    }
    for &index in expected.not_matched {
        if let Some((outcome, _)) = verdicts.first_run(index) {
            let name = &set.workflows[index].name;
            let via = if outcome.depth == 0 {
                String::new()
            } else {
                " (emitted by a step)".to_string()
            };
            failures.push(Failure::new(
                format!("{prefix}no-match: {name}"),
                format!(
                    "`{name}` matched the event `{}`{via}: its triggers and `if` all passed",
                    outcome.event.headline()
                ),
            ));
        }
    }
    failures.extend(verdicts.broken_plans());
    for check in expected.checks {
        if let Some(mut failure) = verdicts.check_field(check) {
            failure.expectation = format!("{prefix}{}", failure.expectation);
            failures.push(failure);
        }
    }
    failures
}

/// What the engine decided for the case's event and the events it emitted.
struct Verdicts<'a> {
    set: &'a WorkflowSet,
    outcomes: &'a [EventOutcome],
    /// The outcome of the event itself (the others: timers that fired, events emitted).
    own: usize,
}

impl Verdicts<'_> {
    /// The first run of the workflow, and the event it ran for.
    fn first_run(&self, index: usize) -> Option<(&EventOutcome, &RunRecord)> {
        self.outcomes.iter().find_map(|outcome| {
            outcome
                .runs
                .iter()
                .find(|(run_index, _)| *run_index == index)
                .map(|(_, run)| (outcome, run))
        })
    }

    /// Why the workflow did not match the case's own event (the first outcome).
    fn reason(&self, index: usize) -> String {
        let outcome = &self.outcomes[self.own.min(self.outcomes.len() - 1)];
        let selection = outcome
            .selections
            .iter()
            .find(|(candidate, _)| *candidate == index)
            .map(|(_, selection)| selection.clone())
            .unwrap_or_else(|| {
                let event_value = EventObject::value(outcome.event.clone());
                explain(&self.set.workflows[index], &outcome.event, &event_value)
            });
        let emitted = self.outcomes.len() - 1;
        let also = match emitted {
            0 => String::new(),
            1 => " (nor did it match the 1 event emitted by steps)".to_string(),
            count => format!(" (nor did it match the {count} events emitted by steps)"),
        };
        match selection {
            Selection::NotMatched(reason) => format!("{reason}{also}"),
            Selection::Broken(error) => format!("it is broken for this event: {error}"),
            Selection::Matched => format!("its triggers and `if` passed, but it did not run{also}"),
        }
    }

    /// What the gates said about the event itself, for a count of runs that is off.
    fn gate_reasons(&self) -> String {
        let outcome = &self.outcomes[self.own.min(self.outcomes.len() - 1)];
        let reasons: Vec<String> = outcome
            .gates
            .iter()
            .map(|(index, note)| format!("{}: {}", self.set.workflows[*index].name, note.reason))
            .collect();
        if reasons.is_empty() {
            "no workflow ran".to_string()
        } else {
            reasons.join("; ")
        }
    }

    /// A workflow whose `if` could not be evaluated, or whose plan failed (a template error, a
    /// bad rendered action), is a failure whatever the case expects: `vane plan` would fail too.
    fn broken_plans(&self) -> Vec<Failure> {
        let mut failures = Vec::new();
        for outcome in self.outcomes {
            for (index, selection) in &outcome.selections {
                if let Selection::Broken(error) = selection {
                    let mut failure = Failure::new(
                        format!("plan: {}", self.set.workflows[*index].name),
                        format!("it is broken for this event: {error}"),
                    );
                    failure.broken = true;
                    failures.push(failure);
                }
            }
            for (index, run) in &outcome.runs {
                if run.status != RunStatus::Failure {
                    continue;
                }
                let error = run
                    .error
                    .clone()
                    .or_else(|| {
                        run.steps.iter().find_map(|step| {
                            step.error
                                .as_ref()
                                .map(|error| format!("step `{}`: {error}", step.id))
                        })
                    })
                    .unwrap_or_else(|| "a step failed".to_string());
                failures.push(Failure::new(
                    format!("plan: {}", self.set.workflows[*index].name),
                    format!("the plan failed: {error}"),
                ));
            }
        }
        failures
    }

    fn check_field(&self, check: &FieldCheck) -> Option<Failure> {
        let expectation = format!("{} {}", check.key, check.check.kind());
        let fail = |message: String| Some(Failure::new(expectation.clone(), message));
        let name = &self.set.workflows[check.workflow].name;
        let Some((_, run)) = self.first_run(check.workflow) else {
            return fail(format!(
                "`{name}` did not match: {}",
                self.reason(check.workflow)
            ));
        };
        let Some(step) = find_step(run, check) else {
            return fail(format!("step `{}` did not run", check.step));
        };
        match step.status {
            StepStatus::Skipped => {
                return fail(format!(
                    "step `{}` was skipped (its `if` is false, or a step before it failed)",
                    check.step
                ));
            }
            _ if step.rendered.is_null() => {
                return fail(format!(
                    "step `{}` was not rendered: {}",
                    check.step,
                    step.error.as_deref().unwrap_or("unknown error")
                ));
            }
            _ => {}
        }
        let actual = match lookup(&step.rendered, &check.field) {
            Ok(actual) => actual,
            Err(message) => return fail(message),
        };
        let actual_text = text_of(actual);
        match &check.check {
            Check::Equals(expected) => {
                if equals(actual, expected) {
                    return None;
                }
                let expected_text = text_of(expected);
                Some(Failure {
                    expectation,
                    message: format!("the rendered `{}` differs", check.field.join(".")),
                    diff: Some(diff(
                        &pretty(expected, &expected_text),
                        &pretty(actual, &actual_text),
                    )),
                    broken: false,
                })
            }
            Check::Contains(part) => {
                if actual_text.contains(part.as_str()) {
                    return None;
                }
                fail(format!(
                    "the rendered `{}` does not contain {}; it is {}",
                    check.field.join("."),
                    quote(part),
                    quote(&actual_text)
                ))
            }
            Check::Matches(regex) => {
                if regex.is_match(&actual_text) {
                    return None;
                }
                fail(format!(
                    "the rendered `{}` does not match /{}/; it is {}",
                    check.field.join("."),
                    regex.as_str(),
                    quote(&actual_text)
                ))
            }
        }
    }
}

fn find_step<'a>(run: &'a RunRecord, check: &FieldCheck) -> Option<&'a StepRecord> {
    run.steps.iter().find(|step| {
        step.id == check.step
            && match &check.job {
                // The `steps:` shorthand is one job named `main`, unnamed in the record.
                Some(job) => step.job.as_deref().unwrap_or("main") == job,
                None => true,
            }
    })
}

/// The value at `field` inside a rendered action; numbers index lists.
fn lookup<'a>(rendered: &'a Json, field: &[String]) -> Result<&'a Json, String> {
    let mut current = rendered;
    for (depth, part) in field.iter().enumerate() {
        let next = match current {
            Json::Object(map) => map.get(part),
            Json::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        current = match next {
            Some(next) => next,
            None => {
                let place = if depth == 0 {
                    "the rendered step".to_string()
                } else {
                    format!("the rendered `{}`", field[..depth].join("."))
                };
                let has = match current {
                    Json::Object(map) if !map.is_empty() => format!(
                        "; it has {}",
                        map.keys()
                            .map(|key| format!("`{key}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Json::Array(items) => format!("; it is a list of {}", items.len()),
                    _ => String::new(),
                };
                return Err(format!("{place} has no `{part}`{has}"));
            }
        };
    }
    Ok(current)
}

/// Equal as JSON, or a string equal to a number's or boolean's text (YAML `equals: 3` against a
/// rendered `"3"`, and the other way around).
fn equals(actual: &Json, expected: &Json) -> bool {
    if actual == expected {
        return true;
    }
    match (actual, expected) {
        (Json::String(text), scalar @ (Json::Number(_) | Json::Bool(_)))
        | (scalar @ (Json::Number(_) | Json::Bool(_)), Json::String(text)) => {
            let scalar_text = scalar.to_string();
            *text == scalar_text
        }
        _ => false,
    }
}

/// A string as itself; any other value as compact JSON.
fn text_of(value: &Json) -> String {
    match value {
        Json::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// What a diff shows: strings as they are, structures pretty-printed so lines line up.
fn pretty(value: &Json, text: &str) -> String {
    match value {
        Json::Object(_) | Json::Array(_) => {
            serde_json::to_string_pretty(value).unwrap_or_else(|_| text.to_string())
        }
        _ => text.to_string(),
    }
}

fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| text.to_string())
}

/// A unified diff, expected (`-`) → actual (`+`), each side ending in a newline so that a
/// one-line value does not drag a "no newline" marker along.
pub fn diff(expected: &str, actual: &str) -> String {
    let with_newline = |text: &str| {
        if text.ends_with('\n') {
            text.to_string()
        } else {
            format!("{text}\n")
        }
    };
    let (expected, actual) = (with_newline(expected), with_newline(actual));
    similar::TextDiff::from_lines(&expected, &actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_accepts_scalar_text() {
        let cases = [
            (json!("3"), json!(3), true),
            (json!(3), json!("3"), true),
            (json!("true"), json!(true), true),
            (json!({"a": 1}), json!({"a": 1}), true),
            (json!("a"), json!("b"), false),
            (json!(null), json!("null"), false),
        ];
        for (actual, expected, equal) in cases {
            assert_eq!(equals(&actual, &expected), equal, "{actual} vs {expected}");
        }
    }

    #[test]
    fn lookup_walks_maps_and_lists_and_says_what_is_there() {
        let rendered = json!({"http": {"url": "https://x", "expect": [200, 201]}});
        let path = |text: &str| text.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            lookup(&rendered, &path("http.url")),
            Ok(&json!("https://x"))
        );
        assert_eq!(lookup(&rendered, &path("http.expect.1")), Ok(&json!(201)));
        assert_eq!(
            lookup(&rendered, &path("http.uri")),
            Err("the rendered `http` has no `uri`; it has `url`, `expect`".to_string())
        );
        assert_eq!(
            lookup(&rendered, &path("run")),
            Err("the rendered step has no `run`; it has `http`".to_string())
        );
    }

    #[test]
    fn diffs_are_unified_from_expected_to_actual() {
        assert_eq!(
            diff("echo a", "echo b"),
            "--- expected\n+++ actual\n@@ -1 +1 @@\n-echo a\n+echo b\n"
        );
    }
}
