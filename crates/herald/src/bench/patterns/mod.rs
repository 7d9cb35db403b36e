//! `herald bench patterns`: one workload — many clients that each need every update of
//! one topic, a publisher at a steady rate — served by every delivery pattern in turn
//! (short polls, long poll, SSE, WebSocket, gRPC stream, webhooks), each against a fresh
//! server. Per pattern: delivery latency, requests, empty responses, bytes on the wire,
//! server CPU and memory, connections held, and what was lost.

mod clients;
mod hooks;
mod svg;
mod tally;

use super::clients::now_us;
use super::load::RawHttp;
use super::report::{Report, cpu_rss, micros};
use super::target::{Target, TargetArgs};
use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tally::Tally;

/// The delivery patterns this bench compares.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Short polling, once per `--poll-every` interval.
    ShortPoll,
    LongPoll,
    Sse,
    Ws,
    Grpc,
    Webhooks,
}

#[derive(Args, Debug)]
pub struct PatternsArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Patterns to measure, each against a fresh server.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "short-poll,long-poll,sse,ws,grpc,webhooks"
    )]
    patterns: Vec<Pattern>,
    /// Short-poll intervals in seconds (one row each).
    #[arg(long, value_delimiter = ',', default_value = "1,5")]
    poll_every: Vec<f64>,
    /// Clients, each needing every message of the topic.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Messages published per second (one per request).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Seconds of publishing per pattern (the measured window).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Most seconds to wait after the window (beyond one poll interval) for the last
    /// deliveries.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Also write the chart as SVG to this file.
    #[arg(long)]
    svg: Option<std::path::PathBuf>,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

/// One row: a pattern (short polls with their interval).
#[derive(Debug, Clone, Copy)]
enum Case {
    ShortPoll(f64),
    LongPoll,
    Sse,
    Ws,
    Grpc,
    Webhooks,
}

impl Case {
    fn name(self) -> String {
        match self {
            Case::ShortPoll(s) => format!("short poll {s} s"),
            Case::LongPoll => "long poll".into(),
            Case::Sse => "SSE".into(),
            Case::Ws => "WebSocket".into(),
            Case::Grpc => "gRPC stream".into(),
            Case::Webhooks => "webhooks".into(),
        }
    }

    fn slug(self) -> String {
        match self {
            Case::ShortPoll(s) => format!("poll{}ms", (s * 1000.0) as u64),
            other => format!("{other:?}").to_lowercase(),
        }
    }
}

/// What one pattern measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measured {
    pub pattern: String,
    pub p50_us: u64,
    pub p99_us: u64,
    /// Distinct messages received by all clients, after the drain.
    pub delivered: u64,
    /// Messages published × clients.
    pub expected: u64,
    /// Deliveries the window called for (published in it × clients): the per-message
    /// divisor.
    pub window_deliveries: u64,
    /// Counted over the window:
    pub requests: u64,
    pub empty: u64,
    pub bytes: u64,
    /// Client sockets open at the end of the window (for webhooks: the server's
    /// connections to the receiver).
    pub connections: u64,
    pub server_cpu_per_msg: String,
    pub server_rss: String,
    pub duplicates: u64,
    pub disorder: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

pub async fn run(mut a: PatternsArgs) -> anyhow::Result<()> {
    if a.target.server.is_none() && a.patterns.contains(&Pattern::Webhooks) {
        a.target.serve_args.push("--allow-private-callbacks".into());
    }
    let rows = measure(&a).await?;
    let workload = format!(
        "{} clients, each needing every update of one topic; {} updates/s for {} s per pattern",
        a.clients, a.rate, a.duration
    );
    let report = report(&a, &rows);
    report.print(a.json)?;
    if let Some(path) = &a.svg {
        std::fs::write(path, svg::chart(&rows, &workload))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn cases(a: &PatternsArgs) -> Vec<Case> {
    let mut out = Vec::new();
    for p in &a.patterns {
        match p {
            Pattern::ShortPoll => out.extend(a.poll_every.iter().map(|&s| Case::ShortPoll(s))),
            Pattern::LongPoll => out.push(Case::LongPoll),
            Pattern::Sse => out.push(Case::Sse),
            Pattern::Ws => out.push(Case::Ws),
            Pattern::Grpc => out.push(Case::Grpc),
            Pattern::Webhooks => out.push(Case::Webhooks),
        }
    }
    out
}

/// Runs every pattern, each against a fresh server (or the one given).
async fn measure(a: &PatternsArgs) -> anyhow::Result<Vec<Measured>> {
    let mut rows = Vec::new();
    for case in cases(a) {
        let target = Target::start(&a.target).await?;
        let row = one(a, &target, case).await;
        target.stop().await;
        rows.push(row.with_context(|| case.name())?);
    }
    Ok(rows)
}

/// Opens the clients of `case` and waits until all are positioned at the topic's tail.
/// Returns the tasks to abort at the end and the webhooks to delete.
async fn open(
    a: &PatternsArgs,
    target: &Target,
    case: Case,
    topic: &str,
    tally: &Arc<Tally>,
) -> anyhow::Result<(Vec<tokio::task::JoinHandle<()>>, Vec<String>)> {
    let addr = target.addr()?;
    if let Case::Webhooks = case {
        let (sink, accept) = hooks::listen(a.clients, tally.clone()).await?;
        let ids = hooks::register(addr, topic, sink, a.clients).await?;
        return Ok((vec![accept], ids));
    }
    let (ready, mut readies) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(a.clients);
    for i in 0..a.clients {
        let (tally, ready, topic) = (tally.clone(), ready.clone(), topic.to_owned());
        // Short-poll clients spread their polls evenly over the interval.
        let phase = match case {
            Case::ShortPoll(s) => Duration::from_secs_f64(s * i as f64 / a.clients as f64),
            _ => Duration::ZERO,
        };
        tasks.push(tokio::spawn(async move {
            let (t, r) = (tally.clone(), ready.clone());
            let result = match case {
                Case::ShortPoll(s) => {
                    let every = Some(Duration::from_secs_f64(s));
                    clients::poll(addr, &topic, every, phase, t, r).await
                }
                Case::LongPoll => clients::poll(addr, &topic, None, phase, t, r).await,
                Case::Sse => clients::sse(addr, &topic, t, r).await,
                Case::Ws => clients::ws(addr, &topic, t, r).await,
                Case::Grpc => clients::grpc(addr, &topic, t, r).await,
                Case::Webhooks => Ok(()),
            };
            if let Err(e) = result {
                tally.fail(&e);
                let _ = ready.send(Err(format!("{e:#}")));
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for _ in 0..a.clients {
        match tokio::time::timeout_at(deadline, readies.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => anyhow::bail!("a client failed to subscribe: {e}"),
            Ok(None) | Err(_) => anyhow::bail!("the clients did not subscribe within 60 s"),
        }
    }
    Ok((tasks, Vec::new()))
}

async fn one(a: &PatternsArgs, target: &Target, case: Case) -> anyhow::Result<Measured> {
    let tally = Tally::new()?;
    let topic = format!("bench.patterns.{}.{}", case.slug(), now_us());
    let (tasks, hooks) = open(a, target, case, &topic, &tally).await?;
    // Let connection set-up settle before measuring.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bar = ProgressBar::new((a.duration * 1000.0) as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>24} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} x{}", case.name(), a.clients));
    let mut conn = RawHttp::connect(target.addr()?).await?;
    let path = format!("/v1/topics/{topic}/messages");
    let before = (target.sample(), tally.snapshot());
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate.max(0.001)));
    let mut published = 0u64;
    while started.elapsed().as_secs_f64() < a.duration {
        tick.tick().await;
        let body = format!("{{\"n\":{published},\"t\":{}}}", now_us());
        let req = conn.encode("POST", &path, "application/json", body.as_bytes());
        conn.roundtrip(&req).await.context("publishing")?;
        published += 1;
        bar.set_position(started.elapsed().as_millis() as u64);
        bar.set_message(format!(
            "{published} published, {} delivered",
            tally.delivered.load(Ordering::Relaxed)
        ));
    }
    let after = (target.sample(), tally.snapshot());
    let connections = tally.open.load(Ordering::Relaxed);
    let expected = published * a.clients as u64;
    let poll = match case {
        Case::ShortPoll(s) => s,
        _ => 0.0,
    };
    let drain_until = Instant::now() + Duration::from_secs_f64(poll + a.drain);
    bar.set_message("waiting for the last deliveries");
    while tally.delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bar.finish_and_clear();
    for t in &tasks {
        t.abort();
    }
    if !hooks.is_empty() && a.target.server.is_some() {
        hooks::unregister(&target.url, &hooks).await?;
    }
    let (cpu, rss) = cpu_rss(before.0, after.0, expected);
    let latency = tally
        .latency
        .lock()
        .map_err(|_| anyhow::anyhow!("latency histogram poisoned"))?
        .clone();
    let last_error = tally.last_error.lock().ok().and_then(|e| e.clone());
    Ok(Measured {
        pattern: case.name(),
        p50_us: latency.value_at_quantile(0.5),
        p99_us: latency.value_at_quantile(0.99),
        delivered: tally.delivered.load(Ordering::Relaxed),
        expected,
        window_deliveries: expected,
        requests: after.1.requests - before.1.requests,
        empty: after.1.empty - before.1.empty,
        bytes: after.1.bytes - before.1.bytes,
        connections,
        server_cpu_per_msg: cpu,
        server_rss: rss,
        duplicates: tally.duplicates.load(Ordering::Relaxed),
        disorder: tally.disorder.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        last_error,
    })
}

fn report(a: &PatternsArgs, rows: &[Measured]) -> Report {
    let mut report = Report::new("patterns");
    report.param("clients", a.clients);
    report.param("rate_msgs_per_s", a.rate);
    report.param("duration_s", a.duration);
    report.columns = [
        "pattern",
        "p50 latency",
        "p99 latency",
        "delivered/expected",
        "requests",
        "empty",
        "requests/msg",
        "bytes on the wire",
        "bytes/msg",
        "server CPU/msg",
        "server RSS",
        "connections",
    ]
    .map(String::from)
    .to_vec();
    for r in rows {
        let per = |x: u64| x as f64 / r.window_deliveries.max(1) as f64;
        report.rows.push(vec![
            r.pattern.clone(),
            micros(r.p50_us),
            micros(r.p99_us),
            format!("{}/{}", r.delivered, r.expected),
            r.requests.to_string(),
            r.empty.to_string(),
            format!("{:.3}", per(r.requests)),
            bytes(r.bytes),
            format!("{:.0} B", per(r.bytes)),
            r.server_cpu_per_msg.clone(),
            r.server_rss.clone(),
            r.connections.to_string(),
        ]);
        if r.errors + r.duplicates + r.disorder > 0 {
            report.notes.push(format!(
                "{}: {} client errors (last: {}), {} duplicates, {} out of order.",
                r.pattern,
                r.errors,
                r.last_error.as_deref().unwrap_or("none"),
                r.duplicates,
                r.disorder
            ));
        }
    }
    report.notes.push(
        "Latency: publish time (stamped by the publisher before its request) → receipt by \
         the client, over every delivery. Requests, empty responses, bytes and server CPU \
         are counted over the publishing window; \"/msg\" divides by the deliveries that \
         window calls for (published × clients). Requests: HTTP requests, WebSocket \
         upgrades and gRPC calls by the clients (streams make one each before the window), \
         for webhooks the server's POSTs to the receiver. Bytes: TCP payload read + written \
         on the clients' sockets (HTTP heads and bodies, chunk framing, WebSocket and \
         HTTP/2 frames, pings; not TCP/IP headers, not the publisher), for webhooks on the \
         receiver's sockets. Connections: client sockets open at the end of the window \
         (keep-alive for polls); for webhooks the server's connections to the receiver. \
         delivered/expected is counted after a drain; the shortfall is lost messages."
            .into(),
    );
    report
}

fn bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_pattern_delivers_everything_at_tiny_scale() {
        let server = herald_testkit::TestServer::start_with(|c| {
            c.webhooks.allow_private_networks = true;
        })
        .await;
        let args = PatternsArgs {
            target: TargetArgs {
                server: Some(server.url()),
                server_pid: None,
                serve_args: Vec::new(),
            },
            patterns: Pattern::value_variants().to_vec(),
            poll_every: vec![0.2, 0.5],
            clients: 3,
            rate: 5.0,
            duration: 1.0,
            drain: 10.0,
            svg: None,
            json: false,
        };
        let rows = measure(&args).await.expect("the bench runs");
        let names: Vec<&str> = rows.iter().map(|r| r.pattern.as_str()).collect();
        assert_eq!(
            names,
            [
                "short poll 0.2 s",
                "short poll 0.5 s",
                "long poll",
                "SSE",
                "WebSocket",
                "gRPC stream",
                "webhooks"
            ]
        );
        for r in &rows {
            assert!(r.expected >= 3, "{r:?}");
            assert_eq!(r.delivered, r.expected, "{r:?}");
            assert_eq!(r.duplicates + r.disorder + r.errors, 0, "{r:?}");
            assert!(r.bytes > 0 && r.connections > 0, "{r:?}");
        }
        let polls = &rows[..3];
        assert!(polls.iter().all(|r| r.requests > 0), "{polls:?}");
        let chart = svg::chart(&rows, "test");
        assert!(chart.starts_with("<svg") && chart.contains("gRPC stream"));
    }
}
