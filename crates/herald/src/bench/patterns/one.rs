//! One pattern's run: open its clients, publish at the steady rate over the window while
//! sampling the server, then wait for the last deliveries.

use super::tally::Tally;
use super::{Case, Measured, PatternsArgs, clients, hooks};
use crate::bench::clients::now_us;
use crate::bench::load::RawHttp;
use crate::bench::report::cpu_rss;
use crate::bench::target::Target;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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

/// Aborts a pattern's client tasks however its run ends.
struct Clients(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Clients {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Publishes `{"n","t"}` payloads to `topic` at the steady rate for the window; returns
/// how many.
async fn publish(
    a: &PatternsArgs,
    target: &Target,
    topic: &str,
    bar: &ProgressBar,
    tally: &Tally,
) -> anyhow::Result<u64> {
    let mut conn = RawHttp::connect(target.addr()?).await?;
    let path = format!("/v1/topics/{topic}/messages");
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate));
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
    Ok(published)
}

/// Measures one pattern against `target`.
pub async fn one(a: &PatternsArgs, target: &Target, case: Case) -> anyhow::Result<Measured> {
    let tally = Tally::new()?;
    let topic = format!("bench.patterns.{}.{}", case.slug(), now_us());
    let (tasks, hooks) = open(a, target, case, &topic, &tally).await?;
    let tasks = Clients(tasks);
    // Let connection set-up settle before measuring.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bar = ProgressBar::new((a.duration * 1000.0) as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>24} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} x{}", case.name(), a.clients));
    let before = (target.sample(), tally.snapshot());
    let published = publish(a, target, &topic, &bar, &tally).await?;
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
    drop(tasks);
    if !hooks.is_empty() && a.target.server.is_some() {
        hooks::unregister(&target.url, &hooks).await?;
    }
    let (cpu, rss) = cpu_rss(before.0, after.0, expected);
    let cpu_us = before
        .0
        .zip(after.0)
        .map(|(b, a)| a.cpu.saturating_sub(b.cpu).as_secs_f64() * 1e6 / expected.max(1) as f64);
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
        requests: after.1.requests - before.1.requests,
        empty: after.1.empty - before.1.empty,
        bytes: after.1.bytes - before.1.bytes,
        connections,
        server_cpu_per_msg: cpu,
        server_cpu_us_per_msg: cpu_us,
        server_rss: rss,
        duplicates: tally.duplicates.load(Ordering::Relaxed),
        disorder: tally.disorder.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        last_error,
    })
}
