//! `peers`: a load generator that runs the same scenarios against herald and against
//! established servers (NATS, Redis, Mosquitto, RabbitMQ, Node ws, Pushpin), measuring
//! each server process's CPU time and memory from `/proc`. `bench/peers/run` starts the
//! servers and calls it; see bench/peers/README.md.

mod common;
mod durable;
mod fanout;
mod http;
mod idle;
mod lanes;
mod nats_proto;
mod procfs;
mod queue;
mod report;
mod rpc;
mod sse;
mod subs;
mod worker;
mod ws;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "peers",
    about = "herald against its peers: fan-out, durable publish, idle connections, work queues, \
             request-reply"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// One publisher, many subscribers: deliveries/s, latency, losses, CPU per delivery.
    Fanout(fanout::FanoutArgs),
    /// Durable publishes at several in-flight depths.
    Durable(durable::DurableArgs),
    /// Many idle subscriber connections: server memory per connection.
    Idle(idle::IdleArgs),
    /// Work queue with acks, publish → ack end to end.
    Queue(queue::QueueArgs),
    /// Request-reply through the server to an echoing responder, N calls in flight.
    Rpc(rpc::RpcArgs),
    /// Markdown table of medians and herald/peer ratios from result files.
    Report(report::ReportArgs),
    /// Prints one line describing this machine.
    Machine,
    /// A client process used by fanout and idle.
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
}

/// A Redis connection without the client's default 500 ms response timeout (fsync'd
/// replies under load can take longer).
pub async fn redis_conn(
    addr: std::net::SocketAddr,
) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Fanout(a) => fanout::run(a).await,
            Cmd::Durable(a) => durable::run(a).await,
            Cmd::Idle(a) => idle::run(a).await,
            Cmd::Queue(a) => queue::run(a).await,
            Cmd::Rpc(a) => rpc::run(a).await,
            Cmd::Report(a) => report::run(a),
            Cmd::Machine => {
                println!("{}", procfs::machine());
                Ok(())
            }
            Cmd::Worker(a) => worker::run(a).await,
        }
    })
}
