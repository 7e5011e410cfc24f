//! The step kinds (SPEC §2.3), one file each. A step gets its rendered action and a
//! `StepContext`; it returns its outputs or a `StepError`. In a dry run each kind says what it can
//! know without effects (`plan`), and the engine fills the rest with placeholders.

pub mod emit;
pub mod gitops;
pub mod http;
pub mod notify;
pub mod render;
pub mod run;
pub mod scale;

use crate::cancel::CancelToken;
use crate::event::Event;
use serde_json::{Map, Value as Json};
use std::path::Path;
use std::time::Duration;

/// Outputs of a step, by name.
pub type Outputs = Map<String, Json>;

/// What a step may use while it runs.
pub struct StepContext<'a> {
    pub event: &'a Event,
    /// The folder `run` steps start in and `render` writes under.
    pub workspace: &'a Path,
    /// The workflow's and the step's `env`, rendered.
    pub env: &'a [(String, String)],
    /// The limit for one attempt.
    pub timeout: Duration,
    pub cancel: &'a CancelToken,
    /// For `render` steps: the template files.
    pub templates: crate::template::Templates,
    /// Values a step learns are credentials (a webhook URL) join the masker.
    pub masker: &'a crate::secrets::Masker,
    /// Where each line the step writes goes as it arrives (the run-event stream).
    pub output: &'a (dyn Fn(crate::engine::Stream, &[u8]) + Sync),
    /// For `gitops` steps: the state store's folder, where the clones are cached.
    pub state_folder: Option<&'a std::path::Path>,
    /// For `scale` steps: the recommendations their stabilization windows look back on.
    pub recommendations: &'a crate::state::Recommendations,
}

/// Why a step failed. The message is shown to users (after masking).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    /// Outputs known despite the failure (`exit_code`, `status`, `stdout`).
    pub outputs: Outputs,
    /// True when the step was stopped by a cancellation, not a failure of its own.
    pub cancelled: bool,
    /// The tail of what the step wrote before it failed: history keeps it, where it matters most.
    /// Boxed: `StepError` travels in every step's `Result` and should stay small.
    pub log: Option<Box<str>>,
}

impl StepError {
    pub fn new(message: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
            outputs: Outputs::new(),
            cancelled: false,
            log: None,
        }
    }

    pub fn with_log(mut self, log: String) -> StepError {
        self.log = Some(log.into_boxed_str());
        self
    }

    pub fn with_outputs(mut self, outputs: Outputs) -> StepError {
        self.outputs = outputs;
        self
    }
}

/// A finished step: its outputs and, where it wrote one, the log (its combined output).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepSuccess {
    pub outputs: Outputs,
    pub log: Option<String>,
    /// For dry runs of `render`: the unified diff against the existing file.
    pub diff: Option<String>,
}

/// Deserializes a rendered action into its typed config, with the step kind in the message.
pub fn typed<T: serde::de::DeserializeOwned>(kind: &str, rendered: &Json) -> Result<T, StepError> {
    serde_json::from_value(rendered.clone()).map_err(|error| {
        let message = error.to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        StepError::new(format!(
            "{kind}: {}",
            crate::yaml::rewrite_serde_message(message)
        ))
    })
}
