//! The v1 workflow format (SPEC §2): validated, compiled workflows and the set they are loaded into.

mod alpha;
pub(crate) mod config;
mod dispatch;
mod load;
mod revision;
pub mod schema;
mod set;
pub(crate) mod step;
mod trigger;

pub use dispatch::{DispatchInput, InputError, InputKind, resolve_inputs};
pub use load::{LoadOptions, is_workflow_file, load_workflows};
pub use load::{WorkflowSource, load_workflows_from, load_workflows_with};
pub use revision::{RevisionError, Snapshot, read_revision, worktree_revision};
pub use set::{WorkflowSet, job_order};
pub use step::{Retry, Step, template_position};
pub use trigger::{Filter, ListFilter, Trigger, TriggerKind};

use crate::template::{Expression, TemplateTree};
use crate::yaml::{Position, YamlPath};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The schema versions this vane reads.
pub const SUPPORTED_VERSIONS: &[u64] = &[1];

/// One loaded workflow, every glob, template and expression in it compiled.
#[derive(Debug)]
pub struct Workflow {
    pub name: String,
    pub description: Option<String>,
    /// The file as the user named it (`workflows/deploy.yaml`).
    pub file: PathBuf,
    /// The file's text, kept to point errors found while running at their line.
    pub source: Arc<str>,
    pub version: u64,
    pub triggers: Vec<Trigger>,
    pub condition: Option<Condition>,
    pub secrets: Vec<String>,
    pub vars: Vec<(String, TemplateTree)>,
    pub env: Vec<(String, TemplateTree)>,
    pub concurrency: Option<Concurrency>,
    pub timeout: Option<Duration>,
    /// `throttle`, `debounce`, `window` or `correlate`: decides after `on` and `if`.
    pub gate: Option<Arc<crate::gates::Gate>>,
    pub jobs: Vec<Job>,
}

/// An `if:` expression, with its text for explanations.
#[derive(Debug)]
pub struct Condition {
    pub source: String,
    pub expression: Expression,
    pub path: YamlPath,
}

#[derive(Debug)]
pub struct Concurrency {
    pub group: TemplateTree,
    pub cancel_in_progress: bool,
}

/// A job: steps run in order. `steps:` at the top level is one job named `main`.
#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub needs: Vec<String>,
    pub condition: Option<Condition>,
    pub steps: Vec<Step>,
}

impl Workflow {
    /// The definition this workflow is: `sha256:<hex>` of its file's text, recorded with every
    /// run beside the revision (a reloading daemon runs more than one definition of a file).
    pub fn digest(&self) -> String {
        use sha2::Digest;
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(self.source.as_bytes()))
        )
    }

    /// Where a path of this workflow is in its file.
    pub fn locate(&self, path: &YamlPath) -> Option<Position> {
        crate::yaml::locate(&self.source, path, false)
    }

    /// `file:line:col` of a path, for messages about running this workflow.
    pub fn place(&self, path: &YamlPath) -> String {
        match self.locate(path) {
            Some(position) => format!(
                "{}:{}:{}",
                self.file.display(),
                position.line,
                position.column
            ),
            None => self.file.display().to_string(),
        }
    }

    /// `file:line:col` of line `line` of the template at `path`, for errors found while rendering.
    pub fn place_template(&self, path: &YamlPath, line: Option<usize>) -> String {
        match template_position(&self.source, path, line) {
            Some(position) => format!(
                "{}:{}:{}",
                self.file.display(),
                position.line,
                position.column
            ),
            None => self.file.display().to_string(),
        }
    }

    /// Every step of every job, in order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.jobs.iter().flat_map(|job| job.steps.iter())
    }
}
