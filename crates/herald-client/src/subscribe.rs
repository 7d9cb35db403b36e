use crate::client::{Client, ReadOptions};
use crate::error::Error;
use futures_util::Stream;
use herald_proto::{Envelope, Reset};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// How a subscription receives messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Via {
    /// Short polling: a read every `interval`.
    Poll {
        /// Time between reads when nothing new arrived.
        interval: Duration,
    },
    /// Long polling: each read waits up to 30 s for the next message.
    LongPoll,
}

/// Options of a subscription.
///
/// ```
/// use herald_client::{SubscribeOptions, Via};
/// let opts = SubscribeOptions::new(Via::LongPoll).after("earliest");
/// ```
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// The transport.
    pub via: Via,
    /// Where to start: `latest` (default), `earliest` or a cursor.
    pub after: String,
    /// Longest pause between reconnect attempts.
    pub max_backoff: Duration,
}

impl SubscribeOptions {
    /// Options for `via`, starting at `latest`.
    pub fn new(via: Via) -> Self {
        SubscribeOptions {
            via,
            after: "latest".into(),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// Sets where to start.
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.after = cursor.into();
        self
    }
}

/// One item of a subscription.
#[derive(Debug, Clone)]
pub enum Event {
    /// A message, in log order.
    Message(Envelope),
    /// The cursor was unknown (expired or from another epoch); messages continue from
    /// the oldest retained one.
    Reset(Reset),
}

/// A live subscription: a `Stream` of events. It reconnects with backoff after
/// connection errors and resumes from the last cursor it delivered, so nothing is
/// skipped or repeated. Errors that retrying cannot fix (such as an invalid pattern)
/// end the stream after one `Err` item. Dropping it stops it.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Result<Event, Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for Subscription {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Subscription {
    pub(crate) fn start(client: Client, pattern: String, opts: SubscribeOptions) -> Subscription {
        let (tx, rx) = mpsc::channel(256);
        let task = tokio::spawn(run(client, pattern, opts, tx));
        Subscription { rx, task }
    }
}

async fn run(
    client: Client,
    pattern: String,
    opts: SubscribeOptions,
    tx: mpsc::Sender<Result<Event, Error>>,
) {
    let mut cursor = opts.after.clone();
    let mut backoff = Duration::from_millis(100);
    loop {
        let read = match opts.via {
            Via::Poll { .. } => ReadOptions::after(cursor.clone()).limit(1000),
            Via::LongPoll => ReadOptions::after(cursor.clone())
                .limit(1000)
                .wait(Duration::from_secs(30)),
        };
        match client.read(&[pattern.as_str()], read).await {
            Ok(page) => {
                backoff = Duration::from_millis(100);
                if let Some(reset) = page.reset
                    && tx.send(Ok(Event::Reset(reset))).await.is_err()
                {
                    return;
                }
                let empty = page.messages.is_empty();
                for m in page.messages {
                    if tx.send(Ok(Event::Message(m))).await.is_err() {
                        return;
                    }
                }
                cursor = page.next;
                if let (true, Via::Poll { interval }) = (empty, opts.via) {
                    tokio::time::sleep(interval).await;
                }
            }
            Err(e) if e.is_transient() => {
                tracing::debug!(error = %e, "subscription read failed; retrying");
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(opts.max_backoff);
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

/// Up to 25% random jitter so many clients do not reconnect in lockstep.
pub(crate) fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d + d.mul_f64((nanos % 1000) as f64 / 4000.0)
}
