//! The accept loop: HTTP/1.1 (with upgrades) and h2c on one port, graceful shutdown.
//!
//! The protocol is chosen by peeking (without consuming) at the first bytes: the HTTP/2
//! client preface starts with `PRI `. Each connection then runs as a task of exactly its
//! protocol's type, so an HTTP/1 connection does not carry the size of an HTTP/2 one.

use crate::lean;
use crate::state::AppState;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long a client may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` is cancelled, then: stops accepting,
/// answers parked long polls and ends streams, lets open requests finish within the
/// grace period, and commits and closes the log.
pub async fn run(
    listener: TcpListener,
    router: Router,
    state: AppState,
    shutdown: CancellationToken,
) {
    let closing = CancellationToken::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (router, closing, tracker) =
            (router.clone(), closing.clone(), state.connections.clone());
        let max_streams = state.config.limits.max_http2_streams;
        state.connections.spawn(async move {
            if is_h2(&stream).await {
                tracker.spawn(serve_h2(stream, peer, router, closing, max_streams));
            } else {
                tracker.spawn(serve_h1(stream, peer, router, closing));
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no longer accepting connections");
    state.hub.begin_shutdown();
    closing.cancel();
    state.connections.close();
    let grace = Duration::from_secs(state.config.shutdown.grace_seconds);
    if tokio::time::timeout(grace, state.connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after the grace period");
    }
    match state.hub.close().await {
        Ok(()) => tracing::info!("log committed and closed"),
        Err(e) => tracing::error!(error = %e, "closing the log failed"),
    }
}

/// Whether the connection opens with the HTTP/2 preface.
async fn is_h2(stream: &TcpStream) -> bool {
    const PREFACE: &[u8] = b"PRI ";
    let mut buf = [0u8; 4];
    for _ in 0..1000 {
        match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if buf[..n] != PREFACE[..n] => return false,
            Ok(n) if n == PREFACE.len() => return true,
            // A partial preface: the rest is in flight.
            Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    false
}

fn service(
    router: Router,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req.map(axum::body::Body::new))
    })
}

async fn serve_h1(
    mut stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    closing: CancellationToken,
) {
    // Long polls and event streams are served without hyper's per-connection buffers
    // for as long as the connection carries only those.
    loop {
        let head = tokio::select! {
            head = lean::peek(&stream, HEADER_READ_TIMEOUT) => head,
            _ = closing.cancelled() => return,
        };
        let Some(head) = head else { break };
        match lean::serve(&mut stream, head, peer, &router).await {
            lean::After::KeepAlive if !closing.is_cancelled() => continue,
            _ => return,
        }
    }
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service(router, peer))
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = closing.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "HTTP/1 connection ended with an error");
    }
}

async fn serve_h2(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    closing: CancellationToken,
    max_streams: u32,
) {
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(max_streams)
        // Pings find peers that vanished without closing (long-lived gRPC streams).
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20))
        .serve_connection(TokioIo::new(stream), service(router, peer));
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = closing.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "HTTP/2 connection ended with an error");
    }
}
