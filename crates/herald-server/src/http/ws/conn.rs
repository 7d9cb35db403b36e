//! One WebSocket connection: the read/deliver/write loop.
//!
//! The connection pulls from its feeds (subscriptions and group consumers) only when it
//! is ready to write, so a peer that stops reading stops the pulling: subscription
//! buffers overflow and fall back to storage (no memory grows), consumers stop taking
//! leases, and once a write stays blocked for the send timeout the connection is closed
//! as a slow consumer with every cursor. All frames that are ready are written together
//! and flushed once.

use super::codec::Codec;
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use herald_core::{
    CloseReason, Consumer, Delivery, HubError, Principal, Responder, RpcRequest, SubEvent,
    Subscription,
};
use herald_proto::Reset;
use herald_proto::ws::{
    CLOSE_GOING_AWAY, CLOSE_IDLE, CLOSE_SLOW_CONSUMER, CLOSE_TOKEN, CLOSE_TOO_BIG, ServerFrame,
    close_reason,
};
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Most bytes of frames gathered before one flush.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// What the connection offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `/v1/ws`: every operation.
    Full,
    /// `/v1/topics/{topic}/ws`: one subscription, bare envelopes, client frames ignored.
    ReceiveOnly,
}

/// What a connection follows: a subscription, a group consumer or an RPC responder.
pub(crate) enum Feed {
    Sub(Subscription),
    Consumer(Consumer),
    Responder(Responder),
}

pub(crate) enum FeedEvent {
    Sub(SubEvent),
    Deliveries(Result<Vec<Delivery>, HubError>),
    Request(RpcRequest),
}

impl Feed {
    fn poll(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Option<FeedEvent>> {
        match self {
            Feed::Sub(s) => s.poll_next_unpin(cx).map(|e| e.map(FeedEvent::Sub)),
            Feed::Consumer(c) => c.poll_next_unpin(cx).map(|e| e.map(FeedEvent::Deliveries)),
            Feed::Responder(r) => r.poll_next(cx).map(|e| e.map(FeedEvent::Request)),
        }
    }
}

/// Requests handed to this connection's responders and not answered yet, by id.
/// Dropping one (the connection or its responder goes away) lets its caller retry
/// elsewhere.
const MAX_PENDING_REQUESTS: usize = 4096;

/// Operations in flight on one connection (publishes, acks); answered in completion
/// order.
pub(crate) type Ops = FuturesUnordered<BoxFuture<'static, Option<ServerFrame>>>;

pub(crate) struct Conn {
    pub(super) st: AppState,
    pub(super) caller: Principal,
    /// The client's address, for per-address rate limits.
    pub(super) ip: Option<std::net::IpAddr>,
    pub(super) codec: Codec,
    pub(super) mode: Mode,
    pub(super) feeds: Vec<(String, Feed)>,
    /// Requests given to this connection's responders, awaiting `reply` frames.
    pub(super) pending: std::collections::HashMap<u64, (String, RpcRequest)>,
    next_id: u64,
    /// Where the next poll of the feeds starts (round robin, so a busy one cannot starve
    /// the others).
    rr: usize,
    last_seen: Instant,
}

/// Why the loop stopped.
enum End {
    /// The peer closed or the socket failed: nothing more to send.
    Gone,
    /// Close with this code and reason (cursors appended).
    Close(u16, &'static str),
}

impl Conn {
    pub(crate) fn new(
        st: AppState,
        caller: Principal,
        ip: Option<std::net::IpAddr>,
        codec: Codec,
        mode: Mode,
    ) -> Conn {
        Conn {
            st,
            caller,
            ip,
            codec,
            mode,
            feeds: Vec::new(),
            pending: std::collections::HashMap::new(),
            next_id: 1,
            rr: 0,
            last_seen: Instant::now(),
        }
    }

    /// Adds a subscription started before the upgrade (the receive-only route).
    pub(crate) fn with_subscription(mut self, sub: Subscription) -> Conn {
        self.add(Feed::Sub(sub));
        self
    }

    pub(super) fn add(&mut self, feed: Feed) -> String {
        let id = format!("s{}", self.next_id);
        self.next_id += 1;
        self.feeds.push((id.clone(), feed));
        id
    }

    pub(crate) async fn serve(mut self, mut ws: WebSocket) {
        let cfg = self.st.config.websocket.clone();
        let send_timeout = Duration::from_secs(cfg.send_timeout_seconds);
        let idle_timeout = Duration::from_secs(cfg.idle_timeout_seconds);
        let mut ping = tokio::time::interval(Duration::from_secs(cfg.ping_interval_seconds));
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let shutdown = self.st.hub.shutdown_token();
        let mut shutdown = std::pin::pin!(shutdown.cancelled());
        // The connection ends when its token expires or is revoked.
        let mut lapse = self.caller.lapse();
        let mut ops = Ops::new();
        let end = loop {
            let mut out: Vec<WsMessage> = Vec::new();
            tokio::select! {
                biased;
                _ = &mut shutdown => break End::Close(CLOSE_GOING_AWAY, "shutting_down"),
                Some(reason) = async { Some(lapse.as_mut()?.await) }, if lapse.is_some() => {
                    break End::Close(CLOSE_TOKEN, reason.as_str());
                }
                incoming = ws.next() => match incoming {
                    None => break End::Gone,
                    Some(Err(e)) => break read_error(e),
                    Some(Ok(msg)) => {
                        self.last_seen = Instant::now();
                        if matches!(msg, WsMessage::Close(_)) {
                            break End::Gone;
                        }
                        self.handle(&msg, &mut out, &mut ops);
                        if ops.len() >= cfg.max_inflight {
                            // Back-pressure: no more reads until one operation finishes.
                            if let Some(Some(f)) = ops.next().await {
                                out.push(self.codec.frame(&f));
                            }
                        }
                    }
                },
                Some(frame) = ops.next(), if !ops.is_empty() => {
                    out.extend(frame.map(|f| self.codec.frame(&f)));
                    while let Some(Some(frame)) = ops.next().now_or_never() {
                        out.extend(frame.map(|f| self.codec.frame(&f)));
                    }
                }
                ev = poll_fn(|cx| poll_feeds(&mut self.feeds, self.rr, cx)) => {
                    if let Some(end) = self.deliver(ev, &mut out) {
                        break end;
                    }
                }
                _ = ping.tick() => {
                    if self.last_seen.elapsed() > idle_timeout {
                        break End::Close(CLOSE_IDLE, "idle_timeout");
                    }
                    out.push(WsMessage::Ping(Default::default()));
                }
            }
            if !out.is_empty() {
                // Usually the write completes at once; the timer is armed only when it
                // blocks.
                let mut send = std::pin::pin!(send_all(&mut ws, out));
                let sent = match futures_util::poll!(send.as_mut()) {
                    Poll::Ready(r) => Ok(r),
                    Poll::Pending => tokio::time::timeout(send_timeout, send).await,
                };
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(())) => break End::Gone,
                    Err(_) => break End::Close(CLOSE_SLOW_CONSUMER, "slow_consumer"),
                }
            }
        };
        if let End::Close(code, reason) = end {
            self.close(&mut ws, code, reason).await;
        }
    }

    /// Turns ready feed events into frames (gathering every other event already
    /// available); `Some` when the connection must close.
    fn deliver(
        &mut self,
        first: (usize, Option<FeedEvent>),
        out: &mut Vec<WsMessage>,
    ) -> Option<End> {
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some((i, ev)) = next.take() {
            self.rr = i + 1;
            let id = &self.feeds[i].0;
            match ev {
                None => {
                    self.feeds.remove(i);
                }
                Some(FeedEvent::Sub(SubEvent::Messages(ms))) => {
                    for m in &ms {
                        let frame = match self.mode {
                            Mode::Full => self.codec.message(id, m),
                            Mode::ReceiveOnly => self.codec.envelope(m),
                        };
                        bytes += frame_len(&frame);
                        out.push(frame);
                    }
                }
                Some(FeedEvent::Deliveries(Ok(ds))) => {
                    for d in &ds {
                        let frame = self.codec.delivery(id, d);
                        bytes += frame_len(&frame);
                        out.push(frame);
                    }
                }
                Some(FeedEvent::Request(req)) => {
                    let (data, encoding) =
                        herald_core::payload_to_json(&req.content_type, &req.data);
                    let frame = self.codec.frame(&ServerFrame::Request {
                        sub: id.clone(),
                        request_id: req.id,
                        service: req.service.to_string(),
                        content_type: req.content_type.clone(),
                        data: serde_json::from_str(&data).unwrap_or_default(),
                        encoding: encoding.map(str::to_owned),
                    });
                    bytes += frame_len(&frame);
                    out.push(frame);
                    if self.pending.len() >= MAX_PENDING_REQUESTS {
                        self.pending.retain(|_, (_, r)| !r.abandoned());
                    }
                    self.pending.insert(req.id, (id.clone(), req));
                }
                Some(FeedEvent::Deliveries(Err(e))) => {
                    out.push(self.codec.frame(&ServerFrame::Error {
                        reference: None,
                        code: e.code(),
                        message: format!("consumer {id} stopped: {e}"),
                    }));
                    self.feeds.remove(i);
                }
                Some(FeedEvent::Sub(SubEvent::Reset(info))) => {
                    let reset = Reset {
                        reason: info.reason,
                        earliest: info.earliest.to_string(),
                        latest: info.latest.to_string(),
                    };
                    let frame = match self.mode {
                        Mode::Full => self.codec.frame(&ServerFrame::Reset {
                            sub: id.clone(),
                            reset,
                        }),
                        Mode::ReceiveOnly => {
                            self.codec.value(&serde_json::json!({ "reset": reset }))
                        }
                    };
                    out.push(frame);
                }
                Some(FeedEvent::Sub(SubEvent::Closed { reason, .. })) => {
                    return Some(match reason {
                        CloseReason::ShuttingDown => End::Close(CLOSE_GOING_AWAY, "shutting_down"),
                        CloseReason::SlowConsumer => {
                            End::Close(CLOSE_SLOW_CONSUMER, "slow_consumer")
                        }
                        CloseReason::StorageFailure => End::Close(1011, "storage_failure"),
                        CloseReason::TokenExpired => End::Close(CLOSE_TOKEN, "token_expired"),
                        CloseReason::TokenRevoked => End::Close(CLOSE_TOKEN, "token_revoked"),
                    });
                }
            }
            if bytes < MAX_BATCH_BYTES {
                let waker = futures_util::task::noop_waker();
                let mut cx = std::task::Context::from_waker(&waker);
                if let Poll::Ready(ev) = poll_feeds(&mut self.feeds, self.rr, &mut cx) {
                    next = Some(ev);
                }
            }
        }
        None
    }

    /// Sends the cursors (a `closing` frame, then a close frame whose reason carries as
    /// many as fit). A slow peer gets them once it drains what is queued before them; a
    /// dead one is dropped after the send timeout (at least 10 s).
    async fn close(&mut self, ws: &mut WebSocket, code: u16, reason: &'static str) {
        let cursors: BTreeMap<String, String> = self
            .feeds
            .iter()
            .filter_map(|(id, f)| match f {
                Feed::Sub(s) => Some((id.clone(), s.cursor().to_string())),
                Feed::Consumer(_) | Feed::Responder(_) => None,
            })
            .collect();
        let mut frames = Vec::new();
        if self.mode == Mode::Full {
            frames.push(self.codec.frame(&ServerFrame::Closing {
                code,
                reason: reason.to_owned(),
                cursors: cursors.clone(),
            }));
        }
        frames.push(WsMessage::Close(Some(CloseFrame {
            code,
            reason: close_reason(reason, &cursors).into(),
        })));
        let wait = Duration::from_secs(self.st.config.websocket.send_timeout_seconds.max(10));
        let _ = tokio::time::timeout(wait, send_all(ws, frames)).await;
    }
}

fn read_error(e: axum::Error) -> End {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match e.into_inner().downcast::<WsError>() {
        Ok(e) if matches!(*e, WsError::Capacity(_)) => End::Close(CLOSE_TOO_BIG, "frame_too_large"),
        _ => End::Gone,
    }
}

/// Polls every feed, starting at `from`; ready with the first event found.
fn poll_feeds(
    feeds: &mut [(String, Feed)],
    from: usize,
    cx: &mut std::task::Context<'_>,
) -> Poll<(usize, Option<FeedEvent>)> {
    let n = feeds.len();
    for k in 0..n {
        let i = (from + k) % n;
        if let Poll::Ready(ev) = feeds[i].1.poll(cx) {
            return Poll::Ready((i, ev));
        }
    }
    Poll::Pending
}

fn frame_len(m: &WsMessage) -> usize {
    match m {
        WsMessage::Text(t) => t.len(),
        WsMessage::Binary(b) => b.len(),
        _ => 0,
    }
}

/// Writes frames into the socket's buffer and flushes once.
async fn send_all(ws: &mut WebSocket, frames: Vec<WsMessage>) -> Result<(), ()> {
    for f in frames {
        ws.feed(f).await.map_err(|_| ())?;
    }
    ws.flush().await.map_err(|_| ())
}
