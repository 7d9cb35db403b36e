//! `peers rpc`: request-reply round trips, caller → server → responder → server →
//! caller, from a closed loop of N lanes (N calls in flight) sharing one caller
//! connection, answered by an echoing responder on a connection of its own, both in this
//! process. herald: gRPC `Call` to a gRPC `Serve` responder, and WebSocket `call` frames
//! to a WebSocket `serve` responder. NATS: `request` to a subscriber that publishes each
//! payload to its reply subject. Every reply must echo its request byte for byte.

use crate::common::{Record, System, Target};
use bytes::Bytes;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use herald_proto::grpc::herald_client::HeraldClient;
use herald_proto::grpc::{self, serve_event, serve_request};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tonic::transport::Channel;

#[derive(Args, Debug)]
pub struct RpcArgs {
    #[command(flatten)]
    target: Target,
    /// In-flight depths (one lane per call in flight).
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    inflight: Vec<usize>,
    /// Request (and reply) payload bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Measured seconds per depth.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured warm-up seconds per depth.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

/// Seconds the server (or the NATS client) waits for a reply before failing the call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How the caller and the responder reach the server.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// herald: gRPC `Call` caller, gRPC `Serve` responder (h2c on the HTTP port).
    Grpc,
    /// herald: WebSocket `call` frames, WebSocket `serve` responder.
    Ws,
    /// NATS core request-reply over TCP.
    Nats,
}

impl Via {
    /// The case name. herald's name its transports and refine the peer's bare
    /// "N in flight" (see report.rs).
    fn case(self, depth: usize) -> String {
        match self {
            Via::Grpc => format!("gRPC → gRPC, {depth} in flight"),
            Via::Ws => format!("WS → WS, {depth} in flight"),
            Via::Nats => format!("{depth} in flight"),
        }
    }
}

/// One lane: a handle on the shared caller connection, one call in flight at a time.
enum Lane {
    Grpc(HeraldClient<Channel>),
    Ws(Arc<WsCaller>),
    Nats(async_nats::Client),
}

impl Lane {
    /// Calls `service` with `body` and checks that the reply echoes it.
    async fn call(&mut self, service: &str, body: Bytes) -> anyhow::Result<()> {
        let reply = match self {
            Lane::Grpc(client) => {
                let reply = client
                    .call(grpc::CallRequest {
                        service: service.into(),
                        data: body.clone(),
                        content_type: "application/json".into(),
                        timeout_ms: CALL_TIMEOUT.as_millis() as u32,
                    })
                    .await?
                    .into_inner();
                anyhow::ensure!(reply.status == 200, "reply status {}", reply.status);
                reply.data
            }
            Lane::Ws(caller) => caller.call(service, &body).await?,
            Lane::Nats(client) => {
                client
                    .request(service.to_owned(), body.clone())
                    .await?
                    .payload
            }
        };
        anyhow::ensure!(reply == body, "the reply does not echo the request");
        Ok(())
    }
}

/// A lane's calls: each with a body unique to the lane and the call.
struct Caller {
    lane: Lane,
    index: usize,
    seq: u64,
    service: String,
    size: usize,
}

impl crate::lanes::Op for Caller {
    async fn once(&mut self) -> anyhow::Result<()> {
        self.seq += 1;
        let body = body(self.index, self.seq, self.size);
        self.lane.call(&self.service, body).await
    }
}

/// A request payload of `size` bytes, unique per lane and call: the JSON string
/// `"<lane>.<seq>.xxx…"` (valid JSON for herald's WebSocket frames, plain ASCII so that
/// every server hands it back unchanged).
fn body(lane: usize, seq: u64, size: usize) -> Bytes {
    let mut s = format!("\"{lane}.{seq}.");
    while s.len() + 1 < size {
        s.push('x');
    }
    s.push('"');
    Bytes::from(s)
}

/// herald's WebSocket caller: one connection, calls matched to replies by `ref`.
struct WsCaller {
    tx: mpsc::UnboundedSender<Message>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<anyhow::Result<Bytes>>>>>,
    next: AtomicU64,
}

/// A server frame answering a `call`: `reply` or `error`.
#[derive(serde::Deserialize)]
struct WsAnswer<'a> {
    op: &'a str,
    #[serde(rename = "ref")]
    reference: Option<u64>,
    status: Option<u16>,
    #[serde(borrow)]
    data: Option<&'a serde_json::value::RawValue>,
    message: Option<String>,
}

/// A `request` frame given to a WebSocket responder.
#[derive(serde::Deserialize)]
struct WsRequest<'a> {
    request_id: u64,
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

impl WsCaller {
    async fn connect(addr: SocketAddr, tasks: &mut Vec<JoinHandle<()>>) -> anyhow::Result<Self> {
        let ws = crate::ws::connect(&format!("ws://{addr}/v1/ws"), None).await?;
        let (sink, mut stream) = ws.split();
        let (tx, rx) = mpsc::unbounded_channel();
        tasks.push(tokio::spawn(write_batched(sink, rx)));
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<_>>>> = Arc::default();
        let waiting = pending.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let Message::Text(t) = m else { continue };
                let Ok(a) = serde_json::from_str::<WsAnswer>(&t) else {
                    continue;
                };
                let Some(tx) = a.reference.and_then(|r| waiting.lock().unwrap().remove(&r)) else {
                    continue;
                };
                let _ = tx.send(match (a.op, a.status, a.data) {
                    ("reply", Some(200), Some(data)) => {
                        Ok(Bytes::copy_from_slice(data.get().as_bytes()))
                    }
                    ("reply", status, _) => Err(anyhow::anyhow!("reply status {status:?}")),
                    (op, _, _) => Err(anyhow::anyhow!("{op}: {}", a.message.unwrap_or_default())),
                });
            }
            // The connection ended: every waiting call fails.
            waiting.lock().unwrap().clear();
        }));
        Ok(WsCaller {
            tx,
            pending,
            next: AtomicU64::new(1),
        })
    }

    async fn call(&self, service: &str, body: &[u8]) -> anyhow::Result<Bytes> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let frame = format!(
            "{{\"op\":\"call\",\"ref\":{id},\"service\":\"{service}\",\"data\":{},\"timeout\":{}}}",
            std::str::from_utf8(body)?,
            CALL_TIMEOUT.as_secs()
        );
        if self.tx.send(Message::Text(frame.into())).is_err() {
            self.pending.lock().unwrap().remove(&id);
            anyhow::bail!("the caller's connection is closed");
        }
        rx.await?
    }
}

/// Writes what `rx` yields, flushing once per batch of frames ready together.
async fn write_batched(
    mut sink: impl futures_util::Sink<Message> + Unpin,
    mut rx: mpsc::UnboundedReceiver<Message>,
) {
    while let Some(m) = rx.recv().await {
        if sink.feed(m).await.is_err() {
            return;
        }
        while let Ok(m) = rx.try_recv() {
            if sink.feed(m).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// A WebSocket responder echoing every request's data, once the server confirmed it.
async fn ws_responder(
    addr: SocketAddr,
    service: &str,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<()> {
    let ws = crate::ws::connect(&format!("ws://{addr}/v1/ws"), None).await?;
    let (mut sink, mut stream) = ws.split();
    let serve = format!("{{\"op\":\"serve\",\"service\":\"{service}\"}}");
    sink.send(Message::Text(serve.into())).await?;
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with("{\"op\":\"serving\"") => break,
            Some(Ok(Message::Text(t))) => anyhow::bail!("serve answered {t}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the responder's connection closed"),
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tasks.push(tokio::spawn(write_batched(sink, rx)));
    tasks.push(tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            let Message::Text(t) = m else { continue };
            if !t.starts_with("{\"op\":\"request\"") {
                continue;
            }
            let Ok(r) = serde_json::from_str::<WsRequest>(&t) else {
                continue;
            };
            let reply = format!(
                "{{\"op\":\"reply\",\"request_id\":{},\"data\":{}}}",
                r.request_id,
                r.data.get()
            );
            if tx.send(Message::Text(reply.into())).is_err() {
                return;
            }
        }
    }));
    Ok(())
}

/// A gRPC `Serve` responder echoing every request's data.
async fn grpc_responder(url: String, service: String) -> anyhow::Result<()> {
    let mut client = HeraldClient::connect(url).await?;
    let (tx, rx) = mpsc::channel(1024);
    tx.send(grpc::ServeRequest {
        request: Some(serve_request::Request::Start(grpc::ServeStart { service })),
    })
    .await?;
    let outbound =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let mut inbound = client.serve(outbound).await?.into_inner();
    while let Some(ev) = inbound.message().await? {
        let Some(serve_event::Event::Request(r)) = ev.event else {
            continue;
        };
        let reply = serve_request::Request::Reply(grpc::Reply {
            request_id: r.request_id,
            status: 0,
            content_type: r.content_type,
            data: r.data,
        });
        tx.send(grpc::ServeRequest {
            request: Some(reply),
        })
        .await?;
    }
    Ok(())
}

/// A NATS responder: a subscriber publishing each payload to its reply subject.
async fn nats_responder(
    addr: SocketAddr,
    subject: &str,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<()> {
    let client = async_nats::connect(format!("nats://{addr}")).await?;
    let mut sub = client.subscribe(subject.to_owned()).await?;
    client.flush().await?;
    tasks.push(tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply
                && client.publish(reply, m.payload).await.is_err()
            {
                return;
            }
        }
    }));
    Ok(())
}

/// Starts the responder of `service` and connects the caller; returns `depth` lanes and
/// the background tasks to abort afterwards.
async fn setup(
    t: &Target,
    via: Via,
    service: &str,
    depth: usize,
) -> anyhow::Result<(Vec<Lane>, Vec<JoinHandle<()>>)> {
    let mut tasks = Vec::new();
    let lanes = match via {
        Via::Grpc => {
            let url = format!("http://{}", t.addr);
            let (u, s) = (url.clone(), service.to_owned());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = grpc_responder(u, s).await {
                    eprintln!("gRPC responder: {e:#}");
                }
            }));
            let client = HeraldClient::connect(url).await?;
            (0..depth).map(|_| Lane::Grpc(client.clone())).collect()
        }
        Via::Ws => {
            ws_responder(t.addr, service, &mut tasks).await?;
            let caller = Arc::new(WsCaller::connect(t.addr, &mut tasks).await?);
            (0..depth).map(|_| Lane::Ws(caller.clone())).collect()
        }
        Via::Nats => {
            nats_responder(t.addr, service, &mut tasks).await?;
            let client = async_nats::ConnectOptions::new()
                .request_timeout(Some(CALL_TIMEOUT))
                .connect(format!("nats://{}", t.addr))
                .await?;
            (0..depth).map(|_| Lane::Nats(client.clone())).collect()
        }
    };
    Ok((lanes, tasks))
}

/// Calls until one succeeds (the responder is registered), for at most 5 s.
async fn ready(lane: &mut Lane, service: &str, size: usize) -> anyhow::Result<()> {
    let mut last = None;
    for seq in 0..500 {
        match lane.call(service, body(0, seq, size)).await {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let e = last.unwrap_or_else(|| anyhow::anyhow!("no answer"));
    Err(e.context(format!("the responder of {service} never answered")))
}

pub async fn run(a: RpcArgs) -> anyhow::Result<()> {
    let t = &a.target;
    let vias: &[Via] = match t.system {
        System::Herald => &[Via::Grpc, Via::Ws],
        System::Nats => &[Via::Nats],
        other => anyhow::bail!("{} has no request-reply adapter", other.name()),
    };
    for &via in vias {
        for &depth in &a.inflight {
            let service = format!("bench.rpc.{via:?}.{depth}").to_lowercase();
            let (mut lanes, background) = setup(t, via, &service, depth).await?;
            ready(&mut lanes[0], &service, a.size).await?;
            let lanes = lanes
                .into_iter()
                .enumerate()
                .map(|(i, lane)| Caller {
                    lane,
                    index: i,
                    seq: 0,
                    service: service.clone(),
                    size: a.size,
                })
                .collect();
            let m = crate::lanes::closed_loop(t, lanes, a.warmup, a.duration).await?;
            for task in background {
                task.abort();
            }
            let mut rec = Record::new(t, "rpc", via.case(depth));
            rec.metric("calls/s", m.ok as f64 / m.elapsed)
                .metric("p50 µs", m.hist.value_at_quantile(0.5) as f64)
                .metric("p99 µs", m.hist.value_at_quantile(0.99) as f64)
                .metric("server CPU µs/call", m.cpu_per_op())
                .metric("errors", m.errors as f64);
            rec.emit(t)?;
        }
    }
    Ok(())
}
