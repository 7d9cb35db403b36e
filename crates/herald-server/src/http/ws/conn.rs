//! One WebSocket connection: decodes frames into hub calls, delivers subscriptions.
//!
//! The connection pulls from its subscriptions only when it is ready to write, so a peer
//! that stops reading stops the pulling: its subscriptions' bounded buffers overflow and
//! fall back to storage (no memory grows), and once a write stays blocked for the send
//! timeout the connection is closed as a slow consumer with every cursor. All frames that
//! are ready are written together and flushed once.

use super::codec::Codec;
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use herald_core::{
    CloseReason, Filter, HubError, Principal, Publish, Start, SubEvent, Subscription,
    payload_from_json,
};
use herald_proto::ws::{
    CLOSE_GOING_AWAY, CLOSE_IDLE, CLOSE_SLOW_CONSUMER, CLOSE_TOO_BIG, ClientFrame, ServerFrame,
    close_reason,
};
use herald_proto::{ErrorCode, Reset};
use serde_json::Value;
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

pub(crate) struct Conn {
    st: AppState,
    caller: Principal,
    codec: Codec,
    mode: Mode,
    subs: Vec<(String, Subscription)>,
    next_sub: u64,
    /// Where the next poll of the subscriptions starts (round robin, so a busy one
    /// cannot starve the others).
    rr: usize,
    last_seen: Instant,
}

/// Publishes in flight on one connection; answered in completion order.
type Ops = FuturesUnordered<BoxFuture<'static, ServerFrame>>;

/// Why the loop stopped.
enum End {
    /// The peer closed or the socket failed: nothing more to send.
    Gone,
    /// Close with this code and reason (cursors appended).
    Close(u16, &'static str),
}

impl Conn {
    pub(crate) fn new(st: AppState, caller: Principal, codec: Codec, mode: Mode) -> Conn {
        Conn {
            st,
            caller,
            codec,
            mode,
            subs: Vec::new(),
            next_sub: 1,
            rr: 0,
            last_seen: Instant::now(),
        }
    }

    /// Adds a subscription started before the upgrade (the receive-only route).
    pub(crate) fn with_subscription(mut self, sub: Subscription) -> Conn {
        self.add(sub);
        self
    }

    fn add(&mut self, sub: Subscription) -> String {
        let id = format!("s{}", self.next_sub);
        self.next_sub += 1;
        self.subs.push((id.clone(), sub));
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
        let mut ops = Ops::new();
        let end = loop {
            let mut out: Vec<WsMessage> = Vec::new();
            tokio::select! {
                biased;
                _ = &mut shutdown => break End::Close(CLOSE_GOING_AWAY, "shutting_down"),
                incoming = ws.next() => match incoming {
                    None => break End::Gone,
                    Some(Err(e)) => break self.read_error(e),
                    Some(Ok(msg)) => {
                        self.last_seen = Instant::now();
                        if matches!(msg, WsMessage::Close(_)) {
                            break End::Gone;
                        }
                        self.handle(&msg, &mut out, &mut ops);
                        if ops.len() >= cfg.max_inflight {
                            // Back-pressure: no more reads until one publish finishes.
                            if let Some(f) = ops.next().await {
                                out.push(self.codec.frame(&f));
                            }
                        }
                    }
                },
                Some(frame) = ops.next(), if !ops.is_empty() => {
                    out.push(self.codec.frame(&frame));
                    while let Some(Some(frame)) = ops.next().now_or_never() {
                        out.push(self.codec.frame(&frame));
                    }
                }
                ev = poll_fn(|cx| poll_subs(&mut self.subs, self.rr, cx)) => {
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

    fn read_error(&self, e: axum::Error) -> End {
        use tokio_tungstenite::tungstenite::Error as WsError;
        match e.into_inner().downcast::<WsError>() {
            Ok(e) if matches!(*e, WsError::Capacity(_)) => {
                End::Close(CLOSE_TOO_BIG, "frame_too_large")
            }
            _ => End::Gone,
        }
    }

    /// Turns ready subscription events into frames (gathering every other event already
    /// available); `Some` when the connection must close.
    fn deliver(
        &mut self,
        first: (usize, Option<SubEvent>),
        out: &mut Vec<WsMessage>,
    ) -> Option<End> {
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some((i, ev)) = next.take() {
            self.rr = i + 1;
            match ev {
                None => {
                    self.subs.remove(i);
                }
                Some(SubEvent::Messages(ms)) => {
                    let id = &self.subs[i].0;
                    for m in &ms {
                        let frame = match self.mode {
                            Mode::Full => self.codec.message(id, m),
                            Mode::ReceiveOnly => self.codec.envelope(m),
                        };
                        bytes += frame_len(&frame);
                        out.push(frame);
                    }
                }
                Some(SubEvent::Reset(info)) => {
                    let reset = Reset {
                        reason: info.reason,
                        earliest: info.earliest.to_string(),
                        latest: info.latest.to_string(),
                    };
                    let frame = match self.mode {
                        Mode::Full => self.codec.frame(&ServerFrame::Reset {
                            sub: self.subs[i].0.clone(),
                            reset,
                        }),
                        Mode::ReceiveOnly => {
                            self.codec.value(&serde_json::json!({ "reset": reset }))
                        }
                    };
                    out.push(frame);
                }
                Some(SubEvent::Closed { reason, .. }) => {
                    return Some(match reason {
                        CloseReason::ShuttingDown => End::Close(CLOSE_GOING_AWAY, "shutting_down"),
                        CloseReason::SlowConsumer => {
                            End::Close(CLOSE_SLOW_CONSUMER, "slow_consumer")
                        }
                        CloseReason::StorageFailure => End::Close(1011, "storage_failure"),
                    });
                }
            }
            if bytes < MAX_BATCH_BYTES {
                let waker = futures_util::task::noop_waker();
                let mut cx = std::task::Context::from_waker(&waker);
                if let Poll::Ready(ev) = poll_subs(&mut self.subs, self.rr, &mut cx) {
                    next = Some(ev);
                }
            }
        }
        None
    }

    /// Handles one client frame, queueing answers in `out`.
    fn handle(&mut self, msg: &WsMessage, out: &mut Vec<WsMessage>, ops: &mut Ops) {
        let frame = match self.codec.decode(msg) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) if self.mode == Mode::Full => {
                out.push(self.codec.frame(&ServerFrame::Error {
                    reference: e.reference,
                    code: e.code,
                    message: e.message,
                }));
                return;
            }
            Err(_) => return,
        };
        if self.mode == Mode::ReceiveOnly {
            return;
        }
        let answer = match frame {
            ClientFrame::Ping { reference } => ServerFrame::Pong { reference },
            ClientFrame::Subscribe {
                reference,
                topic,
                after,
            } => self.subscribe(reference, topic.to_vec(), after),
            ClientFrame::Unsubscribe { reference, sub } => {
                match self.subs.iter().position(|(id, _)| *id == sub) {
                    Some(i) => {
                        let (sub, s) = self.subs.remove(i);
                        ServerFrame::Unsubscribed {
                            reference,
                            sub,
                            cursor: s.cursor().to_string(),
                        }
                    }
                    None => error(
                        reference,
                        ErrorCode::NotFound,
                        format!("no subscription {sub:?} on this connection"),
                    ),
                }
            }
            ClientFrame::Publish {
                reference,
                topic,
                data,
                event,
                content_type,
                encoding,
                idempotency_key,
            } => {
                let publish = HubError::topic(&topic).and_then(|t| {
                    let (ct, bytes) =
                        payload_from_json(&data.to_string(), content_type, encoding.as_deref())?;
                    Ok(Publish {
                        topic: Some(t),
                        event,
                        content_type: Some(ct),
                        headers: Vec::new(),
                        data: bytes,
                        idempotency_key,
                    })
                });
                match publish {
                    Err(e) => hub_error(reference, e),
                    Ok(p) => {
                        let hub = self.st.hub.clone();
                        let caller = self.caller.clone();
                        ops.push(
                            async move {
                                match hub.publish(&caller, p).await {
                                    Ok(p) => ServerFrame::Published {
                                        reference,
                                        id: p.id.to_string(),
                                        topic: p.topic.to_string(),
                                        time: herald_core::clock::rfc3339_ms(p.time_ms),
                                    },
                                    Err(e) => hub_error(reference, e),
                                }
                            }
                            .boxed(),
                        );
                        return;
                    }
                }
            }
        };
        out.push(self.codec.frame(&answer));
    }

    fn subscribe(
        &mut self,
        reference: Option<Value>,
        topics: Vec<String>,
        after: Option<String>,
    ) -> ServerFrame {
        let max = self.st.config.websocket.max_subscriptions;
        if self.subs.len() >= max {
            return error(
                reference,
                ErrorCode::LimitReached,
                format!("at most {max} subscriptions per connection"),
            );
        }
        let sub = (|| {
            let patterns = topics
                .iter()
                .map(|t| HubError::pattern(t))
                .collect::<Result<Vec<_>, _>>()?;
            let filter = Filter::new(patterns)?;
            let start = Start::parse(after.as_deref().unwrap_or("latest"))?;
            self.st.hub.subscribe(&self.caller, filter, start)
        })();
        match sub {
            Ok(sub) => {
                let cursor = sub.cursor().to_string();
                let id = self.add(sub);
                ServerFrame::Subscribed {
                    reference,
                    sub: id,
                    cursor,
                }
            }
            Err(e) => hub_error(reference, e),
        }
    }

    /// Sends the cursors (a `closing` frame, then a close frame whose reason carries as
    /// many as fit). A slow peer gets them once it drains what is queued before them; a
    /// dead one is dropped after the send timeout (at least 10 s).
    async fn close(&mut self, ws: &mut WebSocket, code: u16, reason: &'static str) {
        let cursors: BTreeMap<String, String> = self
            .subs
            .iter()
            .map(|(id, s)| (id.clone(), s.cursor().to_string()))
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

/// Polls every subscription, starting at `from`; ready with the first event found.
fn poll_subs(
    subs: &mut [(String, Subscription)],
    from: usize,
    cx: &mut std::task::Context<'_>,
) -> Poll<(usize, Option<SubEvent>)> {
    let n = subs.len();
    for k in 0..n {
        let i = (from + k) % n;
        if let Poll::Ready(ev) = subs[i].1.poll_next_unpin(cx) {
            return Poll::Ready((i, ev));
        }
    }
    Poll::Pending
}

fn error(reference: Option<Value>, code: ErrorCode, message: String) -> ServerFrame {
    ServerFrame::Error {
        reference,
        code,
        message,
    }
}

fn hub_error(reference: Option<Value>, e: HubError) -> ServerFrame {
    error(reference, e.code(), e.to_string())
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
