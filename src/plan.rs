//! Which workflows an event selects, and why the others do not. `plan` and `run` share this: the
//! dry run never has its own matching logic.

use crate::event::Event;
use crate::matcher::match_triggers;
use crate::template::Templates;
use crate::workflow::{Workflow, WorkflowSet};
use minijinja::Value;

/// The verdict for one workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Matched,
    /// Did not match, with the one-line reason.
    NotMatched(String),
    /// The workflow's `if` could not be evaluated: an error in the workflow, reported as such.
    Broken(String),
}

/// The workflows that match `event` or break on it, in file order. Only candidates from the set's
/// index are examined. A workflow that does not match is left out, and so is its reason: building
/// "`…` is false" for every workflow an event does not select was a tenth of a dry run's
/// instructions (issue 15), and only `--explain`, JSON and `vane test` read it — they ask
/// `explain` for it, which gives the same text as it always did.
pub fn select(set: &WorkflowSet, event: &Event, event_value: &Value) -> Vec<(usize, Selection)> {
    // What every condition sees but its own `workflow` is the same for all of an event's
    // workflows: built once, and only when a condition is evaluated at all (`now` as RFC 3339
    // per workflow was a quarter of a dry run's instructions).
    let mut scope: Option<Scope> = None;
    set.candidates(event)
        .into_iter()
        .filter_map(|index| {
            let workflow = &set.workflows[index];
            if match_triggers(workflow, event).is_err() {
                return None;
            }
            let Some(condition) = &workflow.condition else {
                return Some((index, Selection::Matched));
            };
            let scope = scope.get_or_insert_with(|| Scope::new(event, event_value));
            match evaluate(workflow, condition, scope) {
                Selection::NotMatched(_) => None,
                selection => Some((index, selection)),
            }
        })
        .collect()
}

/// The full verdict for one workflow: triggers, then `if`.
pub fn explain(workflow: &Workflow, event: &Event, event_value: &Value) -> Selection {
    if let Err(reason) = match_triggers(workflow, event) {
        return Selection::NotMatched(reason);
    }
    let Some(condition) = &workflow.condition else {
        return Selection::Matched;
    };
    match evaluate(workflow, condition, &Scope::new(event, event_value)) {
        // A bare path the event lacks is false, as in GitHub Actions; saying so with the closest
        // name the event has there catches the typo that would otherwise be false forever.
        Selection::NotMatched(_) => match undefined_path(&condition.source, event_value, true) {
            Some(undefined) => Selection::NotMatched(format!("if: {undefined}")),
            None => Selection::NotMatched(format!("if: `{}` is false", condition.source)),
        },
        selection => selection,
    }
}

/// The first `event.…` path in `source` that the event does not have, worded with the closest
/// key it has where the path leaves it: "`event.data.valeu` is undefined (did you mean
/// `value`?)". `bare`: only when `source` is that one path and nothing else.
fn undefined_path(source: &str, event: &Value, bare: bool) -> Option<String> {
    static PATHS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let paths = PATHS.get_or_init(|| {
        regex::Regex::new(r"\bevent((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)").expect("a valid regex")
    });
    for found in paths.captures_iter(source) {
        if bare && found.get(0).map(|whole| whole.as_str()) != Some(source.trim()) {
            return None;
        }
        let (mut value, mut walked) = (event.clone(), String::from("event"));
        for segment in found[1].split('.').skip(1) {
            let next = value.get_attr(segment).unwrap_or(Value::UNDEFINED);
            if next.is_undefined() {
                let keys = value.try_iter().map(|keys| keys.collect::<Vec<_>>());
                let closest = keys
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|key| key.as_str().map(str::to_string))
                    .map(|key| (strsim::jaro_winkler(segment, &key), key))
                    .filter(|(score, _)| *score > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                let hint = closest.map_or(String::new(), |(_, key)| {
                    format!(" (did you mean `{key}`?)")
                });
                return Some(format!("`{walked}.{segment}` is undefined{hint}"));
            }
            walked = format!("{walked}.{segment}");
            value = next;
        }
    }
    None
}

/// The variables a workflow's `if` sees that do not depend on the workflow.
struct Scope {
    event: Value,
    inputs: Value,
    now: Value,
}

impl Scope {
    fn new(event: &Event, event_value: &Value) -> Scope {
        Scope {
            event: event_value.clone(),
            inputs: inputs_value(event, event_value),
            now: Value::from(crate::event::now_rfc3339()),
        }
    }
}

/// The `if` verdict; a false one carries no reason (`explain` words it).
fn evaluate(
    workflow: &Workflow,
    condition: &crate::workflow::Condition,
    scope: &Scope,
) -> Selection {
    let context = minijinja::context! {
        event => scope.event.clone(),
        inputs => scope.inputs.clone(),
        workflow => workflow_value(workflow, None),
        now => scope.now.clone(),
    };
    match Templates::eval(&condition.expression, &context) {
        Ok(value) if value.is_true() => Selection::Matched,
        Ok(_) => Selection::NotMatched(String::new()),
        Err(error) => {
            // "undefined value" names nothing: name the path the event lacks where it can.
            let undefined = error.message.contains("undefined value");
            let named = undefined.then(|| undefined_path(&condition.source, &scope.event, false));
            let message = named.flatten().unwrap_or(error.message);
            Selection::Broken(format!(
                "{}: if: {message}",
                workflow.place(&condition.path)
            ))
        }
    }
}

/// The workflow's concurrency group for the event (`None` without `concurrency:`), with its
/// `cancel-in-progress`. `run`, `plan` and `test` all render it here, so a group template that
/// cannot render fails a plan exactly where it would fail a run.
pub fn concurrency_group(
    workflow: &Workflow,
    event: &Event,
    event_value: &Value,
    revision: Option<&str>,
) -> Result<Option<(String, bool)>, String> {
    let Some(concurrency) = &workflow.concurrency else {
        return Ok(None);
    };
    let context = minijinja::context! {
        event => event_value.clone(),
        inputs => inputs_value(event, event_value),
        workflow => workflow_value(workflow, revision),
    };
    match concurrency.group.render(&context) {
        Ok(value) => Ok(Some((
            value
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string()),
            concurrency.cancel_in_progress,
        ))),
        Err(error) => {
            let path = crate::yaml::YamlPath::default()
                .key("concurrency")
                .key("group");
            Err(format!(
                "{}: concurrency.group: {}",
                workflow.place(&path),
                error.error.message
            ))
        }
    }
}

/// `inputs` in templates: a dispatch's inputs (`event.data.inputs`), as GitHub Actions' `inputs`
/// context has them for `workflow_dispatch`; empty for every other event, whose payload is then
/// never parsed for it.
pub fn inputs_value(event: &Event, event_value: &Value) -> Value {
    if matches!(event.kind.as_str(), "dispatch" | "workflow_dispatch")
        && let Ok(inputs) = event_value
            .get_attr("data")
            .and_then(|data| data.get_attr("inputs"))
        && inputs.kind() == minijinja::value::ValueKind::Map
    {
        return inputs;
    }
    Value::from(std::collections::BTreeMap::<String, Value>::new())
}

/// `workflow` in templates.
pub fn workflow_value(workflow: &Workflow, revision: Option<&str>) -> Value {
    minijinja::context! {
        name => workflow.name.as_str(),
        file => workflow.file.display().to_string(),
        version => workflow.version,
        revision => revision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_the_event_lacks_is_named_with_the_closest_key() {
        let json = serde_json::json!({"data": {"value": 5, "v": null}});
        let event = Value::from(minijinja::value::Serde(json));
        let found = |source: &str, bare: bool| undefined_path(source, &event, bare);
        assert_eq!(
            found("event.data.valeu", true).as_deref(),
            Some("`event.data.valeu` is undefined (did you mean `value`?)")
        );
        assert_eq!(
            found("event.data.value > 3 and event.datum.x == 1", false).as_deref(),
            Some("`event.datum` is undefined (did you mean `data`?)")
        );
        assert_eq!(
            found("event.data.v.deeper", true).as_deref(),
            Some("`event.data.v.deeper` is undefined")
        );
        // Only a bare path when asked; a defined one is not undefined.
        assert_eq!(found("event.data.valeu == 1", true), None);
        assert_eq!(found("event.data.value", true), None);
    }
}
