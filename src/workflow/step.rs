//! Steps compiled: the common keys (SPEC §2.3) and one action whose strings are template trees.

use super::Condition;
use super::config::{RetryConfig, StepConfig};
use crate::duration::parse_duration;
use crate::steps::emit::EmitConfig;
use crate::steps::gitops::GitopsConfig;
use crate::steps::http::HttpConfig;
use crate::steps::notify::{NotifyConfig, NotifyError};
use crate::steps::scale::ScaleConfig;
use crate::template::{TemplateTree, Templates, TreeMode};
use crate::yaml::{YamlError, YamlPath};
use serde_json::Value as Json;
use std::time::Duration;

/// SPEC §5.2: a step without its own `timeout` is stopped after this long.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The action keys; a step has exactly one.
pub const ACTION_KEYS: &[&str] = &["run", "http", "notify", "render", "gitops", "scale", "emit"];

#[derive(Debug)]
pub struct Step {
    pub id: String,
    pub name: Option<String>,
    /// `None` means the default, `success()`.
    pub condition: Option<Condition>,
    pub env: Vec<(String, TemplateTree)>,
    pub timeout: Duration,
    pub retry: Retry,
    pub continue_on_error: bool,
    pub action: Action,
    /// Where the step is in its file (`steps[2]`, `jobs.build.steps[0]`).
    pub path: YamlPath,
    /// Things worth a warning from `validate` (`| safe` on event data).
    pub warnings: Vec<YamlError>,
}

#[derive(Debug)]
pub enum Action {
    Run {
        script: TemplateTree,
        shell: Option<TemplateTree>,
        working_directory: Option<TemplateTree>,
    },
    Http(TemplateTree),
    Notify(TemplateTree),
    Render {
        template: TemplateTree,
        to: TemplateTree,
        vars: TemplateTree,
    },
    /// `scale:` without `apply`, and `apply` on its own: the script is rendered only once the
    /// decision is made, with `desired` and the other outputs in its context.
    Scale {
        config: TemplateTree,
        apply: Option<TemplateTree>,
    },
    Emit(TemplateTree),
    Gitops(TemplateTree),
}

impl Action {
    /// The step kind as output shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Run { .. } => "run",
            Action::Http(_) => "http",
            Action::Notify(_) => "notify",
            Action::Render { .. } => "render",
            Action::Scale { .. } => "scale",
            Action::Emit(_) => "emit",
            Action::Gitops(_) => "gitops",
        }
    }

    /// The key in the workflow file whose value is this action.
    pub fn key(&self) -> &'static str {
        self.kind()
    }
}

/// `retry:` — `attempts` counts tries; waits grow by `factor` up to `max_backoff`.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
    pub factor: f64,
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 1,
            backoff: Duration::from_secs(1),
            factor: 2.0,
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// The wait before try `attempt + 1` (after `attempt` failed tries).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1) as i32;
        let seconds = self.backoff.as_secs_f64() * self.factor.powi(exponent);
        Duration::from_secs_f64(seconds.min(self.max_backoff.as_secs_f64()).max(0.0))
    }
}

/// Everything a step needs from its surroundings to compile.
pub struct StepSite<'a> {
    pub templates: &'a Templates,
    pub text: &'a str,
    pub path: &'a YamlPath,
    pub index: usize,
}

impl Step {
    /// Checks and compiles one step. `id` defaults to `step-N` (1-based).
    pub fn compile(config: StepConfig, site: &StepSite) -> Result<Step, YamlError> {
        let StepSite {
            templates,
            text,
            path,
            index,
        } = *site;
        let at = |key: &str, message: String| {
            YamlError::new(message, crate::yaml::locate(text, &path.key(key), true))
        };
        let present: Vec<&str> = [
            ("run", config.run.is_some()),
            ("http", config.http.is_some()),
            ("notify", config.notify.is_some()),
            ("render", config.render.is_some()),
            ("gitops", config.gitops.is_some()),
            ("scale", config.scale.is_some()),
            ("emit", config.emit.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        if present.len() != 1 {
            let found = if present.is_empty() {
                "none".to_string()
            } else {
                present
                    .iter()
                    .map(|key| format!("`{key}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(YamlError::new(
                format!(
                    "a step needs exactly one action ({}), found {found}",
                    ACTION_KEYS
                        .iter()
                        .map(|key| format!("`{key}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                crate::yaml::locate(text, path, false),
            ));
        }
        let kind = present[0];
        // For the `| safe` warnings, which look at the script as written.
        let scale_apply = config
            .scale
            .as_ref()
            .and_then(|scale| scale.get("apply"))
            .and_then(Json::as_str)
            .map(str::to_string);
        for (key, set, owner) in [
            ("shell", config.shell.is_some(), "run"),
            (
                "working-directory",
                config.working_directory.is_some(),
                "run",
            ),
            ("to", config.to.is_some(), "render"),
            ("vars", config.vars.is_some(), "render"),
        ] {
            if set && kind != owner {
                return Err(at(
                    key,
                    format!("`{key}` belongs to `{owner}` steps, not `{kind}`"),
                ));
            }
        }
        let id = match config.id {
            Some(id) => {
                if !valid_id(&id) {
                    return Err(at(
                        "id",
                        format!("step id `{id}` must match [A-Za-z_][A-Za-z0-9_-]*"),
                    ));
                }
                id
            }
            None => format!("step-{}", index + 1),
        };
        let compile_tree = |value: &Json, mode: TreeMode, key: &str| {
            TemplateTree::compile(templates, value, mode, &path.key(key))
                .map_err(|error| tree_error(text, error))
        };
        let compile_text = |value: &str, mode: TreeMode, key: &str| {
            TemplateTree::compile_string(templates, value, mode, &path.key(key))
                .map_err(|error| tree_error(text, error))
        };
        let action = match kind {
            "run" => Action::Run {
                script: compile_text(
                    config.run.as_deref().unwrap_or_default(),
                    TreeMode::Shell,
                    "run",
                )?,
                shell: config
                    .shell
                    .as_deref()
                    .map(|shell| compile_text(shell, TreeMode::Text, "shell"))
                    .transpose()?,
                working_directory: config
                    .working_directory
                    .as_deref()
                    .map(|directory| compile_text(directory, TreeMode::Text, "working-directory"))
                    .transpose()?,
            },
            "http" => {
                let value = config.http.unwrap_or(Json::Null);
                check_shape::<HttpConfig>(&value, text, &path.key("http"))?;
                Action::Http(compile_http(templates, &value, text, &path.key("http"))?)
            }
            "notify" => {
                let value = config.notify.unwrap_or(Json::Null);
                let notify: Option<NotifyConfig> = check_shape(&value, text, &path.key("notify"))?;
                match notify.map(|notify| notify.validate()).unwrap_or(Ok(())) {
                    Err(
                        error
                        @ (NotifyError::TargetCount { .. } | NotifyError::GithubAction { .. }),
                    ) => {
                        return Err(at("notify", error.to_string()));
                    }
                    Err(error @ NotifyError::InvalidState(_))
                        if !crate::template::is_template(&value.to_string()) =>
                    {
                        return Err(at("notify", error.to_string()));
                    }
                    _ => {}
                }
                Action::Notify(compile_tree(&value, TreeMode::Text, "notify")?)
            }
            "render" => {
                let to = config.to.ok_or_else(|| {
                    at(
                        "render",
                        "`render` needs `to:` (the file to write)".to_string(),
                    )
                })?;
                // A template named literally is loaded and compiled now, so that a missing file or
                // a syntax error in it is a load error, not a run-time one.
                let name = config.render.as_deref().unwrap_or_default();
                if !crate::template::is_template(name)
                    && let Err(error) = templates.file(name)
                {
                    let line = error
                        .line
                        .map(|line| format!(" (line {line})"))
                        .unwrap_or_default();
                    return Err(YamlError::new(
                        format!("render: template `{name}`{line}: {}", error.message),
                        crate::yaml::locate(text, &path.key("render"), false),
                    ));
                }
                Action::Render {
                    template: compile_text(
                        config.render.as_deref().unwrap_or_default(),
                        TreeMode::Text,
                        "render",
                    )?,
                    to: compile_text(&to, TreeMode::Text, "to")?,
                    vars: compile_tree(
                        &config.vars.unwrap_or(Json::Object(Default::default())),
                        TreeMode::Native,
                        "vars",
                    )?,
                }
            }
            "scale" => {
                let value = config.scale.unwrap_or(Json::Null);
                let scale: Option<ScaleConfig> = check_shape(&value, text, &path.key("scale"))?;
                check_scale_durations(scale.as_ref(), text, &path.key("scale"))?;
                let mut value = value;
                let apply = match value.as_object_mut().and_then(|map| map.remove("apply")) {
                    Some(Json::String(script)) => Some(
                        TemplateTree::compile_string(
                            templates,
                            &script,
                            TreeMode::Shell,
                            &path.key("scale").key("apply"),
                        )
                        .map_err(|error| tree_error(text, error))?,
                    ),
                    Some(_) => {
                        return Err(YamlError::new(
                            "`scale.apply` must be a shell script (a string)",
                            crate::yaml::locate(text, &path.key("scale").key("apply"), false),
                        ));
                    }
                    None => None,
                };
                Action::Scale {
                    config: compile_tree(&value, TreeMode::Text, "scale")?,
                    apply,
                }
            }
            "gitops" => {
                let value = config.gitops.unwrap_or(Json::Null);
                let gitops: Option<GitopsConfig> = check_shape(&value, text, &path.key("gitops"))?;
                if let Some(Err(message)) = gitops.as_ref().map(GitopsConfig::validate) {
                    return Err(at("gitops", message));
                }
                Action::Gitops(compile_tree(&value, TreeMode::Text, "gitops")?)
            }
            "emit" => {
                let value = config.emit.unwrap_or(Json::Null);
                check_shape::<EmitConfig>(&value, text, &path.key("emit"))?;
                Action::Emit(compile_emit(templates, &value, text, &path.key("emit"))?)
            }
            other => {
                return Err(at(
                    other,
                    format!("`{other}` steps are not available in this version of vane yet"),
                ));
            }
        };
        let timeout = match &config.timeout {
            Some(timeout) => parse_duration(timeout).map_err(|message| {
                YamlError::new(
                    message,
                    crate::yaml::locate(text, &path.key("timeout"), false),
                )
            })?,
            None => DEFAULT_STEP_TIMEOUT,
        };
        let retry = match config.retry {
            Some(retry) => compile_retry(retry).map_err(|(key, message)| {
                YamlError::new(
                    message,
                    crate::yaml::locate(text, &path.key("retry").key(key), true),
                )
            })?,
            None => Retry::default(),
        };
        let condition = match &config.condition {
            Some(source) => Some(compile_condition(templates, source, text, &path.key("if"))?),
            None => None,
        };
        let env = compile_env(templates, &config.env, text, &path.key("env"))?;
        let warnings = match (&config.run, scale_apply) {
            (Some(script), _) => unsafe_interpolations(script, text, &path.key("run")),
            (None, Some(script)) => {
                unsafe_interpolations(&script, text, &path.key("scale").key("apply"))
            }
            (None, None) => Vec::new(),
        };
        Ok(Step {
            id,
            name: config.name,
            condition,
            env,
            timeout,
            retry,
            continue_on_error: config.continue_on_error,
            action,
            path: path.clone(),
            warnings,
        })
    }
}

/// `| safe` on `event.*` in a run script: the author turned off escaping for attacker-controlled
/// text, which `validate` points out (SPEC §5.1).
fn unsafe_interpolations(script: &str, text: &str, path: &YamlPath) -> Vec<YamlError> {
    let Ok(escaped) = crate::template::shell::escape_script(script) else {
        return Vec::new();
    };
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

/// The position of byte `offset` of a scalar's value, given where the scalar starts. Exact for
/// plain and block scalars; quoted ones are off by their escapes at most.
fn offset_position(
    text: &str,
    start: crate::yaml::Position,
    value: &str,
    offset: usize,
) -> crate::yaml::Position {
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

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks the keys (and, where nothing is templated, the types) of an action's own map before
/// any template is rendered, so that a misspelt key is a load error, not a run-time one. A
/// templated value's type is only known once rendered, so a type error on one waits for then.
fn check_shape<T: serde::de::DeserializeOwned>(
    value: &Json,
    text: &str,
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
            Err(YamlError::new(
                format!("{path}: {rewritten}"),
                crate::yaml::locate(text, path, false),
            ))
        }
    }
}

/// A literal stabilization window is read at load time, so that `5 minutes` is a load error with
/// a position; a templated one waits until the step runs.
fn check_scale_durations(
    scale: Option<&ScaleConfig>,
    text: &str,
    path: &YamlPath,
) -> Result<(), YamlError> {
    let Some(scale) = scale else {
        return Ok(());
    };
    for (key, behavior) in [
        ("scale-up", &scale.scale_up),
        ("scale-down", &scale.scale_down),
    ] {
        let Some(window) = behavior
            .as_ref()
            .and_then(|behavior| behavior.stabilization.as_deref())
        else {
            continue;
        };
        if crate::template::is_template(window) {
            continue;
        }
        if let Err(message) = parse_duration(window) {
            let at = path.key(key).key("stabilization");
            return Err(YamlError::new(
                format!("{at}: {message}"),
                crate::yaml::locate(text, &at, false),
            ));
        }
    }
    Ok(())
}

/// `http:` with `json:` in native mode, so that a body keeps the types of its values.
fn compile_http(
    templates: &Templates,
    value: &Json,
    text: &str,
    path: &YamlPath,
) -> Result<TemplateTree, YamlError> {
    compile_with_native_key(templates, value, "json", text, path)
}

/// `emit:` with `data:` in native mode.
fn compile_emit(
    templates: &Templates,
    value: &Json,
    text: &str,
    path: &YamlPath,
) -> Result<TemplateTree, YamlError> {
    compile_with_native_key(templates, value, "data", text, path)
}

fn compile_with_native_key(
    templates: &Templates,
    value: &Json,
    native_key: &str,
    text: &str,
    path: &YamlPath,
) -> Result<TemplateTree, YamlError> {
    let Json::Object(map) = value else {
        return TemplateTree::compile(templates, value, TreeMode::Text, path)
            .map_err(|error| tree_error(text, error));
    };
    let mut entries = Vec::with_capacity(map.len());
    for (key, item) in map {
        let mode = if key == native_key {
            TreeMode::Native
        } else {
            TreeMode::Text
        };
        let tree = TemplateTree::compile(templates, item, mode, &path.key(key))
            .map_err(|error| tree_error(text, error))?;
        entries.push((key.clone(), tree));
    }
    Ok(TemplateTree::Map(entries))
}

pub(super) fn tree_error(text: &str, error: crate::template::TreeError) -> YamlError {
    let position = template_position(text, &error.path, error.error.line);
    YamlError::new(format!("{}: {}", error.path, error.error.message), position)
}

/// Where line `line` of the template at `path` is in the file: block scalars (`run: |`) start on
/// the line after their indicator.
pub fn template_position(
    text: &str,
    path: &YamlPath,
    line: Option<usize>,
) -> Option<crate::yaml::Position> {
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

fn is_block_scalar_at(text: &str, position: crate::yaml::Position) -> bool {
    text.lines()
        .nth(position.line.saturating_sub(1))
        .and_then(|line| line.get(position.column.saturating_sub(1)..))
        .is_some_and(|rest| rest.starts_with('|') || rest.starts_with('>'))
}

pub(super) fn compile_condition(
    templates: &Templates,
    source: &str,
    text: &str,
    path: &YamlPath,
) -> Result<Condition, YamlError> {
    let expression = templates.compile_expression(source).map_err(|error| {
        YamlError::new(
            format!("{path}: {}", error.message),
            crate::yaml::locate(text, path, false),
        )
    })?;
    Ok(Condition {
        source: crate::template::strip_braces(source).to_string(),
        expression,
        path: path.clone(),
    })
}

/// `env:` maps: values are templates; numbers and booleans are written as their text.
pub(super) fn compile_env(
    templates: &Templates,
    mapping: &serde_yaml::Mapping,
    text: &str,
    path: &YamlPath,
) -> Result<Vec<(String, TemplateTree)>, YamlError> {
    let mut env = Vec::with_capacity(mapping.len());
    for (key, value) in mapping {
        let Some(name) = key.as_str() else {
            return Err(YamlError::new(
                "`env` keys must be strings",
                crate::yaml::locate(text, path, false),
            ));
        };
        let value_text = match value {
            serde_yaml::Value::String(text) => text.clone(),
            serde_yaml::Value::Number(number) => number.to_string(),
            serde_yaml::Value::Bool(flag) => flag.to_string(),
            serde_yaml::Value::Null => String::new(),
            _ => {
                return Err(YamlError::new(
                    format!("`env.{name}` must be a string, number or boolean"),
                    crate::yaml::locate(text, &path.key(name), false),
                ));
            }
        };
        let tree =
            TemplateTree::compile_string(templates, &value_text, TreeMode::Text, &path.key(name))
                .map_err(|error| tree_error(text, error))?;
        env.push((name.to_string(), tree));
    }
    Ok(env)
}

fn compile_retry(config: RetryConfig) -> Result<Retry, (&'static str, String)> {
    let mut retry = Retry::default();
    if let Some(attempts) = config.attempts {
        if attempts == 0 {
            return Err((
                "attempts",
                "`attempts` counts tries and must be at least 1".to_string(),
            ));
        }
        retry.attempts = attempts;
    }
    if let Some(backoff) = &config.backoff {
        retry.backoff = parse_duration(backoff).map_err(|message| ("backoff", message))?;
    }
    if let Some(factor) = config.factor {
        if !(factor >= 1.0 && factor.is_finite()) {
            return Err((
                "factor",
                format!("`factor` must be at least 1, found `{factor}`"),
            ));
        }
        retry.factor = factor;
    }
    if let Some(max_backoff) = &config.max_backoff {
        retry.max_backoff =
            parse_duration(max_backoff).map_err(|message| ("max-backoff", message))?;
    }
    Ok(retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_factor_up_to_the_cap() {
        let retry = Retry {
            attempts: 5,
            backoff: Duration::from_secs(1),
            factor: 2.0,
            max_backoff: Duration::from_secs(5),
        };
        let delays: Vec<u64> = (1..=4)
            .map(|attempt| retry.delay_after(attempt).as_secs())
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 5]);
    }

    #[test]
    fn step_ids_are_identifiers() {
        assert!(valid_id("apply"));
        assert!(valid_id("build_2-x"));
        assert!(!valid_id("2x"));
        assert!(!valid_id("a.b"));
    }
}
