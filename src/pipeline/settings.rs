//! What a pipeline runs with, resolved once from the command line and `vane.yaml` (the command
//! line builds it; nothing downstream sees raw flags).

use crate::config::Config;
use crate::report::Format;
use crate::state::StateLocation;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which lines that steps write human output shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputMode {
    /// Every line, under its step, as it is written.
    #[default]
    All,
    /// A step's lines only when it fails (held until it ends).
    Failed,
    /// No lines; a failed step still shows the last lines of its stderr.
    None,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub format: Format,
    /// Colour in human output (a terminal, no `NO_COLOR`, not GitHub Actions).
    pub color: bool,
    /// GitHub Actions mode: workflow commands, step outputs, a job summary.
    pub github: bool,
    pub output: OutputMode,
    /// Say why every other workflow did not match.
    pub explain: bool,
    pub dry_run: bool,
    /// Runs at once, at most.
    pub parallel: usize,
    /// How long a run waits for its concurrency group held by another process.
    pub lock_timeout: Duration,
    /// How many events one input may cause through `emit` steps, in all.
    pub max_emitted: usize,
    pub workspace: PathBuf,
    pub state: StateLocation,
    /// `vane.yaml`, where there is one: its queue decides where concurrency groups are locked.
    pub config: Option<Arc<Config>>,
    pub verbose: u8,
}

impl Settings {
    /// Runs at once by default: one per core.
    pub fn default_parallelism() -> usize {
        std::thread::available_parallelism().map_or(1, |count| count.get())
    }

    /// The queue `vane.yaml` names (`queue:`), the state store's by default.
    pub fn queue(&self) -> crate::config::Queue {
        self.config
            .as_ref()
            .map(|config| config.queue.clone())
            .unwrap_or_default()
    }
}
