//! `herald bench publish`: durable publishes over HTTP keep-alive.

use super::load::{RawHttp, closed_loop};
use super::report::{Report, cpu_rss, micros, rate};
use super::target::{Target, TargetArgs};
use bytes::Bytes;
use clap::Args;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct PublishArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// In-flight request depths to measure (one connection per request in flight).
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    inflight: Vec<usize>,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Messages per request: 1 publishes to /v1/topics/{t}/messages, more uses the batch
    /// route /v1/messages.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    batch: Vec<usize>,
    /// Measured seconds per depth.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured warm-up seconds per depth.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
    /// Threads of this load generator. One (as redis-benchmark uses) keeps it from
    /// competing with the server for the cores with extra threads: it needs about half a
    /// core at the rates measured here.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
}

fn payload(size: usize) -> String {
    "x".repeat(size)
}

pub async fn run(a: PublishArgs) -> anyhow::Result<()> {
    let target = Target::start(&a.target).await?;
    let addr = target.addr()?;
    let mut report = Report::new("publish");
    report.param("payload_bytes", a.size);
    report.param("duration_s", a.duration);
    report.param("server", &target.url);
    report.param("client_threads", a.client_threads);
    report.columns = [
        "batch",
        "in flight",
        "msgs/s",
        "requests/s",
        "p50 ack",
        "p99 ack",
        "server CPU/msg",
        "server RSS",
        "errors",
    ]
    .map(String::from)
    .to_vec();
    let mut single_rates: Vec<(usize, f64)> = Vec::new();
    for &batch in &a.batch {
        for &depth in &a.inflight {
            let body: Bytes = if batch <= 1 {
                Bytes::from(payload(a.size))
            } else {
                let item = serde_json::json!({"topic": "bench.publish", "data": payload(a.size), "content_type": "text/plain"});
                Bytes::from(serde_json::to_vec(&vec![item; batch])?)
            };
            let before = target.sample();
            let result = closed_loop(
                &format!("batch {batch} x {depth} in flight"),
                depth,
                Duration::from_secs_f64(a.warmup),
                Duration::from_secs_f64(a.duration),
                |_| {
                    let (body, token) = (body.clone(), a.target.token.clone());
                    async move {
                        let conn = RawHttp::connect(addr).await?.with_token(token.as_deref());
                        let request = if batch <= 1 {
                            conn.encode(
                                "POST",
                                "/v1/topics/bench.publish/messages",
                                "text/plain",
                                &body,
                            )
                        } else {
                            conn.encode("POST", "/v1/messages", "application/json", &body)
                        };
                        let conn = std::sync::Arc::new(tokio::sync::Mutex::new(conn));
                        let op: Box<dyn FnMut() -> _ + Send> = Box::new(move || {
                            let conn = conn.clone();
                            let request = request.clone();
                            async move {
                                conn.lock().await.roundtrip(&request).await?;
                                Ok(batch.max(1) as u64)
                            }
                        });
                        Ok(op)
                    }
                },
            )
            .await?;
            let after = target.sample();
            let secs = result.elapsed.as_secs_f64();
            let msgs = result.units as f64 / secs;
            if batch <= 1 {
                single_rates.push((depth, msgs));
            }
            let (cpu, rss) = cpu_rss(before, after, result.units);
            report.rows.push(vec![
                batch.to_string(),
                depth.to_string(),
                rate(msgs),
                rate(result.ops as f64 / secs),
                micros(result.latency.value_at_quantile(0.5)),
                micros(result.latency.value_at_quantile(0.99)),
                cpu,
                rss,
                result.errors.to_string(),
            ]);
        }
    }
    if let (Some((d1, r1)), Some((dn, rn))) = (single_rates.first(), single_rates.last())
        && d1 != dn
    {
        report.notes.push(format!(
            "Group commit: {dn} in flight publishes {:.1}x the messages/s of {d1} in flight.",
            rn / r1
        ));
    }
    report.print(a.json)?;
    target.stop().await;
    Ok(())
}
