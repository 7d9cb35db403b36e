//! `herald bench rpc`: request-reply round trips through the server, caller → herald →
//! responder → herald → caller, with the caller and an echoing responder in this process.

use super::load::{RawHttp, closed_loop};
use super::report::{Report, cpu_rss, micros, rate};
use super::target::{Target, TargetArgs};
use anyhow::Context;
use clap::{Args, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use herald_proto::grpc::herald_client::HeraldClient;
use herald_proto::grpc::{self, serve_event, serve_request};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tonic::transport::Channel;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// HTTP caller (`POST /v1/rpc/…`), WebSocket responder.
    HttpWs,
    /// HTTP caller, gRPC `Serve` responder.
    HttpGrpc,
    /// gRPC `Call` caller, gRPC `Serve` responder.
    GrpcGrpc,
    /// Baseline: one gRPC unary `Read` of an empty topic (no responder), the floor of a
    /// single round trip through the server.
    GrpcFloor,
}

#[derive(Args, Debug)]
pub struct RpcArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Caller → responder paths to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "grpc-floor,http-ws,http-grpc,grpc-grpc"
    )]
    paths: Vec<Path>,
    /// Calls in flight.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    inflight: Vec<usize>,
    /// Request body size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured warm-up seconds per run.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

fn name(p: Path) -> &'static str {
    match p {
        Path::HttpWs => "HTTP → WS responder",
        Path::HttpGrpc => "HTTP → gRPC responder",
        Path::GrpcGrpc => "gRPC → gRPC responder",
        Path::GrpcFloor => "baseline: gRPC unary Read",
    }
}

pub async fn run(a: RpcArgs) -> anyhow::Result<()> {
    let target = Target::start(&a.target).await?;
    let addr = target.addr()?;
    let mut report = Report::new("rpc");
    report.param("body_bytes", a.size);
    report.param("duration_s", a.duration);
    report.param("server", &target.url);
    report.columns = [
        "path",
        "in flight",
        "calls/s",
        "p50",
        "p99",
        "server CPU/call",
        "errors",
    ]
    .map(String::from)
    .to_vec();
    let body = format!("\"{}\"", "x".repeat(a.size.saturating_sub(2)));
    for &path in &a.paths {
        let service = format!("bench.{path:?}").to_lowercase();
        let responder = match path {
            Path::HttpWs => Some(tokio::spawn(ws_responder(addr, service.clone()))),
            Path::HttpGrpc | Path::GrpcGrpc => Some(tokio::spawn(grpc_responder(
                target.url.clone(),
                service.clone(),
            ))),
            Path::GrpcFloor => None,
        };
        if responder.is_some() {
            wait_for_responder(addr, &service).await?;
        }
        let grpc = HeraldClient::connect(target.url.clone()).await?;
        for &depth in &a.inflight {
            let before = target.sample();
            let result = closed_loop(
                &format!("{} x {depth}", name(path)),
                depth,
                Duration::from_secs_f64(a.warmup),
                Duration::from_secs_f64(a.duration),
                |_| {
                    let (service, body, grpc) = (service.clone(), body.clone(), grpc.clone());
                    async move { caller(path, addr, service, body, grpc).await }
                },
            )
            .await?;
            let after = target.sample();
            let secs = result.elapsed.as_secs_f64();
            let (cpu, _) = cpu_rss(before, after, result.ops);
            report.rows.push(vec![
                name(path).to_owned(),
                depth.to_string(),
                rate(result.ops as f64 / secs),
                micros(result.latency.value_at_quantile(0.5)),
                micros(result.latency.value_at_quantile(0.99)),
                cpu,
                result.errors.to_string(),
            ]);
        }
        if let Some(r) = responder {
            r.abort();
        }
    }
    report.notes.push(
        "Round trip = caller → herald → responder → herald → caller over loopback; the \
         caller and an echoing responder run in the bench process, beside the server."
            .into(),
    );
    report.print(a.json)?;
    target.stop().await;
    Ok(())
}

type Op = Box<
    dyn FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<u64>> + Send>>
        + Send,
>;

/// One caller: a keep-alive HTTP connection, or a clone of the shared gRPC channel.
async fn caller(
    path: Path,
    addr: SocketAddr,
    service: String,
    body: String,
    grpc: HeraldClient<Channel>,
) -> anyhow::Result<Op> {
    match path {
        Path::HttpWs | Path::HttpGrpc => {
            let conn = RawHttp::connect(addr).await?;
            let request = conn.encode(
                "POST",
                &format!("/v1/rpc/{service}"),
                "application/json",
                body.as_bytes(),
            );
            let conn = std::sync::Arc::new(tokio::sync::Mutex::new(conn));
            Ok(Box::new(move || {
                let (conn, request) = (conn.clone(), request.clone());
                Box::pin(async move {
                    conn.lock().await.roundtrip(&request).await?;
                    Ok(1)
                })
            }))
        }
        Path::GrpcFloor => {
            let req = grpc::ReadRequest {
                patterns: vec!["bench.empty".into()],
                after: "latest".into(),
                limit: 1,
                wait_ms: 0,
            };
            Ok(Box::new(move || {
                let (mut grpc, req) = (grpc.clone(), req.clone());
                Box::pin(async move {
                    grpc.read(req).await?;
                    Ok(1)
                })
            }))
        }
        Path::GrpcGrpc => {
            let req = grpc::CallRequest {
                service,
                data: body.into(),
                content_type: "application/json".into(),
                timeout_ms: 5000,
            };
            Ok(Box::new(move || {
                let (mut grpc, req) = (grpc.clone(), req.clone());
                Box::pin(async move {
                    grpc.call(req).await?;
                    Ok(1)
                })
            }))
        }
    }
}

/// Waits until the server has a responder for `service` (a call stops answering 503).
async fn wait_for_responder(addr: SocketAddr, service: &str) -> anyhow::Result<()> {
    let mut conn = RawHttp::connect(addr).await?;
    let req = conn.encode(
        "POST",
        &format!("/v1/rpc/{service}"),
        "application/json",
        b"1",
    );
    for _ in 0..500 {
        if conn.roundtrip(&req).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        conn = RawHttp::connect(addr).await?;
    }
    anyhow::bail!("the responder for {service} never came up")
}

#[derive(serde::Deserialize)]
struct WsRequest<'a> {
    request_id: u64,
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

/// A WebSocket responder echoing every request's data.
async fn ws_responder(addr: SocketAddr, service: String) -> anyhow::Result<()> {
    let req = format!("ws://{addr}/v1/ws").into_client_request()?;
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    let (mut tx, mut rx) = ws.split();
    let serve = serde_json::json!({"op": "serve", "service": service});
    tx.send(WsMessage::Text(serve.to_string().into())).await?;
    while let Some(msg) = rx.next().await {
        let WsMessage::Text(t) = msg? else { continue };
        if !t.starts_with("{\"op\":\"request\"") {
            continue;
        }
        let r: WsRequest = serde_json::from_str(&t).context("request frame")?;
        let reply = format!(
            "{{\"op\":\"reply\",\"request_id\":{},\"data\":{}}}",
            r.request_id,
            r.data.get()
        );
        tx.send(WsMessage::Text(reply.into())).await?;
    }
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
