//! `vane serve`: the daemon (SPEC §6). Webhooks are verified and queued by the HTTP side (tokio,
//! axum), pollers, schedules and broker subscriptions queue what they find (`sources`, `broker`); workers take events from the
//! queue and run them (the same `Drive` as `vane run`). SIGINT
//! or SIGTERM stops accepting, lets requests and runs in flight finish, gives events not started
//! back to the queue, and exits 0; a second signal exits at once.

use super::Exit;
use super::args::GlobalArgs;
use super::drain::{Until, drain, open_queue};
use crate::cancel::CancelToken;
use crate::config::{Config, SecretRef};
use crate::secrets::Masker;
use crate::serve::{Endpoint, Server};
use clap::Args;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (default: `serve.listen` in vane.yaml, else 127.0.0.1:8080);
    /// port 0 picks a free port, printed at startup.
    #[arg(long, env = "VANE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Runs at once, at most (default: `serve.workers` in vane.yaml, else the number of cores).
    #[arg(long, env = "VANE_PARALLEL", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
}

pub fn serve(global: &GlobalArgs, args: &ServeArgs) -> Exit {
    let Some(config) = global.loaded.clone() else {
        eprintln!(
            "error: `vane serve` needs a vane.yaml (`--config FILE`, or ./vane.yaml) with \
             `serve.webhooks` or `sources` (see `vane init`)"
        );
        return Exit::Invalid;
    };
    let masker = Masker::new();
    let endpoints = match endpoints(&config, &masker) {
        Ok(endpoints) => endpoints,
        Err(problems) => {
            for problem in problems {
                eprintln!("{}: error: {problem}", config.file.display());
            }
            return Exit::Invalid;
        }
    };
    let Some(set) = super::run::load_or_report(global, &masker) else {
        return Exit::Invalid;
    };
    let queue = match open_queue(global, &masker) {
        Ok(queue) => queue,
        Err(exit) => return exit,
    };
    let listen = args.listen.clone().unwrap_or(config.serve.listen.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vane-http")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the HTTP runtime: {error}");
            return Exit::Invalid;
        }
    };
    let listener = match runtime.block_on(tokio::net::TcpListener::bind(&listen)) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {listen}: {error}");
            return Exit::Invalid;
        }
    };
    let address = listener
        .local_addr()
        .map_or(listen.clone(), |address| address.to_string());
    let paths: Vec<String> = endpoints
        .iter()
        .map(|(path, endpoint)| format!("{} {path}", endpoint.name()))
        .collect();
    eprintln!(
        "vane: listening on http://{address} ({}; /healthz, /metrics)",
        if paths.is_empty() {
            "no webhooks".to_string()
        } else {
            paths.join(", ")
        }
    );
    let stop = CancelToken::from_signals();
    // Pollers and schedules feed the same queue as the webhooks.
    let pollers = match crate::sources::spawn_pollers(
        Arc::clone(&config),
        &set,
        Arc::clone(&queue),
        &super::state::location(global),
        masker.clone(),
        stop.clone(),
    ) {
        Ok(pollers) => pollers,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Invalid;
        }
    };
    // Broker subscriptions (NATS, MQTT) feed the same queue.
    let subscriptions =
        crate::broker::spawn_subscriptions(Arc::clone(&config), Arc::clone(&queue), stop.clone());
    let parallel = args.parallel.map(usize::from).or(config.serve.workers);
    let server = Server {
        endpoints,
        queue: Arc::clone(&queue),
        max_body: config.serve.max_body,
    };
    std::thread::scope(|threads| {
        let workers = threads.spawn(|| {
            yield_to_intake();
            drain(
                global,
                &set,
                masker.clone(),
                Arc::clone(&queue),
                Until::Stopped(stop.clone()),
                parallel,
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
        let _ = pollers.join();
        for subscription in subscriptions {
            let _ = subscription.join();
        }
        let worked = workers.join();
        match served {
            Err(error) => {
                eprintln!("error: the HTTP server stopped: {error}");
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

/// The configured webhooks with their secrets resolved; every secret that cannot be read is a
/// problem, named by its place in vane.yaml and its variable or file (never its value).
fn endpoints(config: &Config, masker: &Masker) -> Result<Vec<(String, Endpoint)>, Vec<String>> {
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
