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

    /// The queue as a log line names it: `sqlite .vane/state.db`, `nats nats://host:4222 stream
    /// VANE_EVENTS` (a URL's user and password left out).
    pub fn queue_label(&self) -> String {
        match self.queue() {
            crate::config::Queue::Sqlite => match &self.state {
                StateLocation::File(path) => format!("sqlite {}", path.display()),
                StateLocation::Memory => "sqlite :memory:".to_string(),
            },
            crate::config::Queue::Nats(queue) => {
                let url = match (queue.url.split_once("://"), queue.url.rsplit_once('@')) {
                    (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
                    _ => queue.url.clone(),
                };
                format!("nats {url} stream {}", queue.stream)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_label_never_shows_a_password() {
        let mut settings = Settings {
            format: Format::Quiet,
            color: false,
            github: false,
            output: OutputMode::All,
            explain: false,
            dry_run: false,
            parallel: 1,
            lock_timeout: Duration::ZERO,
            workspace: PathBuf::from("."),
            state: StateLocation::File(PathBuf::from(".vane/state.db")),
            config: None,
            verbose: 0,
            max_emitted: 1000,
        };
        assert_eq!(settings.queue_label(), "sqlite .vane/state.db");
        let config = crate::config::Config {
            queue: crate::config::Queue::Nats(Box::new(crate::config::NatsQueue {
                url: "nats://vane:s3cret@127.0.0.1:4222".into(),
                ..serde_yaml::from_str("{}").unwrap()
            })),
            ..Config::default()
        };
        settings.config = Some(Arc::new(config));
        assert_eq!(
            settings.queue_label(),
            "nats nats://127.0.0.1:4222 stream VANE_EVENTS"
        );
    }
}
