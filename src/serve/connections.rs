//! The daemon's accept loop: axum's router served connection by connection by hyper, with a cap
//! on connections (the next one gets 503 at once, so that idle or slow clients cannot take every
//! file descriptor) and a header-read timeout (a request's headers, and the wait for the next
//! request on a kept-alive connection, must come within it, else the connection is closed).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Connection limits of `vane serve`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once (`serve.max-connections`).
    pub max_connections: usize,
    /// For a request's headers, and between requests (`serve.header-timeout`).
    pub header_timeout: Duration,
}

/// Half the process's open-file limit (the rest for the store, steps and brokers), at most 1024.
pub fn default_max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes the limit into the struct it is given.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !read || limit.rlim_cur == libc::RLIM_INFINITY {
        return 1024;
    }
    ((limit.rlim_cur / 2) as usize).clamp(16, 1024)
}

/// The answer to a connection over the cap, written before it is closed.
const BUSY: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 61\r\n\r\n\
{\"error\":\"too many connections; retry later\",\"status\":\"busy\"}";

/// Serves `router` on `listener` until `shutdown`; then stops accepting and lets the requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        // Reap what has finished, so the set does not grow with every connection ever served.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors (EMFILE) or a connection reset before it was accepted: the
                // listener itself is fine; wait a moment rather than spin.
                tracing::error!("cannot accept a connection: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            crate::metrics::connection_refused();
            connections.spawn(busy(stream));
            continue;
        };
        // Handlers that ask who is calling (`/-/reload` is loopback-only without a token) read
        // the peer address as axum's `ConnectInfo`, as `into_make_service_with_connect_info`
        // would give it.
        let peer = axum::Extension(axum::extract::ConnectInfo(peer));
        let service = TowerToHyperService::new(router.clone().layer(peer));
        let mut closed = closed.clone();
        let header_timeout = limits.header_timeout;
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = closed.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Answers 503 on a connection over the cap: what the client sent is read briefly first, so
/// that closing does not reset the connection before it reads the answer.
async fn busy(mut stream: TcpStream) {
    let mut buffer = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await;
    let _ = stream.write_all(BUSY.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_answer_declares_its_own_length() {
        let (head, body) = BUSY.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }

    #[test]
    fn the_default_cap_leaves_descriptors_for_the_rest() {
        let cap = default_max_connections();
        assert!((16..=1024).contains(&cap));
    }
}
