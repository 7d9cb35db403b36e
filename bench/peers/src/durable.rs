//! `peers durable`: durable publishes, each acknowledged only once on disk, from a
//! closed loop of N lanes (N in flight). herald: `POST /v1/topics/{t}/messages` with
//! `sync = always`; Redis: `XADD` with `appendfsync always`; RabbitMQ: persistent
//! messages to a quorum queue, each awaiting its publisher confirm.

use crate::common::{Record, System, Target};
use crate::http::RawHttp;
use bytes::Bytes;
use clap::Args;

#[derive(Args, Debug)]
pub struct DurableArgs {
    #[command(flatten)]
    target: Target,
    /// In-flight depths (one lane per publish in flight).
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    inflight: Vec<usize>,
    /// Payload bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Measured seconds per depth.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured warm-up seconds per depth.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

/// One lane: a connection (or AMQP channel) with one publish in flight at a time.
enum Lane {
    Herald(RawHttp, Bytes),
    Redis(redis::aio::MultiplexedConnection, Vec<u8>),
    Rabbit(lapin::Channel, Vec<u8>),
}

impl crate::lanes::Op for Lane {
    async fn once(&mut self) -> anyhow::Result<()> {
        match self {
            Lane::Herald(conn, req) => {
                conn.roundtrip(req).await?;
            }
            Lane::Redis(conn, payload) => {
                redis::cmd("XADD")
                    .arg("bench.publish")
                    .arg("*")
                    .arg("d")
                    .arg(&payload[..])
                    .query_async::<String>(conn)
                    .await?;
            }
            Lane::Rabbit(ch, payload) => {
                let confirm = ch
                    .basic_publish(
                        "".into(),
                        "bench.publish".into(),
                        lapin::options::BasicPublishOptions::default(),
                        payload,
                        lapin::BasicProperties::default().with_delivery_mode(2),
                    )
                    .await?
                    .await?;
                anyhow::ensure!(confirm.is_ack(), "publish not confirmed: {confirm:?}");
            }
        }
        Ok(())
    }
}

pub const AMQP_USER: &str = "guest:guest";

/// Declares a durable quorum queue.
pub async fn declare_quorum(ch: &lapin::Channel, name: &str) -> anyhow::Result<()> {
    let mut args = lapin::types::FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("quorum".into()),
    );
    ch.queue_declare(
        name.into(),
        lapin::options::QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await?;
    Ok(())
}

pub async fn amqp_connect(addr: std::net::SocketAddr) -> anyhow::Result<lapin::Connection> {
    Ok(lapin::Connection::connect(
        &format!("amqp://{AMQP_USER}@{addr}/%2f"),
        lapin::ConnectionProperties::default(),
    )
    .await?)
}

async fn lanes(
    t: &Target,
    n: usize,
    size: usize,
) -> anyhow::Result<(Vec<Lane>, Vec<lapin::Connection>)> {
    let payload = vec![b'x'; size];
    let mut out = Vec::with_capacity(n);
    let mut conns = Vec::new();
    match t.system {
        System::Herald => {
            for _ in 0..n {
                let c = RawHttp::connect(t.addr).await?;
                let req = c.encode(
                    "POST",
                    "/v1/topics/bench.publish/messages",
                    "text/plain",
                    &payload,
                );
                out.push(Lane::Herald(c, req));
            }
        }
        System::Redis => {
            for _ in 0..n {
                let c = crate::redis_conn(t.addr).await?;
                out.push(Lane::Redis(c, payload.clone()));
            }
        }
        System::Rabbitmq => {
            // Channels spread over at most 16 connections.
            for _ in 0..n.min(16) {
                conns.push(amqp_connect(t.addr).await?);
            }
            for i in 0..n {
                let ch = conns[i % conns.len()].create_channel().await?;
                if i == 0 {
                    declare_quorum(&ch, "bench.publish").await?;
                }
                ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
                    .await?;
                out.push(Lane::Rabbit(ch, payload.clone()));
            }
        }
        other => anyhow::bail!("{} has no durable publish adapter", other.name()),
    }
    Ok((out, conns))
}

pub async fn run(a: DurableArgs) -> anyhow::Result<()> {
    let t = &a.target;
    for &depth in &a.inflight {
        let (lanes, conns) = lanes(t, depth, a.size).await?;
        let m = crate::lanes::closed_loop(t, lanes, a.warmup, a.duration).await?;
        for c in conns {
            let _ = c.close(200, "done".into()).await;
        }
        let mut rec = Record::new(t, "durable", format!("{depth} in flight"));
        rec.metric("msgs/s", m.ok as f64 / m.elapsed)
            .metric("p50 ack ms", m.hist.value_at_quantile(0.5) as f64 / 1000.0)
            .metric("p99 ack ms", m.hist.value_at_quantile(0.99) as f64 / 1000.0)
            .metric("server CPU µs/msg", m.cpu_per_op())
            .metric("errors", m.errors as f64);
        rec.emit(t)?;
    }
    Ok(())
}
