//! `peers queue`: a work queue with acknowledgements, end to end. A producer publishes
//! a fixed number of messages (4 lanes, batches of 100, each batch awaited durable)
//! while consumers drain them with a prefetch window and acknowledge whatever has
//! arrived at once. The rate counts from the first publish to the last ack; every
//! payload carries its sequence number so duplicates and missing messages are counted.
//!
//! herald: a consumer group, WebSocket `consume` + `ack` frames (acks confirmed once
//! durable). RabbitMQ: a quorum queue, confirms, `basic.qos` prefetch, multiple acks.
//! Redis Streams (`appendfsync always`): XADD, XREADGROUP COUNT, XACK. NATS JetStream: a
//! work-queue file stream, a durable pull consumer, explicit acks (work-queue streams
//! require them).

use crate::common::{Record, System, Target, field};
use crate::http::RawHttp;
use clap::Args;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[derive(Args, Debug)]
pub struct QueueArgs {
    #[command(flatten)]
    target: Target,
    /// Messages per run.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Consumers.
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Prefetch: unacknowledged deliveries a consumer may hold.
    #[arg(long, default_value_t = 100)]
    prefetch: usize,
    /// Most seconds per run; a run that has not drained by then reports its rate so far.
    #[arg(long, default_value_t = 30.0)]
    max_seconds: f64,
    /// Payload bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
}

const BATCH: u64 = 100;
const LANES: usize = 4;
const TOPIC: &str = "bench.queue";

/// Shared progress of one run.
struct Run {
    acked: AtomicU64,
    goal: u64,
    deadline: Instant,
}

impl Run {
    fn over(&self) -> bool {
        self.acked.load(Ordering::Relaxed) >= self.goal || Instant::now() >= self.deadline
    }
}

/// A JSON payload of `size` bytes carrying its sequence number.
fn body(n: u64, size: usize) -> Vec<u8> {
    let head = format!("{{\"n\":{n},\"pad\":\"");
    let pad = size.saturating_sub(head.len() + 2);
    let mut out = head.into_bytes();
    out.resize(out.len() + pad, b'x');
    out.extend_from_slice(b"\"}");
    out
}

fn seq(payload: &[u8]) -> anyhow::Result<u64> {
    field(payload, b"\"n\":").ok_or_else(|| anyhow::anyhow!("payload without a sequence number"))
}

pub async fn run(a: QueueArgs) -> anyhow::Result<()> {
    let t = &a.target;
    let sys = t.system;
    let js = if sys == System::Jetstream {
        Some(jetstream_setup(t.addr, a.prefetch * a.consumers).await?)
    } else {
        None
    };
    match sys {
        System::Herald => herald_setup(t.addr).await?,
        System::Rabbitmq => {
            let c = crate::durable::amqp_connect(t.addr).await?;
            let ch = c.create_channel().await?;
            crate::durable::declare_quorum(&ch, TOPIC).await?;
            let _ = c.close(200, "done".into()).await;
        }
        System::Redis => {
            let mut c = crate::redis_conn(t.addr).await?;
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(TOPIC)
                .arg("bench")
                .arg("0")
                .arg("MKSTREAM")
                .query_async::<()>(&mut c)
                .await?;
        }
        System::Jetstream => {}
        other => anyhow::bail!("{} has no queue adapter", other.name()),
    }
    let before = t.sample();
    let started = Instant::now();
    let run = Arc::new(Run {
        acked: AtomicU64::new(0),
        goal: a.messages,
        deadline: started + Duration::from_secs_f64(a.max_seconds),
    });
    let producer = tokio::spawn(produce(sys, t.addr, a.messages, a.size, js.clone()));
    let mut consumers = Vec::new();
    for i in 0..a.consumers {
        let (run, addr, prefetch, js) = (run.clone(), t.addr, a.prefetch, js.clone());
        consumers.push(tokio::spawn(async move {
            match sys {
                System::Herald => consume_herald(addr, prefetch, &run).await,
                System::Rabbitmq => consume_rabbit(addr, prefetch, &run).await,
                System::Redis => consume_redis(addr, i, prefetch, &run).await,
                _ => consume_jetstream(js.expect("jetstream context"), prefetch, &run).await,
            }
        }));
    }
    let mut seen = Vec::new();
    for c in consumers {
        seen.extend(c.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = t.sample();
    producer.await??;
    let acked = run.acked.load(Ordering::Relaxed);
    let delivered = seen.len() as u64;
    seen.sort_unstable();
    seen.dedup();
    let unique = seen.len() as u64;
    let mut rec = Record::new(
        t,
        "queue",
        format!(
            "{} msgs, {}×prefetch {}",
            a.messages, a.consumers, a.prefetch
        ),
    );
    rec.metric("msgs/s (publish→ack)", acked as f64 / elapsed)
        .metric(
            "server CPU µs/msg",
            crate::procfs::cpu_per(before, after, acked),
        )
        .metric("server RSS MiB", after.rss as f64 / 1048576.0)
        .metric(
            "not acked",
            a.messages.saturating_sub(acked.min(unique)) as f64,
        )
        .metric("duplicates", (delivered - unique) as f64);
    rec.emit(t)
}

async fn herald_setup(addr: SocketAddr) -> anyhow::Result<()> {
    let mut c = RawHttp::connect(addr).await?;
    let body = serde_json::json!({"start": "earliest", "lease_seconds": 60}).to_string();
    let req = c.encode(
        "PUT",
        &format!("/v1/topics/{TOPIC}/groups/bench"),
        "application/json",
        body.as_bytes(),
    );
    c.roundtrip(&req).await?;
    Ok(())
}

async fn jetstream_setup(
    addr: SocketAddr,
    max_ack_pending: usize,
) -> anyhow::Result<async_nats::jetstream::consumer::PullConsumer> {
    use async_nats::jetstream::{consumer, stream};
    let client = async_nats::connect(format!("nats://{addr}")).await?;
    let js = async_nats::jetstream::new(client);
    let s = js
        .get_or_create_stream(stream::Config {
            name: "BENCHQ".into(),
            subjects: vec![TOPIC.into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    Ok(s.create_consumer(consumer::pull::Config {
        durable_name: Some("bench".into()),
        ack_policy: consumer::AckPolicy::Explicit,
        max_ack_pending: max_ack_pending as i64,
        ack_wait: Duration::from_secs(60),
        ..Default::default()
    })
    .await?)
}

/// Publishes `total` messages: `LANES` lanes, each sending batches of `BATCH` and
/// waiting for the batch to be durable before the next.
async fn produce(
    sys: System,
    addr: SocketAddr,
    total: u64,
    size: usize,
    js: Option<async_nats::jetstream::consumer::PullConsumer>,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let batches = total.div_ceil(BATCH);
    let mut lanes = Vec::new();
    let js_ctx = match js {
        Some(_) => Some(async_nats::jetstream::new(
            async_nats::connect(format!("nats://{addr}")).await?,
        )),
        None => None,
    };
    let amqp = if sys == System::Rabbitmq {
        Some(crate::durable::amqp_connect(addr).await?)
    } else {
        None
    };
    for _ in 0..LANES {
        let next = next.clone();
        let mut lane = match sys {
            System::Herald => ProduceLane::Herald(RawHttp::connect(addr).await?),
            System::Redis => ProduceLane::Redis(crate::redis_conn(addr).await?),
            System::Rabbitmq => {
                let ch = amqp
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("amqp"))?
                    .create_channel()
                    .await?;
                ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
                    .await?;
                ProduceLane::Rabbit(ch)
            }
            _ => ProduceLane::Js(js_ctx.clone().ok_or_else(|| anyhow::anyhow!("js"))?),
        };
        lanes.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return anyhow::Ok(());
                }
                let first = b * BATCH;
                let msgs: Vec<Vec<u8>> = (first..(first + BATCH).min(total))
                    .map(|n| body(n, size))
                    .collect();
                lane.send(&msgs).await?;
            }
        }));
    }
    for l in lanes {
        l.await??;
    }
    if let Some(c) = amqp {
        let _ = c.close(200, "done".into()).await;
    }
    Ok(())
}

enum ProduceLane {
    Herald(RawHttp),
    Redis(redis::aio::MultiplexedConnection),
    Rabbit(lapin::Channel),
    Js(async_nats::jetstream::Context),
}

impl ProduceLane {
    async fn send(&mut self, msgs: &[Vec<u8>]) -> anyhow::Result<()> {
        match self {
            ProduceLane::Herald(conn) => {
                let mut b = Vec::with_capacity(msgs.len() * 300);
                b.push(b'[');
                for (i, m) in msgs.iter().enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    b.extend_from_slice(format!("{{\"topic\":\"{TOPIC}\",\"data\":").as_bytes());
                    b.extend_from_slice(m);
                    b.push(b'}');
                }
                b.push(b']');
                let req = conn.encode("POST", "/v1/messages", "application/json", &b);
                conn.roundtrip(&req).await?;
            }
            ProduceLane::Redis(c) => {
                let mut pipe = redis::pipe();
                for m in msgs {
                    pipe.cmd("XADD")
                        .arg(TOPIC)
                        .arg("*")
                        .arg("d")
                        .arg(m)
                        .ignore();
                }
                pipe.query_async::<()>(c).await?;
            }
            ProduceLane::Rabbit(ch) => {
                for m in msgs {
                    ch.basic_publish(
                        "".into(),
                        TOPIC.into(),
                        lapin::options::BasicPublishOptions::default(),
                        m,
                        lapin::BasicProperties::default().with_delivery_mode(2),
                    )
                    .await?;
                }
                let returned = ch.wait_for_confirms().await?;
                anyhow::ensure!(returned.is_empty(), "{} publishes returned", returned.len());
            }
            ProduceLane::Js(js) => {
                let mut acks = Vec::with_capacity(msgs.len());
                for m in msgs {
                    acks.push(js.publish(TOPIC, bytes::Bytes::from(m.clone())).await?);
                }
                for a in acks {
                    a.await?;
                }
            }
        }
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct Settled {
    #[serde(alias = "settled")]
    acked: u64,
    refused: Vec<serde_json::Value>,
}

/// herald: `consume` over WebSocket; one `ack` frame for whatever has arrived; counts
/// what the server confirms (`acked` frames are sent once the acks are durable).
async fn consume_herald(addr: SocketAddr, prefetch: usize, run: &Run) -> anyhow::Result<Vec<u64>> {
    let mut ws = crate::ws::connect(&format!("ws://{addr}/v1/ws"), None).await?;
    let frame = serde_json::json!({"op": "consume", "topic": TOPIC, "group": "bench", "prefetch": prefetch});
    ws.send(WsMessage::Text(frame.to_string().into())).await?;
    let mut seen = Vec::new();
    let mut receipts: Vec<String> = Vec::new();
    let mut r = 0u64;
    while !run.over() {
        let mut next = tokio::select! {
            m = ws.next() => m,
            _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
        };
        loop {
            match next {
                Some(Ok(WsMessage::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t)?;
                    match v["op"].as_str() {
                        Some("delivery") => {
                            seen.push(seq(t.as_bytes())?);
                            receipts.push(v["receipt"].as_str().unwrap_or_default().to_owned());
                        }
                        Some("acked") => {
                            let s: Settled = serde_json::from_value(v)?;
                            if let Some(x) = s.refused.first() {
                                anyhow::bail!("herald refused an ack: {x}");
                            }
                            run.acked.fetch_add(s.acked, Ordering::Relaxed);
                        }
                        Some("error") => anyhow::bail!("herald: {t}"),
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => anyhow::bail!("herald closed the connection"),
            }
            match ws.next().now_or_never() {
                Some(m) => next = m,
                None => break,
            }
        }
        if !receipts.is_empty() {
            r += 1;
            let ack = serde_json::json!({"op": "ack", "ref": r.to_string(), "receipts": std::mem::take(&mut receipts)});
            ws.send(WsMessage::Text(ack.to_string().into())).await?;
        }
    }
    let _ = ws.close(None).await;
    Ok(seen)
}

/// RabbitMQ: `basic.consume` with `basic.qos(prefetch)`; one multiple-ack for whatever
/// has arrived. AMQP acks are not confirmed: counted when sent.
async fn consume_rabbit(addr: SocketAddr, prefetch: usize, run: &Run) -> anyhow::Result<Vec<u64>> {
    use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
    let conn = crate::durable::amqp_connect(addr).await?;
    let ch = conn.create_channel().await?;
    ch.basic_qos(
        prefetch.min(u16::MAX as usize) as u16,
        BasicQosOptions::default(),
    )
    .await?;
    let mut consumer = ch
        .basic_consume(
            TOPIC.into(),
            "".into(),
            BasicConsumeOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await?;
    let mut seen = Vec::new();
    while !run.over() {
        let mut next = tokio::select! {
            m = consumer.next() => m,
            _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
        };
        let mut last: u64;
        let mut n = 0u64;
        loop {
            match next {
                Some(Ok(d)) => {
                    seen.push(seq(&d.data)?);
                    last = d.delivery_tag;
                    n += 1;
                }
                Some(Err(e)) => return Err(e.into()),
                None => anyhow::bail!("consumer cancelled"),
            }
            match consumer.next().now_or_never() {
                Some(m) => next = m,
                None => break,
            }
        }
        ch.basic_ack(last, BasicAckOptions { multiple: true })
            .await?;
        run.acked.fetch_add(n, Ordering::Relaxed);
    }
    let _ = conn.close(200, "done".into()).await;
    Ok(seen)
}

/// Redis Streams: XREADGROUP COUNT prefetch (blocking up to 200 ms), then one XACK of
/// every id read; counts what XACK reports (answered after the AOF fsync).
async fn consume_redis(
    addr: SocketAddr,
    i: usize,
    prefetch: usize,
    run: &Run,
) -> anyhow::Result<Vec<u64>> {
    let mut c = crate::redis_conn(addr).await?;
    let mut seen = Vec::new();
    while !run.over() {
        let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("bench")
            .arg(format!("c{i}"))
            .arg("COUNT")
            .arg(prefetch)
            .arg("BLOCK")
            .arg(200)
            .arg("STREAMS")
            .arg(TOPIC)
            .arg(">")
            .query_async(&mut c)
            .await?;
        let Some(reply) = reply else { continue };
        let mut ids = Vec::new();
        for k in reply.keys {
            for e in k.ids {
                if let Some(redis::Value::BulkString(d)) = e.map.get("d") {
                    seen.push(seq(d)?);
                }
                ids.push(e.id);
            }
        }
        if ids.is_empty() {
            continue;
        }
        let n: u64 = redis::cmd("XACK")
            .arg(TOPIC)
            .arg("bench")
            .arg(&ids)
            .query_async(&mut c)
            .await?;
        run.acked.fetch_add(n, Ordering::Relaxed);
    }
    Ok(seen)
}

/// JetStream: pulls of up to `prefetch` messages (each waiting at most 200 ms), every
/// message acked before the next pull (explicit acks are not confirmed: counted when
/// sent). A continuous pull stream (`consumer.stream()`) stalled for its 30 s pull expiry
/// in about one run in three here, with `max_ack_pending` equal to or ten times the pull
/// size.
async fn consume_jetstream(
    consumer: async_nats::jetstream::consumer::PullConsumer,
    prefetch: usize,
    run: &Run,
) -> anyhow::Result<Vec<u64>> {
    let mut seen = Vec::new();
    while !run.over() {
        let mut batch = consumer
            .batch()
            .max_messages(prefetch)
            .expires(Duration::from_millis(200))
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("jetstream pull: {e}"))?;
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| anyhow::anyhow!("jetstream: {e}"))?;
            seen.push(seq(&m.payload)?);
            m.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
            run.acked.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(seen)
}
