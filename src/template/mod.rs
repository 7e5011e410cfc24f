//! The one minijinja environment: filters, status functions, strict undefined, fuel, and the
//! compiled template trees that every templated string of a workflow becomes.

mod context;
mod filters;
pub mod shell;
pub mod tree;

pub use context::{EventObject, STATUS_VARIABLE, StepView, StepsObject};
pub use tree::{TemplateTree, TreeError, TreeMode};

use minijinja::{Environment, Error as JinjaError, ErrorKind, UndefinedBehavior, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

/// How much work one render may do before it is stopped (minijinja fuel: about one unit per
/// instruction). Generous for any real template, and it ends an accidental infinite recursion.
pub const TEMPLATE_FUEL: u64 = 2_000_000;

/// A template string (a `run` script, a URL, a message …), checked when the workflow loads and
/// compiled for keeps on first render. Measured: minijinja reserves a few KiB per compiled
/// template, so keeping every template of 1,000 workflows compiled took most of a cold start in
/// page faults; a workflow that never matches never needs its templates.
#[derive(Debug)]
pub struct Template {
    env: &'static Environment<'static>,
    source: &'static str,
    compiled: OnceLock<minijinja::Template<'static, 'static>>,
}

/// An expression (an `if`), checked at load and compiled for keeps on first use.
#[derive(Debug)]
pub struct Expression {
    env: &'static Environment<'static>,
    source: String,
    compiled: OnceLock<minijinja::Expression<'static, 'static>>,
}

impl Template {
    /// The template text (after any rewriting, such as shell escaping).
    pub fn source(&self) -> &str {
        match self.compiled.get() {
            Some(compiled) if self.source.is_empty() => compiled.source(),
            _ => self.source,
        }
    }

    fn get(&self) -> Result<&minijinja::Template<'static, 'static>, JinjaError> {
        if let Some(compiled) = self.compiled.get() {
            return Ok(compiled);
        }
        let compiled = self.env.template_from_named_str("template", self.source)?;
        Ok(self.compiled.get_or_init(|| compiled))
    }
}

impl Expression {
    fn get(&self) -> Result<&minijinja::Expression<'static, 'static>, JinjaError> {
        if let Some(compiled) = self.compiled.get() {
            return Ok(compiled);
        }
        let compiled = self.env.compile_expression_owned(self.source.clone())?;
        Ok(self.compiled.get_or_init(|| compiled))
    }
}

/// The environment templates compile against. It lives for the whole process: compiled
/// templates borrow it, and workflows are loaded once per process.
#[derive(Clone, Copy)]
pub struct Templates {
    env: &'static Environment<'static>,
}

/// A template that did not compile or render, with the line inside the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
    /// 1-based line inside the template text, where minijinja knows it.
    pub line: Option<usize>,
}

impl Templates {
    /// Builds the environment; template files (`render:`) are loaded from `templates_dir` on first use.
    pub fn new(templates_dir: &Path) -> Templates {
        Templates::with_loader(minijinja::path_loader(templates_dir))
    }

    /// Builds the environment over template files held in memory, by name relative to the
    /// templates folder (`apps/deployment.yaml.j2`): the files of one git revision.
    pub fn from_files(files: HashMap<String, Vec<u8>>) -> Templates {
        Templates::with_loader(move |name: &str| match files.get(name) {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes.clone()).map(Some).map_err(|_| {
                JinjaError::new(
                    ErrorKind::InvalidOperation,
                    format!("template `{name}` is not valid UTF-8"),
                )
            }),
        })
    }

    fn with_loader<F, R>(loader: F) -> Templates
    where
        F: Fn(&str) -> Result<Option<R>, JinjaError> + Send + Sync + 'static,
        R: Into<minijinja::TemplateSource>,
    {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_recursion_limit(128);
        // Templates produce shell scripts, YAML and JSON, never HTML: no auto-escaping.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        // Rendered files keep their last newline, as the template file has it.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        env.set_loader(loader);
        filters::register(&mut env);
        context::register_status_functions(&mut env);
        Templates {
            env: Box::leak(Box::new(env)),
        }
    }

    /// Compiles a template string. The source is kept for the life of the process.
    pub fn compile(&self, source: &str) -> Result<Template, TemplateError> {
        let source: &'static str = Box::leak(source.to_string().into_boxed_str());
        // Compiled here to report syntax errors at load time, then dropped (see `Template`).
        self.env
            .template_from_named_str("template", source)
            .map_err(|error| describe(&error, source))?;
        Ok(Template {
            env: self.env,
            source,
            compiled: OnceLock::new(),
        })
    }

    /// Compiles an expression; a surrounding `{{ }}` is stripped, as GitHub Actions does for `if`.
    pub fn compile_expression(&self, source: &str) -> Result<Expression, TemplateError> {
        let trimmed = strip_braces(source);
        self.env
            .compile_expression(trimmed)
            .map_err(|error| describe(&error, trimmed))?;
        Ok(Expression {
            env: self.env,
            source: trimmed.to_string(),
            compiled: OnceLock::new(),
        })
    }

    /// A template file from the templates folder (`render:` steps).
    pub fn file(&self, name: &str) -> Result<Template, TemplateError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|error| match error.kind() {
                ErrorKind::TemplateNotFound => TemplateError {
                    message: format!("template `{name}` not found"),
                    line: None,
                },
                _ => describe(&error, ""),
            })?;
        let compiled = OnceLock::new();
        let _ = compiled.set(template);
        // A file template's text is owned by the environment's cache; `source()` reads it there.
        Ok(Template {
            env: self.env,
            source: "",
            compiled,
        })
    }

    /// Renders a compiled template, mapping errors to their line and the undefined name.
    pub fn render(template: &Template, context: &Value) -> Result<String, TemplateError> {
        template
            .get()
            .and_then(|compiled| compiled.render(context))
            .map_err(|error| describe(&error, template.source()))
    }

    /// Evaluates an expression.
    pub fn eval(expression: &Expression, context: &Value) -> Result<Value, TemplateError> {
        expression
            .get()
            .and_then(|compiled| compiled.eval(context))
            .map_err(|error| describe(&error, &expression.source))
    }
}

/// Any serializable value as a template value.
pub fn to_value<T: serde::Serialize + ?Sized>(value: &T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// `{{ expr }}` → `expr`, anything else unchanged.
pub fn strip_braces(source: &str) -> &str {
    let trimmed = source.trim();
    match trimmed
        .strip_prefix("{{")
        .and_then(|inner| inner.strip_suffix("}}"))
    {
        Some(inner) if !inner.contains("{{") && !inner.contains("}}") => inner.trim(),
        _ => trimmed,
    }
}

/// True where a string holds template syntax at all; plain strings skip compilation.
pub fn is_template(source: &str) -> bool {
    source.contains("{{") || source.contains("{%") || source.contains("{#")
}

/// An error message users can act on: the undefined name rather than "undefined value".
fn describe(error: &JinjaError, source: &str) -> TemplateError {
    let fragment = error
        .range()
        .and_then(|range| source.get(range))
        .map(str::trim)
        .filter(|fragment| !fragment.is_empty());
    let detail = error.detail().map(str::to_string);
    let message = match (error.kind(), fragment) {
        (ErrorKind::UndefinedError, Some(_)) => {
            undefined_message(source, error.range().unwrap_or_default())
        }
        (ErrorKind::UndefinedError, None) => "undefined value".to_string(),
        (ErrorKind::OutOfFuel, _) => {
            format!("template used up its fuel ({TEMPLATE_FUEL} instructions)")
        }
        (ErrorKind::SyntaxError, _) => {
            format!("template syntax error: {}", detail.unwrap_or_default())
        }
        (ErrorKind::UnknownFilter, _) => format!("unknown filter: {}", detail.unwrap_or_default()),
        (ErrorKind::UnknownFunction, _) => {
            format!("unknown function: {}", detail.unwrap_or_default())
        }
        (_, Some(fragment)) => {
            format!(
                "{} in `{fragment}`",
                detail.unwrap_or_else(|| error.kind().to_string())
            )
        }
        _ => detail.unwrap_or_else(|| error.kind().to_string()),
    };
    let mut message = message;
    // A workflow's `secrets` holds only the names it declares, so an undefined secret is nearly
    // always one that was not declared.
    if message.starts_with("undefined value `secrets.") {
        message.push_str(" (a workflow sees only the secrets it declares: add it to `secrets:`)");
    }
    // A filter's own error (bad regex, bad base64) is the cause worth showing.
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        message.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    TemplateError {
        message,
        line: error.line(),
    }
}

/// Names what is undefined. minijinja's error range covers the failing lookup: `x.y` when `x.y`
/// itself is printed, but only `.y.z` when `.z` is read from an undefined `x.y` — then the chain
/// is widened to its start and the last lookup dropped, so the message names `x.y`.
fn undefined_message(source: &str, range: std::ops::Range<usize>) -> String {
    let fragment = source.get(range.clone()).unwrap_or_default().trim();
    if fragment.starts_with('.') || fragment.starts_with('[') {
        let is_chain =
            |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '\'' | '"');
        let start = source[..range.start]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_chain(*c))
            .last()
            .map_or(range.start, |(index, _)| index);
        let chain = source[start..range.end].trim();
        let cut = chain.rfind(['.', '[']).unwrap_or(chain.len());
        return format!("undefined value `{}`", &chain[..cut]);
    }
    let before = source[..range.start].trim_end();
    // `(expr) | sh_bare`, as run scripts are rewritten: the undefined value is the expression.
    if let Some(expression) = before
        .strip_suffix('|')
        .map(str::trim_end)
        .and_then(|head| head.strip_suffix(')'))
        && let Some(open) = matching_open(expression)
    {
        let inner = expression[open + 1..].trim();
        return format!("undefined value `{inner}`");
    }
    if before.ends_with('|') {
        return format!("undefined value passed to the filter `{fragment}`");
    }
    format!("undefined value `{fragment}`")
}

/// The index of the `(` that the `)` just past the end of `text` closes.
fn matching_open(text: &str) -> Option<usize> {
    let mut depth = 1usize;
    for (index, character) in text.char_indices().rev() {
        match character {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn undefined_names_are_named_whole() {
        let templates = Templates::new(Path::new("templates"));
        let context = context! { event => context! { data => context! {} }, x => context! {} };
        for (source, expected) in [
            (
                "echo {{ event.data.missing.field }}",
                "undefined value `event.data.missing`",
            ),
            ("{{ x.y }}", "undefined value `x.y`"),
            ("{{ nope }}", "undefined value `nope`"),
            ("{{ x['y'].z }}", "undefined value `x['y']`"),
            (
                "echo {{ (event.data.nope) | sh_bare }}",
                "undefined value `event.data.nope`",
            ),
        ] {
            let error =
                Templates::render(&templates.compile(source).unwrap(), &context).unwrap_err();
            assert_eq!(error.message, expected, "{source}");
        }
    }

    fn templates() -> Templates {
        Templates::new(Path::new("templates"))
    }

    #[test]
    fn undefined_names_are_errors_that_name_them() {
        let template = templates().compile("a\nb {{ event.nope }}").unwrap();
        let error = Templates::render(&template, &context! { event => context! { repo => "x" } })
            .unwrap_err();
        assert_eq!(error.message, "undefined value `event.nope`");
        assert_eq!(error.line, Some(2));
    }

    #[test]
    fn syntax_errors_are_caught_at_compile_time() {
        let error = templates().compile("{{ event.repo ").unwrap_err();
        assert!(
            error.message.starts_with("template syntax error"),
            "{}",
            error.message
        );
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let template = templates()
            .compile("{% for a in range(1000) %}{% for b in range(1000) %}{{ a }}{% endfor %}{% endfor %}")
            .unwrap();
        let error = Templates::render(&template, &context! {}).unwrap_err();
        assert!(error.message.contains("fuel"), "{}", error.message);
    }

    #[test]
    fn expressions_may_be_wrapped_in_braces() {
        assert_eq!(strip_braces("{{ a == 1 }}"), "a == 1");
        assert_eq!(strip_braces("a == 1"), "a == 1");
        assert_eq!(strip_braces("{{ a }} and {{ b }}"), "{{ a }} and {{ b }}");
        let expression = templates().compile_expression("{{ n > 2 }}").unwrap();
        assert!(
            Templates::eval(&expression, &context! { n => 3 })
                .unwrap()
                .is_true()
        );
    }
}
