//! `herald rpc call|serve`: request-reply from the command line.

use super::client::{ServerArg, data_or_stdin, guess_content_type};
use super::queues::run_command;
use anyhow::bail;
use clap::{Args, Subcommand};
use herald_client::{CallOptions, Reply};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum RpcCommand {
    /// Call SERVICE with DATA (stdin when absent) and print the reply body.
    Call(CallArgs),
    /// Serve SERVICE: run CMD per request (request body on stdin); its stdout is the
    /// reply (exit 0 → 200, anything else → 500 with its stderr).
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
pub struct CallArgs {
    /// The service.
    service: String,
    /// The request body (stdin when absent).
    data: Option<String>,
    /// Content type of the request (guessed: JSON, text, bytes).
    #[arg(long)]
    content_type: Option<String>,
    /// Seconds to wait for the reply (the server's default when absent).
    #[arg(long)]
    timeout: Option<f64>,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The service.
    service: String,
    /// Content type of the replies (guessed from each reply when absent).
    #[arg(long)]
    reply_content_type: Option<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
    #[command(flatten)]
    server: ServerArg,
}

pub async fn run(cmd: RpcCommand) -> anyhow::Result<()> {
    match cmd {
        RpcCommand::Call(a) => call(a).await,
        RpcCommand::Serve(a) => serve(a).await,
    }
}

async fn call(a: CallArgs) -> anyhow::Result<()> {
    let data = data_or_stdin(a.data)?;
    let opts = CallOptions {
        content_type: Some(a.content_type.unwrap_or_else(|| guess_content_type(&data))),
        timeout: a.timeout.map(Duration::from_secs_f64),
    };
    let reply = a.server.client()?.call(&a.service, data, opts).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(&reply.data)?;
    if reply.data.last() != Some(&b'\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if reply.status >= 400 {
        bail!("the responder answered {}", reply.status);
    }
    Ok(())
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let client = a.server.client()?;
    let command = Arc::new(a.command);
    let reply_type = Arc::new(a.reply_content_type);
    eprintln!("serving {} (Ctrl-C to stop)", a.service);
    client
        .serve(&a.service, move |req| {
            let (command, reply_type) = (command.clone(), reply_type.clone());
            async move {
                let mut cmd = tokio::process::Command::new(&command[0]);
                cmd.args(&command[1..])
                    .env("HERALD_SERVICE", &req.service)
                    .env("HERALD_CONTENT_TYPE", &req.content_type)
                    .kill_on_drop(true);
                match run_command(cmd, &req.data).await {
                    Ok((true, stdout, _)) => Reply {
                        status: 200,
                        content_type: reply_type
                            .as_ref()
                            .clone()
                            .unwrap_or_else(|| guess_content_type(&stdout)),
                        data: stdout.into(),
                    },
                    Ok((false, _, reason)) => Reply::text(500, reason),
                    Err(e) => Reply::text(500, format!("{e:#}")),
                }
            }
        })
        .await?;
    Ok(())
}
