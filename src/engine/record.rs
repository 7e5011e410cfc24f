//! What a run did, step by step: the record `--json` prints and history keeps.

use crate::steps::Outputs;
use serde::Serialize;
use serde_json::Value as Json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Success,
    Failure,
    Cancelled,
    Planned,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Success => "success",
            RunStatus::Failure => "failure",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Planned => "planned",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Success,
    Failure,
    Skipped,
    Cancelled,
    Planned,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Success => "success",
            StepStatus::Failure => "failure",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Planned => "planned",
        }
    }
}

/// One run of one workflow for one event.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub status: RunStatus,
    /// When the run began (wall clock, for history; `duration_ms` is measured monotonically).
    #[serde(skip)]
    pub started: chrono::DateTime<chrono::Utc>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub steps: Vec<StepRecord>,
}

/// One step of a run.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The job, where the workflow has `jobs:` (absent for the `steps:` shorthand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    pub kind: &'static str,
    pub status: StepStatus,
    /// The action as it was (or would be) executed, every template rendered.
    pub rendered: Json,
    /// Absent in a dry run, where nothing was executed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
    pub attempts: u32,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A dry run's view of a file it would change (`render`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The tail of the step's combined output; kept for history, not printed in `--json`.
    #[serde(skip)]
    pub log: Option<String>,
    /// One line about the outputs for human output, from the step's kind (`scale`: its reason).
    #[serde(skip)]
    pub summary: Option<String>,
}
