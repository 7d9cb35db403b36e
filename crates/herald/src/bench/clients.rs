//! Lean subscriber connections for load generation: each is one task, parsing only what
//! the measurement needs (the `n` and `t` fields of bench payloads).

use crate::bench::load::RawHttp;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Transports the benches speak.
#[derive(
    clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    Ws,
    Sse,
    LongPoll,
}

/// Microseconds since the Unix epoch (the clock publishers stamp payloads with).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The number after `"key":` in `hay`.
pub fn field(hay: &[u8], key: &[u8]) -> Option<u64> {
    let at = hay.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = hay[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&hay[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// A bench payload: (sequence number, publish time in µs).
pub fn parse_payload(frame: &[u8]) -> Option<(u64, u64)> {
    Some((field(frame, b"\"n\":")?, field(frame, b"\"t\":")?))
}

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket subscribed to `topic` at `latest`; returns once subscribed.
pub async fn ws_subscribe(addr: SocketAddr, topic: &str) -> anyhow::Result<WsStream> {
    let req = format!("ws://{addr}/v1/ws").into_client_request()?;
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
    let frame = serde_json::json!({"op": "subscribe", "topic": topic, "after": "latest"});
    ws.send(Message::Text(frame.to_string().into())).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"subscribed\"") => return Ok(ws),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("closed before subscribing"),
        }
    }
}

/// Reads a WebSocket's message frames, calling `on` with each frame's payload bytes.
pub async fn ws_read(mut ws: WsStream, mut on: impl FnMut(&[u8])) {
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Text(t) = m {
            on(t.as_bytes());
        }
    }
}

/// Opens an SSE stream on `topic` at `latest`; returns it once the `open` event arrived.
pub async fn sse_subscribe(
    http: &reqwest::Client,
    base: &str,
    topic: &str,
) -> anyhow::Result<reqwest::Response> {
    let mut res = http
        .get(format!("{base}/v1/topics/{topic}/events?after=latest"))
        .header("accept", "text/event-stream")
        .send()
        .await?
        .error_for_status()?;
    let mut seen = Vec::new();
    while !seen.windows(11).any(|w| w == b"event: open") {
        match res.chunk().await? {
            Some(c) => seen.extend_from_slice(&c),
            None => anyhow::bail!("stream ended before open"),
        }
    }
    Ok(res)
}

/// Reads an SSE stream, calling `on` with each `data:` line.
pub async fn sse_read(mut res: reqwest::Response, mut on: impl FnMut(&[u8])) {
    let mut buf: Vec<u8> = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        buf.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + nl];
            if let Some(data) = line.strip_prefix(b"data: ") {
                on(data);
            }
            start += nl + 1;
        }
        buf.drain(..start);
    }
}

/// Holds one parked long poll open on `topic`, re-issuing it whenever it is answered.
pub async fn long_poll_hold(
    addr: SocketAddr,
    topic: &str,
    ready: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<()> {
    let mut conn = RawHttp::connect(addr).await?;
    let mut after = "latest".to_owned();
    let mut ready = Some(ready);
    loop {
        let req = conn.encode(
            "GET",
            &format!("/v1/topics/{topic}/messages?after={after}&wait=55"),
            "text/plain",
            b"",
        );
        let send = conn.roundtrip(&req);
        let body = if let Some(r) = ready.take() {
            // The request is parked once the server has read it; signal readiness after
            // giving it a moment to arrive.
            let signal = async move {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let _ = r.send(()).await;
            };
            let (body, _) = tokio::join!(send, signal);
            body?
        } else {
            send.await?
        };
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
            && let Some(n) = v["next"].as_str()
        {
            after = n.to_owned();
        }
    }
}
