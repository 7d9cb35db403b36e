//! `herald publish`, `herald read`, `herald subscribe`: thin wrappers over the SDK.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use futures_util::StreamExt;
use herald_client::{Client, Event, PublishOptions, ReadOptions, SubscribeOptions, Via};
use std::io::{Read as _, Write};
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct ServerArg {
    /// The herald server.
    #[arg(
        long,
        env = "HERALD_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// API key or JWT to present (`Authorization: Bearer`).
    #[arg(long, env = "HERALD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

impl ServerArg {
    /// An SDK client for this server, with the token if one is given.
    pub fn client(&self) -> anyhow::Result<Client> {
        let client = Client::new(&self.server)?;
        Ok(match &self.token {
            Some(t) => client.with_token(t)?,
            None => client,
        })
    }
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// Topic to publish to.
    topic: String,
    /// Payload; read from stdin when absent.
    data: Option<String>,
    /// Event type.
    #[arg(long)]
    event: Option<String>,
    /// Idempotency key: publishing again with the same key returns the first message.
    #[arg(long)]
    key: Option<String>,
    /// Content type [default: application/json when DATA is JSON, text/plain when it is
    /// UTF-8, application/octet-stream otherwise].
    #[arg(long)]
    content_type: Option<String>,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    /// Topics or patterns (`orders.*`, `orders.>`).
    #[arg(required = true)]
    patterns: Vec<String>,
    /// Start after this cursor (`earliest`, `latest` or an id).
    #[arg(long, default_value = "earliest")]
    after: String,
    /// Most messages.
    #[arg(long)]
    limit: Option<u32>,
    /// Long-poll up to this many seconds for the first message.
    #[arg(long)]
    wait: Option<f64>,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum ViaArg {
    /// Short polling every --interval seconds.
    Poll,
    /// Long polling.
    LongPoll,
    /// Server-Sent Events.
    Sse,
    /// WebSocket.
    Ws,
    /// gRPC streaming.
    Grpc,
}

#[derive(Args, Debug)]
pub struct SubscribeArgs {
    /// Topic or pattern.
    pattern: String,
    /// Transport.
    #[arg(long, value_enum, default_value = "ws")]
    via: ViaArg,
    /// Stay on the chosen transport even if the server refuses it.
    #[arg(long)]
    no_fallback: bool,
    /// Seconds between short polls (with --via poll).
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Start after this cursor (`earliest`, `latest` or an id).
    #[arg(long, default_value = "latest")]
    after: String,
    #[command(flatten)]
    server: ServerArg,
}

fn client(server: &ServerArg) -> anyhow::Result<Client> {
    server.client()
}

/// DATA, or everything on stdin when it is absent.
pub(crate) fn data_or_stdin(data: Option<String>) -> anyhow::Result<Vec<u8>> {
    Ok(match data {
        Some(d) => d.into_bytes(),
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading stdin")?;
            buf
        }
    })
}

/// JSON if it parses, then UTF-8 text, then bytes.
pub(crate) fn guess_content_type(data: &[u8]) -> String {
    if serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok() {
        "application/json".into()
    } else if std::str::from_utf8(data).is_ok() {
        "text/plain; charset=utf-8".into()
    } else {
        "application/octet-stream".into()
    }
}

pub async fn publish(a: PublishArgs) -> anyhow::Result<()> {
    let data = data_or_stdin(a.data)?;
    let content_type = a.content_type.unwrap_or_else(|| guess_content_type(&data));
    let opts = PublishOptions {
        content_type: Some(content_type),
        event: a.event,
        idempotency_key: a.key,
    };
    let p = client(&a.server)?.publish(&a.topic, data, opts).await?;
    println!("{}", serde_json::to_string(&p)?);
    Ok(())
}

fn print_line(out: &mut impl Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

pub async fn read(a: ReadArgs) -> anyhow::Result<()> {
    let pats: Vec<&str> = a.patterns.iter().map(String::as_str).collect();
    let mut opts = ReadOptions::after(a.after);
    opts.limit = a.limit;
    if let Some(w) = a.wait {
        if !(w.is_finite() && w >= 0.0) {
            bail!("--wait must be a non-negative number of seconds");
        }
        opts.wait = Some(Duration::from_secs_f64(w));
    }
    let page = client(&a.server)?.read(&pats, opts).await?;
    let mut out = std::io::stdout().lock();
    if let Some(reset) = &page.reset {
        print_line(&mut out, &serde_json::json!({ "reset": reset }))?;
    }
    for m in &page.messages {
        print_line(&mut out, m)?;
    }
    out.flush()?;
    eprintln!("next: {}", page.next);
    Ok(())
}

pub async fn subscribe(a: SubscribeArgs) -> anyhow::Result<()> {
    let via = match a.via {
        ViaArg::Poll => {
            if !(a.interval.is_finite() && a.interval > 0.0) {
                bail!("--interval must be a positive number of seconds");
            }
            Via::Poll {
                interval: Duration::from_secs_f64(a.interval),
            }
        }
        ViaArg::LongPoll => Via::LongPoll,
        ViaArg::Sse => Via::Sse,
        ViaArg::Ws => Via::Ws,
        ViaArg::Grpc => Via::Grpc,
    };
    let opts = SubscribeOptions::new(via)
        .after(a.after)
        .fallback(!a.no_fallback);
    let mut sub = client(&a.server)?.subscribe(&a.pattern, opts);
    while let Some(item) = sub.next().await {
        let mut out = std::io::stdout().lock();
        match item? {
            Event::Message(m) => print_line(&mut out, &m)?,
            Event::Reset(r) => print_line(&mut out, &serde_json::json!({ "reset": r }))?,
        }
        out.flush()?;
    }
    Ok(())
}
