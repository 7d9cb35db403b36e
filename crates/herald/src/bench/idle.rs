//! `herald bench idle`: many idle subscriber connections; server memory per connection.

use super::clients::Transport;
use super::report::Report;
use super::target::{Target, TargetArgs};
use super::worker::Worker;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

#[derive(Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Transports to measure, each against a fresh server.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ws,sse,long-poll"
    )]
    via: Vec<Transport>,
    /// Idle connections.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Connections per client process (each process may open ~20,000 files).
    #[arg(long, default_value_t = 5_000)]
    per_process: usize,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

pub async fn run(a: IdleArgs) -> anyhow::Result<()> {
    let mut report = Report::new("idle");
    report.param("connections", a.connections);
    report.columns = [
        "via",
        "connections",
        "server RSS before",
        "server RSS after",
        "per connection",
    ]
    .map(String::from)
    .to_vec();
    for &via in &a.via {
        report.rows.push(one(&a, via).await?);
    }
    report.print(a.json)
}

async fn one(a: &IdleArgs, via: Transport) -> anyhow::Result<Vec<String>> {
    let target = Target::start(&a.target).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = target.sample().map(|s| s.rss).unwrap_or(0);
    let bar = ProgressBar::new(a.connections as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("idle {via:?}"));
    let mut workers = Vec::new();
    let mut left = a.connections;
    while left > 0 {
        let n = left.min(a.per_process);
        let mut w = Worker::spawn("idle", via, &target.url, n, "bench.idle")?;
        w.next(Duration::from_secs(300)).await?;
        bar.inc(n as u64);
        workers.push(w);
        left -= n;
    }
    bar.finish_and_clear();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = target.sample().map(|s| s.rss).unwrap_or(0);
    for w in workers {
        w.stop().await;
    }
    target.stop().await;
    let per = after.saturating_sub(before) as f64 / a.connections as f64 / 1024.0;
    Ok(vec![
        format!("{via:?}").to_lowercase(),
        a.connections.to_string(),
        format!("{:.1} MiB", before as f64 / 1048576.0),
        format!("{:.1} MiB", after as f64 / 1048576.0),
        format!("{per:.2} KiB"),
    ])
}
