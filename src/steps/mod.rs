//! The step kinds (SPEC §2.3), one file each, and the trait they implement. A kind owns its keys
//! in a step: their serde + schemars config type (`vane schema` is built from it), `compile` (the
//! shape checked at load with positions, templates compiled), and the compiled step: `render`,
//! the secrets it holds, `plan` (what a dry run can know without effects), `execute`, and a
//! one-line `summary` of its outputs. [`registry`] lists the kinds; nothing outside this module
//! dispatches on one.
//!
//! Adding a kind is one file here and one line in [`registry::BUILTIN`] (`docs/steps.md`).

pub mod compile;
pub mod emit;
pub mod gitops;
pub mod http;
pub mod notify;
pub mod publish;
pub mod registry;
pub mod render;
pub mod run;
pub mod scale;
#[cfg(test)]
mod toy;

pub use compile::{Compiled, StepSite};
pub use registry::Registry;

use crate::cancel::CancelToken;
use crate::event::Event;
use crate::template::TreeError;
use crate::yaml::YamlError;
use schemars::{Schema, SchemaGenerator};
use serde_json::{Map, Value as Json};
use std::path::Path;
use std::time::Duration;

/// Outputs of a step, by name.
pub type Outputs = Map<String, Json>;

/// One step kind: the keys it owns in a step and how they compile. Implemented once per kind, by a
/// unit struct listed in [`registry::BUILTIN`].
pub trait StepKind: Sync {
    /// The action key (`run`, `http`…); a step has exactly one. It is also the kind records and
    /// output show.
    fn key(&self) -> &'static str;

    /// The keys of this kind that sit beside the action key in a step (`shell` for `run`, `to`
    /// for `render`). On a step of another kind they are an error that names their owner.
    fn sibling_keys(&self) -> &'static [&'static str] {
        &[]
    }

    /// The JSON Schema of this kind's keys in a step: an object whose `properties` are the action
    /// key and the sibling keys, each described. A `dependentRequired` in it joins the step's.
    fn schema(&self, generator: &mut SchemaGenerator) -> Schema;

    /// Checks this kind's keys at load time and compiles their templates. `keys` is a mapping of
    /// the action key and the sibling keys that are set (never null); every error carries the
    /// `file:line:col` of what it is about ([`StepSite`] has the helpers).
    fn compile(&self, keys: serde_yaml::Value, site: &StepSite) -> Result<Compiled, YamlError>;
}

/// A step's action, compiled by its kind. The engine calls it once per executed step (and once
/// per try), never while matching events.
pub trait CompiledStep: std::fmt::Debug + Send + Sync {
    /// The action with every template rendered, keyed as in the workflow file (`{"run": …,
    /// "shell": …}`): the record's `rendered`, and what `plan` and `execute` read.
    fn render(&self, context: &minijinja::Value) -> Result<Json, TreeError>;

    /// Values of the rendered action that are credentials once rendered (notify's webhook URLs,
    /// gitops' tokens). The engine masks them before `plan` or `execute` can fail.
    fn secrets(&self, _rendered: &Json) -> Vec<String> {
        Vec::new()
    }

    /// What a dry run can know of the step without its effects; by default nothing (its outputs
    /// are unknown to later steps).
    fn plan(&self, _rendered: &Json, _context: &StepContext) -> Result<StepSuccess, StepError> {
        Ok(StepSuccess::default())
    }

    /// One real execution of the action; retries and timeouts around it are the engine's.
    fn execute(&self, rendered: &Json, context: &StepContext) -> Result<StepSuccess, StepError>;

    /// True when `plan`'s outputs are the real ones (a pure computation): a plan's record shows
    /// them.
    fn planned_outputs_are_real(&self) -> bool {
        false
    }

    /// Completes the record's `rendered` once the step is done, from its outputs (`scale` adds
    /// `apply` as it ran).
    fn complete_rendered(&self, _rendered: &mut Json, _outputs: &Outputs, _context: &StepContext) {}

    /// One line about the outputs for human output (`scale`: its reason; `http`: the status).
    fn summary(&self, _outputs: &Outputs) -> Option<String> {
        None
    }
}

/// What a step may use while it runs.
pub struct StepContext<'a> {
    pub event: &'a Event,
    /// How deep in an `emit` chain the event is (0: it came from outside).
    pub depth: usize,
    /// How many events one input may cause through `emit` steps, in all.
    pub max_emitted: usize,
    /// The template context the action was rendered in (`event`, `vars`, `steps`…): `render`
    /// renders its file in it, `scale` its `apply`, `gitops` its `template:` files.
    pub values: &'a minijinja::Value,
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
    /// Events the step hands back to matching (`emit`), after this one.
    pub emitted: Vec<Event>,
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

/// The text at `key` of a rendered action, where it is a string.
pub fn text_at<'a>(rendered: &'a Json, key: &str) -> Option<&'a str> {
    rendered.get(key).and_then(Json::as_str)
}

/// A rendered action of one key (`{"http": …}`).
pub fn keyed(key: &str, value: Json) -> Json {
    let mut map = Map::new();
    map.insert(key.to_string(), value);
    Json::Object(map)
}

/// The one-line summary of a response `status` output (`http`, `notify`).
fn status_summary(outputs: &Outputs) -> Option<String> {
    outputs.get("status").map(Json::to_string)
}
