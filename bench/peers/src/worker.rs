//! `peers worker`: a client process holding many subscriber connections (one process
//! cannot open enough files for 10k connections, and separate processes keep client work
//! out of the coordinator). It speaks JSON lines: it prints `{"ready":N}` once every
//! subscription is confirmed; a fan-out worker then reads `{"expect":N}` on stdin, waits
//! for the messages and prints its counts; an idle worker holds its connections until
//! stdin closes.

use crate::common::{System, now_us, parse_payload};
use clap::{Args, ValueEnum};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    system: System,
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long)]
    count: usize,
    /// First client id (unique client ids across worker processes).
    #[arg(long, default_value_t = 0)]
    first_id: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// Seconds without progress after which a fan-out worker stops waiting.
    #[arg(long, default_value_t = 5.0)]
    drain_secs: f64,
}

/// What one fan-out worker counted.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FanoutReport {
    pub received: u64,
    pub expected: u64,
    /// Messages that arrived with a sequence number other than the next one expected
    /// (a gap before them, or late).
    pub disorder: u64,
    /// Messages whose sequence number had been seen already.
    pub duplicates: u64,
    /// Time of the last delivery (µs since the epoch).
    pub last_us: u64,
    /// Latency histogram as (µs, count) pairs.
    pub latency: Vec<(u64, u64)>,
}

struct SubState {
    /// One bit per sequence number seen.
    seen: Vec<u64>,
    /// The next sequence number in order.
    next: u64,
    received: u64,
    disorder: u64,
    duplicates: u64,
    last_us: u64,
    hist: Histogram<u64>,
}

impl SubState {
    /// Records sequence number `n`; false if it was seen before.
    fn mark(&mut self, n: u64) -> bool {
        let (word, bit) = ((n / 64) as usize, n % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1024, 0);
        }
        let fresh = self.seen[word] & (1 << bit) == 0;
        self.seen[word] |= 1 << bit;
        fresh
    }
}

fn say(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

pub async fn run(a: WorkerArgs) -> anyhow::Result<()> {
    let mut states = Vec::with_capacity(a.count);
    let mut ons = Vec::with_capacity(a.count);
    for _ in 0..a.count {
        let st = Arc::new(Mutex::new(SubState {
            seen: Vec::new(),
            next: 0,
            received: 0,
            disorder: 0,
            duplicates: 0,
            last_us: 0,
            hist: Histogram::new(2)?,
        }));
        let s = st.clone();
        let on: crate::subs::OnMsg = Box::new(move |frame: &[u8]| {
            let Some((n, t)) = parse_payload(frame) else {
                return;
            };
            let now = now_us();
            if let Ok(mut s) = s.lock() {
                if !s.mark(n) {
                    s.duplicates += 1;
                } else {
                    if n != s.next {
                        s.disorder += 1;
                    }
                    s.next = s.next.max(n + 1);
                    s.received += 1;
                }
                s.last_us = now;
                let _ = s.hist.record(now.saturating_sub(t));
            }
        });
        states.push(st);
        ons.push(on);
    }
    let (sys, addr, first) = (a.system, a.addr, a.first_id);
    let opened: Vec<anyhow::Result<crate::subs::Reader>> =
        futures_util::stream::iter(ons.into_iter().enumerate())
            .map(|(i, on)| async move { subscribe_retrying(sys, addr, first + i, on).await })
            .buffered(a.parallel)
            .collect()
            .await;
    let mut tasks = Vec::with_capacity(a.count);
    for r in opened {
        tasks.push(tokio::spawn(r?));
    }
    say(serde_json::json!({ "ready": a.count }));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    match a.role {
        Role::Idle => while let Ok(Some(_)) = lines.next_line().await {},
        Role::Fanout => {
            let line = lines.next_line().await?.unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let total = v["expect"].as_u64().unwrap_or(0);
            let received = || -> u64 {
                states
                    .iter()
                    .map(|s| s.lock().map(|s| s.received).unwrap_or(0))
                    .sum()
            };
            let goal = total * a.count as u64;
            let (mut last, mut since) = (received(), Instant::now());
            while last < goal && since.elapsed().as_secs_f64() < a.drain_secs {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let now = received();
                if now != last {
                    (last, since) = (now, Instant::now());
                }
            }
            let mut r = FanoutReport {
                expected: goal,
                ..FanoutReport::default()
            };
            let mut hist = Histogram::<u64>::new(2)?;
            for s in &states {
                if let Ok(s) = s.lock() {
                    r.received += s.received;
                    r.disorder += s.disorder;
                    r.duplicates += s.duplicates;
                    r.last_us = r.last_us.max(s.last_us);
                    hist.add(&s.hist)?;
                }
            }
            r.latency = hist
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect();
            say(serde_json::to_value(&r)?);
        }
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}

/// Subscribes, retrying twice after a short pause (set-up is not measured; some servers
/// refuse a few of a thousand simultaneous handshakes). The callback is shared between
/// attempts; only the successful one ever calls it.
async fn subscribe_retrying(
    sys: System,
    addr: SocketAddr,
    id: usize,
    on: crate::subs::OnMsg,
) -> anyhow::Result<crate::subs::Reader> {
    let on = Arc::new(Mutex::new(on));
    let mut attempt = 0;
    loop {
        let shared = on.clone();
        let cb: crate::subs::OnMsg = Box::new(move |b: &[u8]| {
            if let Ok(mut f) = shared.lock() {
                f(b)
            }
        });
        match crate::subs::subscribe(sys, addr, id, cb).await {
            Ok(r) => return Ok(r),
            Err(e) if attempt >= 2 => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
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
        sys: System,
        addr: SocketAddr,
        count: usize,
        first_id: usize,
        drain_secs: f64,
    ) -> anyhow::Result<Worker> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["worker", "--role", role, "--system", sys.name()])
            .args(["--addr", &addr.to_string(), "--count", &count.to_string()])
            .args(["--first-id", &first_id.to_string()])
            .args(["--drain-secs", &drain_secs.to_string()])
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
        let _ = self.child.wait().await;
    }
}

/// Splits `total` clients into worker processes of at most `per_process`.
pub fn split(total: usize, per_process: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(per_process.max(1));
        out.push(n);
        left -= n;
    }
    out
}
