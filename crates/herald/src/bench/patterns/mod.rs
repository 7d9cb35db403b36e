//! `herald bench patterns`: one workload — many clients that each need every update of
//! one topic, a publisher at a steady rate — served by every delivery pattern in turn
//! (short polls, long poll, SSE, WebSocket, gRPC stream, webhooks), each against a fresh
//! server. Per pattern: delivery latency, requests, empty responses, bytes on the wire,
//! server CPU and memory, connections held, and what was lost.

mod clients;
mod hooks;
mod one;
mod svg;
mod tally;

use super::report::{Report, micros};
use super::target::{Target, TargetArgs};
use anyhow::Context;
use clap::{Args, ValueEnum};

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
    /// Messages published (all within the window) × clients: also the divisor of every
    /// "per message" figure.
    pub expected: u64,
    /// Counted over the window:
    pub requests: u64,
    pub empty: u64,
    pub bytes: u64,
    /// Client sockets open at the end of the window (for webhooks: the server's
    /// connections to the receiver).
    pub connections: u64,
    pub server_cpu_per_msg: String,
    /// The same as a number (None without the server's PID).
    pub server_cpu_us_per_msg: Option<f64>,
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
    let positive = |x: f64| x > 0.0 && x.is_finite();
    anyhow::ensure!(
        a.clients > 0 && positive(a.rate) && positive(a.duration),
        "--clients, --rate and --duration must be positive"
    );
    anyhow::ensure!(
        a.poll_every.iter().all(|&s| positive(s)) && a.drain >= 0.0 && a.drain.is_finite(),
        "--poll-every must be positive and --drain at least 0"
    );
    let mut rows = Vec::new();
    for case in cases(a) {
        let target = Target::start(&a.target).await?;
        let row = one::one(a, &target, case).await;
        target.stop().await;
        rows.push(row.with_context(|| case.name())?);
    }
    Ok(rows)
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
        let per = |x: u64| x as f64 / r.expected.max(1) as f64;
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
                token: None,
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
