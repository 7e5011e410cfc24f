//! The subscription sources of `vane.yaml` (`nats:`, `mqtt:`), each on its own thread, pushing
//! what arrives into the queue. `vane worker` runs them beside its workers; `vane serve` starts
//! them with [`spawn_subscriptions`].

use crate::cancel::CancelToken;
use crate::config::{Config, Source, SourceKind};
use crate::event::Event;
use crate::queue::{Queue, QueueItem};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The sources that are subscriptions (not polled).
pub fn subscription_sources(config: &Config) -> Vec<&Source> {
    config
        .sources
        .iter()
        .filter(|source| matches!(source.kind, SourceKind::Nats(_) | SourceKind::Mqtt(_)))
        .collect()
}

/// Starts one thread per subscription source of `config`, each pushing the events it receives
/// into `queue` until `stop` is cancelled (then each ends within a fraction of a second, after
/// the message in hand is queued). Join the handles for a clean shutdown.
pub fn spawn_subscriptions(
    config: Arc<Config>,
    queue: Arc<dyn Queue>,
    stop: CancelToken,
) -> Vec<JoinHandle<()>> {
    let mut threads = Vec::new();
    for (index, source) in config.sources.iter().enumerate() {
        if !matches!(source.kind, SourceKind::Nats(_) | SourceKind::Mqtt(_)) {
            continue;
        }
        let (config, queue, stop) = (Arc::clone(&config), Arc::clone(&queue), stop.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("vane-source-{}", source.name))
            .spawn(move || {
                let source = &config.sources[index];
                match &source.kind {
                    SourceKind::Nats(settings) => {
                        super::nats::run(source, settings, queue.as_ref(), &stop);
                    }
                    SourceKind::Mqtt(settings) => {
                        super::mqtt::run(source, settings, queue.as_ref(), &stop);
                    }
                    _ => {}
                }
            });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(error) => {
                tracing::error!("source `{}`: cannot start its thread: {error}", source.name)
            }
        }
    }
    threads
}

/// Queues one event, retrying while the queue is unavailable; false when stopped first.
pub(super) fn push_until_stopped(
    queue: &dyn Queue,
    source: &str,
    event: &Event,
    stop: &CancelToken,
) -> bool {
    let item = QueueItem {
        delivery: event.id().to_string(),
        source: source.to_string(),
        event: serde_json::to_string(event).unwrap_or_default(),
    };
    let mut backoff = Backoff::default();
    loop {
        match queue.push(std::slice::from_ref(&item), None) {
            Ok(_) => return true,
            Err(message) => {
                tracing::error!(
                    "source `{source}`: cannot queue event {}: {message}; retrying",
                    item.delivery
                );
                if stop.is_cancelled() {
                    return false;
                }
                backoff.sleep(stop);
            }
        }
    }
}

/// Exponential backoff between reconnects: 100 ms doubling to 10 s, cut short by a stop.
#[derive(Debug)]
pub(super) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            next: Backoff::FIRST,
        }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(10);

    pub(super) fn reset(&mut self) {
        self.next = Backoff::FIRST;
    }

    pub(super) fn sleep(&mut self, stop: &CancelToken) {
        let until = std::time::Instant::now() + self.next;
        while std::time::Instant::now() < until && !stop.is_cancelled() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.next = (self.next * 2).min(Backoff::MAX);
    }
}
