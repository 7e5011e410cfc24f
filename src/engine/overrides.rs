//! Values a caller fixes instead of taking them from the environment: `vane test` gives each case
//! its own secrets and env values, so that a test renders the same on every machine.

use std::collections::HashMap;

/// What a run takes from the caller rather than from the process environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// When set, secrets come from here only, never from the environment; a secret missing here
    /// renders as `***` in a dry run, as any secret a plan does not have.
    pub secrets: Option<HashMap<String, String>>,
    /// Entries that replace (or join) the workflow's rendered `env`, which steps then build on.
    pub env: Vec<(String, String)>,
    /// The run's id, when the caller chose it first (the scheduler records the run as running in
    /// the state store before it starts, so that a killed process leaves a trace).
    pub run_id: Option<String>,
    /// The event's place in the output order, carried by the run-event stream.
    pub sequence: u64,
    /// The run's `gate` (what a gate kept for it: a window's events, a burst, a correlation).
    pub gate: Option<serde_json::Value>,
}
