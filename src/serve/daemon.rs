//! The daemon behind `vane serve`: the HTTP side (webhooks verified and queued), the pollers,
//! schedules and broker subscriptions queueing what they find, and the workers running what is
//! queued through the same pipeline as `vane run`. A stop (SIGINT/SIGTERM) stops accepting,
//! lets requests and runs in flight finish, gives events not started back to the queue.

use super::reload::{Workflows, drain_reloading, spawn_reloader};
use super::{Endpoint, ReloadEndpoint, Server};
use crate::cancel::CancelToken;
use crate::config::{Config, SecretRef};
use crate::pipeline::{Exit, Settings, Until, drain};
use crate::queue::Queue;
use crate::secrets::Masker;
use crate::workflow::WorkflowSet;
use std::sync::Arc;
use std::time::Duration;

/// Runs until stopped; `listen` is the address to bind (port 0 picks one, printed at startup).
pub fn run_daemon(
    config: Arc<Config>,
    settings: &Settings,
    workflows: Arc<Workflows>,
    masker: Masker,
    queue: Arc<dyn Queue>,
    endpoints: Vec<(String, Endpoint)>,
    listen: String,
) -> Exit {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vane-http")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("cannot start the HTTP runtime: {error}");
            return Exit::Invalid;
        }
    };
    let listener = match runtime.block_on(tokio::net::TcpListener::bind(&listen)) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!("cannot listen on {listen}: {error}");
            return Exit::Invalid;
        }
    };
    let reload_token = match &config.serve.reload_token {
        Some(reference) => match reference.resolve() {
            Ok(token) => {
                masker.add(&token);
                Some(token)
            }
            Err(message) => {
                tracing::error!(place = %config.file.display(), "serve.reload-token: {message}");
                return Exit::Invalid;
            }
        },
        None => None,
    };
    let stop = CancelToken::from_signals();
    // Before the first line: whoever reads it may send SIGHUP at once.
    let reloader = match spawn_reloader(Arc::clone(&workflows), stop.clone()) {
        Ok(reloader) => reloader,
        Err(error) => {
            tracing::error!("cannot start the reloader: {error}");
            return Exit::Invalid;
        }
    };
    let set = workflows.current();
    let address = listener
        .local_addr()
        .map_or(listen.clone(), |address| address.to_string());
    let paths: Vec<String> = endpoints
        .iter()
        .map(|(path, endpoint)| format!("{} {path}", endpoint.name()))
        .collect();
    let sources = source_names(Some(&config));
    tracing::info!(
        address = %format!("http://{address}"),
        endpoints = %paths.join(", "),
        sources = %sources,
        queue = %settings.queue_label(),
        workflows = set.len(),
        watch = workflows.watch.is_some(),
        "listening on http://{address} ({}; /healthz, /metrics, /-/reload)",
        if paths.is_empty() {
            "no webhooks".to_string()
        } else {
            paths.join(", ")
        }
    );
    // Pollers and schedules feed the same queue as the webhooks.
    let pollers = match crate::sources::spawn_pollers(
        Arc::clone(&config),
        &set,
        Arc::clone(&queue),
        &settings.state,
        masker.clone(),
        stop.clone(),
    ) {
        Ok((poller, pollers)) => {
            workflows.on_reload(&set, Box::new(move |set| poller.reload(set)));
            pollers
        }
        Err(message) => {
            tracing::error!("{message}");
            stop.cancel();
            return Exit::Invalid;
        }
    };
    // Delivery ids and run payloads are forgotten on schedule.
    let pruner = super::retention::spawn_pruner(
        &settings.state,
        masker.clone(),
        config.serve.dedup_window,
        config.serve.payload_retention,
        stop.clone(),
    );
    // Broker subscriptions (NATS, MQTT) feed the same queue.
    let subscriptions =
        crate::broker::spawn_subscriptions(Arc::clone(&config), Arc::clone(&queue), stop.clone());
    let server = Server {
        endpoints,
        queue: Arc::clone(&queue),
        max_body: config.serve.max_body,
        reload: Some(ReloadEndpoint {
            workflows: Arc::clone(&workflows),
            token: reload_token,
        }),
        limits: super::Limits {
            max_connections: config
                .serve
                .max_connections
                .unwrap_or_else(super::connections::default_max_connections),
            header_timeout: config.serve.header_timeout,
        },
    };
    std::thread::scope(|threads| {
        let workers = threads.spawn(|| {
            yield_to_intake();
            drain_reloading(
                settings,
                &workflows,
                masker.clone(),
                Arc::clone(&queue),
                stop.clone(),
            )
        });
        let shutdown = {
            let stop = stop.clone();
            async move {
                while !stop.is_cancelled() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let served = runtime.block_on(crate::serve::run(server, listener, shutdown));
        // However the HTTP side ended, the pollers and workers stop too.
        stop.cancel();
        tracing::info!("shutting down: no new deliveries; the runs in flight finish");
        let _ = pollers.join();
        let _ = reloader.join();
        if let Some(pruner) = pruner {
            let _ = pruner.join();
        }
        for subscription in subscriptions {
            let _ = subscription.join();
        }
        let worked = workers.join();
        tracing::info!("stopped");
        match served {
            Err(error) => {
                tracing::error!("the HTTP server stopped: {error}");
                Exit::Invalid
            }
            Ok(()) => match worked {
                Ok(Exit::Invalid) => Exit::Invalid,
                Ok(_) => Exit::Success,
                Err(panic) => std::panic::resume_unwind(panic),
            },
        }
    })
}

/// The names of `config`'s sources, as the startup log lists them (`git infra, nats alerts`).
fn source_names(config: Option<&Config>) -> String {
    config
        .map(|config| {
            config
                .sources
                .iter()
                .map(|source| format!("{} {}", source.kind.key(), source.name))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `vane worker`: the workers of `vane serve` without the HTTP side, and the subscription
/// sources of vane.yaml (`nats:`, `mqtt:`), until SIGINT/SIGTERM. The first signal stops taking
/// events and lets the runs in flight finish (a second exits at once).
pub fn run_worker(
    config: Option<Arc<Config>>,
    settings: &Settings,
    workflows: Arc<Workflows>,
    masker: Masker,
    queue: Arc<dyn Queue>,
) -> Exit {
    let stop = CancelToken::from_signals();
    let reloader = match spawn_reloader(Arc::clone(&workflows), stop.clone()) {
        Ok(reloader) => reloader,
        Err(error) => {
            tracing::error!("cannot start the reloader: {error}");
            return Exit::Invalid;
        }
    };
    let set = workflows.current();
    let subscriptions = match &config {
        Some(config) => {
            crate::broker::spawn_subscriptions(Arc::clone(config), Arc::clone(&queue), stop.clone())
        }
        None => Vec::new(),
    };
    let subscribed: Vec<String> = config
        .as_deref()
        .map(crate::broker::subscription_sources)
        .unwrap_or_default()
        .iter()
        .map(|source| format!("{} {}", source.kind.key(), source.name))
        .collect();
    tracing::info!(
        queue = %settings.queue_label(),
        sources = %subscribed.join(", "),
        workflows = set.len(),
        parallel = settings.parallel,
        "worker started: running events from {}",
        settings.queue_label()
    );
    // The gates' due timers (debounce quiet, window end, correlation timeout) of the workflows
    // it runs now (a reload hands them the new set); they stop only once the runs in flight are
    // done.
    let timer_stop = CancelToken::new();
    let timers = crate::gates::timers::Timers::for_queue(
        &set,
        &settings.queue(),
        &settings.state,
        Arc::clone(&queue),
        masker.clone(),
    )
    .map(Arc::new)
    .and_then(|timers| {
        let reloaded = Arc::clone(&timers);
        workflows.on_reload(&set, Box::new(move |set| reloaded.reload(set)));
        crate::gates::store::spawn_timers(timers, timer_stop.clone())
    });
    let timers = match timers {
        Ok(timers) => timers,
        Err(message) => {
            tracing::error!("{message}");
            stop.cancel();
            return Exit::Invalid;
        }
    };
    let exit = drain_reloading(settings, &workflows, masker, queue, stop.clone());
    stop.cancel();
    timer_stop.cancel();
    let _ = reloader.join();
    for subscription in subscriptions {
        let _ = subscription.join();
    }
    let _ = timers.join();
    tracing::info!("stopped");
    exit.for_daemon()
}

/// `vane poll`: with `every`, every source polled on that interval, the schedules fired on time,
/// what they find run, until SIGINT/SIGTERM; without, one round of the sources `names` (all when
/// empty, with the schedules) and what it found run, then the exit status.
pub fn run_poller(
    poller: crate::sources::Poller,
    every: Option<Duration>,
    (names, verbose): (&[String], bool),
    settings: &Settings,
    set: &WorkflowSet,
    masker: Masker,
    queue: Arc<dyn Queue>,
) -> Exit {
    let Some(every) = every else {
        let failed = !poller.poll_once(names, verbose);
        let exit = drain(settings, set, masker, queue, Until::Empty);
        return if failed {
            exit.worst(Exit::Invalid)
        } else {
            exit
        };
    };
    let sources = source_names(Some(poller.config()));
    let stop = CancelToken::from_signals();
    let pollers = match Arc::new(poller).spawn(Some(every), stop.clone()) {
        Ok(handle) => handle,
        Err(error) => {
            tracing::error!("cannot start the pollers: {error}");
            return Exit::Invalid;
        }
    };
    tracing::info!(
        every = %crate::duration::format_duration(every),
        sources = %sources,
        queue = %settings.queue_label(),
        workflows = set.len(),
        "polling every {}",
        crate::duration::format_duration(every)
    );
    let exit = drain(settings, set, masker, queue, Until::Stopped(stop.clone()));
    stop.cancel();
    let _ = pollers.join();
    tracing::info!("stopped");
    exit.for_daemon()
}

/// The configured webhooks with their secrets resolved; every secret that cannot be read is a
/// problem, named by its place in vane.yaml and its variable or file (never its value).
pub fn endpoints(config: &Config, masker: &Masker) -> Result<Vec<(String, Endpoint)>, Vec<String>> {
    let mut problems = Vec::new();
    let mut secret = |place: &str, reference: &SecretRef| match reference.resolve() {
        Ok(value) => {
            masker.add(&value);
            value
        }
        Err(message) => {
            problems.push(format!("{place}: {message}"));
            String::new()
        }
    };
    let hooks = &config.serve.webhooks;
    let mut endpoints = Vec::new();
    if let Some(github) = &hooks.github {
        let value = secret("serve.webhooks.github.secret", &github.secret);
        endpoints.push((github.path.clone(), Endpoint::Github { secret: value }));
    }
    if let Some(gitlab) = &hooks.gitlab {
        let value = secret("serve.webhooks.gitlab.token", &gitlab.token);
        endpoints.push((gitlab.path.clone(), Endpoint::Gitlab { token: value }));
    }
    if let Some(generic) = &hooks.generic {
        let value = secret("serve.webhooks.generic.hmac.secret", &generic.hmac.secret);
        endpoints.push((
            generic.path.clone(),
            Endpoint::Generic {
                header: generic.hmac.header.clone(),
                secret: value,
                kind: generic.kind.clone(),
            },
        ));
    }
    if let Some(cloudevents) = &hooks.cloudevents {
        let hmac = cloudevents.hmac.as_ref().map(|hmac| {
            (
                hmac.header.clone(),
                secret("serve.webhooks.cloudevents.hmac.secret", &hmac.secret),
            )
        });
        endpoints.push((cloudevents.path.clone(), Endpoint::CloudEvents { hmac }));
    }
    if let Some(alertmanager) = &hooks.alertmanager {
        let auth = match (&alertmanager.auth.bearer, &alertmanager.auth.basic) {
            (Some(bearer), _) => {
                super::AlertAuth::Bearer(secret("serve.webhooks.alertmanager.auth.bearer", bearer))
            }
            (None, Some(basic)) => super::AlertAuth::Basic {
                username: basic.username.clone(),
                password: secret(
                    "serve.webhooks.alertmanager.auth.basic.password",
                    &basic.password,
                ),
            },
            (None, None) => {
                problems
                    .push("serve.webhooks.alertmanager.auth: give `bearer` or `basic`".to_string());
                super::AlertAuth::Bearer(String::new())
            }
        };
        endpoints.push((
            alertmanager.path.clone(),
            Endpoint::Alertmanager {
                auth,
                split: alertmanager.split,
            },
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (path, _) in &endpoints {
        if !path.starts_with('/') {
            problems.push(format!("webhook path `{path}` must start with `/`"));
        }
        if !seen.insert(path.clone()) || path == "/healthz" || path == "/metrics" {
            problems.push(format!("webhook path `{path}` is used twice"));
        }
    }
    if problems.is_empty() {
        Ok(endpoints)
    } else {
        Err(problems)
    }
}

/// Lowers the calling thread's scheduling priority (nice 10), inherited by the threads and
/// processes it starts: under a backlog, answering webhooks — GitHub gives up on a delivery after
/// 10 s — goes before running what is queued, which waits durably anyway.
fn yield_to_intake() {
    // SAFETY: `gettid` has no preconditions; `setpriority` on the calling thread's id changes
    // only that thread's nice value (Linux keeps it per thread), and fails harmlessly elsewhere.
    unsafe {
        let thread = libc::gettid();
        let _ = libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, 10);
    }
}
