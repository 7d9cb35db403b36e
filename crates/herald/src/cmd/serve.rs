//! `herald serve`

use anyhow::Context;
use clap::Args;
use herald_server::{Config, Server};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory of the embedded log [default: ./herald-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the log in memory only: nothing survives a restart.
    #[arg(long)]
    memory: bool,
    /// TOML configuration file (then HERALD_SECTION__KEY variables, then these flags).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Let webhooks and job callbacks reach loopback and private addresses (local
    /// development and tests only; config `webhooks.allow_private_networks`).
    #[arg(long)]
    allow_private_callbacks: bool,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if args.memory {
        config.memory = true;
    }
    if args.allow_private_callbacks {
        config.webhooks.allow_private_networks = true;
    }
    let storage = if config.memory {
        "in memory (nothing survives a restart)".to_owned()
    } else {
        config.data_dir.display().to_string()
    };
    let server = Server::bind(config).await.context("cannot start")?;
    println!("herald listening on {} (log: {storage})", server.url());
    let _ = std::io::stdout().flush();
    let stop = server.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received; shutting down");
        stop.cancel();
    });
    server.wait().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, only Ctrl-C via tokio's fallback.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
