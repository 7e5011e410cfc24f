//! `on.dispatch.inputs`: what a workflow run by hand (`vane dispatch NAME -i key=value`) takes.
//! Each input's type, default and options are checked when the workflow loads; the values given
//! on the command line are checked against them, and defaults fill the rest.

use super::config::InputConfig;
use crate::yaml::{self, YamlError, YamlPath};
use serde_json::{Map, Value as Json};

/// One input of `on.dispatch.inputs`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchInput {
    pub name: String,
    pub description: Option<String>,
    /// Refused when missing and without a default.
    pub required: bool,
    /// The value when none is given, already of the input's type.
    pub default: Option<Json>,
    pub kind: InputKind,
}

/// An input's type: how a value given as text becomes the value templates see.
#[derive(Debug, Clone, PartialEq)]
pub enum InputKind {
    String,
    /// An integer or a finite decimal number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// One of a list of strings.
    Choice(Vec<String>),
}

impl InputKind {
    /// What a value of this type looks like, for messages.
    fn expected(&self) -> String {
        match self {
            InputKind::String => "a string".to_string(),
            InputKind::Number => "a number".to_string(),
            InputKind::Boolean => "`true` or `false`".to_string(),
            InputKind::Choice(options) => format!("one of [{}]", options.join(", ")),
        }
    }

    /// The value of an optional input given no value and no default: GitHub Actions' (an empty
    /// string, `false`), and `null` for a number, which has no empty value.
    fn empty(&self) -> Json {
        match self {
            InputKind::String | InputKind::Choice(_) => Json::String(String::new()),
            InputKind::Number => Json::Null,
            InputKind::Boolean => Json::Bool(false),
        }
    }

    /// Parses a value given as text.
    fn parse(&self, text: &str) -> Option<Json> {
        match self {
            InputKind::String => Some(Json::String(text.to_string())),
            InputKind::Number => parse_number(text.trim()),
            InputKind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
                "true" => Some(Json::Bool(true)),
                "false" => Some(Json::Bool(false)),
                _ => None,
            },
            InputKind::Choice(options) => options
                .iter()
                .any(|option| option == text)
                .then(|| Json::String(text.to_string())),
        }
    }

    /// A default as written in YAML, as a value of this type: a scalar of the right type, or text
    /// that parses as one (`default: "3"` for a number).
    fn default_value(&self, value: &Json) -> Option<Json> {
        match (self, value) {
            (InputKind::Number, Json::Number(_)) | (InputKind::Boolean, Json::Bool(_)) => {
                Some(value.clone())
            }
            (_, Json::String(text)) => self.parse(text),
            (InputKind::String | InputKind::Choice(_), Json::Number(_) | Json::Bool(_)) => {
                self.parse(&value.to_string())
            }
            _ => None,
        }
    }
}

fn parse_number(text: &str) -> Option<Json> {
    if let Ok(integer) = text.parse::<i64>() {
        return Some(Json::from(integer));
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Json::Number)
}

/// Why the given inputs do not fit the workflow's; each names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("`{text}` is not an input: write `-i name=value`")]
    Malformed { text: String },
    #[error("input `{name}` is given more than once")]
    Repeated { name: String },
    #[error("workflow `{workflow}` has no input `{name}` ({})", known_inputs(.known))]
    Unknown {
        workflow: String,
        name: String,
        known: Vec<String>,
    },
    #[error("input `{name}` is required{}: give it with `-i {name}=…`", describe(.description))]
    Missing {
        name: String,
        description: Option<String>,
    },
    #[error("input `{name}`: `{value}` is not {expected}")]
    Invalid {
        name: String,
        value: String,
        expected: String,
    },
}

fn known_inputs(known: &[String]) -> String {
    if known.is_empty() {
        "it takes none".to_string()
    } else {
        format!("its inputs: {}", known.join(", "))
    }
}

fn describe(description: &Option<String>) -> String {
    description
        .as_ref()
        .map(|text| format!(" ({})", text.trim()))
        .unwrap_or_default()
}

impl DispatchInput {
    /// Checks one `on.dispatch.inputs.<name>`; errors point at the offending key.
    pub fn compile(
        name: &str,
        config: InputConfig,
        text: &str,
        path: &YamlPath,
    ) -> Result<DispatchInput, YamlError> {
        let error = |at: &YamlPath, at_key: bool, message: String| {
            YamlError::new(message, yaml::locate(text, at, at_key))
        };
        if !valid_input_name(name) {
            return Err(error(
                path,
                true,
                format!("input name `{name}` must match [A-Za-z_][A-Za-z0-9_-]*"),
            ));
        }
        let kind = match (config.kind.as_deref(), config.options) {
            (Some("choice") | None, Some(options)) => {
                if options.is_empty() {
                    return Err(error(
                        &path.key("options"),
                        false,
                        format!("input `{name}`: `options` needs at least one value"),
                    ));
                }
                InputKind::Choice(options)
            }
            (Some("choice"), None) => {
                return Err(error(
                    &path.key("type"),
                    false,
                    format!("input `{name}`: `type: choice` needs `options`"),
                ));
            }
            (Some(kind @ ("string" | "number" | "boolean")), Some(_)) => {
                return Err(error(
                    &path.key("options"),
                    true,
                    format!("input `{name}`: `options` is for `type: choice`, not `{kind}`"),
                ));
            }
            (Some("string") | None, None) => InputKind::String,
            (Some("number"), None) => InputKind::Number,
            (Some("boolean"), None) => InputKind::Boolean,
            (Some(other), _) => {
                return Err(error(
                    &path.key("type"),
                    false,
                    format!(
                        "input `{name}`: unknown type `{other}` (expected string, number, boolean or choice)"
                    ),
                ));
            }
        };
        let default = match config.default {
            None | Some(Json::Null) => None,
            Some(value) => Some(kind.default_value(&value).ok_or_else(|| {
                let shown = match &value {
                    Json::String(text) => text.clone(),
                    other => other.to_string(),
                };
                error(
                    &path.key("default"),
                    false,
                    format!(
                        "input `{name}`: default `{shown}` is not {}",
                        kind.expected()
                    ),
                )
            })?),
        };
        Ok(DispatchInput {
            name: name.to_string(),
            description: config.description,
            required: config.required,
            default,
            kind,
        })
    }
}

fn valid_input_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The inputs of one dispatch: every given `name=value` checked against the workflow's inputs
/// and parsed as its type, defaults (or the type's empty value) for the rest, in the order the
/// workflow declares them. Every problem is reported, not only the first.
pub fn resolve_inputs(
    workflow: &str,
    inputs: &[DispatchInput],
    given: &[String],
) -> Result<Map<String, Json>, Vec<InputError>> {
    let mut errors = Vec::new();
    let mut values: Map<String, Json> = Map::new();
    let mut given_names: Vec<&str> = Vec::new();
    for text in given {
        let Some((name, value)) = text.split_once('=') else {
            errors.push(InputError::Malformed { text: text.clone() });
            continue;
        };
        let name = name.trim();
        let Some(input) = inputs.iter().find(|input| input.name == name) else {
            errors.push(InputError::Unknown {
                workflow: workflow.to_string(),
                name: name.to_string(),
                known: inputs.iter().map(|input| input.name.clone()).collect(),
            });
            continue;
        };
        if given_names.contains(&name) {
            errors.push(InputError::Repeated {
                name: name.to_string(),
            });
            continue;
        }
        given_names.push(name);
        match input.kind.parse(value) {
            Some(parsed) => {
                values.insert(name.to_string(), parsed);
            }
            None => errors.push(InputError::Invalid {
                name: name.to_string(),
                value: value.to_string(),
                expected: input.kind.expected(),
            }),
        }
    }
    let mut resolved = Map::new();
    for input in inputs {
        let value = match (values.remove(&input.name), &input.default) {
            (Some(value), _) => value,
            (None, Some(default)) => default.clone(),
            // A value that was given but did not parse is already reported.
            (None, None) if given_names.contains(&input.name.as_str()) => continue,
            (None, None) if input.required => {
                errors.push(InputError::Missing {
                    name: input.name.clone(),
                    description: input.description.clone(),
                });
                continue;
            }
            (None, None) => input.kind.empty(),
        };
        resolved.insert(input.name.clone(), value);
    }
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(name: &str, yaml_text: &str) -> Result<DispatchInput, String> {
        let value: serde_yaml::Value = serde_yaml::from_str(yaml_text).unwrap();
        let config: InputConfig = serde_json::from_value(serde_json::to_value(value).unwrap())
            .map_err(|error| error.to_string())?;
        DispatchInput::compile(name, config, yaml_text, &YamlPath::default())
            .map_err(|error| error.message)
    }

    fn inputs() -> Vec<DispatchInput> {
        vec![
            compile(
                "env",
                "{type: choice, options: [dev, prod], required: true}",
            )
            .unwrap(),
            compile("replicas", "{type: number, default: 2}").unwrap(),
            compile("force", "{type: boolean}").unwrap(),
            compile("tag", "{description: the image tag}").unwrap(),
        ]
    }

    fn given(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| value.to_string()).collect()
    }

    #[test]
    fn given_values_are_typed_and_defaults_fill_the_rest() {
        let resolved = resolve_inputs(
            "deploy",
            &inputs(),
            &given(&["env=prod", "force=true", "tag=v1=2"]),
        )
        .unwrap();
        assert_eq!(
            Json::Object(resolved),
            json!({"env": "prod", "replicas": 2, "force": true, "tag": "v1=2"})
        );
        let resolved =
            resolve_inputs("deploy", &inputs(), &given(&["env=dev", "replicas=2.5"])).unwrap();
        assert_eq!(
            Json::Object(resolved),
            json!({"env": "dev", "replicas": 2.5, "force": false, "tag": ""})
        );
    }

    #[test]
    fn every_problem_names_its_input() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "input `env` is required: give it with `-i env=…`"),
            (&["env=qa"], "input `env`: `qa` is not one of [dev, prod]"),
            (
                &["env=dev", "replicas=many"],
                "input `replicas`: `many` is not a number",
            ),
            (
                &["env=dev", "force=yes"],
                "input `force`: `yes` is not `true` or `false`",
            ),
            (
                &["env=dev", "colour=red"],
                "workflow `deploy` has no input `colour` (its inputs: env, replicas, force, tag)",
            ),
            (
                &["env=dev", "env=prod"],
                "input `env` is given more than once",
            ),
            (&["env"], "`env` is not an input: write `-i name=value`"),
        ];
        for (values, message) in cases {
            let errors = resolve_inputs("deploy", &inputs(), &given(values)).unwrap_err();
            let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
            assert!(
                messages.iter().any(|m| m == message),
                "{values:?}: {messages:?}"
            );
        }
    }

    #[test]
    fn input_definitions_are_checked_at_load() {
        for (yaml_text, message) in [
            ("{type: colour}", "unknown type `colour`"),
            ("{type: choice}", "`type: choice` needs `options`"),
            (
                "{type: choice, options: []}",
                "`options` needs at least one value",
            ),
            (
                "{type: number, options: [a]}",
                "`options` is for `type: choice`",
            ),
            (
                "{type: number, default: many}",
                "default `many` is not a number",
            ),
            (
                "{type: boolean, default: 1}",
                "default `1` is not `true` or `false`",
            ),
            (
                "{options: [a, b], default: c}",
                "default `c` is not one of [a, b]",
            ),
        ] {
            let error = compile("x", yaml_text).unwrap_err();
            assert!(error.contains(message), "{yaml_text}: {error}");
        }
        assert!(
            compile("bad name", "{}")
                .unwrap_err()
                .contains("must match")
        );
        let number = compile("n", "{type: number, default: '3'}").unwrap();
        assert_eq!(number.default, Some(json!(3)));
        let text = compile("s", "{default: 3}").unwrap();
        assert_eq!(text.default, Some(json!("3")));
    }
}
