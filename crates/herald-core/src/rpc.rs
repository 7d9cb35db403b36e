//! Request-reply: responders serve a service; a call goes to one of them, round-robin,
//! and waits for its reply. Requests live in memory only (like NATS request-reply): a
//! call either gets a reply, or a clear error — `no_responder`, `timeout`, or
//! `responder_gone` when every responder tried went away before replying. A responder
//! that disappears with requests in hand drops them, and their callers retry on another.
//!
//! Calls need publish permission on `rpc.{service}`; serving needs subscribe permission
//! on it.

use crate::error::HubError;
use crate::hub::Hub;
use crate::principal::Principal;
use crate::topic::{Filter, TopicName};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Requests queued for one responder before calls pick another (or wait).
const RESPONDER_QUEUE: usize = 256;
/// Responders tried by one call before it fails with `responder_gone`.
const MAX_TRIES: usize = 3;

/// A request handed to a responder. Reply with [`RpcRequest::reply`]; dropping it
/// unanswered makes the caller try another responder.
#[derive(Debug)]
pub struct RpcRequest {
    /// Unique in this process.
    pub id: u64,
    /// The service called.
    pub service: Arc<str>,
    /// The request's content type.
    pub content_type: String,
    /// The request body.
    pub data: Bytes,
    reply: oneshot::Sender<RpcReply>,
}

impl RpcRequest {
    /// Answers the caller; false when the caller no longer waits (it timed out).
    pub fn reply(self, reply: RpcReply) -> bool {
        self.reply.send(reply).is_ok()
    }

    /// True when the caller stopped waiting (a reply would be discarded).
    pub fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }
}

/// A responder's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcReply {
    /// HTTP semantics: 200 unless the responder says otherwise.
    pub status: u16,
    /// The reply's content type.
    pub content_type: String,
    /// The reply body.
    pub data: Bytes,
}

/// One serving member.
#[derive(Debug)]
struct Slot {
    id: u64,
    tx: mpsc::Sender<RpcRequest>,
}

#[derive(Debug, Default)]
struct Service {
    slots: Vec<Slot>,
    next: usize,
}

/// Every service's responders.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    services: Mutex<HashMap<Arc<str>, Service>>,
    next_id: AtomicU64,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Service>> {
        self.services.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The responders of `service` in the order this call should try them (round-robin
    /// start), skipping `tried`.
    fn pick(&self, service: &str, tried: &[u64]) -> Vec<(u64, mpsc::Sender<RpcRequest>)> {
        let mut map = self.lock();
        let Some(s) = map.get_mut(service) else {
            return Vec::new();
        };
        let n = s.slots.len();
        let start = s.next % n.max(1);
        s.next = s.next.wrapping_add(1);
        (0..n)
            .map(|k| &s.slots[(start + k) % n])
            .filter(|slot| !tried.contains(&slot.id))
            .map(|slot| (slot.id, slot.tx.clone()))
            .collect()
    }

    fn remove(&self, service: &str, id: u64) {
        let mut map = self.lock();
        if let Some(s) = map.get_mut(service) {
            s.slots.retain(|slot| slot.id != id);
            if s.slots.is_empty() {
                map.remove(service);
            }
        }
    }

    /// How many responders serve `service`.
    pub(crate) fn responders(&self, service: &str) -> usize {
        self.lock().get(service).map_or(0, |s| s.slots.len())
    }
}

/// A serving member: a stream of requests. Dropping it stops serving; requests it held
/// and had not answered are retried by their callers on other responders.
#[derive(Debug)]
pub struct Responder {
    service: Arc<str>,
    id: u64,
    rx: mpsc::Receiver<RpcRequest>,
    registry: Weak<Registry>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Responder {
    /// The service served.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The next request; `None` once the server shuts down.
    pub async fn next(&mut self) -> Option<RpcRequest> {
        tokio::select! {
            r = self.rx.recv() => r,
            _ = self.shutdown.cancelled() => None,
        }
    }

    /// Polls for the next request (for connections that multiplex several feeds).
    pub fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<RpcRequest>> {
        if self.shutdown.is_cancelled() {
            return std::task::Poll::Ready(None);
        }
        self.rx.poll_recv(cx)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(r) = self.registry.upgrade() {
            r.remove(&self.service, self.id);
        }
    }
}

/// A call to make.
#[derive(Debug, Clone)]
pub struct Call {
    /// The service (`rpc.{service}` must be a valid topic name).
    pub service: String,
    /// The request's content type.
    pub content_type: String,
    /// The request body.
    pub data: Bytes,
    /// How long to wait for the reply.
    pub timeout: Duration,
}

/// The topic whose permissions govern `service`.
fn service_topic(service: &str) -> Result<TopicName, HubError> {
    TopicName::parse(&format!("rpc.{service}")).map_err(|reason| {
        HubError::InvalidParameter(format!(
            "invalid service name {:?}: {reason} (rpc.{{service}} must be a valid topic name)",
            service.chars().take(128).collect::<String>()
        ))
    })
}

impl Hub {
    /// Starts serving `service`.
    pub fn serve(&self, who: &Principal, service: &str) -> Result<Responder, HubError> {
        if self.is_shutting_down() {
            return Err(HubError::ShuttingDown);
        }
        let topic = service_topic(service)?;
        if !who.may_subscribe(&Filter::topic(&topic)) {
            return Err(who.refuse(format!("may not serve {service}")));
        }
        let registry = self.rpc_registry();
        let (tx, rx) = mpsc::channel(RESPONDER_QUEUE);
        let id = registry.id();
        let service: Arc<str> = Arc::from(service);
        registry
            .lock()
            .entry(service.clone())
            .or_default()
            .slots
            .push(Slot { id, tx });
        Ok(Responder {
            service,
            id,
            rx,
            registry: Arc::downgrade(registry),
            shutdown: self.shutdown_token(),
        })
    }

    /// Calls `service` and waits for the reply.
    pub async fn call(&self, who: &Principal, call: Call) -> Result<RpcReply, HubError> {
        if self.is_shutting_down() {
            return Err(HubError::ShuttingDown);
        }
        let topic = service_topic(&call.service)?;
        if !who.may_publish(&topic) {
            return Err(who.refuse(format!("may not call {}", call.service)));
        }
        let max = self.options().max_payload_bytes;
        if call.data.len() > max {
            return Err(HubError::PayloadTooLarge {
                size: call.data.len(),
                max,
            });
        }
        let registry = self.rpc_registry();
        let service: Arc<str> = Arc::from(call.service.as_str());
        let deadline = tokio::time::Instant::now() + call.timeout;
        let timeout = || HubError::Timeout {
            service: call.service.clone(),
            ms: call.timeout.as_millis() as u64,
        };
        let mut tried: Vec<u64> = Vec::new();
        while tried.len() < MAX_TRIES {
            let candidates = registry.pick(&service, &tried);
            let Some(&(first_id, _)) = candidates.first() else {
                break;
            };
            let (reply_tx, reply_rx) = oneshot::channel();
            let request = RpcRequest {
                id: registry.id(),
                service: service.clone(),
                content_type: call.content_type.clone(),
                data: call.data.clone(),
                reply: reply_tx,
            };
            // The first responder with room takes it; when all are busy, wait for the
            // round-robin choice.
            let mut unsent = Some(request);
            let mut sent = None;
            for (id, tx) in &candidates {
                let Some(r) = unsent.take() else { break };
                match tx.try_send(r) {
                    Ok(()) => {
                        sent = Some(*id);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Full(r)) => unsent = Some(r),
                    Err(mpsc::error::TrySendError::Closed(r)) => {
                        tried.push(*id);
                        unsent = Some(r);
                    }
                }
            }
            let sent = match (sent, unsent) {
                (Some(id), _) => id,
                (None, None) => continue,
                (None, Some(request)) => {
                    let tx = &candidates[0].1;
                    match tokio::time::timeout_at(deadline, tx.send(request)).await {
                        Err(_) => return Err(timeout()),
                        Ok(Err(_)) => {
                            tried.push(first_id);
                            continue;
                        }
                        Ok(Ok(())) => first_id,
                    }
                }
            };
            match tokio::time::timeout_at(deadline, reply_rx).await {
                Ok(Ok(reply)) => return Ok(reply),
                // The responder dropped the request: it went away.
                Ok(Err(_)) => tried.push(sent),
                Err(_) => return Err(timeout()),
            }
        }
        if tried.is_empty() {
            Err(HubError::NoResponder(call.service))
        } else {
            Err(HubError::ResponderGone(call.service))
        }
    }

    /// The timeout of a call: the default when none is asked for; refused when it is
    /// not positive or above the maximum.
    pub fn rpc_timeout(&self, secs: Option<f64>) -> Result<Duration, HubError> {
        let (default, max) = (
            self.options().rpc_default_timeout,
            self.options().rpc_max_timeout,
        );
        match secs {
            None => Ok(default),
            Some(s) if s.is_finite() && s > 0.0 && s <= max.as_secs_f64() => {
                Ok(Duration::from_secs_f64(s))
            }
            Some(s) => Err(HubError::InvalidParameter(format!(
                "timeout must be more than 0 and at most {} seconds; got {s}",
                max.as_secs_f64()
            ))),
        }
    }

    /// How many responders serve `service` now.
    pub fn responders(&self, service: &str) -> usize {
        self.rpc_registry().responders(service)
    }
}
