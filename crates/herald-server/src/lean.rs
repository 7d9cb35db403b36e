//! Long-lived GET requests (SSE streams and long polls) on HTTP/1.1 without hyper's
//! per-connection buffers.
//!
//! hyper gives every HTTP/1 connection an 8 KiB read buffer and an 8 KiB write buffer for
//! its whole life, which dominates the memory of a parked long poll or an idle event
//! stream. For exactly these requests — `GET` over HTTP/1.1, no body, no upgrade, an SSE
//! route or a read with `wait=` — the request head is parsed from a non-consuming peek,
//! the request goes through the same router (same handlers, same errors), and the
//! response is written here: a full body with `content-length`, a stream with chunked
//! encoding. Everything else, including whatever follows on the connection, is served
//! by hyper.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, Version, header};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower::ServiceExt;

/// Largest request head handled here (bigger ones go to hyper).
const MAX_HEAD: usize = 4096;
const MAX_HEADERS: usize = 32;

/// A request head taken from a peek.
pub(crate) struct Head {
    len: usize,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
}

/// What became of a connection after one request.
pub(crate) enum After {
    /// Ready for the next request.
    KeepAlive,
    /// The connection is finished.
    Close,
}

/// What a peek at the next request found.
pub(crate) enum Peeked {
    /// A request this module serves.
    Lean(Head),
    /// A request for hyper (not eligible here, too large, or malformed).
    Hyper,
    /// The peer closed (or the socket failed) before sending a request.
    Closed,
    /// No complete head arrived by the deadline; `partial` when part of one did.
    TimedOut { partial: bool },
}

/// Peeks at the next request head, waiting until `deadline` for a complete one.
pub(crate) async fn peek(stream: &TcpStream, deadline: Instant) -> Peeked {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut backoff = Backoff::default();
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            Ok(_) => return Peeked::Closed,
            Err(_) => return Peeked::TimedOut { partial: false },
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..n]) {
            Ok(httparse::Status::Complete(len)) => {
                return match eligible(&req, len) {
                    Some(head) => Peeked::Lean(head),
                    None => Peeked::Hyper,
                };
            }
            Ok(httparse::Status::Partial) if n < MAX_HEAD => {
                // The rest of the head is in flight (peek does not wait for more).
                if !backoff.wait(deadline).await {
                    return Peeked::TimedOut { partial: true };
                }
            }
            _ => return Peeked::Hyper,
        }
    }
}

/// Waits between peeks for more bytes: 1 ms, doubling up to 64 ms, so that a peer that
/// trickles bytes (or stops mid-head) does not keep the task spinning.
#[derive(Debug, Default)]
pub(crate) struct Backoff(u32);

impl Backoff {
    /// Sleeps for the next step, never past `deadline`; false when it has passed.
    pub(crate) async fn wait(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let step = Duration::from_millis(1 << self.0.min(6));
        self.0 += 1;
        tokio::time::sleep_until((now + step).min(deadline)).await;
        true
    }
}

fn eligible(req: &httparse::Request<'_, '_>, len: usize) -> Option<Head> {
    if req.method != Some("GET") || req.version != Some(1) {
        return None;
    }
    let path = req.path?;
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let sse =
        route == "/v1/events" || (route.starts_with("/v1/topics/") && route.ends_with("/events"));
    let long_poll = (route == "/v1/messages"
        || (route.starts_with("/v1/topics/") && route.ends_with("/messages")))
        && query
            .split('&')
            .any(|kv| kv.starts_with("wait=") && kv != "wait=" && kv != "wait=0");
    if !(sse || long_poll) {
        return None;
    }
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        let has_body = (name == "content-length" && h.value != b"0") || name == "transfer-encoding";
        if has_body || name == "upgrade" || name == "expect" {
            return None;
        }
        headers.push((name, h.value.to_vec()));
    }
    Some(Head {
        len,
        path: path.to_owned(),
        headers,
    })
}

/// Serves one request whose head was peeked.
pub(crate) async fn serve(
    stream: &mut TcpStream,
    head: Head,
    peer: SocketAddr,
    router: &Router,
) -> After {
    let mut consumed = vec![0u8; head.len];
    if stream.read_exact(&mut consumed).await.is_err() {
        return After::Close;
    }
    drop(consumed);
    let close_requested = head
        .headers
        .iter()
        .any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case(b"close"));
    let mut req = Request::builder()
        .method("GET")
        .uri(head.path.as_str())
        .version(Version::HTTP_11);
    for (k, v) in &head.headers {
        req = req.header(k.as_str(), v.as_slice());
    }
    let Ok(mut req) = req.body(Body::empty()) else {
        return After::Close;
    };
    req.extensions_mut().insert(ConnectInfo(peer));
    drop(head);
    // A long poll may park for a minute: stop if the client goes away meanwhile.
    let res = tokio::select! {
        res = router.clone().oneshot(req) => match res {
            Ok(r) => r,
            Err(never) => match never {},
        },
        _ = peer_closed(stream) => return After::Close,
    };
    match write_response(stream, res, close_requested).await {
        Ok(true) if !close_requested => After::KeepAlive,
        _ => After::Close,
    }
}

/// Resolves when the peer closes its side (or the socket fails). Data sent early (a
/// pipelined request) is left for later and watching stops.
async fn peer_closed(stream: &TcpStream) {
    let mut one = [0u8; 1];
    match stream.peek(&mut one).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// Writes the response; true when the connection can serve another request.
async fn write_response(
    stream: &mut TcpStream,
    res: Response<Body>,
    close: bool,
) -> std::io::Result<bool> {
    let (parts, mut body) = res.into_parts();
    let exact = http_body::Body::size_hint(&body).exact();
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (k, v) in &parts.headers {
        if k == header::CONTENT_LENGTH || k == header::TRANSFER_ENCODING || k == header::CONNECTION
        {
            continue;
        }
        head.extend_from_slice(k.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"date: ");
    head.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    head.extend_from_slice(b"\r\n");
    if close {
        head.extend_from_slice(b"connection: close\r\n");
    }
    match exact {
        Some(len) => {
            head.extend_from_slice(format!("content-length: {len}\r\n\r\n").as_bytes());
            let data = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            head.extend_from_slice(&data);
            stream.write_all(&head).await?;
            Ok(data.len() as u64 == len)
        }
        None => {
            head.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            stream.write_all(&head).await?;
            drop(head);
            loop {
                let frame = tokio::select! {
                    f = body.frame() => f,
                    _ = peer_closed(stream) => return Ok(false),
                };
                let Some(Ok(frame)) = frame else { break };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if data.is_empty() {
                    continue;
                }
                let mut chunk = Vec::with_capacity(data.len() + 16);
                chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                chunk.extend_from_slice(&data);
                chunk.extend_from_slice(b"\r\n");
                stream.write_all(&chunk).await?;
            }
            stream.write_all(b"0\r\n\r\n").await?;
            Ok(true)
        }
    }
}
