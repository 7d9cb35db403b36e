//! The hub: the one core every door calls.

use crate::clock::{Clock, SystemClock};
use crate::cursor::{Cursor, Epoch, Start};
use crate::error::HubError;
use crate::fanout::{Fanout, Waiter};
use crate::groups::Groups;
use crate::jobs::{JobLocks, JobObserver};
use crate::message::{Message, is_json_type};
use crate::principal::Principal;
use crate::store::{Append, Appended, LogStore, Retention, StoreContext, StoreError, TopicInfo};
use crate::subscription::{Subscription, SubscriptionOptions};
use crate::topic::{Filter, TopicName};
use bytes::Bytes;
use herald_proto::ResetReason;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Key prefixes of records outside the core (the core owns `group/` and `meta/`).
const RECORD_PREFIXES: [&str; 1] = ["webhook/"];

/// Event names herald's SSE door uses for its own signals; messages may not use them.
pub const RESERVED_EVENTS: [&str; 4] = ["open", "reset", "error", "close"];

/// Most messages one read returns.
pub const MAX_READ_LIMIT: usize = 1000;
/// Messages a read returns when no limit is given.
pub const DEFAULT_READ_LIMIT: usize = 100;

/// Hub settings.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Largest payload accepted, in bytes.
    pub max_payload_bytes: usize,
    /// Most items in one batch publish.
    pub max_batch_items: usize,
    /// Longest long poll.
    pub max_wait: Duration,
    /// How long idempotency keys are remembered.
    pub dedup_window: Duration,
    /// Retention of topics without their own.
    pub default_retention: Retention,
    /// How often retention and key expiry run in the background.
    pub maintenance_interval: Duration,
    /// Wall-clock source.
    pub clock: Arc<dyn Clock>,
    /// Live subscription settings.
    pub subscriptions: SubscriptionOptions,
    /// How long an RPC call waits for its reply unless it asks otherwise.
    pub rpc_default_timeout: Duration,
    /// The longest timeout an RPC call may ask for.
    pub rpc_max_timeout: Duration,
    /// Most long polls parked at once.
    pub max_long_polls: usize,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            max_payload_bytes: 1024 * 1024,
            max_batch_items: 1000,
            max_wait: Duration::from_secs(60),
            dedup_window: Duration::from_secs(120),
            default_retention: Retention::default(),
            maintenance_interval: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
            subscriptions: SubscriptionOptions::default(),
            rpc_default_timeout: Duration::from_secs(5),
            rpc_max_timeout: Duration::from_secs(60),
            max_long_polls: 100_000,
        }
    }
}

/// A message to publish.
#[derive(Debug, Clone, Default)]
pub struct Publish {
    /// Target topic.
    pub topic: Option<TopicName>,
    /// Optional event type.
    pub event: Option<String>,
    /// Content type; `application/octet-stream` when absent.
    pub content_type: Option<String>,
    /// Optional headers.
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub data: Bytes,
    /// Deduplication key, scoped to the topic.
    pub idempotency_key: Option<String>,
}

impl Publish {
    /// A publish of `data` with `content_type` to `topic`.
    pub fn new(topic: TopicName, content_type: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Publish {
            topic: Some(topic),
            content_type: Some(content_type.into()),
            data: data.into(),
            ..Publish::default()
        }
    }
}

/// A successful publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The message's cursor.
    pub id: Cursor,
    /// Its topic.
    pub topic: TopicName,
    /// Its commit time (ms since the Unix epoch).
    pub time_ms: u64,
    /// True when the idempotency key matched an earlier message, whose id this is.
    pub duplicate: bool,
}

/// A read request: short poll when `wait` is zero, long poll otherwise.
#[derive(Debug, Clone)]
pub struct Read {
    /// What to read.
    pub filter: Filter,
    /// Where to start.
    pub start: Start,
    /// Most messages to return (1..=1000).
    pub limit: usize,
    /// How long to wait for the first message.
    pub wait: Duration,
}

/// The in-band gap signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetInfo {
    /// Why the cursor was unknown.
    pub reason: ResetReason,
    /// The position just before the oldest retained matching message.
    pub earliest: Cursor,
    /// The newest position in the log.
    pub latest: Cursor,
}

/// What a read returns.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Messages, oldest first.
    pub messages: Vec<Arc<Message>>,
    /// Where the next read should start.
    pub next: Cursor,
    /// Present when the requested cursor was unknown.
    pub reset: Option<ResetInfo>,
}

/// Where a reader begins.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resolved {
    /// After this position; `check`: removed messages after it must be signalled.
    At { after: u64, check: bool },
    /// The cursor is unknown.
    Reset(ResetReason),
}

/// One parked long poll, counted against `max_long_polls` while it lives.
struct Parked(Arc<std::sync::atomic::AtomicUsize>);

impl Parked {
    fn take(count: &Arc<std::sync::atomic::AtomicUsize>, max: usize) -> Result<Parked, HubError> {
        use std::sync::atomic::Ordering;
        if count.fetch_add(1, Ordering::AcqRel) >= max {
            count.fetch_sub(1, Ordering::AcqRel);
            return Err(HubError::LimitReached(format!(
                "{max} long polls are parked already; retry shortly, or subscribe over SSE, \
                 WebSocket or gRPC"
            )));
        }
        Ok(Parked(count.clone()))
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Live listeners and their buffered messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveStats {
    /// Subscriptions and parked long polls on user topics (the server's own waits on
    /// internal `_` topics are not counted).
    pub listeners: usize,
    /// Messages buffered for delivery across all subscriptions.
    pub queued_messages: usize,
    /// Payload bytes of those messages.
    pub queued_bytes: usize,
}

/// A topic's statistics.
#[derive(Debug, Clone)]
pub struct TopicStats {
    /// Stored statistics.
    pub info: TopicInfo,
    /// Live subscribers whose filter matches the topic.
    pub subscribers: u64,
    /// Consumer groups on the topic.
    pub groups: u64,
}

/// The core: publish, read, subscribe. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn LogStore>,
    fanout: Arc<Fanout>,
    groups: Groups,
    job_locks: JobLocks,
    rpc: Arc<crate::rpc::Registry>,
    callback_key: tokio::sync::OnceCell<bytes::Bytes>,
    opts: HubOptions,
    shutdown: CancellationToken,
    /// Long polls parked now.
    parked: Arc<std::sync::atomic::AtomicUsize>,
}

impl Hub {
    /// Opens a hub over the store that `open` builds from the given context. Must be
    /// called inside a Tokio runtime (it starts the background maintenance task).
    pub fn open<E>(
        opts: HubOptions,
        open: impl FnOnce(StoreContext) -> Result<Arc<dyn LogStore>, E>,
    ) -> Result<Hub, E> {
        let fanout = Arc::new(Fanout::default());
        let ctx = StoreContext {
            sink: fanout.clone(),
            clock: opts.clock.clone(),
            dedup_window: opts.dedup_window,
            default_retention: opts.default_retention,
        };
        let store = open(ctx)?;
        let hub = Hub {
            inner: Arc::new(Inner {
                store,
                fanout,
                groups: Groups::default(),
                job_locks: JobLocks::default(),
                rpc: Arc::default(),
                callback_key: tokio::sync::OnceCell::new(),
                opts,
                shutdown: CancellationToken::new(),
                parked: Arc::default(),
            }),
        };
        hub.groups().add_observer(Arc::new(JobObserver));
        if let Err(e) = hub.groups().load(&hub) {
            tracing::error!(error = %e, "cannot load consumer groups");
        }
        hub.spawn_maintenance();
        hub.spawn_reaper();
        Ok(hub)
    }

    fn spawn_reaper(&self) {
        let weak = Arc::downgrade(&self.inner);
        let stop = self.inner.shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                Hub { inner }.reap_groups();
            }
        });
    }

    pub(crate) fn groups(&self) -> &Groups {
        &self.inner.groups
    }

    pub(crate) fn fanout(&self) -> &Arc<Fanout> {
        &self.inner.fanout
    }

    pub(crate) fn rpc_registry(&self) -> &Arc<crate::rpc::Registry> {
        &self.inner.rpc
    }

    pub(crate) fn job_locks(&self) -> &JobLocks {
        &self.inner.job_locks
    }

    pub(crate) fn callback_key_cell(&self) -> &tokio::sync::OnceCell<bytes::Bytes> {
        &self.inner.callback_key
    }

    fn spawn_maintenance(&self) {
        let weak = Arc::downgrade(&self.inner);
        let every = self.inner.opts.maintenance_interval;
        let stop = self.inner.shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                let store = inner.store.clone();
                drop(inner);
                if let Err(e) = store.maintain().await {
                    tracing::warn!(error = %e, "retention maintenance failed");
                }
            }
        });
    }

    /// The log's epoch.
    pub fn epoch(&self) -> Epoch {
        self.inner.store.epoch()
    }

    /// The settings.
    pub fn options(&self) -> &HubOptions {
        &self.inner.opts
    }

    /// The `earliest` position of `filter`: from here on nothing matching was removed.
    pub fn earliest(&self, filter: &Filter) -> Result<Cursor, HubError> {
        Ok(Cursor::new(self.epoch(), self.inner.store.trimmed(filter)?))
    }

    /// The newest position in the log.
    pub fn latest(&self) -> Cursor {
        Cursor::new(self.epoch(), self.inner.store.tail())
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// A token cancelled when shutdown begins.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Begins shutdown: parked long polls are answered at once, live subscriptions end
    /// with their cursor, new work is refused.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.fanout.close_all();
    }

    pub(crate) fn store(&self) -> &Arc<dyn LogStore> {
        &self.inner.store
    }

    /// Live listeners (subscriptions and parked long polls) and what they hold in memory.
    pub fn live_stats(&self) -> LiveStats {
        let (listeners, queued_messages, queued_bytes) = self.inner.fanout.totals();
        LiveStats {
            listeners,
            queued_messages,
            queued_bytes,
        }
    }

    /// Follows `filter` from `start`: catch-up from storage, then live. See
    /// [`Subscription`].
    pub fn subscribe(
        &self,
        who: &Principal,
        filter: Filter,
        start: Start,
    ) -> Result<Subscription, HubError> {
        if self.is_shutting_down() {
            return Err(HubError::ShuttingDown);
        }
        self.check_subscribe(who, &filter)?;
        let opts = self.inner.opts.subscriptions.clone();
        let queue = Subscription::queue(&opts);
        let registration = self.inner.fanout.register(&filter, queue.clone());
        if self.is_shutting_down() {
            crate::fanout::Listener::close(&*queue);
        }
        Subscription::start(self.clone(), filter, start, queue, registration, opts, who)
    }

    fn check_subscribe(&self, who: &Principal, filter: &Filter) -> Result<(), HubError> {
        if who.may_subscribe(filter) {
            return Ok(());
        }
        let pats: Vec<&str> = filter.patterns().iter().map(|p| p.as_str()).collect();
        Err(who.refuse(format!("may not read {}", pats.join(", "))))
    }

    /// Commits what is pending and closes the store.
    pub async fn close(&self) -> Result<(), HubError> {
        self.begin_shutdown();
        Ok(self.inner.store.close().await?)
    }

    /// Publishes one message; answers once it is durable.
    pub async fn publish(&self, who: &Principal, msg: Publish) -> Result<Published, HubError> {
        let item = self.check_publish(who, msg)?;
        let topic = item.topic.clone();
        let mut out = self.inner.store.append(vec![item], Vec::new()).await?;
        let appended = out
            .pop()
            .ok_or(StoreError::Io("store answered nothing".into()))?;
        Ok(self.published(topic, appended))
    }

    /// Publishes many messages in one commit. Each item succeeds or fails on its own;
    /// results come back in order.
    pub async fn publish_batch(
        &self,
        who: &Principal,
        msgs: Vec<Result<Publish, HubError>>,
    ) -> Result<Vec<Result<Published, HubError>>, HubError> {
        let max = self.inner.opts.max_batch_items;
        if msgs.len() > max {
            return Err(HubError::InvalidParameter(format!(
                "a batch holds at most {max} messages; got {}",
                msgs.len()
            )));
        }
        let mut results: Vec<Option<Result<Published, HubError>>> = Vec::with_capacity(msgs.len());
        let mut items = Vec::new();
        let mut slots = Vec::new();
        for (i, msg) in msgs.into_iter().enumerate() {
            match msg.and_then(|m| self.check_publish(who, m)) {
                Ok(item) => {
                    slots.push((i, item.topic.clone()));
                    items.push(item);
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        if !items.is_empty() {
            let appended = self.inner.store.append(items, Vec::new()).await?;
            for ((i, topic), a) in slots.into_iter().zip(appended) {
                results[i] = Some(Ok(self.published(topic, a)));
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Err(HubError::Storage(StoreError::Io("no result".into())))))
            .collect())
    }

    /// Publishes `msgs` and writes `records` in one commit: all or nothing. Any message
    /// that fails validation fails the whole call. For herald's own bookkeeping (webhook
    /// endpoints, delivery logs).
    pub async fn commit(
        &self,
        who: &Principal,
        msgs: Vec<Publish>,
        records: Vec<crate::Record>,
    ) -> Result<Vec<Published>, HubError> {
        if records
            .iter()
            .any(|r| !RECORD_PREFIXES.iter().any(|p| r.key.starts_with(p)))
        {
            return Err(HubError::InvalidParameter(
                "records must use a known prefix".into(),
            ));
        }
        let items = msgs
            .into_iter()
            .map(|m| self.check_publish(who, m))
            .collect::<Result<Vec<_>, _>>()?;
        let topics: Vec<TopicName> = items.iter().map(|i| i.topic.clone()).collect();
        let appended = self.inner.store.append(items, records).await?;
        Ok(topics
            .into_iter()
            .zip(appended)
            .map(|(t, a)| self.published(t, a))
            .collect())
    }

    /// Stored records under `prefix` (see [`Hub::commit`]).
    pub fn records(&self, prefix: &str) -> Result<Vec<(String, bytes::Bytes)>, HubError> {
        Ok(self.inner.store.records(prefix)?)
    }

    fn published(&self, topic: TopicName, a: Appended) -> Published {
        let epoch = self.epoch();
        match a {
            Appended::New(m) => Published {
                id: m.id,
                topic,
                time_ms: m.time_ms,
                duplicate: false,
            },
            Appended::Duplicate { seq, time_ms } => Published {
                id: Cursor::new(epoch, seq),
                topic,
                time_ms,
                duplicate: true,
            },
        }
    }

    fn check_publish(&self, who: &Principal, msg: Publish) -> Result<Append, HubError> {
        if self.is_shutting_down() {
            return Err(HubError::ShuttingDown);
        }
        let topic = msg
            .topic
            .ok_or_else(|| HubError::InvalidParameter("a topic is required".into()))?;
        if !who.may_publish(&topic) {
            return Err(who.refuse(format!("may not publish to {topic}")));
        }
        if crate::jobs::is_status_topic(&topic) && !who.is_system() {
            return Err(HubError::Forbidden(format!(
                "{topic} holds a job's status documents, written by herald only; report \
                 with POST /v1/jobs/{{queue}}/{{id}}/progress, complete or fail"
            )));
        }
        let max = self.inner.opts.max_payload_bytes;
        if msg.data.len() > max {
            return Err(HubError::PayloadTooLarge {
                size: msg.data.len(),
                max,
            });
        }
        let content_type = msg
            .content_type
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        if content_type.is_empty()
            || content_type.len() > 255
            || !content_type.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(HubError::InvalidParameter(
                "content type must be 1-255 printable ASCII characters".into(),
            ));
        }
        if is_json_type(&content_type) {
            serde_json::from_slice::<serde::de::IgnoredAny>(&msg.data)
                .map_err(|e| HubError::InvalidJson(e.to_string()))?;
        }
        if let Some(event) = &msg.event {
            Hub::check_event(event)?;
        }
        if let Some(key) = &msg.idempotency_key
            && (key.is_empty()
                || key.len() > 256
                || !key.bytes().all(|b| (0x21..0x7f).contains(&b)))
        {
            return Err(HubError::InvalidParameter(
                "idempotency key must be 1-256 visible ASCII characters".into(),
            ));
        }
        if msg.headers.len() > 32 {
            return Err(HubError::InvalidParameter("at most 32 headers".into()));
        }
        for (k, v) in &msg.headers {
            let printable = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b));
            if k.is_empty() || k.len() > 128 || v.len() > 4096 || !printable(k) || !printable(v) {
                return Err(HubError::InvalidParameter(
                    "headers must be printable ASCII (name 1-128, value up to 4096 bytes)".into(),
                ));
            }
        }
        Ok(Append {
            topic,
            event: msg.event.map(Into::into),
            content_type: content_type.into(),
            headers: msg
                .headers
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            data: msg.data,
            idempotency_key: msg.idempotency_key.map(Into::into),
        })
    }

    /// Validates an event type: 1–64 of `A-Z a-z 0-9 _ . : / -`, none of the names
    /// herald's SSE uses for itself.
    pub fn check_event(event: &str) -> Result<(), HubError> {
        let ok = (1..=64).contains(&event.len())
            && event
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:/-".contains(&b));
        if !ok {
            return Err(HubError::InvalidEvent(event.chars().take(80).collect()));
        }
        if RESERVED_EVENTS.contains(&event) {
            return Err(HubError::InvalidEvent(format!(
                "{event} (reserved for herald's own SSE events: {})",
                RESERVED_EVENTS.join(", ")
            )));
        }
        Ok(())
    }

    /// Validates a read limit given as text (`None` means the default).
    pub fn check_limit(limit: Option<&str>) -> Result<usize, HubError> {
        let Some(raw) = limit else {
            return Ok(DEFAULT_READ_LIMIT);
        };
        match raw.trim().parse::<i64>() {
            Ok(n) if n >= 1 && n as usize <= MAX_READ_LIMIT => Ok(n as usize),
            _ => Err(HubError::InvalidLimit {
                got: raw.chars().take(32).collect(),
                max: MAX_READ_LIMIT,
            }),
        }
    }

    /// Validates a wait given in seconds (fractions allowed).
    pub fn check_wait(&self, wait: Option<&str>) -> Result<Duration, HubError> {
        let max = self.inner.opts.max_wait;
        let Some(raw) = wait else {
            return Ok(Duration::ZERO);
        };
        let bad = || HubError::InvalidWait {
            got: raw.chars().take(32).collect(),
            max: max.as_secs(),
        };
        let secs: f64 = raw.trim().parse().map_err(|_| bad())?;
        if !secs.is_finite() || secs < 0.0 || secs > max.as_secs_f64() {
            return Err(bad());
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// Reads messages after a position: answers at once when `wait` is zero (short poll),
    /// otherwise parks until at least one matching message exists or `wait` passes (long
    /// poll). An unknown cursor yields a `reset` and reading continues from the oldest
    /// retained message.
    pub async fn read(&self, who: &Principal, req: Read) -> Result<ReadResult, HubError> {
        self.check_subscribe(who, &req.filter)?;
        if req.limit == 0 || req.limit > MAX_READ_LIMIT {
            return Err(HubError::InvalidLimit {
                got: req.limit.to_string(),
                max: MAX_READ_LIMIT,
            });
        }
        if req.wait > self.inner.opts.max_wait {
            return Err(HubError::InvalidWait {
                got: format!("{}", req.wait.as_secs_f64()),
                max: self.inner.opts.max_wait.as_secs(),
            });
        }
        let store = &self.inner.store;
        let epoch = store.epoch();
        let (after, check) = match self.resolve(&req.filter, req.start)? {
            Resolved::At { after, check } => (after, check),
            Resolved::Reset(reason) => return self.reset(&req, reason),
        };
        let waiter = if req.wait.is_zero() {
            None
        } else {
            let parked = Parked::take(&self.inner.parked, self.inner.opts.max_long_polls)?;
            let w = Arc::new(Waiter::default());
            let reg = self.inner.fanout.register(&req.filter, w.clone());
            Some((w, (reg, parked)))
        };
        let deadline = tokio::time::Instant::now() + req.wait;
        loop {
            let batch = store.read(&req.filter, after, req.limit)?;
            if check && batch.trimmed > after {
                return self.reset(&req, ResetReason::Expired);
            }
            if let Some(last) = batch.messages.last() {
                return Ok(ReadResult {
                    next: last.id,
                    messages: batch.messages,
                    reset: None,
                });
            }
            let empty = ReadResult {
                messages: Vec::new(),
                next: Cursor::new(epoch, after),
                reset: None,
            };
            let Some((w, _reg)) = &waiter else {
                return Ok(empty);
            };
            tokio::select! {
                _ = w.notified() => continue,
                _ = tokio::time::sleep_until(deadline) => return Ok(empty),
                _ = self.inner.shutdown.cancelled() => return Ok(empty),
            }
        }
    }

    /// Where a reader of `filter` begins. `earliest` is the filter's highest trim mark:
    /// from there on nothing matching has been removed.
    pub(crate) fn resolve(&self, filter: &Filter, start: Start) -> Result<Resolved, HubError> {
        let store = &self.inner.store;
        let tail = store.tail();
        Ok(match start {
            Start::Earliest => Resolved::At {
                after: store.trimmed(filter)?,
                check: false,
            },
            Start::Latest => Resolved::At {
                after: tail,
                check: false,
            },
            Start::After(c) if c.epoch != store.epoch() || c.seq > tail => {
                Resolved::Reset(ResetReason::Epoch)
            }
            Start::After(c) => Resolved::At {
                after: c.seq,
                check: true,
            },
        })
    }

    /// The reset signal for `filter`, and the position reading continues from (its
    /// `earliest`).
    pub(crate) fn reset_info(
        &self,
        filter: &Filter,
        reason: ResetReason,
    ) -> Result<(ResetInfo, u64), HubError> {
        let store = &self.inner.store;
        let epoch = store.epoch();
        let floor = store.trimmed(filter)?;
        let info = ResetInfo {
            reason,
            earliest: Cursor::new(epoch, floor),
            latest: Cursor::new(epoch, store.tail().max(floor)),
        };
        Ok((info, floor))
    }

    /// Answers an unknown cursor: the reset signal, then the first page from the filter's
    /// `earliest` position.
    fn reset(&self, req: &Read, reason: ResetReason) -> Result<ReadResult, HubError> {
        let (info, floor) = self.reset_info(&req.filter, reason)?;
        let batch = self.inner.store.read(&req.filter, floor, req.limit)?;
        let next = batch.messages.last().map_or(floor, |m| m.id.seq);
        Ok(ReadResult {
            messages: batch.messages,
            next: Cursor::new(info.earliest.epoch, next),
            reset: Some(info),
        })
    }

    /// Every topic with its statistics.
    pub fn topics(&self, who: &Principal) -> Result<Vec<TopicStats>, HubError> {
        let all = self.inner.store.topics()?;
        Ok(all
            .into_iter()
            .filter(|t| who.may_subscribe(&Filter::topic(&t.name)))
            .map(|info| self.stats(info))
            .collect())
    }

    /// One topic's statistics.
    pub fn topic(&self, who: &Principal, name: &TopicName) -> Result<TopicStats, HubError> {
        if !who.may_subscribe(&Filter::topic(name)) {
            return Err(who.refuse(format!("may not read {name}")));
        }
        let info = self
            .inner
            .store
            .topic(name)?
            .ok_or_else(|| HubError::TopicNotFound(name.to_string()))?;
        Ok(self.stats(info))
    }

    fn stats(&self, info: TopicInfo) -> TopicStats {
        TopicStats {
            subscribers: self.inner.fanout.interest(info.name.as_str()),
            groups: self.groups().on_topic(&info.name).len() as u64,
            info,
        }
    }

    /// Sets a topic's retention (creating it if needed) and applies it.
    pub async fn set_retention(
        &self,
        who: &Principal,
        name: &TopicName,
        retention: Retention,
    ) -> Result<TopicStats, HubError> {
        if !who.is_admin() {
            return Err(who.refuse("configuring topics needs admin"));
        }
        let info = self.inner.store.set_retention(name, retention).await?;
        Ok(self.stats(info))
    }

    /// Deletes a topic and its messages. Readers holding cursors into it get a reset.
    pub async fn delete_topic(&self, who: &Principal, name: &TopicName) -> Result<(), HubError> {
        if !who.is_admin() {
            return Err(who.refuse("deleting topics needs admin"));
        }
        if self.inner.store.delete_topic(name).await? {
            Ok(())
        } else {
            Err(HubError::TopicNotFound(name.to_string()))
        }
    }

    /// Runs retention and key expiry now (normally done in the background).
    pub async fn maintain(&self) -> Result<(), HubError> {
        Ok(self.inner.store.maintain().await?)
    }
}
