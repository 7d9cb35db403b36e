//! `herald bench`: load scenarios against a server process, with the server's CPU time
//! and memory read from `/proc`.

mod clients;
mod fanout;
mod idle;
mod load;
mod patterns;
mod proc;
mod publish;
mod queue;
mod report;
mod rpc;
mod target;
mod webhooks;
mod worker;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Durable publishes over HTTP keep-alive at several in-flight depths.
    Publish(publish::PublishArgs),
    /// One publisher, many subscribers: deliveries/s, CPU per delivery, latency, losses.
    Fanout(fanout::FanoutArgs),
    /// Many idle subscriber connections: server memory per connection.
    Idle(idle::IdleArgs),
    /// Work queue: publish, claim and ack end to end over HTTP and WebSocket.
    Queue(queue::QueueArgs),
    /// Request-reply round trips: HTTP or gRPC callers, WebSocket or gRPC responders.
    Rpc(rpc::RpcArgs),
    /// Webhook deliveries per second to a local sink, many endpoints.
    Webhooks(webhooks::WebhooksArgs),
    /// One workload over every delivery pattern: latency, requests, bytes, server cost.
    Patterns(patterns::PatternsArgs),
    /// A client process used by the other benchmarks.
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
}

impl BenchCommand {
    /// Worker threads for this process's runtime, when the scenario sets them.
    pub fn client_threads(&self) -> Option<usize> {
        match self {
            BenchCommand::Publish(a) => Some(a.client_threads.max(1)),
            _ => None,
        }
    }
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Publish(a) => publish::run(a).await,
        BenchCommand::Fanout(a) => fanout::run(a).await,
        BenchCommand::Idle(a) => idle::run(a).await,
        BenchCommand::Queue(a) => queue::run(a).await,
        BenchCommand::Rpc(a) => rpc::run(a).await,
        BenchCommand::Webhooks(a) => webhooks::run(a).await,
        BenchCommand::Patterns(a) => patterns::run(a).await,
        BenchCommand::Worker(a) => worker::run(a).await,
    }
}
