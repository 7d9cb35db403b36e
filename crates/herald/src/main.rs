//! The `herald` command: serve, publish, read, subscribe, consume, jobs, webhooks, rpc,
//! bench.

mod bench;
mod cmd;

use clap::{Parser, Subcommand};

/// mimalloc: markedly less CPU than glibc malloc for the server's many small, short-lived
/// allocations across threads (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "herald",
    version,
    about = "Every client-server communication pattern over one durable, ordered log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve(cmd::serve::ServeArgs),
    /// Publish one message (DATA, or stdin when DATA is absent).
    Publish(cmd::client::PublishArgs),
    /// Read messages once (a short poll) and print them as NDJSON.
    Read(cmd::client::ReadArgs),
    /// Follow a topic or pattern and print messages as NDJSON.
    Subscribe(cmd::client::SubscribeArgs),
    /// Take messages of a topic as a member of a consumer group.
    Consume(cmd::queues::ConsumeArgs),
    /// Submit, inspect and work on jobs.
    #[command(subcommand)]
    Jobs(cmd::queues::JobsCommand),
    /// Manage webhook endpoints.
    #[command(subcommand)]
    Webhooks(cmd::queues::WebhooksCommand),
    /// Request-reply: call a service or serve one.
    #[command(subcommand)]
    Rpc(cmd::rpc::RpcCommand),
    /// Mint JWTs and hash API keys for `[auth]`.
    #[command(subcommand)]
    Token(cmd::token::TokenCommand),
    /// Measure the server.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HERALD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // herald uses ring as its one TLS crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Bench(b) = &cli.command
        && let Some(n) = b.client_threads()
    {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(a) => cmd::serve::run(a).await,
            Command::Publish(a) => cmd::client::publish(a).await,
            Command::Read(a) => cmd::client::read(a).await,
            Command::Subscribe(a) => cmd::client::subscribe(a).await,
            Command::Consume(a) => cmd::queues::consume(a).await,
            Command::Jobs(c) => cmd::queues::jobs(c).await,
            Command::Webhooks(c) => cmd::queues::webhooks(c).await,
            Command::Rpc(c) => cmd::rpc::run(c).await,
            Command::Token(c) => cmd::token::run(c),
            Command::Bench(b) => bench::run(b).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
