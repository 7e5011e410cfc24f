//! The v1 workflow format as written: serde types, deserialized once and then checked into the
//! domain types of `workflow`. Nothing outside this module sees these.
//!
//! The same types generate `vane schema` (see `schema.rs`): every field's doc comment is its
//! description there, so they are written for workflow authors, not for Rust readers.

use super::schema;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// A vane workflow: the events it runs on and the steps it runs for them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "vane workflow", transform = schema::steps_or_jobs)]
pub struct WorkflowConfig {
    /// The schema version of this file. This vane reads version `1`.
    #[schemars(required, schema_with = "schema::version")]
    pub version: Option<serde_yaml::Value>,
    /// The workflow's name: unique across the loaded workflows, `[a-z0-9][a-z0-9._-]*`.
    #[schemars(required, regex(pattern = r"^[a-z0-9][a-z0-9._-]*$"))]
    pub name: Option<String>,
    /// Free text shown in `vane plan` and `vane history`.
    pub description: Option<String>,
    /// The events this workflow runs on: a map of event type (or a glob over types, `deploy.*`)
    /// to a filter. Never templated, so that triggers can be indexed.
    #[serde(rename = "on")]
    #[schemars(required, schema_with = "schema::triggers")]
    pub triggers: Option<serde_yaml::Mapping>,
    /// An expression (Jinja, an optional surrounding `{{ }}` is stripped); the workflow runs
    /// only for events where it is true.
    #[serde(rename = "if")]
    pub condition: Option<String>,
    /// The names of the secrets the workflow uses (`{{ secrets.NAME }}`), read from the
    /// environment variable of the same name. A missing one fails the run before any step.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Name → value; string values are templates, rendered in order once per run, so later vars
    /// may use earlier ones (`{{ vars.NAME }}`).
    #[serde(default)]
    #[schemars(with = "serde_json::Map<String, Json>")]
    pub vars: serde_yaml::Mapping,
    /// Environment for every `run` step (`{{ env.NAME }}` in templates); values are templates.
    #[serde(default)]
    #[schemars(schema_with = "schema::env")]
    pub env: serde_yaml::Mapping,
    /// At most one running and one pending run per group (GitHub Actions' semantics).
    pub concurrency: Option<ConcurrencyConfig>,
    /// A gate over time: run once every key's events are all there (`all-of`) within a bound.
    /// Evaluated after `on` and `if`. One gate per workflow.
    pub correlate: Option<CorrelateConfig>,
    /// A gate over time: run when a key has `count` events (or `distinct` values) within a
    /// window anchored at its first event. Evaluated after `on` and `if`.
    pub window: Option<WindowConfig>,
    /// A gate over time: run once a key's burst of events is quiet. Evaluated after `on` and `if`.
    pub debounce: Option<DebounceConfig>,
    /// A gate over time: drop a key's repeats. Evaluated after `on` and `if`.
    pub throttle: Option<ThrottleConfig>,
    /// The whole run's time limit (`90s`, `15m`, `1h`, `1h30m`).
    #[schemars(with = "Option<schema::Duration>")]
    #[serde(default, deserialize_with = "duration_text")]
    pub timeout: Option<String>,
    /// The steps, run in order (a single job named `main`). Set `steps` or `jobs`, not both.
    #[schemars(with = "Option<Vec<schema::StepSchema>>")]
    pub steps: Option<Vec<serde_yaml::Value>>,
    /// Job id → job. Jobs run in parallel where their `needs` allow. Set `steps` or `jobs`,
    /// not both.
    #[schemars(with = "Option<BTreeMap<String, JobConfig>>")]
    pub jobs: Option<serde_yaml::Mapping>,
}

/// `concurrency:`: runs of one group never overlap.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConcurrencyConfig {
    /// The group's name, a template (`deploy-{{ event.repo }}`).
    pub group: String,
    /// Cancel the running run of the group when a new one starts (default: it waits).
    #[serde(default)]
    pub cancel_in_progress: bool,
}

/// A filter on one event type; every key that is set must pass. `X` and `X-ignore`
/// cannot both be set.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilterConfig {
    /// Exact values of `event.action` (`opened`, `completed`), like GitHub's `types:`.
    pub types: Option<Vec<String>>,
    /// Globs over `event.source` (`github`, `/ci/**`).
    pub sources: Option<Vec<String>>,
    /// Globs over `event.repo` (`acme/*`); a later `!pattern` excludes.
    pub repos: Option<Vec<String>>,
    /// Globs over `event.repo` that reject the event.
    pub repos_ignore: Option<Vec<String>>,
    /// Globs over `event.branch` (`main`, `release/**`); a later `!pattern` excludes.
    pub branches: Option<Vec<String>>,
    /// Globs over `event.branch` that reject the event.
    pub branches_ignore: Option<Vec<String>>,
    /// Globs over `event.tag` (`v*`); a later `!pattern` excludes.
    pub tags: Option<Vec<String>>,
    /// Globs over `event.tag` that reject the event.
    pub tags_ignore: Option<Vec<String>>,
    /// Globs over `event.files`: matches when at least one changed file matches.
    pub paths: Option<Vec<String>>,
    /// Globs over `event.files`: rejects only when every changed file matches.
    pub paths_ignore: Option<Vec<String>>,
    /// Label name → globs over its value (`severity: [critical, page]`) in the event's `labels`
    /// (an alert's), else its `commonLabels`: every label named must match.
    pub labels: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// One entry of `on.schedule`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// A 5-field cron expression, in UTC (`*/15 * * * *`).
    pub cron: String,
}

/// `on.dispatch`: the workflow can be run by hand with `vane dispatch NAME`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// Input name → input (`-i name=value`), in the order written (serde_json keeps order here).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Option<InputConfig>>")]
    pub inputs: serde_json::Map<String, Json>,
}

/// One input of `on.dispatch.inputs`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// The value when the input is not given.
    pub default: Option<Json>,
    /// The run is refused when the input is missing and has no default.
    #[serde(default)]
    pub required: bool,
    /// What the input is for.
    pub description: Option<String>,
    /// The input's type: `string` (the default), `number`, `boolean`, or `choice` (one of
    /// `options`). A given value that does not parse as the type is refused.
    #[serde(rename = "type")]
    #[schemars(with = "Option<InputType>")]
    pub kind: Option<String>,
    /// The values a `choice` input accepts.
    pub options: Option<Vec<String>>,
}

/// The type of a dispatch input: how a value given with `-i name=value` is read.
// Only the schema uses this: the loader reads the type as text, so that a wrong one is reported
// with its position.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum InputType {
    String,
    Number,
    Boolean,
    Choice,
}

/// One job of `jobs:`: its steps run in order.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// The job(s) that must finish first: one id or a list.
    #[serde(default)]
    pub needs: NeedsConfig,
    /// An expression; default: every needed job succeeded.
    #[serde(rename = "if")]
    pub condition: Option<String>,
    /// The job's steps, run in order.
    #[schemars(with = "Vec<schema::StepSchema>")]
    pub steps: Vec<serde_yaml::Value>,
}

/// `needs: a` or `needs: [a, b]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum NeedsConfig {
    /// No job needs to finish first.
    #[default]
    None,
    /// One job id.
    One(String),
    /// Several job ids.
    Many(Vec<String>),
}

impl NeedsConfig {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            NeedsConfig::None => Vec::new(),
            NeedsConfig::One(one) => vec![one],
            NeedsConfig::Many(many) => many,
        }
    }
}

/// The keys every step may have, whatever its kind; the kind's own keys (its action key and the
/// keys beside it) are its step module's (`crate::steps`). The schema adds them from the registry
/// (`schema::StepSchema`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StepConfig {
    /// Unique within its job, `[A-Za-z_][A-Za-z0-9_-]*`; default `step-N`. Later steps read
    /// `steps.<id>.outputs`.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_-]*$"))]
    pub id: Option<String>,
    /// A display name.
    pub name: Option<String>,
    /// An expression; default `success()`. `always()`, `failure()`, `cancelled()` as in GitHub
    /// Actions.
    #[serde(rename = "if")]
    pub condition: Option<String>,
    /// Extra environment for this `run` step, on top of the workflow's `env`.
    #[serde(default)]
    #[schemars(schema_with = "schema::env")]
    pub env: serde_yaml::Mapping,
    /// The limit for one attempt (`2m`); default 30m. On expiry the process group gets SIGTERM,
    /// then SIGKILL after 5 s.
    #[schemars(with = "Option<schema::Duration>")]
    #[serde(default, deserialize_with = "duration_text")]
    pub timeout: Option<String>,
    /// Try the step again when it fails.
    pub retry: Option<RetryConfig>,
    /// A failure of this step does not fail the job.
    #[serde(default)]
    pub continue_on_error: bool,
}

/// The keys of [`StepConfig`] as written (a unit test checks them against it).
pub const COMMON_STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "if",
    "env",
    "timeout",
    "retry",
    "continue-on-error",
];

/// `retry:` — how often and how patiently a failed step is tried again.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RetryConfig {
    /// How many tries in all (default 1: no retry).
    #[schemars(range(min = 1))]
    pub attempts: Option<u32>,
    /// The wait before the second try (default `1s`).
    #[schemars(with = "Option<schema::Duration>")]
    pub backoff: Option<String>,
    /// Each wait is this many times the one before (default 2, at least 1).
    #[schemars(range(min = 1.0))]
    pub factor: Option<f64>,
    /// The longest wait (default `1m`).
    #[schemars(with = "Option<schema::Duration>")]
    pub max_backoff: Option<String>,
}

/// A duration as text, or as a YAML whole number of seconds (`timeout: 30`), which the schema
/// accepts too; `parse_duration` checks the text when the workflow compiles.
fn duration_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    match Option::<serde_yaml::Value>::deserialize(deserializer)? {
        None | Some(serde_yaml::Value::Null) => Ok(None),
        Some(serde_yaml::Value::String(text)) => Ok(Some(text)),
        Some(serde_yaml::Value::Number(number)) if number.is_u64() => Ok(Some(number.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "invalid duration `{}`: expected a duration like `90s` or `15m`, or a whole number of seconds",
            crate::yaml::to_string(&other).unwrap_or_default().trim()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_step_keys_are_the_fields_of_step_config() {
        let schema = schemars::schema_for!(StepConfig);
        let fields: Vec<&str> = schema
            .get("properties")
            .and_then(Json::as_object)
            .map(|properties| properties.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(fields, COMMON_STEP_KEYS);
    }
}

/// `throttle:` — one run per key, repeats dropped (counted, not recorded as runs).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ThrottleConfig {
    /// The key, a template rendered per event (`{{ event.data.alert }}`).
    pub key: String,
    /// After a run, the key's events are dropped for this long. Set this or `limit` + `per`.
    #[schemars(with = "Option<schema::Duration>")]
    pub once_within: Option<String>,
    /// At most this many runs per key in any `per` (a sliding log: no burst at a boundary).
    pub limit: Option<u64>,
    /// The sliding period of `limit`.
    #[schemars(with = "Option<schema::Duration>")]
    pub per: Option<String>,
    /// A template rendered per event; when its value differs from the last run's, the event runs
    /// again (a re-notify on a status change).
    pub unless_changed: Option<String>,
    /// At most this many live keys (default 10,000); a new key beyond it is refused.
    pub max_keys: Option<u64>,
}

/// `window:` — count (or distinct values) within a window anchored at the key's first event.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WindowConfig {
    /// The key, a template rendered per event (`{{ event.data.host }}`).
    pub key: String,
    /// The window's length, from the key's first event.
    #[schemars(with = "schema::Duration")]
    pub within: String,
    /// How many events (or distinct values) the window needs.
    pub count: u64,
    /// A template rendered per event: count distinct values of it instead of events.
    pub distinct: Option<String>,
    /// `count` (default): run as soon as the count is reached; `end`: run at the window's end,
    /// with all its events, when the count was reached.
    #[schemars(with = "Option<FlushChoice>")]
    pub flush: Option<String>,
    /// At most this many live keys (default 10,000); a new key beyond it is refused.
    pub max_keys: Option<u64>,
}

/// `debounce:` — one run per burst, once the burst is quiet.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DebounceConfig {
    /// The key, a template rendered per event (`{{ event.data.device }}`).
    pub key: String,
    /// The run happens once no event of the key arrived for this long.
    #[schemars(with = "schema::Duration")]
    pub quiet: String,
    /// Never wait longer than this from the burst's first event.
    #[schemars(with = "Option<schema::Duration>")]
    pub max_wait: Option<String>,
    /// Which event the run sees as `event`: `last` (default) or `first`.
    #[schemars(with = "Option<KeepChoice>")]
    pub keep: Option<String>,
    /// At most this many live keys (default 10,000); a new key beyond it is refused.
    pub max_keys: Option<u64>,
}

/// `correlate:` — all of the named events, for one key, within a time bound.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CorrelateConfig {
    /// The key, a template rendered per event (`{{ event.data.sha }}`).
    pub key: String,
    /// How long, from the key's first event, the others may take.
    #[schemars(with = "schema::Duration")]
    pub within: String,
    /// Name → the event it stands for; the run happens once each has arrived for the key.
    #[schemars(with = "BTreeMap<String, CorrelateMember>")]
    pub all_of: serde_yaml::Mapping,
    /// At the bound with some missing: `drop` (default) or `run` (the run sees
    /// `gate.correlation.missing`).
    #[schemars(with = "Option<TimeoutChoice>")]
    pub on_timeout: Option<String>,
    /// At most this many live keys (default 10,000); a new key beyond it is refused.
    pub max_keys: Option<u64>,
}

/// One member of `correlate.all-of`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrelateMember {
    /// The event type this member stands for (exact, or a glob `deploy.*`).
    pub on: String,
    /// An expression on the event; the member is satisfied only where it is true.
    #[serde(rename = "if")]
    pub condition: Option<String>,
}

/// When a window runs.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum FlushChoice {
    Count,
    End,
}

/// Which event of a burst a debounced run sees.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum KeepChoice {
    First,
    Last,
}

/// What a correlation does at its bound.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
enum TimeoutChoice {
    Drop,
    Run,
}
