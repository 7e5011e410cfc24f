//! The v1 workflow format as written: serde types, deserialized once and then checked into the
//! domain types of `workflow`. Nothing outside this module sees these.

use serde::Deserialize;
use serde_json::Value as Json;

/// A workflow file's top level. Unknown keys are errors (with a suggestion).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowConfig {
    pub version: Option<serde_yaml::Value>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "on")]
    pub triggers: Option<serde_yaml::Mapping>,
    #[serde(rename = "if")]
    pub condition: Option<String>,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub vars: serde_yaml::Mapping,
    #[serde(default)]
    pub env: serde_yaml::Mapping,
    pub concurrency: Option<ConcurrencyConfig>,
    pub timeout: Option<String>,
    pub steps: Option<Vec<serde_yaml::Value>>,
    pub jobs: Option<serde_yaml::Mapping>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConcurrencyConfig {
    pub group: String,
    #[serde(default)]
    pub cancel_in_progress: bool,
}

/// One `on.<type>` filter (SPEC §2.2).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilterConfig {
    pub types: Option<Vec<String>>,
    pub sources: Option<Vec<String>>,
    pub repos: Option<Vec<String>>,
    pub repos_ignore: Option<Vec<String>>,
    pub branches: Option<Vec<String>>,
    pub branches_ignore: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub tags_ignore: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    pub paths_ignore: Option<Vec<String>>,
}

/// `on.schedule: [{cron: "…"}]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub cron: String,
}

/// `on.dispatch: {inputs: {…}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// Name → `InputConfig`, in the order written (serde_json keeps order here).
    #[serde(default)]
    pub inputs: serde_json::Map<String, Json>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    pub default: Option<Json>,
    #[serde(default)]
    pub required: bool,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// One job of `jobs:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    #[serde(default)]
    pub needs: NeedsConfig,
    #[serde(rename = "if")]
    pub condition: Option<String>,
    pub steps: Vec<serde_yaml::Value>,
}

/// `needs: a` or `needs: [a, b]`.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum NeedsConfig {
    #[default]
    None,
    One(String),
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

/// One step: common keys plus exactly one action key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StepConfig {
    pub id: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "if")]
    pub condition: Option<String>,
    #[serde(default)]
    pub env: serde_yaml::Mapping,
    pub timeout: Option<String>,
    pub retry: Option<RetryConfig>,
    #[serde(default)]
    pub continue_on_error: bool,
    // `run` and its keys.
    pub run: Option<String>,
    pub shell: Option<String>,
    pub working_directory: Option<String>,
    // The other actions; their own keys are checked by their step module.
    pub http: Option<Json>,
    pub notify: Option<Json>,
    pub render: Option<String>,
    pub to: Option<String>,
    pub vars: Option<Json>,
    pub gitops: Option<Json>,
    pub scale: Option<Json>,
    pub emit: Option<Json>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RetryConfig {
    pub attempts: Option<u32>,
    pub backoff: Option<String>,
    pub factor: Option<f64>,
    pub max_backoff: Option<String>,
}
