//! What a step kind's `compile` is given ([`StepSite`]: where the step is, the templates) and
//! returns ([`Compiled`]), with the helpers every kind uses to check its keys and compile their
//! templates so that each error carries the `file:line:col` it is about.

use super::{CompiledStep, Registry};
use crate::template::{TemplateTree, Templates, TreeMode};
use crate::yaml::{Position, YamlError, YamlPath};
use serde_json::Value as Json;

/// Everything a step needs from its surroundings to compile.
pub struct StepSite<'a> {
    pub templates: &'a Templates,
    /// The workflow file's text, to locate what an error is about.
    pub text: &'a str,
    /// Where the step is in its file (`steps[2]`, `jobs.build.steps[0]`).
    pub path: &'a YamlPath,
    /// The step's place in its job (0-based): its default id is `step-N`.
    pub index: usize,
    /// The step kinds the step may be of.
    pub kinds: &'a Registry,
}

/// A compiled action, with what `validate` warns about in it.
pub struct Compiled {
    pub step: Box<dyn CompiledStep>,
    /// Things worth a warning from `validate` (`| safe` on event data).
    pub warnings: Vec<YamlError>,
}

impl Compiled {
    pub fn new(step: impl CompiledStep + 'static) -> Compiled {
        Compiled {
            step: Box::new(step),
            warnings: Vec::new(),
        }
    }

    pub fn with_warnings(mut self, warnings: Vec<YamlError>) -> Compiled {
        self.warnings = warnings;
        self
    }
}

impl StepSite<'_> {
    /// The path of one key of the step (`steps[0].run`).
    pub fn key(&self, key: &str) -> YamlPath {
        self.path.key(key)
    }

    /// An error about the step's key `key`, at the key.
    pub fn at(&self, key: &str, message: impl Into<String>) -> YamlError {
        YamlError::new(
            message,
            crate::yaml::locate(self.text, &self.path.key(key), true),
        )
    }

    /// An error about the value at `path`, at the value.
    pub fn at_value(&self, path: &YamlPath, message: impl Into<String>) -> YamlError {
        YamlError::new(message, crate::yaml::locate(self.text, path, false))
    }

    /// A kind's keys into its config type; a wrong type names the key and its position.
    pub fn keys<T: serde::de::DeserializeOwned>(
        &self,
        keys: serde_yaml::Value,
    ) -> Result<T, YamlError> {
        crate::yaml::from_value(keys, self.text, self.path)
    }

    /// A value (a string, or a map or list of them) compiled into a template tree.
    pub fn tree(
        &self,
        value: &Json,
        mode: TreeMode,
        path: &YamlPath,
    ) -> Result<TemplateTree, YamlError> {
        TemplateTree::compile(self.templates, value, mode, path)
            .map_err(|error| tree_error(self.text, error))
    }

    /// One string compiled into a template tree.
    pub fn text(
        &self,
        value: &str,
        mode: TreeMode,
        path: &YamlPath,
    ) -> Result<TemplateTree, YamlError> {
        TemplateTree::compile_string(self.templates, value, mode, path)
            .map_err(|error| tree_error(self.text, error))
    }

    /// A map compiled in text mode except its key `native_key`, in native mode, so that a body
    /// (`http.json`, `emit.data`) keeps the types of its values.
    pub fn tree_with_native_key(
        &self,
        value: &Json,
        native_key: &str,
        path: &YamlPath,
    ) -> Result<TemplateTree, YamlError> {
        let Json::Object(map) = value else {
            return self.tree(value, TreeMode::Text, path);
        };
        let mut entries = Vec::with_capacity(map.len());
        for (key, item) in map {
            let mode = if key == native_key {
                TreeMode::Native
            } else {
                TreeMode::Text
            };
            entries.push((key.clone(), self.tree(item, mode, &path.key(key))?));
        }
        Ok(TemplateTree::Map(entries))
    }

    /// Checks the keys (and, where nothing is templated, the types) of an action's own map
    /// before any template is rendered, so that a misspelt key is a load error, not a run-time
    /// one. A templated value's type is only known once rendered, so a type error on one waits
    /// for then (`None`).
    pub fn check_shape<T: serde::de::DeserializeOwned>(
        &self,
        value: &Json,
        path: &YamlPath,
    ) -> Result<Option<T>, YamlError> {
        match serde_json::from_value::<T>(value.clone()) {
            Ok(typed) => Ok(Some(typed)),
            Err(error) => {
                let message = error.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let rewritten = crate::yaml::rewrite_serde_message(&message);
                let about_keys =
                    rewritten.contains("unknown key") || rewritten.contains("missing required key");
                if !about_keys && crate::template::is_template(&value.to_string()) {
                    return Ok(None);
                }
                Err(self.at_value(path, format!("{path}: {rewritten}")))
            }
        }
    }

    /// `| safe` on `event.*` in a shell script: the author turned off escaping for
    /// attacker-controlled text, which `validate` points out (SPEC §5.1).
    pub fn unsafe_interpolations(&self, script: &str, path: &YamlPath) -> Vec<YamlError> {
        let Ok(escaped) = crate::template::shell::escape_script(script) else {
            return Vec::new();
        };
        let text = self.text;
        escaped
            .interpolations
            .iter()
            .filter(|interpolation| interpolation.opted_out && interpolation.expression.trim_start().starts_with("event."))
            .map(|interpolation| {
                let expression = interpolation.expression.split('|').next().unwrap_or_default().trim();
                YamlError::new(
                    format!("`| safe` turns off shell escaping for `{expression}`, which comes from the event"),
                    crate::yaml::locate(text, path, false).map(|start| offset_position(text, start, script, interpolation.offset)),
                )
            })
            .collect()
    }
}

/// The position of byte `offset` of a scalar's value, given where the scalar starts. Exact for
/// plain and block scalars; quoted ones are off by their escapes at most.
fn offset_position(text: &str, start: Position, value: &str, offset: usize) -> Position {
    let before = &value[..offset.min(value.len())];
    let newlines = before.matches('\n').count();
    let mut position = start;
    let starts_block = is_block_scalar_at(text, start);
    if newlines == 0 && !starts_block {
        let quoted = text
            .lines()
            .nth(start.line.saturating_sub(1))
            .and_then(|line| line.chars().nth(start.column.saturating_sub(1)))
            .is_some_and(|first| first == '"' || first == '\'');
        position.column += before.chars().count() + usize::from(quoted);
        return position;
    }
    let line_offset = newlines + usize::from(starts_block);
    position.line += line_offset;
    let indent = text
        .lines()
        .nth(position.line.saturating_sub(1))
        .map(|line| line.len() - line.trim_start().len())
        .unwrap_or(0);
    let last_line = before.rsplit('\n').next().unwrap_or_default();
    position.column = indent + last_line.chars().count() + 1;
    position
}

/// A template that does not compile, at the line of the template it is on.
pub fn tree_error(text: &str, error: crate::template::TreeError) -> YamlError {
    let position = template_position(text, &error.path, error.error.line);
    YamlError::new(format!("{}: {}", error.path, error.error.message), position)
}

/// Where line `line` of the template at `path` is in the file: block scalars (`run: |`) start on
/// the line after their indicator.
pub fn template_position(text: &str, path: &YamlPath, line: Option<usize>) -> Option<Position> {
    crate::yaml::locate(text, path, false).map(|mut position| {
        let block = is_block_scalar_at(text, position);
        let line = line.unwrap_or(1);
        if block || line > 1 {
            position.line += line - 1 + usize::from(block);
            let indent = text
                .lines()
                .nth(position.line.saturating_sub(1))
                .map(|content| content.len() - content.trim_start().len())
                .unwrap_or(0);
            position.column = indent + 1;
        }
        position
    })
}

fn is_block_scalar_at(text: &str, position: Position) -> bool {
    text.lines()
        .nth(position.line.saturating_sub(1))
        .and_then(|line| line.get(position.column.saturating_sub(1)..))
        .is_some_and(|rest| rest.starts_with('|') || rest.starts_with('>'))
}

/// For the kinds' tests: one step compiled as the loader compiles it.
#[cfg(test)]
pub(crate) mod testing {
    use crate::steps::Registry;
    use crate::template::Templates;
    use crate::workflow::Step;
    use crate::yaml::YamlPath;
    use std::collections::HashMap;

    /// Compiles `step` (the YAML of one step, written as the first item of `steps:`) with the
    /// built-in kinds and the template files `templates`. An error is `line:col: message`.
    pub fn compile(step: &str, templates: &[(&str, &str)]) -> Result<Step, String> {
        let text = format!("steps:\n  - {}\n", step.trim_end().replace('\n', "\n    "));
        let files: HashMap<String, Vec<u8>> = templates
            .iter()
            .map(|(name, body)| (name.to_string(), body.as_bytes().to_vec()))
            .collect();
        let templates = Templates::from_files(files);
        let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let path = YamlPath::default().key("steps").index(0);
        let site = super::StepSite {
            templates: &templates,
            text: &text,
            path: &path,
            index: 0,
            kinds: &Registry::builtin(),
        };
        Step::compile(value["steps"][0].clone(), &site).map_err(|error| match error.position {
            Some(position) => format!("{}:{}: {}", position.line, position.column, error.message),
            None => error.message,
        })
    }

    /// The step's action rendered with `context`.
    pub fn render(step: &Step, context: serde_json::Value) -> serde_json::Value {
        step.action
            .render(&crate::template::to_value(&context))
            .unwrap()
    }
}
