//! `herald bench queue`: end-to-end work-queue throughput. A producer publishes a fixed
//! number of messages (batches of 100) while a consumer group drains them with acks,
//! over HTTP (claim + ack round trips) or WebSocket (`consume` with prefetch, one `ack`
//! frame for whatever has arrived). The rate is messages acked per second from the first
//! publish to the last ack; every message must be acked exactly once.

use super::load::RawHttp;
use super::report::{Report, cpu_rss, rate};
use super::target::{Target, TargetArgs};
use anyhow::Context;
use clap::{Args, ValueEnum};
use futures_util::{FutureExt, SinkExt, StreamExt};
use indicatif::ProgressBar;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueVia {
    Http,
    Ws,
}

#[derive(Args, Debug)]
pub struct QueueArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Consumer counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    consumers: Vec<usize>,
    /// Prefetch (HTTP: `max` per claim; WS: `prefetch` of `consume`).
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    prefetch: Vec<usize>,
    /// Transports to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "http,ws")]
    via: Vec<QueueVia>,
    /// Messages per run.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Most seconds per run; a run that has not drained by then reports its rate so far.
    #[arg(long, default_value_t = 20.0)]
    max_seconds: f64,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

/// Shared progress of one run.
struct Run {
    acked: AtomicU64,
    goal: u64,
    deadline: Instant,
    done: tokio::sync::Notify,
}

impl Run {
    fn over(&self) -> bool {
        self.acked.load(Ordering::Relaxed) >= self.goal || Instant::now() >= self.deadline
    }

    fn settle(&self, n: u64) {
        if self.acked.fetch_add(n, Ordering::Relaxed) + n >= self.goal {
            self.done.notify_waiters();
        }
    }
}

/// The message sequence number in a cursor (its last 16 hex digits).
fn seq_of(cursor: &str) -> Option<u64> {
    u64::from_str_radix(cursor.get(cursor.len().checked_sub(16)?..)?, 16).ok()
}

pub async fn run(a: QueueArgs) -> anyhow::Result<()> {
    let target = Target::start(&a.target).await?;
    let addr = target.addr()?;
    let mut report = Report::new("queue");
    report.param("messages", a.messages);
    report.param("payload_bytes", a.size);
    report.param("server", &target.url);
    report.columns = [
        "via",
        "consumers",
        "prefetch",
        "msgs/s (publish→ack)",
        "server CPU/msg",
        "server RSS",
        "acked",
        "duplicates",
    ]
    .map(String::from)
    .to_vec();
    let mut n = 0;
    for &via in &a.via {
        for &consumers in &a.consumers {
            for &prefetch in &a.prefetch {
                n += 1;
                let topic = format!("bench.queue.r{n}");
                let before = target.sample();
                let (elapsed, seen) = one_run(&a, addr, &topic, via, consumers, prefetch).await?;
                let after = target.sample();
                let acked = seen.len() as u64;
                let mut sorted = seen;
                sorted.sort_unstable();
                sorted.dedup();
                let dups = acked - sorted.len() as u64;
                let (cpu, rss) = cpu_rss(before, after, acked);
                report.rows.push(vec![
                    format!("{via:?}").to_lowercase(),
                    consumers.to_string(),
                    prefetch.to_string(),
                    rate(acked as f64 / elapsed.as_secs_f64()),
                    cpu,
                    rss,
                    format!("{acked}/{}", a.messages),
                    dups.to_string(),
                ]);
            }
        }
    }
    report.notes.push(
        "Each run publishes its messages (batches of 100, 4 in flight) while the group drains \
         them; the rate counts from the first publish to the last ack. Server CPU includes \
         the publishes."
            .into(),
    );
    report.print(a.json)?;
    target.stop().await;
    Ok(())
}

/// One measured run; returns its length and the sequence numbers acked.
async fn one_run(
    a: &QueueArgs,
    addr: SocketAddr,
    topic: &str,
    via: QueueVia,
    consumers: usize,
    prefetch: usize,
) -> anyhow::Result<(Duration, Vec<u64>)> {
    let mut setup = RawHttp::connect(addr).await?;
    let body = serde_json::json!({"start": "earliest", "lease_seconds": 60}).to_string();
    let req = setup.encode(
        "PUT",
        &format!("/v1/topics/{topic}/groups/bench"),
        "application/json",
        body.as_bytes(),
    );
    setup
        .roundtrip(&req)
        .await
        .context("configuring the group")?;
    let started = Instant::now();
    let run = Arc::new(Run {
        acked: AtomicU64::new(0),
        goal: a.messages,
        deadline: started + Duration::from_secs_f64(a.max_seconds),
        done: tokio::sync::Notify::new(),
    });
    let bar = ProgressBar::new(a.messages);
    bar.set_message(format!("{via:?} {consumers}x prefetch {prefetch}"));
    let producer = tokio::spawn(produce(addr, topic.to_owned(), a.messages, a.size));
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let (run, topic) = (run.clone(), topic.to_owned());
        tasks.push(tokio::spawn(async move {
            match via {
                QueueVia::Http => consume_http(addr, &topic, prefetch, &run).await,
                QueueVia::Ws => consume_ws(addr, &topic, prefetch, &run).await,
            }
        }));
    }
    while !run.over() {
        let done = run.done.notified();
        let _ = tokio::time::timeout(Duration::from_millis(200), done).await;
        bar.set_position(run.acked.load(Ordering::Relaxed));
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    producer.await??;
    let mut seen = Vec::new();
    for t in tasks {
        seen.extend(t.await??);
    }
    Ok((elapsed, seen))
}

/// Publishes `total` messages in batches of 100, four requests in flight.
async fn produce(addr: SocketAddr, topic: String, total: u64, size: usize) -> anyhow::Result<()> {
    let item =
        serde_json::json!({"topic": topic, "data": "x".repeat(size), "content_type": "text/plain"});
    let batches = total.div_ceil(100);
    let next = Arc::new(AtomicU64::new(0));
    let mut lanes = Vec::new();
    for _ in 0..4 {
        let (next, item) = (next.clone(), item.clone());
        lanes.push(tokio::spawn(async move {
            let mut conn = RawHttp::connect(addr).await?;
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return anyhow::Ok(());
                }
                let n = (total - b * 100).min(100) as usize;
                let body = serde_json::to_vec(&vec![item.clone(); n])?;
                let req = conn.encode("POST", "/v1/messages", "application/json", &body);
                conn.roundtrip(&req).await?;
            }
        }));
    }
    for l in lanes {
        l.await??;
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct Claimed {
    deliveries: Vec<ClaimedOne>,
}

#[derive(serde::Deserialize)]
struct ClaimedOne {
    receipt: String,
    message: IdOnly,
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: String,
}

/// Claims up to `prefetch` at a time and acks them in one request.
async fn consume_http(
    addr: SocketAddr,
    topic: &str,
    prefetch: usize,
    run: &Run,
) -> anyhow::Result<Vec<u64>> {
    let mut conn = RawHttp::connect(addr).await?;
    let claim_body = serde_json::json!({"max": prefetch, "wait": 1}).to_string();
    let claim = conn.encode(
        "POST",
        &format!("/v1/topics/{topic}/groups/bench/claim"),
        "application/json",
        claim_body.as_bytes(),
    );
    let ack_path = format!("/v1/topics/{topic}/groups/bench/ack");
    let mut seen = Vec::new();
    while !run.over() {
        let got: Claimed = serde_json::from_slice(conn.roundtrip(&claim).await?)?;
        if got.deliveries.is_empty() {
            continue;
        }
        let mut receipts = Vec::with_capacity(got.deliveries.len());
        for d in got.deliveries {
            seen.push(seq_of(&d.message.id).context("message id")?);
            receipts.push(d.receipt);
        }
        let body = serde_json::to_vec(&serde_json::json!({ "receipts": receipts }))?;
        let ack = conn.encode("POST", &ack_path, "application/json", &body);
        let answer: Settled = serde_json::from_slice(conn.roundtrip(&ack).await?)?;
        answer.check()?;
        run.settle(answer.acked);
    }
    Ok(seen)
}

/// An ack's answer (HTTP body or WS `acked` frame).
#[derive(serde::Deserialize)]
struct Settled {
    #[serde(alias = "settled")]
    acked: u64,
    refused: Vec<serde_json::Value>,
}

impl Settled {
    fn check(&self) -> anyhow::Result<()> {
        match self.refused.first() {
            None => Ok(()),
            Some(r) => anyhow::bail!("the server refused an ack: {r}"),
        }
    }
}

#[derive(serde::Deserialize)]
struct WsFrame {
    op: String,
    #[serde(default)]
    receipt: String,
    #[serde(default)]
    message: Option<IdOnly>,
}

/// Consumes with `prefetch`; acks everything that has arrived in one frame, and counts
/// what the server confirms.
async fn consume_ws(
    addr: SocketAddr,
    topic: &str,
    prefetch: usize,
    run: &Run,
) -> anyhow::Result<Vec<u64>> {
    let req = format!("ws://{addr}/v1/ws").into_client_request()?;
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    let frame = serde_json::json!({"op": "consume", "topic": topic, "group": "bench", "prefetch": prefetch});
    ws.send(WsMessage::Text(frame.to_string().into())).await?;
    let mut seen = Vec::new();
    let mut receipts = Vec::new();
    while !run.over() {
        let first = tokio::select! {
            m = ws.next() => m,
            _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
        };
        let mut next = first;
        loop {
            match next {
                Some(Ok(WsMessage::Text(t))) => {
                    let f: WsFrame = serde_json::from_str(&t)?;
                    match (f.op.as_str(), f.message) {
                        ("delivery", Some(m)) => {
                            seen.push(seq_of(&m.id).context("message id")?);
                            receipts.push(f.receipt);
                        }
                        ("acked", _) => {
                            let s: Settled = serde_json::from_str(&t)?;
                            s.check()?;
                            run.settle(s.acked);
                        }
                        ("error", _) => anyhow::bail!("server refused: {t}"),
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => anyhow::bail!("the server closed the connection"),
            }
            match ws.next().now_or_never() {
                Some(m) => next = m,
                None => break,
            }
        }
        if !receipts.is_empty() {
            let ack = serde_json::json!({"op": "ack", "ref": 1, "receipts": std::mem::take(&mut receipts)});
            ws.send(WsMessage::Text(ack.to_string().into())).await?;
        }
    }
    let _ = ws.close(None).await;
    Ok(seen)
}
