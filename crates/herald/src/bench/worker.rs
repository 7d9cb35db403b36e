//! `herald bench worker`: a separate client process holding many subscriber connections
//! (one process cannot open enough files for 10k connections, and separate processes
//! keep client work out of the server's accounting). It talks JSON lines: it prints
//! `{"ready":N}` once connected; a fan-out worker then reads `{"expect":N}` on stdin and
//! prints its results; an idle worker holds its connections until stdin closes.

use super::clients::{
    Transport, long_poll_hold, now_us, parse_payload, sse_read, sse_subscribe, ws_read,
    ws_subscribe,
};
use clap::{Args, ValueEnum};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Fanout,
    Idle,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[arg(long, value_enum)]
    role: Role,
    #[arg(long, value_enum)]
    via: Transport,
    #[arg(long)]
    url: String,
    #[arg(long)]
    count: usize,
    #[arg(long)]
    topic: String,
}

/// What one fan-out worker measured.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct FanoutReport {
    pub received: u64,
    pub expected: u64,
    pub disorder: u64,
    /// Latency histogram as (µs, count) pairs.
    pub latency: Vec<(u64, u64)>,
}

struct SubStats {
    received: AtomicU64,
    next: AtomicU64,
    disorder: AtomicU64,
    hist: Mutex<Histogram<u64>>,
}

fn say(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

pub async fn run(a: WorkerArgs) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = a.url.trim_start_matches("http://").parse()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let expect = Arc::new(AtomicU64::new(u64::MAX));
    let mut stats = Vec::with_capacity(a.count);
    let mut tasks = Vec::with_capacity(a.count);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(a.count.max(1));
    let opened = futures_util::stream::iter(0..a.count)
        .map(|_| {
            let http = http.clone();
            let topic = a.topic.clone();
            let ready = ready_tx.clone();
            let url = a.url.clone();
            async move {
                match a.via {
                    Transport::Ws => ws_subscribe(addr, &topic)
                        .await
                        .map(|ws| Conn::Ws(Box::new(ws))),
                    Transport::Sse => sse_subscribe(&http, &url, &topic).await.map(Conn::Sse),
                    Transport::LongPoll => {
                        let h =
                            tokio::spawn(async move { long_poll_hold(addr, &topic, ready).await });
                        Ok(Conn::Held(h))
                    }
                }
            }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    drop(ready_tx);
    for conn in opened {
        let conn = conn?;
        let st = Arc::new(SubStats {
            received: AtomicU64::new(0),
            next: AtomicU64::new(0),
            disorder: AtomicU64::new(0),
            hist: Mutex::new(Histogram::new(2)?),
        });
        let s = st.clone();
        let on = move |frame: &[u8]| {
            if let Some((n, t)) = parse_payload(frame) {
                if n != s.next.swap(n + 1, Ordering::Relaxed) {
                    s.disorder.fetch_add(1, Ordering::Relaxed);
                }
                s.received.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut h) = s.hist.lock() {
                    let _ = h.record(now_us().saturating_sub(t));
                }
            }
        };
        tasks.push(match conn {
            Conn::Ws(ws) => tokio::spawn(ws_read(*ws, on)),
            Conn::Sse(res) => tokio::spawn(sse_read(res, on)),
            Conn::Held(h) => tokio::spawn(async move {
                let _ = h.await;
            }),
        });
        stats.push(st);
    }
    if a.via == Transport::LongPoll {
        for _ in 0..a.count {
            ready_rx.recv().await;
        }
    }
    say(serde_json::json!({ "ready": a.count }));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    match a.role {
        Role::Idle => while let Ok(Some(_)) = lines.next_line().await {},
        Role::Fanout => {
            let line = lines.next_line().await?.unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let total = v["expect"].as_u64().unwrap_or(0);
            expect.store(total, Ordering::Relaxed);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while tokio::time::Instant::now() < deadline
                && stats
                    .iter()
                    .any(|s| s.received.load(Ordering::Relaxed) < total)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut hist = Histogram::<u64>::new(2)?;
            let (mut received, mut disorder) = (0, 0);
            for s in &stats {
                received += s.received.load(Ordering::Relaxed);
                disorder += s.disorder.load(Ordering::Relaxed);
                if let Ok(h) = s.hist.lock() {
                    hist.add(&*h)?;
                }
            }
            let report = FanoutReport {
                received,
                expected: total * stats.len() as u64,
                disorder,
                latency: hist
                    .iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value()))
                    .collect(),
            };
            say(serde_json::to_value(&report)?);
        }
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}

enum Conn {
    Ws(Box<super::clients::WsStream>),
    Sse(reqwest::Response),
    Held(tokio::task::JoinHandle<anyhow::Result<()>>),
}

/// A running worker process, seen from the coordinator.
pub struct Worker {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Worker {
    pub fn spawn(
        role: &str,
        via: Transport,
        url: &str,
        count: usize,
        topic: &str,
    ) -> anyhow::Result<Worker> {
        let via = match via {
            Transport::Ws => "ws",
            Transport::Sse => "sse",
            Transport::LongPoll => "long-poll",
        };
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args([
                "bench", "worker", "--role", role, "--via", via, "--url", url, "--topic", topic,
            ])
            .args(["--count", &count.to_string()])
            .env("HERALD_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("worker stdout"))?;
        Ok(Worker {
            child,
            stdin,
            lines: tokio::io::BufReader::new(stdout).lines(),
        })
    }

    /// The next JSON line the worker prints.
    pub async fn next(&mut self, within: Duration) -> anyhow::Result<serde_json::Value> {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("worker did not answer within {within:?}"))??
            .ok_or_else(|| anyhow::anyhow!("worker exited"))?;
        Ok(serde_json::from_str(&line)?)
    }

    pub async fn tell(&mut self, v: serde_json::Value) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        if let Some(stdin) = &mut self.stdin {
            stdin.write_all(format!("{v}\n").as_bytes()).await?;
            stdin.flush().await?;
        }
        Ok(())
    }

    pub async fn stop(mut self) {
        drop(self.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.start_kill();
    }
}
