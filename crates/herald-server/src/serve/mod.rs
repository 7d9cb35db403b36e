//! The accept loop: HTTP/1.1 (with upgrades) and HTTP/2 on one port, in the clear (h2c)
//! or over TLS, with connection limits and graceful shutdown.
//!
//! In the clear, the protocol is chosen by peeking (without consuming) at the first
//! bytes: the HTTP/2 client preface starts with `PRI `. Over TLS, ALPN chooses. Each
//! connection then runs as a task of exactly its protocol's type, so an HTTP/1
//! connection does not carry the size of an HTTP/2 one.
//!
//! Hostile input: a connection must send its first request head (in the clear), finish
//! its TLS handshake, or send the HTTP/2 preface within `limits.header_read_timeout_seconds`
//! of being accepted, and every later HTTP/1 request head within the same time; an IP
//! address may hold at most `limits.max_connections_per_ip` connections.

use crate::http::ApiError;
use crate::lean;
use crate::metrics::{self, LIMIT_CONNECTIONS_PER_IP, LIMIT_HEADER_READ_TIMEOUT, OpenConnection};
use crate::state::AppState;
use axum::Router;
use axum::extract::ConnectInfo;
use herald_proto::ErrorCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The HTTP/2 client connection preface.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Most refused connections being answered at once; beyond, they are just closed.
const MAX_REFUSING: usize = 256;

/// What every connection task needs.
struct Ctx {
    router: Router,
    closing: CancellationToken,
    header_timeout: Duration,
    max_streams: u32,
    tracker: tokio_util::task::TaskTracker,
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then: stops accepting,
/// answers parked long polls and ends streams, lets open requests finish within the
/// grace period, and commits and closes the log. With `tls`, every connection is TLS.
pub async fn run(
    listener: TcpListener,
    router: Router,
    state: AppState,
    shutdown: CancellationToken,
    tls: Option<TlsAcceptor>,
) {
    let closing = CancellationToken::new();
    let limits = &state.config.limits;
    let per_ip = PerIp::new(limits.max_connections_per_ip);
    let ctx = Arc::new(Ctx {
        router,
        closing: closing.clone(),
        header_timeout: Duration::from_secs(limits.header_read_timeout_seconds),
        max_streams: limits.max_http2_streams,
        tracker: state.connections.clone(),
    });
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
        let Some(slot) = per_ip.acquire(peer.ip()) else {
            metrics::rejected(LIMIT_CONNECTIONS_PER_IP);
            tracing::debug!(%peer, "too many connections from this address");
            // Over TLS an answer would need a handshake, the work the limit saves.
            if tls.is_none() {
                per_ip.refuse(stream);
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let deadline = Instant::now() + ctx.header_timeout;
        let ctx = ctx.clone();
        let tls = tls.clone();
        state.connections.spawn(async move {
            let closing = ctx.closing.clone();
            tokio::select! {
                _ = start(stream, peer, slot, deadline, tls, ctx) => {}
                _ = closing.cancelled() => {}
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

/// Finds the connection's protocol (TLS handshake and ALPN, or a peek) by `deadline`,
/// then hands it to a task of that protocol.
async fn start(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    deadline: Instant,
    tls: Option<TlsAcceptor>,
    ctx: Arc<Ctx>,
) {
    let Some(acceptor) = tls else {
        match detect(&stream, deadline).await {
            Detected::Http2 => {
                let io = Conn::new(stream, slot, OpenConnection::new(true, false));
                ctx.tracker.clone().spawn(serve_h2(io, peer, ctx));
            }
            Detected::Http1 => {
                let open = OpenConnection::new(false, false);
                ctx.tracker
                    .clone()
                    .spawn(serve_h1_plain(stream, peer, slot, open, deadline, ctx));
            }
            Detected::TimedOut => metrics::rejected(LIMIT_HEADER_READ_TIMEOUT),
            Detected::Closed => {}
        }
        return;
    };
    let stream = match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, %peer, "TLS handshake failed");
            return;
        }
        Err(_) => {
            metrics::rejected(LIMIT_HEADER_READ_TIMEOUT);
            return;
        }
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let mut io = Conn::new(stream, slot, OpenConnection::new(h2, true));
    if h2 {
        // hyper's HTTP/2 side has no header timeout: require the preface in time.
        io.preface = Some(Preface {
            remaining: H2_PREFACE.len(),
            timer: Box::pin(tokio::time::sleep_until(deadline)),
        });
        ctx.tracker.clone().spawn(serve_h2(io, peer, ctx));
    } else {
        ctx.tracker.clone().spawn(serve_h1(io, peer, ctx));
    }
}

enum Detected {
    Http1,
    Http2,
    Closed,
    TimedOut,
}

/// Whether the connection opens with the HTTP/2 preface, waiting for it (or for a byte
/// that rules it out) until `deadline`.
async fn detect(stream: &TcpStream, deadline: Instant) -> Detected {
    let mut buf = [0u8; H2_PREFACE.len()];
    let mut backoff = lean::Backoff::default();
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Err(_) => return Detected::TimedOut,
            Ok(Ok(0) | Err(_)) => return Detected::Closed,
            Ok(Ok(n)) => n,
        };
        if buf[..n] != H2_PREFACE[..n] {
            return Detected::Http1;
        }
        if n == H2_PREFACE.len() {
            return Detected::Http2;
        }
        // A partial preface: the rest is in flight.
        if !backoff.wait(deadline).await {
            return Detected::TimedOut;
        }
    }
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

/// HTTP/1 in the clear: long polls and event streams are served without hyper's
/// per-connection buffers for as long as the connection carries only those.
async fn serve_h1_plain(
    mut stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    open: OpenConnection,
    mut deadline: Instant,
    ctx: Arc<Ctx>,
) {
    // The first head is due by the accept deadline, later ones within the timeout.
    let mut first = true;
    loop {
        let peeked = tokio::select! {
            p = lean::peek(&stream, deadline) => p,
            _ = ctx.closing.cancelled() => return,
        };
        let head = match peeked {
            lean::Peeked::Lean(head) => head,
            lean::Peeked::Hyper => break,
            lean::Peeked::Closed => return,
            lean::Peeked::TimedOut { partial } => {
                // An idle keep-alive connection timing out is no rejection.
                if partial || first {
                    metrics::rejected(LIMIT_HEADER_READ_TIMEOUT);
                }
                return;
            }
        };
        first = false;
        match lean::serve(&mut stream, head, peer, &ctx.router).await {
            lean::After::KeepAlive if !ctx.closing.is_cancelled() => {
                deadline = Instant::now() + ctx.header_timeout;
            }
            _ => return,
        }
    }
    serve_h1(Conn::new(stream, slot, open), peer, ctx).await;
}

/// HTTP/1 through hyper, with upgrades (WebSockets).
async fn serve_h1<IO>(mut io: Conn<IO>, peer: SocketAddr, ctx: Arc<Ctx>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let awaiting = Arc::new(AtomicBool::new(true));
    io.awaiting_head = Some(awaiting.clone());
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service(ctx.router.clone(), peer))
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = ctx.closing.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    match result {
        // hyper's timer also closes idle keep-alive connections: not a rejection.
        Err(e) if e.is_timeout() => {
            if awaiting.load(Ordering::Relaxed) {
                metrics::rejected(LIMIT_HEADER_READ_TIMEOUT);
            }
        }
        Err(e) => tracing::debug!(error = %e, %peer, "HTTP/1 connection ended with an error"),
        Ok(()) => {}
    }
}

async fn serve_h2<IO>(io: Conn<IO>, peer: SocketAddr, ctx: Arc<Ctx>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(ctx.max_streams)
        // Pings find peers that vanished without closing (long-lived gRPC streams).
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20))
        .serve_connection(TokioIo::new(io), service(ctx.router.clone(), peer));
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = ctx.closing.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "HTTP/2 connection ended with an error");
    }
}

mod conn;
mod per_ip;

use conn::{Conn, Preface};
use per_ip::{PerIp, Slot};
