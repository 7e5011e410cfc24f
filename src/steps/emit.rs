//! `emit`: a new event that goes back through matching in the same process (SPEC §2.3).

use super::{Outputs, StepError, StepSuccess};
use crate::event::Event;
use serde::Deserialize;
use serde_json::Value as Json;

/// SPEC §2.3: a chain of emitted events deeper than this is an error (a loop, almost always).
pub const MAX_EMIT_DEPTH: usize = 8;

/// `emit:` as written (after rendering): a new event that goes back through matching.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    description = "A new event (`source: vane`) that goes back through matching in the same process."
)]
pub struct EmitConfig {
    /// The new event's type (`alert.raised`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The new event's subject (what it is about).
    pub subject: Option<String>,
    /// The new event's payload; values keep their types.
    #[serde(default)]
    pub data: Json,
}

/// Builds the emitted event: `source: vane`, `parent` = the emitting event. `depth` is the
/// emitting event's own depth in its chain (0 for an event from outside).
pub fn build(
    config: EmitConfig,
    parent: &Event,
    depth: usize,
) -> Result<(Event, StepSuccess), StepError> {
    if depth + 1 > MAX_EMIT_DEPTH {
        return Err(StepError::new(format!(
            "emit chain deeper than {MAX_EMIT_DEPTH}: `{}` was emitted by an event that was itself emitted {depth} times over",
            config.kind
        )));
    }
    if config.kind.trim().is_empty() {
        return Err(StepError::new("emit: `type` is empty"));
    }
    let mut event = Event::new("vane", &config.kind, config.data);
    event.subject = config.subject;
    event.parent = Some(parent.id().to_string());
    // Two identical emits from different parents are different events.
    event.set_id(crate::event::content_id(&serde_json::json!({"parent": parent.id(), "type": event.kind, "subject": event.subject, "data": event.data.value()})));
    let mut outputs = Outputs::new();
    outputs.insert("id".to_string(), Json::String(event.id().to_string()));
    outputs.insert("type".to_string(), Json::String(event.kind.clone()));
    Ok((
        event,
        StepSuccess {
            outputs,
            log: None,
            diff: None,
        },
    ))
}
