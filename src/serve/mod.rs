//! `vane serve`'s HTTP side (SPEC §6): the webhook endpoints, `/healthz` and `/metrics`.
//!
//! A delivery is verified (constant-time), refused with 401 when unsigned or wrongly signed, 413
//! when over the body limit, 400 when it is not an event; otherwise it is written to the durable
//! queue and only then answered — 202, or 200 for a delivery id accepted before (no second run).
//! Nothing refused is ever written anywhere.

mod alertmanager;
mod connections;
mod daemon;
mod intake;
pub mod reload;
mod retention;
mod verify;

pub use connections::Limits;
pub use daemon::{endpoints, run_daemon, run_poller, run_worker};
pub use intake::{AlertAuth, Endpoint, event as request_event};
pub use verify::sign;

use crate::metrics::{self, Delivery};
use crate::queue::{Enqueued, Queue, QueueItem};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::future::Future;
use std::sync::Arc;

/// What the server needs: its endpoints (path → how to read it), the queue, the body limit,
/// the connection limits.
pub struct Server {
    pub endpoints: Vec<(String, Endpoint)>,
    pub queue: Arc<dyn Queue>,
    pub max_body: usize,
    pub limits: Limits,
    /// `POST /-/reload`, where the daemon reloads.
    pub reload: Option<ReloadEndpoint>,
}

/// `POST /-/reload`: the workflows to reload, and the bearer token it takes (`serve.reload-token`
/// of vane.yaml); without a token only loopback addresses may ask.
pub struct ReloadEndpoint {
    pub workflows: Arc<reload::Workflows>,
    pub token: Option<String>,
}

/// How long `/healthz` and `/metrics` wait for the queue before answering without it.
const HEALTH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

struct App {
    queue: Arc<dyn Queue>,
    max_body: usize,
    reload: Option<ReloadEndpoint>,
}

/// Serves until `shutdown` completes, then stops accepting and lets requests in flight finish.
pub async fn run(
    server: Server,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Arc::new(App {
        queue: server.queue,
        max_body: server.max_body,
        reload: server.reload,
    });
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/-/reload", post(reload_workflows));
    for (path, endpoint) in server.endpoints {
        let endpoint = Arc::new(endpoint);
        router = router.route(
            &path,
            post(
                move |State(app): State<Arc<App>>, headers: HeaderMap, body: Body| {
                    let endpoint = Arc::clone(&endpoint);
                    async move { receive(app, endpoint, headers, body).await }
                },
            ),
        );
    }
    let router = router.with_state(app);
    connections::serve(listener, router, server.limits, shutdown).await
}

/// `POST /-/reload`: 200 with the number of workflows, or 400 with every problem
/// (`file:line:col: error: …`) and nothing changed; 401/403 for who may not ask.
async fn reload_workflows(
    State(app): State<Arc<App>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Some(reload) = &app.reload else {
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": "this daemon does not reload" }),
        );
    };
    match &reload.token {
        Some(token) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "));
            if verify::token(token, given).is_err() {
                tracing::warn!(peer = %peer, "reload refused: no or wrong bearer token");
                return json(
                    StatusCode::UNAUTHORIZED,
                    &serde_json::json!({ "error": "`Authorization: Bearer <serve.reload-token>` is required" }),
                );
            }
        }
        None if !peer.ip().is_loopback() => {
            tracing::warn!(peer = %peer, "reload refused: not from a loopback address");
            return json(
                StatusCode::FORBIDDEN,
                &serde_json::json!({ "error": "only loopback addresses may reload (or set serve.reload-token)" }),
            );
        }
        None => {}
    }
    let workflows = Arc::clone(&reload.workflows);
    let reloaded = tokio::task::spawn_blocking(move || workflows.reload("POST /-/reload")).await;
    match reloaded {
        Ok(Ok(reloaded)) => json(
            StatusCode::OK,
            &serde_json::json!({
                "status": "reloaded",
                "workflows": reloaded.workflows,
                "revision": reloaded.revision,
            }),
        ),
        Ok(Err(problems)) => json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({
                "error": format!("{} problem(s) in the workflows; nothing changed", problems.len()),
                "problems": problems,
            }),
        ),
        Err(_) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "error": "the reload did not finish" }),
        ),
    }
}

/// The queue's health and depth, or why it is degraded — within [`HEALTH_WAIT`] whatever the
/// queue does (a broker that is down must not hold the answer).
async fn queue_state(queue: &Arc<dyn Queue>) -> (Result<(), String>, Option<u64>) {
    if let Some(reason) = crate::pipeline::intake::paused() {
        return (
            Err(format!(
                "the state store cannot be written ({reason}); no events are taken"
            )),
            None,
        );
    }
    let queue = Arc::clone(queue);
    // Reading the store may wait for a writer: not on the threads that answer webhooks.
    let checked = tokio::task::spawn_blocking(move || match queue.health() {
        Ok(()) => (Ok(()), queue.depth()),
        Err(reason) => (Err(reason), None),
    });
    match tokio::time::timeout(HEALTH_WAIT, checked).await {
        Ok(Ok(state)) => state,
        Ok(Err(_)) => (Err("the queue check failed".to_string()), None),
        Err(_) => (
            Err(format!(
                "the queue did not answer within {} s",
                HEALTH_WAIT.as_secs()
            )),
            None,
        ),
    }
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match queue_state(&app.queue).await {
        (Ok(()), depth) => json(
            StatusCode::OK,
            &serde_json::json!({ "status": "ok", "queue_depth": depth }),
        ),
        (Err(reason), depth) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "degraded", "reason": reason, "queue_depth": depth }),
        ),
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    let (_, depth) = queue_state(&app.queue).await;
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        metrics::render(depth),
    )
        .into_response()
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Refuses a delivery: counted, logged with its reason (never its body, which may be anyone's
/// bytes, nor the detail of what it lacks, which may quote them), answered with `message`.
fn refuse(endpoint: &Endpoint, status: StatusCode, reason: &str, message: &str) -> Response {
    metrics::delivery(endpoint.name(), Delivery::Rejected(reason));
    if status.is_server_error() {
        tracing::error!(
            endpoint = endpoint.name(),
            reason,
            status = status.as_u16(),
            "delivery rejected: {reason}"
        );
    } else {
        tracing::warn!(
            endpoint = endpoint.name(),
            reason,
            status = status.as_u16(),
            "delivery rejected: {reason}"
        );
    }
    json(status, &serde_json::json!({ "error": message }))
}

async fn receive(
    app: Arc<App>,
    endpoint: Arc<Endpoint>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let too_large = format!("the body is larger than {} bytes", app.max_body);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > app.max_body) {
        return refuse(
            &endpoint,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &too_large,
        );
    }
    let Ok(body) = axum::body::to_bytes(body, app.max_body).await else {
        return refuse(
            &endpoint,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &too_large,
        );
    };
    if let Err(refusal) = authenticate(&endpoint, &headers, &body) {
        let header_name = match endpoint.as_ref() {
            Endpoint::Github { .. } => "X-Hub-Signature-256",
            Endpoint::Gitlab { .. } => "X-Gitlab-Token",
            Endpoint::Generic { header, .. } => header.as_str(),
            Endpoint::CloudEvents { hmac } => hmac.as_ref().map_or("", |(header, _)| header),
            Endpoint::Alertmanager { .. } => "Authorization",
        };
        return refuse(
            &endpoint,
            StatusCode::UNAUTHORIZED,
            refusal.reason(),
            &refusal.message(header_name),
        );
    }
    let events = match intake::events(&endpoint, &headers, &body) {
        Ok(events) => events,
        Err(message) => {
            return refuse(&endpoint, StatusCode::BAD_REQUEST, "malformed", &message);
        }
    };
    let ids: Vec<String> = events.iter().map(|event| event.id().to_string()).collect();
    let mut items = Vec::new();
    for event in &events {
        let Ok(text) = serde_json::to_string(event) else {
            return refuse(
                &endpoint,
                StatusCode::BAD_REQUEST,
                "malformed",
                "the event cannot be stored",
            );
        };
        items.push(QueueItem {
            delivery: event.id().to_string(),
            source: endpoint.name().to_string(),
            event: text,
        });
    }
    let id = ids.join(",");
    // Answered only once the delivery is committed (durable); the request waits without holding
    // a thread, while the queue's writer commits it with the other requests of the moment.
    let (reply, answer) = tokio::sync::oneshot::channel();
    app.queue.push_then(
        items,
        None,
        Box::new(move |outcome| {
            let _ = reply.send(outcome);
        }),
    );
    match answer.await {
        // Every event of the request seen before (a re-send): nothing new runs.
        Ok(Ok(outcomes))
            if !outcomes.is_empty()
                && outcomes
                    .iter()
                    .all(|outcome| *outcome == Enqueued::Duplicate) =>
        {
            metrics::delivery(endpoint.name(), Delivery::Duplicate);
            tracing::info!(endpoint = endpoint.name(), delivery = %id, status = 200, "delivery {id} accepted before: not queued again");
            json(
                StatusCode::OK,
                &serde_json::json!({ "id": id, "status": "duplicate" }),
            )
        }
        Ok(Ok(_)) => {
            metrics::delivery(endpoint.name(), Delivery::Accepted);
            tracing::info!(endpoint = endpoint.name(), delivery = %id, status = 202, "delivery {id} accepted");
            json(
                StatusCode::ACCEPTED,
                &serde_json::json!({ "id": id, "status": "queued" }),
            )
        }
        Ok(Err(message)) => {
            tracing::error!("cannot queue delivery {id}: {message}");
            refuse(
                &endpoint,
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_unavailable",
                "the event could not be stored; retry later",
            )
        }
        Err(_) => refuse(
            &endpoint,
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            "the event could not be stored; retry later",
        ),
    }
}

/// Checks the request's signature or token as its endpoint requires.
fn authenticate(
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), verify::Refusal> {
    let value = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    match endpoint {
        Endpoint::Github { secret } => {
            verify::github_signature(secret.as_bytes(), body, value("x-hub-signature-256"))
        }
        Endpoint::Gitlab { token } => verify::token(token, value("x-gitlab-token")),
        Endpoint::Generic { header, secret, .. } => {
            verify::hmac_sha256(secret.as_bytes(), body, value(header))
        }
        Endpoint::CloudEvents { hmac } => match hmac {
            Some((header, secret)) => verify::hmac_sha256(secret.as_bytes(), body, value(header)),
            None => Ok(()),
        },
        Endpoint::Alertmanager { auth, .. } => verify::authorization(auth, value("authorization")),
    }
}
