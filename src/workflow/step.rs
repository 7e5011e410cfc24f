//! Steps compiled: the common keys (SPEC §2.3) here, and one action compiled by its kind
//! (`crate::steps`, which the registry lists).

use super::Condition;
use super::config::{COMMON_STEP_KEYS, RetryConfig, StepConfig};
use crate::duration::parse_duration;
pub use crate::steps::compile::{template_position, tree_error};
use crate::steps::{Compiled, CompiledStep, StepSite};
use crate::template::{TemplateTree, Templates, TreeMode};
use crate::yaml::{YamlError, YamlPath};
use std::time::Duration;

/// SPEC §5.2: a step without its own `timeout` is stopped after this long.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

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
    /// The step kind (its action key) as output shows it: `run`, `http`…
    pub kind: &'static str,
    /// The action, compiled by its kind (`crate::steps`).
    pub action: Box<dyn CompiledStep>,
    /// Where the step is in its file (`steps[2]`, `jobs.build.steps[0]`).
    pub path: YamlPath,
    /// Things worth a warning from `validate` (`| safe` on event data).
    pub warnings: Vec<YamlError>,
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

impl Step {
    /// Checks and compiles one step: its common keys here, its action by the kind its action key
    /// names (`site.kinds`). `id` defaults to `step-N` (1-based).
    pub fn compile(value: serde_yaml::Value, site: &StepSite) -> Result<Step, YamlError> {
        let (text, path) = (site.text, site.path);
        let serde_yaml::Value::Mapping(mapping) = value else {
            // Not a mapping: the common keys' deserializer words the error.
            let config = crate::yaml::from_value::<StepConfig>(value, text, path)?;
            return Step::compile_parts(config, serde_yaml::Mapping::new(), site);
        };
        let (common, owned) = site.kinds.split(mapping, COMMON_STEP_KEYS, site)?;
        let config =
            crate::yaml::from_value::<StepConfig>(serde_yaml::Value::Mapping(common), text, path)?;
        Step::compile_parts(config, owned, site)
    }

    fn compile_parts(
        config: StepConfig,
        owned: serde_yaml::Mapping,
        site: &StepSite,
    ) -> Result<Step, YamlError> {
        let StepSite {
            templates,
            text,
            path,
            index,
            kinds,
        } = *site;
        let (kind, keys) = kinds.pick(owned, site)?;
        let id = match config.id {
            Some(id) => {
                if !valid_id(&id) {
                    return Err(site.at(
                        "id",
                        format!("step id `{id}` must match [A-Za-z_][A-Za-z0-9_-]*"),
                    ));
                }
                id
            }
            None => format!("step-{}", index + 1),
        };
        let Compiled { step, warnings } = kind.compile(keys, site)?;
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
        Ok(Step {
            id,
            name: config.name,
            condition,
            env,
            timeout,
            retry,
            continue_on_error: config.continue_on_error,
            kind: kind.key(),
            action: step,
            path: path.clone(),
            warnings,
        })
    }
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub(crate) fn compile_condition(
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
