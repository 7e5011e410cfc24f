//! `vane schema`: the JSON Schema (draft 2020-12) of the workflow format, generated from the serde
//! types the loader deserializes (`config.rs`, and the action configs of `steps`), so that the
//! schema an editor checks against and the loader cannot drift apart.
//!
//! Where a config field is a dynamic YAML value (the loader walks it itself for better
//! positions), the pieces here say what it holds. Where a rendered action field has a non-string
//! type (`severity`, `issue`, `expect`), a workflow may still write a template that renders to
//! it, so those accept a template string too ([`template_string`]; the kinds' own pieces are in
//! their files under `crate::steps`).

use super::config::{DispatchConfig, FilterConfig, ScheduleConfig, StepConfig, WorkflowConfig};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value as Json;
use std::borrow::Cow;

/// Where the schema says it lives; editors use it as the schema's identity.
pub const SCHEMA_ID: &str = "https://vane.dev/schema/workflow-v1.json";

/// The schema of a v1 workflow file, as a JSON value.
pub fn json_schema() -> Json {
    root_schema::<WorkflowConfig>(SCHEMA_ID)
}

/// The files vane reads that have a schema: `vane schema --for workflow|config|test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SchemaFor {
    /// A workflow file (`workflows/*.yaml`).
    #[default]
    Workflow,
    /// `vane.yaml`.
    Config,
    /// A workflow test file (`*.test.yaml`).
    Test,
}

impl SchemaFor {
    pub fn json_schema(self) -> Json {
        match self {
            SchemaFor::Workflow => json_schema(),
            SchemaFor::Config => crate::config::json_schema(),
            SchemaFor::Test => crate::testing::json_schema(),
        }
    }
}

/// The schema of the file type `T` deserializes, under the identity `id`: the one way each of
/// `vane schema --for workflow|config|test` is made.
pub fn root_schema<T: JsonSchema>(id: &str) -> Json {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    schema.insert("$id".to_string(), Json::String(id.to_string()));
    let mut value = schema.to_value();
    unwrap_descriptions(&mut value);
    value
}

/// Doc comments are wrapped at 100 columns; an editor's tooltip wraps by itself. Joins the lines
/// of every description, keeping paragraph breaks.
fn unwrap_descriptions(value: &mut Json) {
    match value {
        Json::Object(map) => {
            for (key, item) in map.iter_mut() {
                match item {
                    Json::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|paragraph| paragraph.replace('\n', " "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(item),
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// A string that contains a template (`{{ … }}` or `{% … %}`): its type is only known once
/// rendered.
pub fn template_string() -> Schema {
    json_schema!({
        "type": "string",
        "pattern": r"\{\{|\{%",
        "description": "A template, rendered when the step runs."
    })
}

/// `version: 1`.
pub fn version(_generator: &mut SchemaGenerator) -> Schema {
    let versions: Vec<Json> = super::SUPPORTED_VERSIONS
        .iter()
        .map(|version| Json::from(*version))
        .collect();
    json_schema!({ "enum": versions })
}

/// `on:` — event type (or glob) → filter, with `schedule` and `dispatch` shaped their own way.
pub fn triggers(generator: &mut SchemaGenerator) -> Schema {
    let filter = generator.subschema_for::<FilterConfig>();
    let schedule = generator.subschema_for::<ScheduleConfig>();
    let dispatch = generator.subschema_for::<DispatchConfig>();
    json_schema!({
        "type": "object",
        "minProperties": 1,
        "propertyNames": { "minLength": 1 },
        "properties": {
            "schedule": {
                "description": "Run on a timetable: a list of 5-field cron expressions (UTC).",
                "type": "array",
                "minItems": 1,
                "items": schedule
            },
            "dispatch": {
                "description": "Run by hand with `vane dispatch NAME`.",
                "anyOf": [dispatch, { "type": "null" }]
            }
        },
        "additionalProperties": {
            "description": "Events of this type (or of the types this glob matches); empty for all of them.",
            "anyOf": [filter, { "type": "null" }]
        }
    })
}

/// `env:` — name → a template; numbers and booleans are written as their text.
pub fn env(_generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "type": ["string", "number", "boolean", "null"] }
    })
}

/// A duration as `crate::duration::parse_duration` reads it: `500ms`, `90s`, `15m`, `1h30m`, or
/// a bare number of seconds.
pub struct Duration;

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: `500ms`, `90s`, `.5s`, `1.5m`, `15m`, `1h`, `1d`, sums like `1h30m`, or a number of seconds (`30`).",
            // What `parse_duration` takes: a whole number of seconds (as a YAML number or text),
            // or numbers (`1`, `1.5`, `.5`) each with a unit. tests/cli/schema.rs checks a table
            // of values through both.
            "type": ["string", "integer"],
            "minimum": 0,
            "pattern": r"^\s*([0-9]+|(([0-9]+\.?[0-9]*|\.[0-9]+)(ms|s|m|h|d))+)\s*$"
        })
    }
}

/// A workflow has `steps` or `jobs`, exactly one of them.
pub fn steps_or_jobs(schema: &mut Schema) {
    schema.insert(
        "oneOf".to_string(),
        serde_json::json!([{ "required": ["steps"] }, { "required": ["jobs"] }]),
    );
}

/// Exactly one of `keys` is set (`notify`'s target, `github`'s action).
pub fn one_of_keys(keys: &'static [&'static str]) -> impl Fn(&mut Schema) {
    move |schema: &mut Schema| {
        let one_of: Vec<Json> = keys
            .iter()
            .map(|key| serde_json::json!({ "required": [key] }))
            .collect();
        schema.insert("oneOf".to_string(), Json::Array(one_of));
    }
}

/// A step: the common keys ([`StepConfig`]) and every step kind's keys, from the registry.
pub struct StepSchema;

impl JsonSchema for StepSchema {
    fn schema_name() -> Cow<'static, str> {
        "StepConfig".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let common = StepConfig::json_schema(generator);
        crate::steps::Registry::builtin().step_schema(common, generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every property of every object in the schema has a description, so an editor can show it.
    #[test]
    fn every_key_is_described() {
        fn walk(value: &Json, path: &str, missing: &mut Vec<String>) {
            match value {
                Json::Object(map) => {
                    if let Some(Json::Object(properties)) = map.get("properties") {
                        for (key, property) in properties {
                            if property.get("description").is_none() {
                                missing.push(format!("{path}.{key}"));
                            }
                        }
                    }
                    for (key, item) in map {
                        walk(item, &format!("{path}/{key}"), missing);
                    }
                }
                Json::Array(items) => {
                    for (index, item) in items.iter().enumerate() {
                        walk(item, &format!("{path}[{index}]"), missing);
                    }
                }
                _ => {}
            }
        }
        let schema = json_schema();
        let mut missing = Vec::new();
        walk(&schema, "", &mut missing);
        assert!(
            missing.is_empty(),
            "keys without a description: {missing:?}"
        );
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }
}
