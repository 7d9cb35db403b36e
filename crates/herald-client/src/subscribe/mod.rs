//! Subscriptions: a `Stream` of events over WebSocket, SSE, long polling or short
//! polling, reconnecting with backoff and resuming exactly from the last cursor.

mod grpc;
mod poll;
mod sse;
mod ws;

use crate::client::Client;
use crate::error::{Error, ErrorKind};
use futures_util::Stream;
use herald_proto::{Envelope, Reset};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How a subscription receives messages.
///
/// ```
/// use herald_client::Via;
/// use std::time::Duration;
/// let transports = [Via::Ws, Via::Sse, Via::LongPoll, Via::Poll { interval: Duration::from_secs(5) }];
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Via {
    /// WebSocket (`/v1/ws`).
    Ws,
    /// Server-Sent Events (`/v1/events`).
    Sse,
    /// Long polling: each read waits up to 30 s for the next message.
    LongPoll,
    /// Short polling: a read every `interval` when nothing new arrived.
    Poll {
        /// Time between reads when nothing new arrived.
        interval: Duration,
    },
    /// gRPC server streaming (`herald.v1.Herald/Subscribe`, HTTP/2).
    Grpc,
}

/// Options of a subscription.
///
/// ```
/// use herald_client::{SubscribeOptions, Via};
/// let opts = SubscribeOptions::new(Via::Ws).after("earliest").fallback(false);
/// ```
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// The transport to start with.
    pub via: Via,
    /// Where to start: `latest` (default), `earliest` or a cursor.
    pub after: String,
    /// Longest pause between reconnect attempts.
    pub max_backoff: Duration,
    /// When the server refuses gRPC, use WebSocket; when it refuses WebSocket, SSE; when
    /// it refuses SSE, long polling.
    /// On by default.
    pub fallback: bool,
}

impl SubscribeOptions {
    /// Options for `via`, starting at `latest`, with fallback on.
    ///
    /// ```
    /// let opts = herald_client::SubscribeOptions::new(herald_client::Via::LongPoll);
    /// assert_eq!(opts.after, "latest");
    /// ```
    pub fn new(via: Via) -> Self {
        SubscribeOptions {
            via,
            after: "latest".into(),
            max_backoff: Duration::from_secs(5),
            fallback: true,
        }
    }

    /// Sets where to start.
    ///
    /// ```
    /// let opts = herald_client::SubscribeOptions::new(herald_client::Via::Ws).after("earliest");
    /// assert_eq!(opts.after, "earliest");
    /// ```
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.after = cursor.into();
        self
    }

    /// Turns transport fallback on or off.
    ///
    /// ```
    /// let strict = herald_client::SubscribeOptions::new(herald_client::Via::Ws).fallback(false);
    /// assert!(!strict.fallback);
    /// ```
    pub fn fallback(mut self, on: bool) -> Self {
        self.fallback = on;
        self
    }

    /// Sets the longest pause between reconnect attempts.
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = herald_client::SubscribeOptions::new(herald_client::Via::Sse).max_backoff(Duration::from_secs(1));
    /// assert_eq!(opts.max_backoff, Duration::from_secs(1));
    /// ```
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }
}

/// One item of a subscription.
///
/// ```no_run
/// # async fn demo(mut sub: herald_client::Subscription) {
/// use futures_util::StreamExt;
/// use herald_client::Event;
/// while let Some(Ok(event)) = sub.next().await {
///     match event {
///         Event::Message(m) => println!("{}: {}", m.id, m.data),
///         Event::Reset(r) => eprintln!("messages were lost ({:?}); continuing from {}", r.reason, r.earliest),
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub enum Event {
    /// A message, in log order.
    Message(Envelope),
    /// The cursor was unknown (expired or from another epoch); messages continue from
    /// `earliest`.
    Reset(Reset),
}

/// A live subscription: a `Stream` of events.
///
/// ```no_run
/// # async fn demo(client: herald_client::Client) {
/// use futures_util::StreamExt;
/// use herald_client::{SubscribeOptions, Via};
/// let mut sub = client.subscribe("orders.>", SubscribeOptions::new(Via::Ws));
/// let first = sub.next().await;
/// println!("using {:?}: {first:?}", sub.via());
/// # }
/// ```
/// It reconnects with backoff after
/// connection errors and resumes from the last cursor it delivered, so nothing is
/// skipped or repeated. Errors that retrying cannot fix (such as an invalid pattern)
/// end the stream after one `Err` item. Dropping it stops it.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Result<Event, Error>>,
    task: tokio::task::JoinHandle<()>,
    via: tokio::sync::watch::Receiver<Via>,
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
        let (via_tx, via) = tokio::sync::watch::channel(opts.via);
        let task = tokio::spawn(run(client, pattern, opts, tx, via_tx));
        Subscription { rx, task, via }
    }

    /// The transport in use now (after any fallback): see the example on
    /// [`Subscription`].
    pub fn via(&self) -> Via {
        *self.via.borrow()
    }
}

/// Why a transport session ended.
pub(crate) enum Stop {
    /// Nobody is listening any more.
    Dropped,
    /// The server refused this transport.
    Refused(Error),
    /// Try again later.
    Transient(Error),
    /// Retrying cannot help.
    Fatal(Error),
}

impl Stop {
    /// Classifies an HTTP error answer.
    pub(crate) fn from_error(e: Error) -> Stop {
        if e.is_transient() {
            Stop::Transient(e)
        } else {
            Stop::Fatal(e)
        }
    }
}

/// What every transport shares: where it is, and where events go.
pub(crate) struct Session<'a> {
    pub client: &'a Client,
    pub pattern: &'a str,
    /// `latest`, `earliest` or the last delivered position.
    pub cursor: String,
    tx: &'a mpsc::Sender<Result<Event, Error>>,
    progressed: bool,
}

impl Session<'_> {
    /// Delivers an event and moves the cursor past it.
    pub(crate) async fn emit(&mut self, ev: Event) -> Result<(), Stop> {
        match &ev {
            Event::Message(m) => self.cursor = m.id.clone(),
            Event::Reset(r) => self.cursor = r.earliest.clone(),
        }
        self.progressed = true;
        self.tx.send(Ok(ev)).await.map_err(|_| Stop::Dropped)
    }

    /// Records the concrete position a transport reported at its start.
    pub(crate) fn started_at(&mut self, cursor: String) {
        self.cursor = cursor;
    }
}

async fn run(
    client: Client,
    pattern: String,
    opts: SubscribeOptions,
    tx: mpsc::Sender<Result<Event, Error>>,
    via_tx: tokio::sync::watch::Sender<Via>,
) {
    let mut via = opts.via;
    let mut s = Session {
        client: &client,
        pattern: &pattern,
        cursor: opts.after.clone(),
        tx: &tx,
        progressed: false,
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        s.progressed = false;
        let began = Instant::now();
        let stop = match via {
            Via::Ws => ws::run(&mut s).await,
            Via::Grpc => grpc::run(&mut s).await,
            Via::Sse => sse::run(&mut s).await,
            Via::LongPoll | Via::Poll { .. } => poll::run(&mut s, via).await,
        };
        match stop {
            Stop::Dropped => return,
            Stop::Refused(e) if opts.fallback && via != Via::LongPoll => {
                tracing::info!(from = ?via, error = %e, "transport refused; falling back");
                via = match via {
                    Via::Grpc => Via::Ws,
                    Via::Ws => Via::Sse,
                    _ => Via::LongPoll,
                };
                let _ = via_tx.send(via);
            }
            Stop::Refused(e) | Stop::Fatal(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
            Stop::Transient(e) => {
                if s.progressed || began.elapsed() > Duration::from_secs(10) {
                    backoff = Duration::from_millis(100);
                }
                tracing::debug!(?via, error = %e, ?backoff, "subscription interrupted; resuming");
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(opts.max_backoff);
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

/// An error for a transport that answered something unexpected.
pub(crate) fn protocol_error(what: impl Into<String>) -> Error {
    Error::new(ErrorKind::Decode, what)
}
