//! `herald consume`, `herald jobs …`, `herald webhooks …`: thin wrappers over the SDK.

use super::client::ServerArg;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use herald_client::{ClaimOptions, Client, Delivery};
use std::io::{Read as _, Write};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

fn client(s: &ServerArg) -> anyhow::Result<Client> {
    s.client()
}

fn print(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// The topic.
    topic: String,
    /// The consumer group.
    #[arg(long)]
    group: String,
    /// Run this shell command per message (payload on stdin): ack on exit 0, nack otherwise.
    /// Without it, deliveries are printed as NDJSON and acked.
    #[arg(long)]
    exec: Option<String>,
    /// Messages per claim.
    #[arg(long, default_value_t = 10)]
    max: usize,
    /// Lease per claim, in seconds (the group's default when absent).
    #[arg(long)]
    lease: Option<f64>,
    #[command(flatten)]
    server: ServerArg,
}

/// Runs `cmd` with `stdin`; answers (success, stdout, stderr tail).
pub(crate) async fn run_command(
    mut cmd: tokio::process::Command,
    stdin: &[u8],
) -> anyhow::Result<(bool, Vec<u8>, String)> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the command")?;
    if let Some(mut input) = child.stdin.take() {
        // A command that does not read its input is fine.
        let _ = input.write_all(stdin).await;
    }
    let out = child.wait_with_output().await?;
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: String = err
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    let reason = if tail.is_empty() {
        format!("exit status {}", out.status)
    } else {
        tail
    };
    Ok((out.status.success(), out.stdout, reason))
}

fn env_for(cmd: &mut tokio::process::Command, d: &Delivery) {
    cmd.env("HERALD_ID", &d.message.id)
        .env("HERALD_TOPIC", &d.message.topic)
        .env("HERALD_ATTEMPT", d.attempt.to_string())
        .env("HERALD_CONTENT_TYPE", &d.message.content_type);
    if let Some(e) = &d.message.event {
        cmd.env("HERALD_EVENT", e);
    }
}

pub async fn consume(a: ConsumeArgs) -> anyhow::Result<()> {
    let c = client(&a.server)?;
    let opts = ClaimOptions {
        max: a.max,
        wait: Some(Duration::from_secs(30)),
        lease: a.lease.map(Duration::from_secs_f64),
    };
    loop {
        let batch = match c.claim(&a.topic, &a.group, opts.clone()).await {
            Ok(b) => b,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "claim failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for d in batch {
            let Some(exec) = &a.exec else {
                print(&d)?;
                c.ack(&a.topic, &a.group, std::slice::from_ref(&d.receipt))
                    .await?;
                continue;
            };
            let payload = d.message.payload().map_err(anyhow::Error::msg)?;
            let mut cmd = tokio::process::Command::new("sh");
            cmd.arg("-c").arg(exec);
            env_for(&mut cmd, &d);
            let (ok, _, reason) = run_command(cmd, &payload).await?;
            let receipts = std::slice::from_ref(&d.receipt);
            if ok {
                c.ack(&a.topic, &a.group, receipts).await?;
            } else {
                eprintln!("{}: {reason}", d.message.id);
                c.nack(&a.topic, &a.group, receipts, Duration::ZERO, Some(&reason))
                    .await?;
            }
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// Submit a task (DATA, or stdin when absent).
    Submit {
        queue: String,
        data: Option<String>,
        /// Content type of the task.
        #[arg(long, default_value = "application/json")]
        content_type: String,
        /// POST the final job document here, signed (the secret is printed).
        #[arg(long)]
        callback: Option<String>,
        /// Wait up to this many seconds for the job to finish and print its document.
        #[arg(long)]
        wait: Option<f64>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Print a job's document.
    Status {
        queue: String,
        id: String,
        /// Wait up to this many seconds for the job to finish.
        #[arg(long)]
        wait: Option<f64>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Work on a queue: run CMD per task (task on stdin); exit 0 completes the job with
    /// stdout as its result, anything else is retried until the attempts run out.
    Work {
        queue: String,
        /// The consumer group workers share.
        #[arg(long, default_value = "workers")]
        group: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
        #[command(flatten)]
        server: ServerArg,
    },
}

fn wait(secs: Option<f64>) -> anyhow::Result<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(_) => bail!("--wait must be a non-negative number of seconds"),
    }
}

pub async fn jobs(cmd: JobsCommand) -> anyhow::Result<()> {
    match cmd {
        JobsCommand::Submit {
            queue,
            data,
            content_type,
            callback,
            wait: w,
            server,
        } => {
            let c = client(&server)?;
            let data = match data {
                Some(d) => d.into_bytes(),
                None => {
                    let mut buf = Vec::new();
                    std::io::stdin().read_to_end(&mut buf)?;
                    buf
                }
            };
            let job = c
                .submit_job(&queue, data, &content_type, callback.as_deref())
                .await?;
            match wait(w)? {
                Some(w) => print(&c.job(&queue, &job.id, Some(w)).await?),
                None => print(&serde_json::json!({
                    "id": job.id, "status_url": job.status_url, "callback_secret": job.callback_secret,
                })),
            }
        }
        JobsCommand::Status {
            queue,
            id,
            wait: w,
            server,
        } => print(&client(&server)?.job(&queue, &id, wait(w)?).await?),
        JobsCommand::Work {
            queue,
            group,
            command,
            server,
        } => work(client(&server)?, &queue, &group, &command).await,
    }
}

async fn work(c: Client, queue: &str, group: &str, command: &[String]) -> anyhow::Result<()> {
    let topic = format!("jobs.{queue}");
    let opts = ClaimOptions {
        max: 1,
        wait: Some(Duration::from_secs(30)),
        lease: None,
    };
    loop {
        let batch = match c.claim(&topic, group, opts.clone()).await {
            Ok(b) => b,
            Err(e) if e.is_transient() => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for d in batch {
            let payload = d.message.payload().map_err(anyhow::Error::msg)?;
            let mut cmd = tokio::process::Command::new(&command[0]);
            cmd.args(&command[1..]).env("HERALD_JOB_ID", &d.message.id);
            env_for(&mut cmd, &d);
            let (ok, stdout, reason) = run_command(cmd, &payload).await?;
            if ok {
                let result = serde_json::from_slice(&stdout).unwrap_or_else(|_| {
                    serde_json::Value::String(
                        String::from_utf8_lossy(&stdout).trim_end().to_owned(),
                    )
                });
                let doc = c
                    .report_job(queue, &d.message.id, "complete", &result)
                    .await?;
                print(&doc)?;
            } else {
                eprintln!(
                    "job {} attempt {} failed: {reason}",
                    d.message.id, d.attempt
                );
                c.nack(
                    &topic,
                    group,
                    std::slice::from_ref(&d.receipt),
                    Duration::ZERO,
                    Some(&reason),
                )
                .await?;
            }
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// Register an endpoint for PATTERN (prints its id and signing secret).
    Add {
        pattern: String,
        url: String,
        /// Where delivery starts: `latest` (default), `earliest` or a cursor.
        #[arg(long)]
        after: Option<String>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// List endpoints.
    List {
        #[command(flatten)]
        server: ServerArg,
    },
    /// Show an endpoint's latest delivery attempts.
    Deliveries {
        id: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Redeliver from a position (and re-enable the endpoint).
    Replay {
        id: String,
        #[arg(long, default_value = "earliest")]
        after: String,
        #[command(flatten)]
        server: ServerArg,
    },
}

pub async fn webhooks(cmd: WebhooksCommand) -> anyhow::Result<()> {
    match cmd {
        WebhooksCommand::Add {
            pattern,
            url,
            after,
            server,
        } => print(
            &client(&server)?
                .create_webhook(&pattern, &url, after.as_deref())
                .await?,
        ),
        WebhooksCommand::List { server } => print(&client(&server)?.webhooks().await?),
        WebhooksCommand::Deliveries { id, limit, server } => {
            print(&client(&server)?.webhook_deliveries(&id, limit).await?)
        }
        WebhooksCommand::Replay { id, after, server } => {
            print(&client(&server)?.replay_webhook(&id, &after).await?)
        }
    }
}
