//! `peers fanout`: one publisher, many subscribers (in separate worker processes) on one
//! topic; deliveries per second, publish→deliver latency, lost messages, and the
//! server's CPU time per delivery and RSS.

use crate::common::{Record, System, Target, now_us, payload};
use crate::http::RawHttp;
use crate::worker::{FanoutReport, Worker, split};
use clap::Args;
use futures_util::SinkExt;
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Args, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    target: Target,
    /// Subscribers on the topic.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Subscribers per worker process.
    #[arg(long, default_value_t = 500)]
    per_process: usize,
    /// Messages published per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Milliseconds between publish ticks (each tick publishes rate × tick / 1000
    /// messages: one batch request for herald and Pushpin, pipelined single publishes
    /// for the others).
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// Padding bytes per payload.
    #[arg(long, default_value_t = 40)]
    pad: usize,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds without progress after which subscribers stop waiting for the rest.
    #[arg(long, default_value_t = 5.0)]
    drain_secs: f64,
}

pub async fn run(a: FanoutArgs) -> anyhow::Result<()> {
    let t = &a.target;
    let mut workers = Vec::new();
    let mut first = 0;
    for n in split(a.subscribers, a.per_process) {
        workers.push(Worker::spawn(
            "fanout",
            t.system,
            t.addr,
            n,
            first,
            a.drain_secs,
        )?);
        first += n;
    }
    for w in &mut workers {
        w.next(Duration::from_secs(300)).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut publisher = Publisher::connect(t.system, t.publish_addr()).await?;
    let per_tick = (a.rate * a.tick_ms / 1000).max(1);
    let pad = "p".repeat(a.pad);
    let before = t.sample();
    let start_us = now_us();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(a.tick_ms));
    let mut n = 0u64;
    while started.elapsed().as_secs_f64() < a.duration {
        tick.tick().await;
        let msgs: Vec<Vec<u8>> = (n..n + per_tick).map(|i| payload(i, &pad)).collect();
        publisher.publish(&msgs).await?;
        n += per_tick;
    }
    let published_for = started.elapsed().as_secs_f64();
    for w in &mut workers {
        w.tell(serde_json::json!({ "expect": n })).await?;
    }
    let mut hist = Histogram::<u64>::new(2)?;
    let mut total = FanoutReport::default();
    for w in &mut workers {
        let r: FanoutReport = serde_json::from_value(w.next(Duration::from_secs(600)).await?)?;
        total.received += r.received;
        total.expected += r.expected;
        total.disorder += r.disorder;
        total.duplicates += r.duplicates;
        total.last_us = total.last_us.max(r.last_us);
        for (v, c) in r.latency {
            hist.record_n(v, c)?;
        }
    }
    let after = t.sample();
    for w in workers {
        w.stop().await;
    }
    publisher.close().await;
    let window = published_for.max(total.last_us.saturating_sub(start_us) as f64 / 1e6);
    let case = format!(
        "1→{} subs, {} msg/s in {} ms ticks",
        a.subscribers, a.rate, a.tick_ms
    );
    let mut rec = Record::new(t, "fanout", case);
    rec.metric("deliveries/s", total.received as f64 / window)
        .metric(
            "p50 latency ms",
            hist.value_at_quantile(0.5) as f64 / 1000.0,
        )
        .metric(
            "p99 latency ms",
            hist.value_at_quantile(0.99) as f64 / 1000.0,
        )
        .metric("lost", total.expected.saturating_sub(total.received) as f64)
        .metric("out of order", (total.disorder + total.duplicates) as f64)
        .metric(
            "server CPU µs/delivery",
            crate::procfs::cpu_per(before, after, total.received),
        )
        .metric("server RSS MiB", after.rss as f64 / 1048576.0);
    rec.emit(t)
}

/// The publishing side of each system.
enum Publisher {
    /// herald: one `publish` frame per message on a `/v1/ws` connection, flushed per tick,
    /// not waiting for the `published` answers (a task reads and checks them).
    Herald(
        futures_util::stream::SplitSink<crate::ws::WsStream, Message>,
        tokio::task::JoinHandle<anyhow::Result<u64>>,
    ),
    /// Pushpin: one HTTP control API publish with all of a tick's items.
    Pushpin {
        conn: RawHttp,
        addr: SocketAddr,
        sse: bool,
    },
    /// Node ws: one text frame per message on the `/pub` connection, flushed per tick.
    NodeWs(Box<crate::ws::WsStream>),
    /// NATS core over TCP (async-nats), flushed per tick.
    Nats(async_nats::Client),
    /// Redis: one pipeline of PUBLISH commands per tick.
    Redis(redis::aio::MultiplexedConnection),
    /// MQTT QoS 0 over TCP (rumqttc).
    Mqtt(rumqttc::AsyncClient, tokio::task::JoinHandle<()>),
}

impl Publisher {
    async fn connect(sys: System, addr: SocketAddr) -> anyhow::Result<Publisher> {
        Ok(match sys {
            System::Herald => {
                use futures_util::StreamExt;
                let ws = crate::ws::connect(&format!("ws://{addr}/v1/ws"), None).await?;
                let (sink, mut stream) = ws.split();
                let acks = tokio::spawn(async move {
                    let mut ok = 0u64;
                    // Ends when the connection does (closing it resets the stream).
                    while let Some(Ok(m)) = stream.next().await {
                        if let Message::Text(t) = m {
                            if t.contains("\"published\"") {
                                ok += 1;
                            } else if t.contains("\"error\"") {
                                anyhow::bail!("herald refused a publish: {t}");
                            }
                        }
                    }
                    Ok(ok)
                });
                Publisher::Herald(sink, acks)
            }
            System::PushpinWs | System::PushpinSse => Publisher::Pushpin {
                conn: RawHttp::connect(addr).await?,
                addr,
                sse: sys == System::PushpinSse,
            },
            System::NodeWs => Publisher::NodeWs(Box::new(
                crate::ws::connect(&format!("ws://{addr}/pub"), None).await?,
            )),
            System::Nats | System::NatsWs => {
                Publisher::Nats(async_nats::connect(format!("nats://{addr}")).await?)
            }
            System::Redis => Publisher::Redis(crate::redis_conn(addr).await?),
            System::Mqtt | System::MqttWs => {
                let opts = crate::subs::mqtt_options(
                    System::Mqtt,
                    addr,
                    format!("peers-pub-{}", std::process::id()),
                );
                let (client, mut el) = rumqttc::AsyncClient::new(opts, 100_000);
                loop {
                    if let rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)) = el.poll().await?
                    {
                        break;
                    }
                }
                let driver = tokio::spawn(async move { while el.poll().await.is_ok() {} });
                Publisher::Mqtt(client, driver)
            }
            System::Jetstream | System::Rabbitmq => {
                anyhow::bail!("{} is not a fan-out target here", sys.name())
            }
        })
    }

    async fn publish(&mut self, msgs: &[Vec<u8>]) -> anyhow::Result<()> {
        match self {
            Publisher::Herald(sink, _) => {
                for m in msgs {
                    let mut f = String::with_capacity(m.len() + 64);
                    f.push_str("{\"op\":\"publish\",\"topic\":\"bench.fanout\",\"data\":");
                    f.push_str(&String::from_utf8_lossy(m));
                    f.push('}');
                    sink.feed(Message::Text(f.into())).await?;
                }
                sink.flush().await?;
            }
            Publisher::Pushpin { conn, addr, sse } => {
                let items: Vec<serde_json::Value> = msgs
                    .iter()
                    .map(|m| {
                        let text = String::from_utf8_lossy(m);
                        let formats = if *sse {
                            serde_json::json!({"http-stream": {"content": format!("data: {text}\n\n")}})
                        } else {
                            serde_json::json!({"ws-message": {"content": text}})
                        };
                        serde_json::json!({"channel": "bench.fanout", "formats": formats})
                    })
                    .collect();
                let body = serde_json::to_vec(&serde_json::json!({ "items": items }))?;
                // Pushpin's publish endpoint closes the connection after each request.
                *conn = RawHttp::connect(*addr).await?;
                let req = conn.encode("POST", "/publish/", "application/json", &body);
                conn.roundtrip(&req).await?;
            }
            Publisher::NodeWs(ws) => {
                for m in msgs {
                    let text = String::from_utf8_lossy(m).into_owned();
                    ws.feed(Message::Text(text.into())).await?;
                }
                ws.flush().await?;
            }
            Publisher::Nats(c) => {
                for m in msgs {
                    c.publish("bench.fanout", bytes::Bytes::from(m.clone()))
                        .await?;
                }
                c.flush().await?;
            }
            Publisher::Redis(c) => {
                let mut pipe = redis::pipe();
                for m in msgs {
                    pipe.cmd("PUBLISH").arg("bench.fanout").arg(m).ignore();
                }
                pipe.query_async::<()>(c).await?;
            }
            Publisher::Mqtt(c, _) => {
                for m in msgs {
                    c.publish("bench/fanout", rumqttc::QoS::AtMostOnce, false, m.clone())
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn close(self) {
        match self {
            Publisher::Herald(mut sink, acks) => {
                // Give the last answers a moment, then end the connection.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = sink.close().await;
                if let Ok(Err(e)) = acks.await {
                    eprintln!("herald publisher: {e}");
                }
            }
            Publisher::NodeWs(mut ws) => {
                let _ = crate::ws::WsStream::close(&mut ws, None).await;
            }
            Publisher::Mqtt(c, driver) => {
                let _ = c.disconnect().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                driver.abort();
            }
            _ => {}
        }
    }
}
