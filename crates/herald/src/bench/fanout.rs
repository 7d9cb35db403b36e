//! `herald bench fanout`: one publisher, many subscribers in separate processes;
//! deliveries per second, server CPU per delivery, publish→deliver latency, losses.

use super::clients::{Transport, now_us};
use super::load::RawHttp;
use super::report::{Report, cpu_rss, micros, rate};
use super::target::{Target, TargetArgs};
use super::worker::{FanoutReport, Worker};
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Transports to measure, each against a fresh server.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ws,sse")]
    via: Vec<Transport>,
    /// Subscribers on the topic.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Subscribers per client process.
    #[arg(long, default_value_t = 500)]
    per_process: usize,
    /// Messages published per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Milliseconds between publish batches (each batch is one commit and one wake-up of
    /// every subscriber).
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// Extra payload bytes per message.
    #[arg(long, default_value_t = 0)]
    pad: usize,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

pub async fn run(a: FanoutArgs) -> anyhow::Result<()> {
    let mut report = Report::new("fanout");
    report.param("subscribers", a.subscribers);
    report.param("rate_msgs_per_s", a.rate);
    report.param("duration_s", a.duration);
    report.param("pad_bytes", a.pad);
    report.param("tick_ms", a.tick_ms);
    report.columns = [
        "via",
        "deliveries/s",
        "server CPU/delivery",
        "p50 latency",
        "p99 latency",
        "lost",
        "out of order",
        "server RSS",
    ]
    .map(String::from)
    .to_vec();
    for &via in &a.via {
        report.rows.push(one(&a, via).await?);
    }
    report.print(a.json)
}

async fn one(a: &FanoutArgs, via: Transport) -> anyhow::Result<Vec<String>> {
    let target = Target::start(&a.target).await?;
    let addr = target.addr()?;
    let topic = "bench.fanout";
    let mut workers = Vec::new();
    let mut left = a.subscribers;
    while left > 0 {
        let n = left.min(a.per_process);
        workers.push(Worker::spawn("fanout", via, &target.url, n, topic)?);
        left -= n;
    }
    for w in &mut workers {
        w.next(Duration::from_secs(120)).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut conn = RawHttp::connect(addr).await?;
    let per_tick = (a.rate * a.tick_ms / 1000).max(1);
    let pad = "p".repeat(a.pad);
    let bar = ProgressBar::new((a.duration * 1000.0) as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>24} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("fanout {via:?} x{}", a.subscribers));
    let before = target.sample();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(a.tick_ms));
    let mut n = 0u64;
    while started.elapsed().as_secs_f64() < a.duration {
        tick.tick().await;
        let t = now_us();
        let items: Vec<serde_json::Value> = (0..per_tick)
            .map(|i| serde_json::json!({"topic": topic, "data": {"n": n + i, "t": t, "pad": pad}}))
            .collect();
        let body = serde_json::to_vec(&items)?;
        let req = conn.encode("POST", "/v1/messages", "application/json", &body);
        conn.roundtrip(&req).await?;
        n += per_tick;
        bar.set_position(started.elapsed().as_millis() as u64);
        bar.set_message(format!("{n} published"));
    }
    let published_for = started.elapsed();
    bar.finish_and_clear();
    let mut hist = Histogram::<u64>::new(2)?;
    let (mut received, mut expected, mut disorder) = (0u64, 0u64, 0u64);
    for w in &mut workers {
        w.tell(serde_json::json!({ "expect": n })).await?;
    }
    for w in &mut workers {
        let r: FanoutReport = serde_json::from_value(w.next(Duration::from_secs(60)).await?)?;
        received += r.received;
        expected += r.expected;
        disorder += r.disorder;
        for (v, c) in r.latency {
            hist.record_n(v, c)?;
        }
    }
    let after = target.sample();
    for w in workers {
        w.stop().await;
    }
    let (cpu, rss) = cpu_rss(before, after, received);
    target.stop().await;
    Ok(vec![
        format!("{via:?}").to_lowercase(),
        rate(received as f64 / published_for.as_secs_f64()),
        cpu,
        micros(hist.value_at_quantile(0.5)),
        micros(hist.value_at_quantile(0.99)),
        (expected.saturating_sub(received)).to_string(),
        disorder.to_string(),
        rss,
    ])
}
