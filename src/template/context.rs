//! What templates see: the `event` object (its payload converted only when a template reads it),
//! `steps.<id>` with placeholders for outputs a dry run cannot know, and the status functions.

use crate::event::Event;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Environment, State, Value};
use std::sync::{Arc, OnceLock};

/// The context variable the status functions read: `success`, `failure` or `cancelled`.
pub const STATUS_VARIABLE: &str = "__vane_status";

pub fn register_status_functions(env: &mut Environment<'static>) {
    fn status(state: &State) -> String {
        state
            .lookup(STATUS_VARIABLE)
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default()
    }
    env.add_function("success", |state: &State| status(state) == "success");
    env.add_function("failure", |state: &State| status(state) == "failure");
    env.add_function("cancelled", |state: &State| status(state) == "cancelled");
    env.add_function("always", |_state: &State| true);
}

const EVENT_FIELDS: &[&str] = &[
    "id", "source", "type", "action", "subject", "time", "repo", "ref", "branch", "tag", "sha",
    "actor", "files", "parent", "data",
];

/// `event` in templates. The payload is converted to a template value once, on first use, so that
/// matching on envelope fields never pays for a large payload.
#[derive(Debug)]
pub struct EventObject {
    event: Arc<Event>,
    data: OnceLock<Value>,
}

impl EventObject {
    pub fn value(event: Arc<Event>) -> Value {
        Value::from_object(EventObject {
            event,
            data: OnceLock::new(),
        })
    }
}

fn optional(text: &Option<String>) -> Value {
    match text {
        Some(text) => Value::from(text.as_str()),
        None => Value::from(()),
    }
}

impl Object for EventObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let event = &self.event;
        Some(match key.as_str()? {
            "id" => Value::from(event.id()),
            "source" => Value::from(event.source.as_str()),
            "type" => Value::from(event.kind.as_str()),
            "action" => optional(&event.action),
            "subject" => optional(&event.subject),
            "time" => Value::from(event.time.as_str()),
            "repo" => optional(&event.repo),
            "ref" => optional(&event.git_ref),
            "branch" => optional(&event.branch),
            "tag" => optional(&event.tag),
            "sha" => optional(&event.sha),
            "actor" => optional(&event.actor),
            "parent" => optional(&event.parent),
            "files" => match &event.files {
                Some(files) => crate::template::to_value(files),
                None => Value::from(()),
            },
            "data" => self
                .data
                .get_or_init(|| crate::template::to_value(event.data.value()))
                .clone(),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(EVENT_FIELDS)
    }
}

/// One earlier step as templates see it: `steps.<id>.outputs.<name>` and `steps.<id>.outcome`.
#[derive(Debug, Clone)]
pub struct StepView {
    pub id: String,
    /// `None` when the step did not really run (a dry run): every output is then a placeholder.
    pub outputs: Option<serde_json::Map<String, serde_json::Value>>,
    pub outcome: String,
}

/// `steps` in templates.
#[derive(Debug, Default)]
pub struct StepsObject {
    pub steps: Vec<StepView>,
}

impl Object for StepsObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let id = key.as_str()?;
        let step = self.steps.iter().find(|step| step.id == id)?;
        Some(Value::from_object(step.clone()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.steps
                .iter()
                .map(|step| Value::from(step.id.as_str()))
                .collect(),
        )
    }
}

impl Object for StepView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "outputs" => Some(match &self.outputs {
                Some(outputs) => crate::template::to_value(outputs),
                None => Value::from_object(Placeholder {
                    step: self.id.clone(),
                }),
            }),
            "outcome" | "conclusion" => Some(Value::from(self.outcome.as_str())),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["outputs", "outcome", "conclusion"])
    }
}

/// The outputs of a step that did not run: every name renders as `<steps.ID.outputs.NAME>`.
#[derive(Debug)]
struct Placeholder {
    step: String,
}

impl Object for Placeholder {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(format!(
            "<steps.{}.outputs.{}>",
            self.step,
            key.as_str()?
        )))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }
}
