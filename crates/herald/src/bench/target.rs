//! The server under test: a `herald serve` child process started for the run, or an
//! already running server given by URL and PID.

use super::proc::{ProcSample, sample};
use anyhow::{Context, bail};
use clap::Args;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Benchmark a running server at this URL instead of starting one.
    #[arg(long)]
    pub server: Option<String>,
    /// PID of the running server (for CPU and memory figures).
    #[arg(long, requires = "server")]
    pub server_pid: Option<u32>,
    /// Extra `herald serve` arguments for the server this run starts.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,
    /// Token (API key or JWT) to present, for servers with `[auth]` (publish bench).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// A server to measure.
#[derive(Debug)]
pub struct Target {
    pub url: String,
    pub pid: Option<u32>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    pub async fn start(args: &TargetArgs) -> anyhow::Result<Target> {
        if let Some(url) = &args.server {
            return Ok(Target {
                url: url.trim_end_matches('/').to_owned(),
                pid: args.server_pid,
                child: None,
                _dir: None,
            });
        }
        let dir = tempfile::tempdir().context("temp dir")?;
        let exe = std::env::current_exe().context("locating the herald binary")?;
        let mut child = Command::new(exe)
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path())
            .args(&args.serve_args)
            .env("HERALD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting herald serve")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .next_line()
            .await?
            .context("the server exited before listening")?;
        let Some(url) = line
            .strip_prefix("herald listening on ")
            .and_then(|r| r.split_whitespace().next())
        else {
            bail!("unexpected first line from the server: {line}");
        };
        Ok(Target {
            url: url.to_owned(),
            pid: child.id(),
            child: Some(child),
            _dir: Some(dir),
        })
    }

    pub fn addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        let hostport = self
            .url
            .strip_prefix("http://")
            .context("only http:// servers can be benchmarked")?;
        Ok(hostport.parse()?)
    }

    pub fn sample(&self) -> Option<ProcSample> {
        self.pid.and_then(|p| sample(p).ok())
    }

    pub async fn stop(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}
