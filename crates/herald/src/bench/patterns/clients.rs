//! One client per pattern, each on its own byte-counted connection: short and long polls
//! and SSE over a hyper HTTP/1.1 connection, WebSocket over tungstenite, gRPC
//! `Subscribe` over a tonic channel. Each signals `ready` once it is positioned at the
//! topic's tail, then records every message it receives.

use super::tally::{Counted, Receiver, Tally};
use anyhow::{Context as _, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use herald_proto::grpc::herald_client::HeraldClient;
use herald_proto::grpc::{self, subscribe_event};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Where a client reports that it is subscribed (or why it could not be).
pub type Ready = UnboundedSender<Result<(), String>>;

/// Seconds a long poll may be parked.
const LONG_POLL_WAIT_S: u32 = 30;

/// One keep-alive HTTP/1.1 connection.
struct Http {
    sender: SendRequest<Empty<Bytes>>,
    host: String,
    tally: Arc<Tally>,
}

impl Http {
    async fn connect(addr: SocketAddr, tally: Arc<Tally>) -> anyhow::Result<Http> {
        let io = TokioIo::new(Counted::connect(addr, tally.clone()).await?);
        let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        Ok(Http {
            sender,
            host: addr.to_string(),
            tally,
        })
    }

    /// Sends a GET and returns the response once its head arrived; fails on non-2xx.
    async fn get(&mut self, path: &str, accept: &str) -> anyhow::Result<Response<Incoming>> {
        let req = Request::get(path)
            .header("host", &self.host)
            .header("accept", accept)
            .body(Empty::new())?;
        self.sender.ready().await?;
        self.tally.request();
        let res = self.sender.send_request(req).await?;
        if !res.status().is_success() {
            bail!("GET {path}: HTTP {}", res.status());
        }
        Ok(res)
    }
}

#[derive(serde::Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    messages: Vec<Envelope<'a>>,
    next: String,
}

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

/// A polling client: every `every` (short poll, first poll after `phase`), or a long
/// poll re-issued as soon as it is answered (`every` = None).
pub async fn poll(
    addr: SocketAddr,
    topic: &str,
    every: Option<Duration>,
    phase: Duration,
    tally: Arc<Tally>,
    ready: Ready,
) -> anyhow::Result<()> {
    let mut http = Http::connect(addr, tally.clone()).await?;
    let path = format!("/v1/topics/{topic}/messages");
    // The tail's cursor: polls continue after it.
    let first = http
        .get(&format!("{path}?after=latest&limit=1"), "application/json")
        .await?;
    let body = first.into_body().collect().await?.to_bytes();
    let mut after = serde_json::from_slice::<Page>(&body)
        .context("read response")?
        .next;
    let _ = ready.send(Ok(()));
    let mut tick = every.map(|e| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + phase, e);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut rx = Receiver::default();
    loop {
        let query = match &mut tick {
            Some(t) => {
                t.tick().await;
                format!("?after={after}&limit=1000")
            }
            None => format!("?after={after}&limit=1000&wait={LONG_POLL_WAIT_S}"),
        };
        let res = http
            .get(&format!("{path}{query}"), "application/json")
            .await?;
        let body = res.into_body().collect().await?.to_bytes();
        let page: Page = serde_json::from_slice(&body).context("read response")?;
        if page.messages.is_empty() {
            tally
                .empty
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        for m in &page.messages {
            rx.got(&tally, m.data.get().as_bytes());
        }
        after = page.next;
    }
}

/// An SSE client: one streamed GET, read line by line.
pub async fn sse(
    addr: SocketAddr,
    topic: &str,
    tally: Arc<Tally>,
    ready: Ready,
) -> anyhow::Result<()> {
    let mut http = Http::connect(addr, tally.clone()).await?;
    let res = http
        .get(
            &format!("/v1/topics/{topic}/events?after=latest"),
            "text/event-stream",
        )
        .await?;
    let mut body = res.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut rx = Receiver::default();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + nl];
            if line == b"event: open" {
                let _ = ready.send(Ok(()));
            } else if let Some(data) = line.strip_prefix(b"data: ") {
                rx.got(&tally, data);
            }
            start += nl + 1;
        }
        buf.drain(..start);
    }
    bail!("the event stream ended")
}

/// A WebSocket client: one upgrade, one `subscribe` frame.
pub async fn ws(
    addr: SocketAddr,
    topic: &str,
    tally: Arc<Tally>,
    ready: Ready,
) -> anyhow::Result<()> {
    let stream = Counted::connect(addr, tally.clone()).await?;
    let req = format!("ws://{addr}/v1/ws").into_client_request()?;
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    tally.request();
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(config)).await?;
    let frame = serde_json::json!({"op": "subscribe", "topic": topic, "after": "latest"});
    ws.send(WsMessage::Text(frame.to_string().into())).await?;
    let mut rx = Receiver::default();
    while let Some(m) = ws.next().await {
        if let WsMessage::Text(t) = m? {
            if t.contains("\"subscribed\"") {
                let _ = ready.send(Ok(()));
            } else {
                rx.got(&tally, t.as_bytes());
            }
        }
    }
    bail!("the WebSocket closed")
}

/// A gRPC client: its own HTTP/2 connection, one `Subscribe` server stream.
pub async fn grpc(
    addr: SocketAddr,
    topic: &str,
    tally: Arc<Tally>,
    ready: Ready,
) -> anyhow::Result<()> {
    let t = tally.clone();
    let connector = tower::service_fn(move |_: hyper::Uri| {
        let t = t.clone();
        async move { Ok::<_, std::io::Error>(TokioIo::new(Counted::connect(addr, t).await?)) }
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_with_connector(connector)
        .await?;
    let mut client = HeraldClient::new(channel);
    tally.request();
    let req = grpc::SubscribeRequest {
        patterns: vec![topic.to_owned()],
        after: "latest".into(),
    };
    let mut stream = client.subscribe(req).await?.into_inner();
    let mut rx = Receiver::default();
    while let Some(ev) = stream.message().await? {
        match ev.event {
            Some(subscribe_event::Event::Subscribed(_)) => {
                let _ = ready.send(Ok(()));
            }
            Some(subscribe_event::Event::Message(m)) => rx.got(&tally, &m.data),
            Some(subscribe_event::Event::Reset(_)) | None => {}
        }
    }
    bail!("the gRPC stream ended")
}
