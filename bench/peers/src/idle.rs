//! `peers idle`: many idle subscriber connections (each with a live subscription);
//! server RSS before and after, divided by connections.

use crate::common::{Record, Target};
use crate::worker::{Worker, split};
use clap::Args;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    target: Target,
    /// Idle connections.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Connections per worker process (each process may open ~20,000 files).
    #[arg(long, default_value_t = 5000)]
    per_process: usize,
}

pub async fn run(a: IdleArgs) -> anyhow::Result<()> {
    let t = &a.target;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = t.sample();
    let mut workers = Vec::new();
    let mut first = 0;
    for n in split(a.connections, a.per_process) {
        let mut w = Worker::spawn("idle", t.system, t.addr, n, first, 1.0)?;
        w.next(Duration::from_secs(600)).await?;
        workers.push(w);
        first += n;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = t.sample();
    for w in workers {
        w.stop().await;
    }
    let per = after.rss.saturating_sub(before.rss) as f64 / a.connections as f64 / 1024.0;
    let mut rec = Record::new(t, "idle", format!("{} connections", a.connections));
    rec.metric("server RSS KiB/connection", per)
        .metric("server RSS MiB", after.rss as f64 / 1048576.0);
    rec.emit(t)
}
