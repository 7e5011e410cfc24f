//! A value in which every string is a template, compiled once at load time and rendered just
//! before its step runs.

use super::{Expression, Template, TemplateError, Templates, is_template, shell, strip_braces};
use crate::yaml::{PathSegment, YamlPath};
use minijinja::Value;
use serde_json::Value as Json;

/// How a string is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeMode {
    /// Plain text: the rendered string.
    Text,
    /// Text, but a string that is exactly one `{{ expr }}` keeps the expression's type (a number,
    /// a list, an object), as Ansible's native types do. Used for `vars`, JSON bodies, `emit.data`.
    Native,
    /// A shell script: every interpolation is escaped for the shell context it lands in (SPEC §5.1).
    Shell,
}

/// A compiled value: literals, templates, and maps and lists of them.
#[derive(Debug)]
pub enum TemplateTree {
    Literal(Json),
    Text(Box<Template>),
    Native(Box<Expression>, String),
    Map(Vec<(String, TemplateTree)>),
    List(Vec<TemplateTree>),
}

/// A template that failed, and where in the workflow it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct TreeError {
    pub path: YamlPath,
    pub error: TemplateError,
}

impl TreeError {
    fn under(mut self, segment: PathSegment) -> TreeError {
        self.path.0.insert(0, segment);
        self
    }

    /// The error with its path made absolute under `base`.
    pub fn within(mut self, base: &YamlPath) -> TreeError {
        let mut path = base.clone();
        path.0.append(&mut self.path.0);
        self.path = path;
        self
    }
}

impl TemplateTree {
    /// Compiles every string inside `value`. `path` is where `value` sits in its workflow file.
    pub fn compile(
        templates: &Templates,
        value: &Json,
        mode: TreeMode,
        path: &YamlPath,
    ) -> Result<Self, TreeError> {
        Ok(match value {
            Json::String(text) => Self::compile_string(templates, text, mode, path)?,
            Json::Array(items) => TemplateTree::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| Self::compile(templates, item, mode, &path.index(index)))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(map) => TemplateTree::Map(
                map.iter()
                    .map(|(key, item)| {
                        Ok((
                            key.clone(),
                            Self::compile(templates, item, mode, &path.key(key))?,
                        ))
                    })
                    .collect::<Result<_, TreeError>>()?,
            ),
            scalar => TemplateTree::Literal(scalar.clone()),
        })
    }

    /// Compiles one string.
    pub fn compile_string(
        templates: &Templates,
        text: &str,
        mode: TreeMode,
        path: &YamlPath,
    ) -> Result<Self, TreeError> {
        let fail = |error: TemplateError| TreeError {
            path: path.clone(),
            error,
        };
        if !is_template(text) {
            return Ok(TemplateTree::Literal(Json::String(text.to_string())));
        }
        match mode {
            TreeMode::Native if is_single_expression(text) => {
                let source = strip_braces(text).to_string();
                let expression = templates.compile_expression(&source).map_err(fail)?;
                Ok(TemplateTree::Native(Box::new(expression), source))
            }
            TreeMode::Shell => {
                let escaped = shell::escape_script(text).map_err(|error| {
                    fail(TemplateError {
                        message: error.message.clone(),
                        line: Some(line_of(text, error.offset)),
                    })
                })?;
                Ok(TemplateTree::Text(Box::new(
                    templates.compile(&escaped.source).map_err(fail)?,
                )))
            }
            _ => Ok(TemplateTree::Text(Box::new(
                templates.compile(text).map_err(fail)?,
            ))),
        }
    }

    /// Renders the tree into plain JSON. An error's path is relative to this tree's root; the
    /// path is only built when something fails, so rendering allocates nothing for it.
    pub fn render(&self, context: &Value) -> Result<Json, TreeError> {
        let fail = |error: TemplateError| TreeError {
            path: YamlPath::default(),
            error,
        };
        Ok(match self {
            TemplateTree::Literal(value) => value.clone(),
            TemplateTree::Text(template) => {
                Json::String(Templates::render(template, context).map_err(fail)?)
            }
            TemplateTree::Native(expression, source) => {
                let value = Templates::eval(expression, context).map_err(fail)?;
                if value.is_undefined() {
                    return Err(fail(TemplateError {
                        message: format!("undefined value `{source}`"),
                        line: Some(1),
                    }));
                }
                serde_json::to_value(&value).map_err(|error| {
                    fail(TemplateError {
                        message: format!("`{source}` cannot be made JSON: {error}"),
                        line: Some(1),
                    })
                })?
            }
            TemplateTree::Map(entries) => {
                let mut map = serde_json::Map::with_capacity(entries.len());
                for (key, item) in entries {
                    let value = item
                        .render(context)
                        .map_err(|error| error.under(PathSegment::Key(key.clone())))?;
                    map.insert(key.clone(), value);
                }
                Json::Object(map)
            }
            TemplateTree::List(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        item.render(context)
                            .map_err(|error| error.under(PathSegment::Index(index)))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// True when nothing in the tree needs rendering.
    pub fn is_literal(&self) -> bool {
        match self {
            TemplateTree::Literal(_) => true,
            TemplateTree::Text(_) | TemplateTree::Native(..) => false,
            TemplateTree::Map(entries) => entries.iter().all(|(_, item)| item.is_literal()),
            TemplateTree::List(items) => items.iter().all(TemplateTree::is_literal),
        }
    }
}

/// `{{ expr }}` and nothing else, so the value keeps its type.
fn is_single_expression(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.starts_with("{{")
        && trimmed.ends_with("}}")
        && trimmed.matches("{{").count() == 1
        && trimmed.matches("}}").count() == 1
        && !trimmed.contains("{%")
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn native_mode_keeps_types_and_text_mode_makes_strings() {
        let templates = Templates::new(Path::new("templates"));
        let value = json!({"n": "{{ count }}", "s": "n={{ count }}", "list": ["{{ items }}", 1], "plain": "x"});
        let root = YamlPath::default();
        let native = TemplateTree::compile(&templates, &value, TreeMode::Native, &root).unwrap();
        let context = context! { count => 3, items => vec![1, 2] };
        assert_eq!(
            native.render(&context).unwrap(),
            json!({"n": 3, "s": "n=3", "list": [[1, 2], 1], "plain": "x"})
        );
        let text = TemplateTree::compile(&templates, &value, TreeMode::Text, &root).unwrap();
        assert_eq!(text.render(&context).unwrap()["n"], json!("3"));
    }

    #[test]
    fn render_errors_carry_the_path() {
        let templates = Templates::new(Path::new("templates"));
        let value = json!({"headers": {"X": "{{ nope.x }}"}});
        let root = YamlPath::default().key("http");
        let tree = TemplateTree::compile(&templates, &value, TreeMode::Text, &root).unwrap();
        let error = tree.render(&context! {}).unwrap_err().within(&root);
        assert_eq!(error.path.to_string(), "http.headers.X");
    }

    #[test]
    fn shell_mode_escapes_interpolations() {
        let templates = Templates::new(Path::new("templates"));
        let tree = TemplateTree::compile_string(
            &templates,
            "echo {{ t }}",
            TreeMode::Shell,
            &YamlPath::default(),
        )
        .unwrap();
        let rendered = tree.render(&context! { t => "a'b" }).unwrap();
        assert_eq!(rendered, json!(r"echo 'a'\''b'"));
    }
}
