//! Measures the writer's cost per message for commits of various sizes.
//! `cargo run --release -p herald-store --example append_cost`

use herald_core::clock::SystemClock;
use herald_core::conformance::{RecordingSink, text};
use herald_core::{LogStore, Retention, StoreContext};
use herald_store::{RedbOptions, RedbStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    Duration::from_millis((f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0)) * 10)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("dir");
    let store = RedbStore::open(
        dir.path(),
        RedbOptions::default(),
        StoreContext {
            sink: Arc::new(RecordingSink::default()),
            clock: Arc::new(SystemClock),
            dedup_window: Duration::from_secs(120),
            default_retention: Retention::default(),
        },
    )
    .expect("open");
    let body = "x".repeat(256);
    for batch in [1usize, 10, 100, 1000] {
        let commits = (20_000 / batch).clamp(200, 2000);
        let cpu0 = thread_cpu();
        let t0 = Instant::now();
        for _ in 0..commits {
            let items = (0..batch).map(|_| text("bench.t", &body)).collect();
            store.append(items, Vec::new()).await.expect("append");
        }
        let wall = t0.elapsed();
        let cpu = thread_cpu() - cpu0;
        let msgs = (commits * batch) as f64;
        println!(
            "batch {batch:>5}: {:>8.0} msgs/s, {:>6.0} commits/s, process CPU {:>6.1} µs/msg, {:>7.1} µs/commit",
            msgs / wall.as_secs_f64(),
            commits as f64 / wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / msgs,
            cpu.as_secs_f64() * 1e6 / commits as f64,
        );
    }
    store.close().await.expect("close");
}
