//! The streaming methods: `Subscribe` (server stream), `Consume` and `Serve` (bidi).
//! Each bidi stream is one task that forwards the hub's side into a bounded channel
//! (a client that stops reading stops the forwarding: no leases are taken and no
//! requests are accepted beyond the channel) and applies what the client sends.

use super::convert::message;
use super::error::{invalid, status_for};
use super::status;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, FuturesUnordered};
use futures_util::{FutureExt, StreamExt};
use herald_core::{
    CloseReason, Cursor, Hub, HubError, Principal, RpcReply, RpcRequest, SubEvent, Subscription,
};
use herald_proto::ErrorCode;
use herald_proto::grpc::{self, consume_event, consume_request, serve_event, serve_request};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

/// A response stream.
pub type EventStream<T> = BoxStream<'static, Result<T, Status>>;

/// Items buffered towards one client.
const CHANNEL: usize = 64;
/// Requests a responder may hold unanswered before abandoned ones are swept.
const MAX_PENDING: usize = 4096;

fn channel<T: Send + 'static>() -> (mpsc::Sender<Result<T, Status>>, EventStream<T>) {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (tx, stream.boxed())
}

/// How a subscription ended, as the stream's final status: the cursor to resume after
/// is in the `herald-cursor` trailer.
fn closed(reason: CloseReason, cursor: Cursor) -> Status {
    let mut s = match reason {
        CloseReason::SlowConsumer => {
            let mut s = Status::resource_exhausted(format!(
                "slow_consumer: the subscriber fell behind; resume after {cursor}"
            ));
            if let Ok(v) = "slow_consumer".parse() {
                s.metadata_mut().insert("herald-code", v);
            }
            s
        }
        CloseReason::ShuttingDown => status_for(
            ErrorCode::ShuttingDown,
            format!("the server is shutting down; resume after {cursor}"),
        ),
        CloseReason::StorageFailure => status_for(
            ErrorCode::StorageFailure,
            format!("reading the log failed; resume after {cursor}"),
        ),
        CloseReason::TokenExpired | CloseReason::TokenRevoked => status_for(
            ErrorCode::Unauthorized,
            format!(
                "{}: present a valid token and resume after {cursor}",
                reason.as_str()
            ),
        ),
    };
    if let Ok(v) = cursor.to_string().parse() {
        s.metadata_mut().insert("herald-cursor", v);
    }
    s
}

/// `Subscribe`: the subscription's events as stream items.
pub fn subscription(sub: Subscription) -> EventStream<grpc::SubscribeEvent> {
    use grpc::subscribe_event::Event;
    let item = |e: Event| Ok(grpc::SubscribeEvent { event: Some(e) });
    let first = item(Event::Subscribed(grpc::Subscribed {
        cursor: sub.cursor().to_string(),
    }));
    let events = sub.flat_map(move |ev| {
        let items: Vec<Result<grpc::SubscribeEvent, Status>> = match ev {
            SubEvent::Messages(ms) => ms
                .iter()
                .map(|m| item(Event::Message(message(m))))
                .collect(),
            SubEvent::Reset(info) => vec![item(Event::Reset(super::convert::reset(&info)))],
            SubEvent::Closed { reason, cursor } => vec![Err(closed(reason, cursor))],
        };
        futures_util::stream::iter(items)
    });
    futures_util::stream::once(async move { first })
        .chain(events)
        .boxed()
}

/// `Consume`: deliveries out, acks and nacks in; the consumer (and its leases) goes
/// away with the stream.
pub async fn consume(
    hub: Hub,
    who: Principal,
    mut inbound: Streaming<grpc::ConsumeRequest>,
) -> Result<EventStream<grpc::ConsumeEvent>, Status> {
    let first = inbound
        .message()
        .await?
        .and_then(|r| r.request)
        .ok_or_else(|| invalid("the first request of Consume must be start"))?;
    let consume_request::Request::Start(start) = first else {
        return Err(invalid("the first request of Consume must be start"));
    };
    let topic = HubError::topic(&start.topic).map_err(status)?;
    let prefetch = if start.prefetch == 0 {
        10
    } else {
        start.prefetch as usize
    };
    let mut consumer = hub
        .consume(&who, &topic, &start.group, prefetch)
        .map_err(status)?;
    let (tx, out) = channel();
    let mut lapse = who.lapse();
    tokio::spawn(async move {
        let group = start.group;
        let mut settling: FuturesUnordered<BoxFuture<'static, grpc::ConsumeEvent>> =
            FuturesUnordered::new();
        loop {
            tokio::select! {
                Some(reason) = async { Some(lapse.as_mut()?.await) }, if lapse.is_some() => {
                    let _ = tx.send(Err(lapsed(reason))).await;
                    break;
                }
                batch = consumer.next() => match batch {
                    None => break,
                    Some(Err(e)) => {
                        let _ = tx.send(Err(status(e))).await;
                        break;
                    }
                    Some(Ok(ds)) => {
                        for d in ds {
                            let ev = consume_event::Event::Delivery(grpc::Delivery {
                                receipt: d.receipt,
                                attempt: d.attempt,
                                message: Some(message(&d.message)),
                            });
                            let item = Ok(grpc::ConsumeEvent { event: Some(ev) });
                            if tx.send(item).await.is_err() {
                                return;
                            }
                        }
                    }
                },
                Some(ev) = settling.next(), if !settling.is_empty() => {
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
                req = inbound.next() => {
                    let (op, s) = match req.map(|r| r.map(|r| r.request)) {
                        Some(Ok(Some(consume_request::Request::Ack(s)))) => ("ack", s),
                        Some(Ok(Some(consume_request::Request::Nack(s)))) => ("nack", s),
                        Some(Ok(_)) => {
                            let _ = tx.send(Err(invalid("after start, send ack or nack"))).await;
                            break;
                        }
                        Some(Err(_)) | None => break,
                    };
                    let (hub, who, topic, group) =
                        (hub.clone(), who.clone(), topic.clone(), group.clone());
                    settling.push(
                        async move {
                            let result = if op == "ack" {
                                hub.ack(&who, &topic, &group, &s.receipts).await
                            } else {
                                let delay = Duration::from_millis(u64::from(s.delay_ms));
                                hub.nack(&who, &topic, &group, &s.receipts, delay, s.error)
                                    .await
                            };
                            settled(op, result, &s.receipts)
                        }
                        .boxed(),
                    );
                }
                _ = tx.closed() => break,
            }
        }
    });
    Ok(out)
}

fn settled(
    op: &str,
    result: Result<Vec<herald_core::Settled>, HubError>,
    receipts: &[String],
) -> grpc::ConsumeEvent {
    let refusal = |receipt: String, e: &HubError| grpc::Refusal {
        receipt,
        code: e.code().as_str().to_owned(),
        detail: e.to_string(),
    };
    let (settled, refused) = match result {
        Ok(results) => {
            let mut n = 0;
            let mut refused = Vec::new();
            for r in results {
                match r.outcome {
                    Ok(()) => n += 1,
                    Err(e) => refused.push(refusal(r.receipt, &e)),
                }
            }
            (n, refused)
        }
        Err(e) => (0, receipts.iter().map(|r| refusal(r.clone(), &e)).collect()),
    };
    grpc::ConsumeEvent {
        event: Some(consume_event::Event::Settled(grpc::Settled {
            op: op.to_owned(),
            settled,
            refused,
        })),
    }
}

/// `Serve`: requests out, replies in; requests not answered when the stream ends go
/// back to their callers, who try another responder.
pub async fn serve(
    hub: Hub,
    who: Principal,
    mut inbound: Streaming<grpc::ServeRequest>,
) -> Result<EventStream<grpc::ServeEvent>, Status> {
    let first = inbound
        .message()
        .await?
        .and_then(|r| r.request)
        .ok_or_else(|| invalid("the first request of Serve must be start"))?;
    let serve_request::Request::Start(start) = first else {
        return Err(invalid("the first request of Serve must be start"));
    };
    let responder = hub.serve(&who, &start.service).map_err(status)?;
    Ok(ServeStream {
        responder,
        inbound,
        pending: HashMap::new(),
        done: false,
        lapse: who.lapse(),
    }
    .boxed())
}

/// The status a stream ends with when its token lapses.
fn lapsed(reason: CloseReason) -> Status {
    status_for(
        ErrorCode::Unauthorized,
        format!("{}: present a valid token", reason.as_str()),
    )
}

/// The responder's side of `Serve` as one stream: polling it takes replies from the
/// client and hands out requests, all in the task that writes the response, so a
/// request or a reply crosses no extra task on its way.
struct ServeStream {
    responder: herald_core::Responder,
    inbound: Streaming<grpc::ServeRequest>,
    pending: HashMap<u64, RpcRequest>,
    done: bool,
    /// Ends the stream when the responder's token lapses.
    lapse: Option<std::pin::Pin<Box<dyn Future<Output = CloseReason> + Send>>>,
}

impl futures_util::Stream for ServeStream {
    type Item = Result<grpc::ServeEvent, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(lapse) = this.lapse.as_mut()
            && let Poll::Ready(reason) = lapse.as_mut().poll(cx)
        {
            this.done = true;
            return Poll::Ready(Some(Err(lapsed(reason))));
        }
        // Replies first: they complete calls.
        loop {
            match this.inbound.poll_next_unpin(cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(grpc::ServeRequest {
                    request: Some(serve_request::Request::Reply(reply)),
                }))) => {
                    // A reply to a caller that timed out (or to an unknown id) has no
                    // one to go to.
                    if let Some(req) = this.pending.remove(&reply.request_id) {
                        req.reply(rpc_reply(reply));
                    }
                }
                Poll::Ready(Some(Ok(_))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(invalid("after start, send replies"))));
                }
                // The client went away: unanswered requests go back to their callers.
                Poll::Ready(Some(Err(_)) | None) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
            }
        }
        match this.responder.poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(req)) => {
                let ev = serve_event::Event::Request(grpc::Request {
                    request_id: req.id,
                    service: req.service.to_string(),
                    content_type: req.content_type.clone(),
                    data: req.data.clone(),
                });
                if this.pending.len() >= MAX_PENDING {
                    this.pending.retain(|_, r| !r.abandoned());
                }
                this.pending.insert(req.id, req);
                Poll::Ready(Some(Ok(grpc::ServeEvent { event: Some(ev) })))
            }
        }
    }
}

/// A responder's reply; a status outside 200–599 becomes a 502 for the caller.
fn rpc_reply(r: grpc::Reply) -> RpcReply {
    let status = if r.status == 0 { 200 } else { r.status };
    match u16::try_from(status) {
        Ok(s) if (200..=599).contains(&s) => RpcReply {
            status: s,
            content_type: if r.content_type.is_empty() {
                "application/octet-stream".to_owned()
            } else {
                r.content_type
            },
            data: r.data,
        },
        _ => RpcReply {
            status: 502,
            content_type: "text/plain".to_owned(),
            data: format!("the responder replied with an invalid status {status}").into(),
        },
    }
}
