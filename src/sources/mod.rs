//! Polled sources (SPEC §6): git remotes ([`git`]), JSON resources over HTTP ([`http`]), the
//! GitHub REST API ([`github`]) and the workflows' cron schedules ([`schedule`]).
//!
//! Every poll is the same recipe: read the source's cursor from the queue's store, ask the source
//! what changed since, and push the events found together with the new cursor in one transaction
//! ([`Queue::push`]) — a cursor never gets ahead of its events, and a crash between the two loses
//! nothing. Event ids are derived from what changed (`git:<source>:<ref>:<before>..<after>`), so
//! two pollers that find the same change push the same id and the queue's dedup keeps one. A lease
//! per source in the store (the concurrency-group locks' table) makes two processes polling one
//! source take turns, so that a slower one can never move a cursor back.
//!
//! `mqtt` and `nats` sources are subscriptions, not polled: they are not handled here.

pub mod git;
pub mod github;
pub mod http;
pub mod prometheus;
pub mod rate_limit;
pub mod registry;
pub mod schedule;

use crate::cancel::CancelToken;
use crate::config::{Config, Source, SourceKind};
use crate::engine::GroupLocks;
use crate::event::Event;
use crate::queue::{Enqueued, Queue, QueueItem};
use crate::secrets::Masker;
use crate::state::{Coordinator, StateLocation, Store};
use crate::workflow::WorkflowSet;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What one poll of one source found.
#[derive(Debug, Default)]
pub struct Found {
    /// New events, in the order they happened.
    pub events: Vec<Event>,
    /// The source's new cursor; `None` leaves the stored one as it is.
    pub cursor: Option<String>,
    /// Something the user should hear about (a poll skipped for a rate limit).
    pub note: Option<String>,
}

/// A poll that failed; nothing of it was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}{kind} `{name}`: {message}")]
pub struct SourceError {
    /// `vane.yaml:12:5: ` where the source is declared, or empty.
    pub location: String,
    /// `source`, or `schedule of workflow`.
    pub kind: &'static str,
    pub name: String,
    pub message: String,
}

/// What a successful poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    /// Events found.
    pub found: usize,
    /// Of those, queued (the others were queued before, by this or another poller).
    pub queued: usize,
}

/// How long a poller waits for another process polling the same source.
const LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// The current time: `VANE_NOW` (RFC 3339) where set — a simulated clock for tests and for
/// trying schedules out — else the system clock.
pub fn now() -> DateTime<Utc> {
    std::env::var("VANE_NOW")
        .ok()
        .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
        .map_or_else(Utc::now, |time| time.to_utc())
}

/// A stored cursor read back; no cursor yet is the default one.
fn read_cursor<T: serde::de::DeserializeOwned + Default>(
    cursor: Option<&str>,
) -> Result<T, String> {
    match cursor {
        Some(text) => serde_json::from_str(text)
            .map_err(|error| format!("the stored cursor is damaged: {error}")),
        None => Ok(T::default()),
    }
}

/// A source's `token`, resolved now; the message names where it should come from, never a value.
fn token(token: Option<&crate::config::SecretRef>) -> Result<Option<String>, String> {
    token
        .map(crate::config::SecretRef::resolve)
        .transpose()
        .map_err(|message| format!("token: {message}"))
}

/// Whether a source is polled (rather than subscribed to).
pub fn is_polled(source: &Source) -> bool {
    matches!(
        source.kind,
        SourceKind::Git(_)
            | SourceKind::Http(_)
            | SourceKind::Github(_)
            | SourceKind::Registry(_)
            | SourceKind::Prometheus(_)
    )
}

/// Polls sources and fires schedules into a queue. Shared by `vane poll` and `vane serve`.
pub struct Poller {
    config: Arc<Config>,
    /// Replaced when a daemon reloads its workflows.
    schedules: std::sync::RwLock<Vec<schedule::Schedule>>,
    queue: Arc<dyn Queue>,
    /// Where git caches live: beside the state store, or a temporary folder for `:memory:`.
    cache_root: PathBuf,
    temporary_cache: bool,
    /// Leases per source; `None` for `:memory:`, which no other process can share.
    locks: Option<Coordinator>,
    client: reqwest::blocking::Client,
    /// Print each `registry` poll's per-tag table on stderr (`vane poll --explain`).
    explain: bool,
    /// The gates whose due timers this poller fires (with the store's own queue, where a fire is
    /// queued in the same transaction as its decision, or the KV bucket of a NATS queue).
    gates: crate::gates::timers::Timers,
}

impl Poller {
    /// A poller over `config`'s sources and `set`'s schedules, pushing into `queue`, with caches
    /// and leases in the store at `state`.
    pub fn new(
        config: Arc<Config>,
        set: &WorkflowSet,
        queue: Arc<dyn Queue>,
        state: &StateLocation,
        masker: Masker,
    ) -> Result<Poller, String> {
        let (cache_root, temporary_cache) = match state {
            StateLocation::File(path) => (
                match path.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                    _ => PathBuf::from("."),
                },
                false,
            ),
            StateLocation::Memory => (
                std::env::temp_dir().join(format!("vane-poll-{}", uuid::Uuid::new_v4())),
                true,
            ),
        };
        let gates = crate::gates::timers::Timers::for_queue(
            set,
            &config.queue,
            state,
            Arc::clone(&queue),
            masker.clone(),
        )?;
        let locks = match state {
            StateLocation::Memory => None,
            StateLocation::File(_) => {
                let store = Store::open(state, masker).map_err(|error| error.to_string())?;
                Coordinator::new(Arc::new(Mutex::new(store)), state, LOCK_TIMEOUT, None)
                    .map_err(|error| error.to_string())?
            }
        };
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("vane/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| format!("cannot build an HTTP client: {error}"))?;
        Ok(Poller {
            config,
            schedules: std::sync::RwLock::new(schedule::Schedule::from_workflows(set)),
            queue,
            cache_root,
            temporary_cache,
            locks,
            client,
            explain: false,
            gates,
        })
    }

    /// The configuration whose sources this poller polls.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This poller, printing why each `registry` source's tag won (a table per poll, on stderr).
    pub fn explaining(mut self, explain: bool) -> Poller {
        self.explain = explain;
        self
    }

    /// The sources this poller polls, in file order.
    /// One round for cron (`vane poll --once`): the named sources (all when none is named), then
    /// the schedules that came due (only when none is named). Every failure is reported; false
    /// when any happened.
    pub fn poll_once(&self, names: &[String], verbose: bool) -> bool {
        let mut ok = true;
        for source in self.sources() {
            if !names.is_empty() && !names.contains(&source.name) {
                continue;
            }
            match self.poll(source) {
                Ok(polled) if verbose => tracing::info!(
                    "source `{}`: {} new event(s), {} queued",
                    source.name,
                    polled.found,
                    polled.queued
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::error!("{error}");
                    ok = false;
                }
            }
        }
        if names.is_empty()
            && let Err(error) = self.fire_schedules(now())
        {
            tracing::error!("{error}");
            ok = false;
        }
        if names.is_empty() {
            match self.fire_gates() {
                Ok(fired) if verbose && fired.fired + fired.expired > 0 => tracing::info!(
                    "gates: {} timer(s) fired a run, {} expired",
                    fired.fired,
                    fired.expired
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::error!("gates: {error}");
                    ok = false;
                }
            }
        }
        ok
    }

    /// Fires the gate timers due now (debounces gone quiet, `flush: end` windows, timed-out
    /// correlations) into the queue, each under its deterministic id: once across processes.
    pub fn fire_gates(&self) -> Result<crate::gates::FireOutcome, String> {
        self.gates.fire_due()
    }

    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.config
            .sources
            .iter()
            .filter(|source| is_polled(source))
    }

    /// Whether there are schedules to fire.
    pub fn has_schedules(&self) -> bool {
        !self.schedules().is_empty()
    }

    fn schedules(&self) -> Vec<schedule::Schedule> {
        self.schedules.read().map_or_else(
            |poisoned| poisoned.into_inner().clone(),
            |held| held.clone(),
        )
    }

    /// Takes the gates and schedules of a reloaded set and fires the schedules due at once: a
    /// schedule whose workflow stays keeps its cursor (nothing fires twice, nothing is skipped),
    /// a new one counts from now.
    pub fn reload(&self, set: &WorkflowSet) {
        self.gates.reload(set);
        let schedules = schedule::Schedule::from_workflows(set);
        match self.schedules.write() {
            Ok(mut held) => *held = schedules,
            Err(poisoned) => *poisoned.into_inner() = schedules,
        }
        if let Err(error) = self.fire_schedules(now()) {
            tracing::error!("{error}");
        }
    }

    /// Polls one source: what changed since its cursor is queued, with the new cursor.
    pub fn poll(&self, source: &Source) -> Result<Polled, SourceError> {
        self.poll_until(source, &CancelToken::new())
    }

    /// [`Poller::poll`], giving up waiting for another process's poll of the source when `stop`
    /// is cancelled.
    fn poll_until(&self, source: &Source, stop: &CancelToken) -> Result<Polled, SourceError> {
        let failed = |message: String| SourceError {
            location: self.location(source),
            kind: "source",
            name: source.name.clone(),
            message,
        };
        // Held until the events and cursor are stored: the next poller starts from them.
        let _lease = match &self.locks {
            Some(locks) => Some(
                locks
                    .acquire(
                        &format!("vane.poll/{}", source.name),
                        &uuid::Uuid::new_v4().to_string(),
                        stop,
                    )
                    .map_err(failed)?,
            ),
            None => None,
        };
        let cursor = self.queue.cursor(&source.name).map_err(failed)?;
        let cursor = cursor.as_deref();
        let found = match &source.kind {
            SourceKind::Git(config) => git::poll(&source.name, config, &self.cache_root, cursor),
            SourceKind::Http(config) => {
                http::poll(&source.name, config, &self.client, cursor, now())
            }
            SourceKind::Github(config) => {
                github::poll(&source.name, config, &self.client, cursor, now())
            }
            SourceKind::Prometheus(config) => {
                prometheus::poll(&source.name, config, &self.client, cursor, now())
            }
            SourceKind::Registry(config) => {
                registry::poll(&source.name, config, &self.client, cursor, now()).map(
                    |(found, explanation)| {
                        if self.explain {
                            eprint!("{}", explanation.0);
                        }
                        found
                    },
                )
            }
            SourceKind::Mqtt(_) | SourceKind::Nats(_) => {
                return Err(failed(format!(
                    "a `{}` source is a subscription; it is not polled",
                    source.kind.key()
                )));
            }
        }
        .map_err(failed)?;
        if let Some(note) = &found.note {
            tracing::info!(source = %source.name, "source `{}`: {note}", source.name);
        }
        self.store(&source.name, found).map_err(failed)
    }

    /// Fires the schedules that came due since each workflow's cursor (once each, however long
    /// ago), as of `now`. Every workflow is tried; the first failure is returned.
    pub fn fire_schedules(&self, now: DateTime<Utc>) -> Result<Polled, SourceError> {
        let mut total = Polled::default();
        let mut first_error = None;
        for schedule in &self.schedules() {
            let key = schedule::cursor_key(&schedule.workflow);
            let result = self
                .queue
                .cursor(&key)
                .and_then(|cursor| schedule.due(cursor.as_deref(), now))
                .and_then(|found| self.store(&key, found));
            match result {
                Ok(polled) => {
                    total.found += polled.found;
                    total.queued += polled.queued;
                }
                Err(message) => {
                    first_error.get_or_insert(SourceError {
                        location: String::new(),
                        kind: "schedule of workflow",
                        name: schedule.workflow.clone(),
                        message,
                    });
                }
            }
        }
        first_error.map_or(Ok(total), Err)
    }

    /// Pushes what a poll found, with its cursor, in one transaction.
    fn store(&self, key: &str, found: Found) -> Result<Polled, String> {
        if found.events.is_empty() && found.cursor.is_none() {
            return Ok(Polled::default());
        }
        let items = found
            .events
            .iter()
            .map(|event| {
                serde_json::to_string(event)
                    .map(|envelope| QueueItem {
                        delivery: event.id().to_string(),
                        source: key.to_string(),
                        event: envelope,
                    })
                    .map_err(|error| format!("cannot serialize event {}: {error}", event.id()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let outcomes = self
            .queue
            .push(&items, found.cursor.as_deref().map(|cursor| (key, cursor)))?;
        Ok(Polled {
            found: items.len(),
            queued: outcomes
                .iter()
                .filter(|outcome| **outcome == Enqueued::Accepted)
                .count(),
        })
    }

    fn location(&self, source: &Source) -> String {
        match source.position {
            Some(position) => format!(
                "{}:{}:{}: ",
                self.config.file.display(),
                position.line,
                position.column
            ),
            None => String::new(),
        }
    }

    /// Polls every source on its own `every` (or `every` for all, where given) and fires the
    /// schedules on time, each source on a thread of its own, until `stop`. Failures are said on
    /// stderr and the source is tried again at its next turn.
    pub fn spawn(
        self: Arc<Self>,
        every: Option<Duration>,
        stop: CancelToken,
    ) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("vane-pollers".to_string())
            .spawn(move || {
                std::thread::scope(|threads| {
                    for source in self.sources() {
                        let interval = every
                            .or(source.every)
                            .unwrap_or(crate::config::DEFAULT_EVERY);
                        let (poller, stop) = (&self, stop.clone());
                        threads.spawn(move || {
                            every_interval(interval, &stop, || {
                                if let Err(error) = poller.poll_until(source, &stop)
                                    && !stop.is_cancelled()
                                {
                                    tracing::error!("{error}");
                                }
                            });
                        });
                    }
                    // Always, in a daemon: a reload may bring the first schedule or gate.
                    if self.has_schedules() || self.gates.has_gates() || every.is_none() {
                        let (poller, stop) = (&self, stop.clone());
                        threads.spawn(move || fire_on_time(poller, &stop));
                    }
                });
            })
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        if self.temporary_cache {
            let _ = std::fs::remove_dir_all(&self.cache_root);
        }
    }
}

/// How often a waiting poller looks at its stop token.
const TICK: Duration = Duration::from_millis(100);

/// Calls `work` now and then every `interval`, until `stop`.
fn every_interval(interval: Duration, stop: &CancelToken, mut work: impl FnMut()) {
    while !stop.is_cancelled() {
        let started = Instant::now();
        work();
        while started.elapsed() < interval && !stop.is_cancelled() {
            std::thread::sleep(TICK);
        }
    }
}

/// Fires the schedules at the start of every minute (and once at once, to catch up), and the
/// gates' due timers every tick.
fn fire_on_time(poller: &Poller, stop: &CancelToken) {
    let mut last_minute = None;
    while !stop.is_cancelled() {
        if let Err(error) = poller.fire_gates() {
            tracing::error!("gates: {error}");
        }
        let now = now();
        let minute = now.timestamp() / 60;
        if poller.has_schedules() && last_minute != Some(minute) {
            last_minute = Some(minute);
            if let Err(error) = poller.fire_schedules(now) {
                tracing::error!("{error}");
            }
        }
        std::thread::sleep(TICK);
    }
}

/// For `vane serve`: polls every polled source of `config` on its `every` and fires `set`'s
/// schedules on time into `queue`, until `stop` is cancelled; join the handle to wait for the
/// polls in flight. Subscriptions (`mqtt`, `nats`) are not started here.
pub fn spawn_pollers(
    config: Arc<Config>,
    set: &WorkflowSet,
    queue: Arc<dyn Queue>,
    state: &StateLocation,
    masker: Masker,
    stop: CancelToken,
) -> Result<(Arc<Poller>, JoinHandle<()>), String> {
    let poller = Arc::new(Poller::new(config, set, queue, state, masker)?);
    Arc::clone(&poller)
        .spawn(None, stop)
        .map(|handle| (poller, handle))
        .map_err(|error| format!("cannot start the pollers: {error}"))
}

/// Every `--source` names a polled source of the configuration.
pub fn check_selection(config: &Config, names: &[String]) -> Result<(), String> {
    for name in names {
        match config.source(name) {
            Some(source) if is_polled(source) => {}
            Some(source) => {
                return Err(format!(
                    "source `{name}` is a `{}` subscription; `vane serve` consumes it, `poll` does not",
                    source.kind.key()
                ));
            }
            None => {
                let polled: Vec<&str> = config
                    .sources
                    .iter()
                    .filter(|source| is_polled(source))
                    .map(|source| source.name.as_str())
                    .collect();
                return Err(format!(
                    "no source `{name}` in {} (polled sources: {})",
                    config.file.display(),
                    if polled.is_empty() {
                        "none".to_string()
                    } else {
                        polled.join(", ")
                    }
                ));
            }
        }
    }
    Ok(())
}
