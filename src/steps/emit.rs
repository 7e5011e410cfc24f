//! `emit`: a new event that goes back through matching in the same process (SPEC §2.3).

use super::{
    Compiled, CompiledStep, Outputs, StepContext, StepError, StepKind, StepSite, StepSuccess,
};
use crate::event::Event;
use crate::template::{TemplateTree, TreeError};
use crate::yaml::YamlError;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;

/// SPEC §2.3: a chain of emitted events deeper than this is an error (a loop, almost always).
pub const MAX_EMIT_DEPTH: usize = 8;

/// The events one input may cause through `emit` steps, in all, unless `--max-emitted` says.
pub const DEFAULT_MAX_EMITTED: usize = 1000;

/// The keys of an `emit` step besides the common ones.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmitKeys {
    /// A new event that goes back through matching (`source: vane`).
    #[schemars(with = "Option<EmitConfig>")]
    pub emit: Option<Json>,
}

/// The `emit` step kind.
pub struct EmitKind;

impl StepKind for EmitKind {
    fn key(&self) -> &'static str {
        "emit"
    }

    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        EmitKeys::json_schema(generator)
    }

    fn compile(&self, keys: serde_yaml::Value, site: &StepSite) -> Result<Compiled, YamlError> {
        let keys: EmitKeys = site.keys(keys)?;
        let value = keys.emit.unwrap_or(Json::Null);
        let path = site.key("emit");
        site.check_shape::<EmitConfig>(&value, &path)?;
        // `data:` in native mode, so that the payload keeps the types of its values.
        let tree = site.tree_with_native_key(&value, "data", &path)?;
        Ok(Compiled::new(EmitStep(tree)))
    }
}

/// A compiled `emit` step: the new event, every string a template.
#[derive(Debug)]
struct EmitStep(TemplateTree);

impl CompiledStep for EmitStep {
    fn render(&self, context: &minijinja::Value) -> Result<Json, TreeError> {
        Ok(super::keyed("emit", self.0.render(context)?))
    }

    /// Emitted events are planned too, so that a plan shows the whole chain.
    fn plan(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        self.execute(rendered, context)
    }

    fn execute(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError> {
        let config: EmitConfig = super::typed("emit", &rendered["emit"])?;
        let (event, mut success) =
            build(config, context.event, context.depth, context.max_emitted)?;
        success.emitted.push(event);
        Ok(success)
    }
}

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
/// emitting event's own depth in its chain (0 for an event from outside); the chain's input may
/// cause `max_emitted` events in all.
pub fn build(
    config: EmitConfig,
    parent: &Event,
    depth: usize,
    max_emitted: usize,
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
    if !parent.emit_chain.spend(max_emitted) {
        return Err(StepError::new(format!(
            "emit: the input event has already caused {max_emitted} emitted events \
             (`--max-emitted`, `max-emitted` in vane.yaml); `{}` is not emitted",
            config.kind
        )));
    }
    let mut event = Event::new("vane", &config.kind, config.data);
    event.subject = config.subject;
    event.parent = Some(parent.id().to_string());
    event.emit_chain = parent.emit_chain.share();
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
            ..StepSuccess::default()
        },
    ))
}

#[cfg(test)]
mod tests {
    use crate::steps::compile::testing::{compile, render};
    use serde_json::json;

    #[test]
    fn an_emit_step_keeps_the_types_of_its_data() {
        assert_eq!(
            compile("emit: { typ: t }", &[]).unwrap_err(),
            "2:11: steps[0].emit: unknown key `typ` (did you mean `type`?)"
        );
        let step = compile("emit: { type: 'a.{{ n }}', data: { n: '{{ n }}' } }", &[]).unwrap();
        assert_eq!(
            render(&step, json!({"n": 2})),
            json!({"emit": {"type": "a.2", "data": {"n": 2}}})
        );
    }
}
