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
    /// PEM certificate chain: serve HTTPS, WSS and gRPC over TLS on the same port
    /// (with --tls-key; config `tls.cert_file`).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (config `tls.key_file`).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve anonymous full access on a non-loopback address without `[auth]`
    /// (config `allow_anonymous`).
    #[arg(long)]
    allow_anonymous: bool,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Signal handlers first, so a signal right after the start line is never fatal.
    let signals = Signals::install()?;
    let config = load(&args)?;
    let storage = if config.memory {
        "in memory (nothing survives a restart)".to_owned()
    } else {
        config.data_dir.display().to_string()
    };
    let server = Server::bind(config).await.context("cannot start")?;
    let stop = server.shutdown_token();
    let reloader = server.reloader();
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = signals;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => reload(&reloader, &args),
            }
        }
        tracing::info!("signal received; shutting down");
        stop.cancel();
    });
    println!("herald listening on {} (log: {storage})", server.url());
    let _ = std::io::stdout().flush();
    server.wait().await;
    Ok(())
}

/// The configuration: the file, then `HERALD_*` variables, then the flags.
fn load(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    if args.memory {
        config.memory = true;
    }
    if args.allow_private_callbacks {
        config.webhooks.allow_private_networks = true;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls.cert_file = Some(cert.clone());
        config.tls.key_file = Some(key.clone());
    }
    if args.allow_anonymous {
        config.allow_anonymous = true;
    }
    Ok(config)
}

/// SIGHUP: reads the configuration again and applies its `[auth]`: removed keys stop
/// working at once and their live streams end with `token_revoked`.
fn reload(reloader: &herald_server::Reloader, args: &ServeArgs) {
    let result = load(args).and_then(|c| Ok(reloader.reload(&c)?));
    match result {
        Ok(()) => tracing::info!("configuration reloaded (auth)"),
        Err(e) => tracing::error!(error = %e, "reload failed; keeping the old credentials"),
    }
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("SIGHUP handler")?,
        })
    }
}
