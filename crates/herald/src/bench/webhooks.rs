//! `herald bench webhooks`: deliveries per second from the server's webhook dispatcher to
//! a local sink. Every endpoint subscribes to one topic, so each published message becomes
//! one delivery per endpoint; the sink checks each endpoint's order and counts what
//! arrived twice.

use super::clients::{now_us, parse_payload};
use super::load::RawHttp;
use super::report::{Report, cpu_rss, micros, rate};
use super::target::{Target, TargetArgs};
use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Args, Debug)]
pub struct WebhooksArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Webhook endpoints, all on the benchmark topic.
    #[arg(long, default_value_t = 100)]
    endpoints: usize,
    /// Messages published (each is delivered to every endpoint).
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Most seconds to wait for every delivery.
    #[arg(long, default_value_t = 120.0)]
    max_seconds: f64,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

/// What the sink saw.
struct Sink {
    received: AtomicU64,
    /// Per endpoint: the next payload number expected.
    next: Vec<AtomicU64>,
    disorder: AtomicU64,
    duplicates: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

impl Sink {
    fn record(&self, endpoint: usize, n: u64, sent_us: u64) {
        let Some(next) = self.next.get(endpoint) else {
            return;
        };
        let want = next.load(Ordering::Relaxed);
        if n < want {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if n > want {
            self.disorder.fetch_add(1, Ordering::Relaxed);
        }
        next.store(n + 1, Ordering::Relaxed);
        self.received.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = self.latency.lock() {
            let _ = h.record(now_us().saturating_sub(sent_us));
        }
    }
}

/// Serves one keep-alive connection: reads each POST, records it, answers 204.
async fn serve_conn(mut s: TcpStream, sink: Arc<Sink>) -> anyhow::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let (head, len, endpoint) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 24];
            let mut req = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(head) = req.parse(&buf)? {
                let len = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let endpoint = req
                    .path
                    .and_then(|p| p.strip_prefix("/hook/"))
                    .and_then(|i| i.parse::<usize>().ok())
                    .unwrap_or(usize::MAX);
                break (head, len, endpoint);
            }
            if s.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        while buf.len() < head + len {
            if s.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        if let Some((n, t)) = parse_payload(&buf[head..head + len]) {
            sink.record(endpoint, n, t);
        }
        buf.drain(..head + len);
        s.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .await?;
    }
}

pub async fn run(mut a: WebhooksArgs) -> anyhow::Result<()> {
    if a.target.server.is_none() {
        a.target.serve_args.push("--allow-private-callbacks".into());
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let sink_addr = listener.local_addr()?;
    let sink = Arc::new(Sink {
        received: AtomicU64::new(0),
        next: (0..a.endpoints).map(|_| AtomicU64::new(0)).collect(),
        disorder: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        latency: Mutex::new(Histogram::new(3)?),
    });
    let accept = {
        let sink = sink.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let _ = s.set_nodelay(true);
                tokio::spawn(serve_conn(s, sink.clone()));
            }
        })
    };
    let target = Target::start(&a.target).await?;
    let addr = target.addr()?;
    let mut conn = RawHttp::connect(addr).await?;
    for i in 0..a.endpoints {
        let body = serde_json::json!({"pattern": "bench.webhooks", "url": format!("http://{sink_addr}/hook/{i}")});
        let req = conn.encode(
            "POST",
            "/v1/webhooks",
            "application/json",
            body.to_string().as_bytes(),
        );
        conn.roundtrip(&req)
            .await
            .context("creating an endpoint (a running server needs --allow-private-callbacks)")?;
    }
    let goal = a.messages * a.endpoints as u64;
    let before = target.sample();
    let started = Instant::now();
    let mut n = 0u64;
    while n < a.messages {
        let items: Vec<_> = (n..(n + 100).min(a.messages))
            .map(
                |i| serde_json::json!({"topic": "bench.webhooks", "data": {"n": i, "t": now_us()}}),
            )
            .collect();
        n += items.len() as u64;
        let req = conn.encode(
            "POST",
            "/v1/messages",
            "application/json",
            &serde_json::to_vec(&items)?,
        );
        conn.roundtrip(&req).await?;
    }
    let bar = ProgressBar::new(goal);
    let deadline = started + Duration::from_secs_f64(a.max_seconds);
    while sink.received.load(Ordering::Relaxed) < goal && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        bar.set_position(sink.received.load(Ordering::Relaxed));
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let after = target.sample();
    let received = sink.received.load(Ordering::Relaxed);
    let mut report = Report::new("webhooks");
    report.param("endpoints", a.endpoints);
    report.param("messages", a.messages);
    report.param("server", &target.url);
    report.columns = [
        "deliveries/s",
        "delivered",
        "p50 publish→delivery",
        "p99 publish→delivery",
        "server CPU/delivery",
        "server RSS",
        "out of order",
        "duplicates",
    ]
    .map(String::from)
    .to_vec();
    let (cpu, rss) = cpu_rss(before, after, received);
    let latency = sink
        .latency
        .lock()
        .map_err(|_| anyhow::anyhow!("latency histogram poisoned"))?
        .clone();
    report.rows.push(vec![
        rate(received as f64 / elapsed.as_secs_f64()),
        format!("{received}/{goal}"),
        micros(latency.value_at_quantile(0.5)),
        micros(latency.value_at_quantile(0.99)),
        cpu,
        rss,
        sink.disorder.load(Ordering::Relaxed).to_string(),
        sink.duplicates.load(Ordering::Relaxed).to_string(),
    ]);
    report.notes.push(
        "All messages are published at once, so latency includes the time a delivery waits \
         behind earlier ones on its endpoint (deliveries to one endpoint are sequential). \
         Every delivery is signed, and its attempt is logged and the endpoint's position \
         stored durably before the next."
            .into(),
    );
    report.print(a.json)?;
    accept.abort();
    target.stop().await;
    Ok(())
}
