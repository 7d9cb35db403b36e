//! Webhooks: subscribers that are URLs, and the dispatcher that also delivers job
//! callbacks.
//!
//! An endpoint follows a pattern from a durable cursor, one message at a time, in order.
//! Each message's envelope is POSTed with Standard Webhooks headers; failures retry on
//! the configured schedule (with jitter, honouring `Retry-After`); after the last attempt
//! the message is dead-lettered to `_herald.webhooks.{id}.dlq` and delivery moves on; a
//! 410 disables the endpoint. The endpoint's state (cursor, attempt, next attempt time)
//! is stored as a record with each step, so schedules survive restarts. Every attempt is
//! logged to `_herald.webhooks.{id}.log`.

mod deliver;
mod dispatch;
pub mod ssrf;

pub use deliver::{Attempt, new_secret, secret_key, signature};

use crate::config::WebhooksConfig;
use bytes::Bytes;
use deliver::Sender;
use herald_core::{
    Cursor, Filter, Hub, HubError, Pattern, Principal, Publish, Read, Record, Retention, Start,
    TopicName, clock::rfc3339_ms,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// An endpoint's configuration and delivery state, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub id: String,
    pub pattern: String,
    pub url: String,
    pub secret: String,
    pub max_attempts: u32,
    pub owner: String,
    pub created: String,
    /// Every message at or before this position is delivered or dead-lettered.
    pub cursor: u64,
    /// Failed attempts for the message after `cursor`.
    pub attempt: u32,
    /// When the next attempt may start (ms since the epoch; 0 = now).
    pub next_attempt_ms: u64,
    /// Why the endpoint is disabled, if it is.
    pub disabled: Option<String>,
    pub delivered: u64,
    pub dead_lettered: u64,
    pub last_error: Option<String>,
}

pub(crate) struct Endpoint {
    state: Mutex<EndpointRecord>,
    /// Wakes the dispatcher (replay, re-enable).
    wake: Notify,
    stop: CancellationToken,
}

impl Endpoint {
    fn state(&self) -> MutexGuard<'_, EndpointRecord> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A new endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    pub pattern: String,
    pub url: String,
    pub after: Option<String>,
    pub secret: Option<String>,
    pub max_attempts: Option<u32>,
}

/// The webhook service of one server.
pub struct Webhooks {
    hub: Hub,
    sender: Sender,
    schedule: Vec<Duration>,
    allow_private: bool,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    tracker: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

fn record_key(id: &str) -> String {
    format!("webhook/{id}")
}

fn log_topic(id: &str) -> Result<TopicName, HubError> {
    HubError::topic(&format!("_herald.webhooks.{id}.log"))
}

fn dlq_topic(id: &str) -> Result<TopicName, HubError> {
    HubError::topic(&format!("_herald.webhooks.{id}.dlq"))
}

impl Webhooks {
    /// Starts the service: loads endpoints, starts their dispatchers and the job-callback
    /// dispatcher. Tasks are tracked by `tracker` so shutdown can wait for them.
    pub fn start(
        hub: Hub,
        cfg: &WebhooksConfig,
        tracker: tokio_util::task::TaskTracker,
    ) -> Result<Arc<Webhooks>, HubError> {
        let schedule = cfg
            .schedule()
            .map_err(|e| HubError::InvalidParameter(e.to_string()))?;
        let sender = Sender::new(
            Duration::from_secs(cfg.timeout_seconds),
            cfg.allow_private_networks,
        )
        .map_err(|e| HubError::InvalidParameter(format!("cannot build the webhook client: {e}")))?;
        let w = Arc::new(Webhooks {
            hub,
            sender,
            schedule,
            allow_private: cfg.allow_private_networks,
            endpoints: Mutex::new(HashMap::new()),
            tracker,
        });
        for (key, value) in w.hub.records("webhook/")? {
            match serde_json::from_slice::<EndpointRecord>(&value) {
                Ok(rec) => w.launch(rec),
                Err(e) => tracing::warn!(key, error = %e, "skipping an unreadable webhook record"),
            }
        }
        w.tracker.spawn(dispatch::callbacks(w.clone()));
        Ok(w)
    }

    fn endpoints(&self) -> MutexGuard<'_, HashMap<String, Arc<Endpoint>>> {
        self.endpoints.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn launch(self: &Arc<Self>, rec: EndpointRecord) {
        let ep = Arc::new(Endpoint {
            state: Mutex::new(rec.clone()),
            wake: Notify::new(),
            stop: CancellationToken::new(),
        });
        self.endpoints().insert(rec.id.clone(), ep.clone());
        self.tracker.spawn(dispatch::endpoint(self.clone(), ep));
    }

    /// The number of attempts an endpoint gets by default.
    fn default_attempts(&self) -> u32 {
        self.schedule.len() as u32 + 1
    }

    /// The wait after failed attempt `n` (1-based), with up to 20% jitter; `Retry-After`
    /// wins when the receiver sent one.
    pub(crate) fn delay(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        let base = retry_after.unwrap_or_else(|| {
            let i = (n.max(1) - 1) as usize;
            self.schedule
                .get(i)
                .or(self.schedule.last())
                .copied()
                .unwrap_or(Duration::from_secs(5))
        });
        let jitter = base.mul_f64(rand::random::<f64>() * 0.2);
        (base + jitter).max(Duration::from_millis(100))
    }

    /// Checks that herald may call `url` (at registration: resolving names now).
    pub async fn check_destination(&self, url: &str) -> Result<(), HubError> {
        ssrf::resolve(url, self.allow_private)
            .await
            .map(|_| ())
            .map_err(|e| HubError::ForbiddenDestination(e.to_string()))
    }

    fn owned(&self, who: &Principal, id: &str) -> Result<Arc<Endpoint>, HubError> {
        let ep = self
            .endpoints()
            .get(id)
            .cloned()
            .ok_or_else(|| HubError::WebhookNotFound(id.chars().take(64).collect()))?;
        let owner = ep.state().owner.clone();
        if who.is_admin() || who.id() == owner {
            Ok(ep)
        } else {
            Err(who.refuse(format!("webhook {id} belongs to someone else")))
        }
    }

    /// Registers an endpoint. Answers its record (with the secret).
    pub async fn create(
        self: &Arc<Self>,
        who: &Principal,
        req: CreateWebhook,
    ) -> Result<EndpointRecord, HubError> {
        let pattern = HubError::pattern(&req.pattern)?;
        let filter = Filter::new(vec![pattern.clone()])?;
        if !who.may_subscribe(&filter) {
            return Err(who.refuse(format!(
                "may not subscribe to {pattern}, so may not hook it"
            )));
        }
        if req.url.len() > 2048 {
            return Err(HubError::InvalidParameter(
                "url is longer than 2048 characters".into(),
            ));
        }
        self.check_destination(&req.url).await?;
        let secret = match req.secret {
            Some(s) if secret_key(&s).is_some() => s,
            Some(_) => {
                return Err(HubError::InvalidParameter(
                    "secret must be whsec_ followed by base64 of 16 to 64 bytes".into(),
                ));
            }
            None => new_secret(),
        };
        let max_attempts = req.max_attempts.unwrap_or(self.default_attempts());
        if max_attempts == 0 || max_attempts > 100 {
            return Err(HubError::InvalidParameter(
                "max_attempts must be between 1 and 100".into(),
            ));
        }
        let cursor = self.position(&filter, req.after.as_deref().unwrap_or("latest"))?;
        let id = format!("wh{:016x}", rand::random::<u64>());
        let rec = EndpointRecord {
            id: id.clone(),
            pattern: pattern.to_string(),
            url: req.url,
            secret,
            max_attempts,
            owner: who.id().to_owned(),
            created: rfc3339_ms(self.hub.options().clock.now_ms()),
            cursor,
            attempt: 0,
            next_attempt_ms: 0,
            disabled: None,
            delivered: 0,
            dead_lettered: 0,
            last_error: None,
        };
        let system = Principal::system();
        self.hub
            .set_retention(
                &system,
                &log_topic(&id)?,
                Retention {
                    max_messages: Some(1000),
                    ..Retention::default()
                },
            )
            .await?;
        self.save(&rec, Vec::new()).await?;
        self.launch(rec.clone());
        Ok(rec)
    }

    /// A position for `after`: `earliest`, `latest` or a cursor of this log.
    fn position(&self, filter: &Filter, after: &str) -> Result<u64, HubError> {
        match Start::parse(after)? {
            Start::Latest => Ok(self.hub.latest().seq),
            Start::Earliest => Ok(self.hub.earliest(filter)?.seq),
            Start::After(c) if c.epoch == self.hub.epoch() && c.seq <= self.hub.latest().seq => {
                Ok(c.seq)
            }
            Start::After(c) => Err(HubError::InvalidCursor(herald_core::CursorError(format!(
                "{c} is not a position of this log"
            )))),
        }
    }

    /// Writes an endpoint's record (with messages, atomically).
    pub(crate) async fn save(
        &self,
        rec: &EndpointRecord,
        msgs: Vec<Publish>,
    ) -> Result<(), HubError> {
        let value = serde_json::to_vec(rec).map_err(|e| HubError::InvalidBody(e.to_string()))?;
        let record = Record {
            key: record_key(&rec.id),
            value: Some(Bytes::from(value)),
        };
        self.hub
            .commit(&Principal::system(), msgs, vec![record])
            .await
            .map(|_| ())
    }

    /// Every endpoint the caller may see (secrets left out).
    pub fn list(&self, who: &Principal) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .endpoints()
            .values()
            .map(|ep| ep.state().clone())
            .filter(|r| who.is_admin() || who.id() == r.owner)
            .map(|r| self.view(&r, false))
            .collect();
        out.sort_by(|a, b| a["created"].as_str().cmp(&b["created"].as_str()));
        out
    }

    /// One endpoint (secret left out).
    pub fn get(&self, who: &Principal, id: &str) -> Result<Value, HubError> {
        let ep = self.owned(who, id)?;
        let rec = ep.state().clone();
        Ok(self.view(&rec, false))
    }

    pub(crate) fn view(&self, r: &EndpointRecord, with_secret: bool) -> Value {
        let mut v = json!({
            "id": r.id,
            "pattern": r.pattern,
            "url": r.url,
            "max_attempts": r.max_attempts,
            "created": r.created,
            "cursor": Cursor::new(self.hub.epoch(), r.cursor).to_string(),
            "attempt": r.attempt,
            "next_attempt": (r.next_attempt_ms > 0).then(|| rfc3339_ms(r.next_attempt_ms)),
            "disabled": r.disabled,
            "delivered": r.delivered,
            "dead_lettered": r.dead_lettered,
            "last_error": r.last_error,
        });
        if with_secret {
            v["secret"] = Value::String(r.secret.clone());
        }
        v
    }

    /// Removes an endpoint; its dispatcher stops.
    pub async fn delete(&self, who: &Principal, id: &str) -> Result<(), HubError> {
        let ep = self.owned(who, id)?;
        ep.stop.cancel();
        self.endpoints().remove(id);
        let record = Record {
            key: record_key(id),
            value: None,
        };
        self.hub
            .commit(&Principal::system(), Vec::new(), vec![record])
            .await
            .map(|_| ())
    }

    /// Redelivers from `after` (and re-enables a disabled endpoint).
    pub async fn replay(&self, who: &Principal, id: &str, after: &str) -> Result<Value, HubError> {
        let ep = self.owned(who, id)?;
        let filter = Filter::new(vec![Pattern::parse(&ep.state().pattern).map_err(
            |reason| HubError::InvalidPattern {
                pattern: String::new(),
                reason,
            },
        )?])?;
        let cursor = self.position(&filter, after)?;
        let rec = {
            let mut s = ep.state();
            s.cursor = cursor;
            s.attempt = 0;
            s.next_attempt_ms = 0;
            s.disabled = None;
            s.clone()
        };
        self.save(&rec, Vec::new()).await?;
        ep.wake.notify_waiters();
        Ok(self.view(&rec, false))
    }

    /// The latest delivery attempts, newest first.
    pub async fn deliveries(
        &self,
        who: &Principal,
        id: &str,
        limit: usize,
    ) -> Result<Vec<Value>, HubError> {
        self.owned(who, id)?;
        let r = self
            .hub
            .read(
                &Principal::system(),
                Read {
                    filter: Filter::topic(&log_topic(id)?),
                    start: Start::Earliest,
                    limit: herald_core::MAX_READ_LIMIT,
                    wait: Duration::ZERO,
                },
            )
            .await?;
        Ok(r.messages
            .iter()
            .rev()
            .take(limit)
            .filter_map(|m| serde_json::from_slice(&m.data).ok())
            .collect())
    }

    /// Sends a test event now (not from the log) and answers what happened.
    pub async fn test(&self, who: &Principal, id: &str) -> Result<Value, HubError> {
        let ep = self.owned(who, id)?;
        let (url, secret) = {
            let s = ep.state();
            (s.url.clone(), s.secret.clone())
        };
        let key = secret_key(&secret).unwrap_or_default();
        let msg_id = format!("test_{:016x}", rand::random::<u64>());
        let body = json!({"type": "herald.test", "webhook": id, "time": rfc3339_ms(self.hub.options().clock.now_ms())});
        let a = self
            .sender
            .send(&url, &key, &msg_id, Bytes::from(body.to_string()))
            .await;
        let entry = log_entry(
            &msg_id,
            1,
            &a,
            if a.delivered() { "delivered" } else { "failed" },
            &self.hub,
        );
        self.hub
            .commit(
                &Principal::system(),
                vec![log_publish(id, &entry)?],
                Vec::new(),
            )
            .await?;
        Ok(entry)
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    pub(crate) fn sender(&self) -> &Sender {
        &self.sender
    }
}

/// One attempt as logged and answered.
pub(crate) fn log_entry(
    message_id: &str,
    attempt: u32,
    a: &Attempt,
    outcome: &str,
    hub: &Hub,
) -> Value {
    json!({
        "message_id": message_id,
        "attempt": attempt,
        "status": a.status,
        "latency_ms": (a.latency.as_secs_f64() * 1e6).round() / 1e3,
        "error": a.error,
        "outcome": outcome,
        "time": rfc3339_ms(hub.options().clock.now_ms()),
    })
}

pub(crate) fn log_publish(id: &str, entry: &Value) -> Result<Publish, HubError> {
    Ok(Publish::new(
        log_topic(id)?,
        "application/json",
        entry.to_string(),
    ))
}

pub(crate) fn dlq(id: &str) -> Result<TopicName, HubError> {
    dlq_topic(id)
}
