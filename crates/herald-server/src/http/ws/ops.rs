//! Client frames: each decoded into one hub call whose answer becomes a server frame.

use super::conn::{Conn, Feed, Mode, Ops};
use axum::extract::ws::Message as WsMessage;
use futures_util::FutureExt;
use herald_core::{
    Call, Filter, HubError, Publish, RpcReply, Start, TopicName, payload_from_json, payload_to_json,
};
use herald_proto::ErrorCode;
use herald_proto::ws::{ClientFrame, Refused, ServerFrame};
use serde_json::Value;
use std::time::Duration;

pub(super) fn error(reference: Option<Value>, code: ErrorCode, message: String) -> ServerFrame {
    crate::metrics::refused(code, "ws");
    ServerFrame::Error {
        reference,
        code,
        message,
    }
}

pub(super) fn hub_error(reference: Option<Value>, e: HubError) -> ServerFrame {
    error(reference, e.code(), e.to_string())
}

impl Conn {
    /// Handles one client frame: immediate answers go to `out`, slower ones to `ops`.
    pub(super) fn handle(&mut self, msg: &WsMessage, out: &mut Vec<WsMessage>, ops: &mut Ops) {
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
        // Frames that start work count against the rate limits like HTTP requests;
        // settling and replying to work already given do not.
        let counted = match &frame {
            ClientFrame::Publish { reference, .. }
            | ClientFrame::Subscribe { reference, .. }
            | ClientFrame::Consume { reference, .. }
            | ClientFrame::Serve { reference, .. }
            | ClientFrame::Call { reference, .. } => Some(reference),
            _ => None,
        };
        if let Some(reference) = counted
            && let Err(e) = self.st.rate_limits.check(&self.caller, self.ip)
        {
            out.push(self.codec.frame(&hub_error(reference.clone(), e)));
            return;
        }
        let answer = match frame {
            ClientFrame::Ping { reference } => ServerFrame::Pong { reference },
            ClientFrame::Subscribe {
                reference,
                topic,
                after,
            } => self.subscribe(reference, topic.to_vec(), after),
            ClientFrame::Unsubscribe { reference, sub } => self.unsubscribe(reference, sub),
            ClientFrame::Consume {
                reference,
                topic,
                group,
                prefetch,
            } => self.consume(reference, &topic, &group, prefetch.unwrap_or(10)),
            ClientFrame::Ack {
                reference,
                receipts,
            } => {
                self.settle(reference, receipts, ops, None);
                return;
            }
            ClientFrame::Nack {
                reference,
                receipts,
                delay,
                error,
            } => {
                let delay = delay
                    .filter(|d| d.is_finite() && *d >= 0.0)
                    .unwrap_or(0.0)
                    .min(43_200.0);
                self.settle(
                    reference,
                    receipts,
                    ops,
                    Some((Duration::from_secs_f64(delay), error)),
                );
                return;
            }
            ClientFrame::Serve { reference, service } => self.serve_rpc(reference, &service),
            ClientFrame::Reply {
                request_id,
                status,
                data,
                content_type,
                encoding,
            } => match self.reply(request_id, status, &data, content_type, encoding) {
                Ok(()) => return,
                Err(e) => *e,
            },
            ClientFrame::Call {
                reference,
                service,
                data,
                content_type,
                encoding,
                timeout,
            } => {
                let call = self.st.hub.rpc_timeout(timeout).and_then(|timeout| {
                    let (content_type, data) =
                        payload_from_json(&data.to_string(), content_type, encoding.as_deref())?;
                    Ok(Call {
                        service,
                        content_type,
                        data,
                        timeout,
                    })
                });
                match call {
                    Err(e) => hub_error(reference, e),
                    Ok(call) => {
                        let hub = self.st.hub.clone();
                        let caller = self.caller.clone();
                        ops.push(
                            async move {
                                Some(match hub.call(&caller, call).await {
                                    Ok(r) => {
                                        let (data, encoding) =
                                            payload_to_json(&r.content_type, &r.data);
                                        ServerFrame::Reply {
                                            reference,
                                            status: r.status,
                                            content_type: r.content_type,
                                            data: serde_json::from_str(&data).unwrap_or_default(),
                                            encoding: encoding.map(str::to_owned),
                                        }
                                    }
                                    Err(e) => hub_error(reference, e),
                                })
                            }
                            .boxed(),
                        );
                        return;
                    }
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
                                Some(match hub.publish(&caller, p).await {
                                    Ok(p) => ServerFrame::Published {
                                        reference,
                                        id: p.id.to_string(),
                                        topic: p.topic.to_string(),
                                        time: herald_core::clock::rfc3339_ms(p.time_ms),
                                    },
                                    Err(e) => hub_error(reference, e),
                                })
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

    fn room(&self, reference: &Option<Value>) -> Result<(), Box<ServerFrame>> {
        let max = self.st.config.websocket.max_subscriptions;
        if self.feeds.len() >= max {
            return Err(Box::new(error(
                reference.clone(),
                ErrorCode::LimitReached,
                format!("at most {max} subscriptions, consumers and responders per connection"),
            )));
        }
        Ok(())
    }

    fn subscribe(
        &mut self,
        reference: Option<Value>,
        topics: Vec<String>,
        after: Option<String>,
    ) -> ServerFrame {
        if let Err(e) = self.room(&reference) {
            return *e;
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
                ServerFrame::Subscribed {
                    reference,
                    sub: self.add(Feed::Sub(sub)),
                    cursor,
                }
            }
            Err(e) => hub_error(reference, e),
        }
    }

    fn unsubscribe(&mut self, reference: Option<Value>, sub: String) -> ServerFrame {
        match self.feeds.iter().position(|(id, _)| *id == sub) {
            Some(i) => {
                let (sub, feed) = self.feeds.remove(i);
                let cursor = match feed {
                    Feed::Sub(s) => s.cursor().to_string(),
                    Feed::Consumer(_) | Feed::Responder(_) => String::new(),
                };
                // Unanswered requests of a stopped responder go back to their callers.
                self.pending.retain(|_, (owner, _)| *owner != sub);
                ServerFrame::Unsubscribed {
                    reference,
                    sub,
                    cursor,
                }
            }
            None => error(
                reference,
                ErrorCode::NotFound,
                format!("no subscription {sub:?} on this connection"),
            ),
        }
    }

    fn serve_rpc(&mut self, reference: Option<Value>, service: &str) -> ServerFrame {
        if let Err(e) = self.room(&reference) {
            return *e;
        }
        match self.st.hub.serve(&self.caller, service) {
            Ok(r) => ServerFrame::Serving {
                reference,
                sub: self.add(Feed::Responder(r)),
            },
            Err(e) => hub_error(reference, e),
        }
    }

    /// Answers a request given to one of this connection's responders.
    fn reply(
        &mut self,
        request_id: u64,
        status: Option<u16>,
        data: &Value,
        content_type: Option<String>,
        encoding: Option<String>,
    ) -> Result<(), Box<ServerFrame>> {
        let status = status.unwrap_or(200);
        if !(200..=599).contains(&status) {
            return Err(Box::new(error(
                None,
                ErrorCode::InvalidFrame,
                format!("reply status must be between 200 and 599; got {status}"),
            )));
        }
        let (content_type, data) =
            payload_from_json(&data.to_string(), content_type, encoding.as_deref())
                .map_err(|e| Box::new(hub_error(None, e)))?;
        let Some((_, req)) = self.pending.remove(&request_id) else {
            return Err(Box::new(error(
                None,
                ErrorCode::NotFound,
                format!("no request {request_id} is waiting for a reply on this connection"),
            )));
        };
        // A caller that timed out no longer listens; nothing to tell the responder.
        req.reply(RpcReply {
            status,
            content_type,
            data,
        });
        Ok(())
    }

    fn consume(
        &mut self,
        reference: Option<Value>,
        topic: &str,
        group: &str,
        prefetch: usize,
    ) -> ServerFrame {
        if let Err(e) = self.room(&reference) {
            return *e;
        }
        let consumer = HubError::topic(topic)
            .and_then(|t| self.st.hub.consume(&self.caller, &t, group, prefetch));
        match consumer {
            Ok(c) => ServerFrame::Consuming {
                reference,
                sub: self.add(Feed::Consumer(c)),
            },
            Err(e) => hub_error(reference, e),
        }
    }

    /// Acks (or nacks, with `nack`) receipts of this connection's consumers; each receipt
    /// is `<sub>:<group receipt>`. With a `ref` the answer is one `acked`/`nacked` frame;
    /// without one only refusals come back (as an error frame).
    fn settle(
        &mut self,
        reference: Option<Value>,
        receipts: Vec<String>,
        ops: &mut Ops,
        nack: Option<(Duration, Option<String>)>,
    ) {
        let mut by_group: Vec<(TopicName, String, Vec<String>)> = Vec::new();
        let mut refused = Vec::new();
        for r in receipts.into_iter().take(1000) {
            let target = r.split_once(':').and_then(|(sub, inner)| {
                self.feeds.iter().find_map(|(id, f)| match f {
                    Feed::Consumer(c) if id == sub => {
                        Some((c.topic().clone(), c.group().to_owned(), inner.to_owned()))
                    }
                    _ => None,
                })
            });
            match target {
                Some((t, g, inner)) => {
                    match by_group.iter_mut().find(|(bt, bg, _)| *bt == t && *bg == g) {
                        Some(entry) => entry.2.push(inner),
                        None => by_group.push((t, g, vec![inner])),
                    }
                }
                None => refused.push(Refused {
                    receipt: r,
                    code: ErrorCode::UnknownReceipt,
                    message: "not a delivery of a consumer on this connection".into(),
                }),
            }
        }
        let hub = self.st.hub.clone();
        let caller = self.caller.clone();
        ops.push(
            async move {
                let mut settled = 0;
                for (topic, group, inner) in by_group {
                    let result = match &nack {
                        None => hub.ack(&caller, &topic, &group, &inner).await,
                        Some((delay, err)) => {
                            hub.nack(&caller, &topic, &group, &inner, *delay, err.clone())
                                .await
                        }
                    };
                    match result {
                        Ok(results) => {
                            for s in results {
                                match s.outcome {
                                    Ok(()) => settled += 1,
                                    Err(e) => refused.push(Refused {
                                        receipt: s.receipt,
                                        code: e.code(),
                                        message: e.to_string(),
                                    }),
                                }
                            }
                        }
                        Err(e) => refused.extend(inner.into_iter().map(|r| Refused {
                            receipt: r,
                            code: e.code(),
                            message: e.to_string(),
                        })),
                    }
                }
                if reference.is_none() {
                    let first = refused.first()?;
                    return Some(error(
                        None,
                        first.code,
                        format!(
                            "{} receipt(s) refused; first {}: {}",
                            refused.len(),
                            first.receipt,
                            first.message
                        ),
                    ));
                }
                Some(match nack {
                    None => ServerFrame::Acked {
                        reference,
                        settled,
                        refused,
                    },
                    Some(_) => ServerFrame::Nacked {
                        reference,
                        settled,
                        refused,
                    },
                })
            }
            .boxed(),
        );
    }
}
