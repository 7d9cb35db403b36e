//! Consumer groups: each message of a topic goes to one member of the group, at least
//! once. Leases expire and redeliver with `attempt + 1`; after `max_attempts` a message
//! moves to the dead-letter topic with its origin, attempts and last error. Acks are
//! answered only once the group's state is as durable as a publish.

mod consumer;
mod state;

pub use consumer::Consumer;
pub use state::GroupSettings;

use crate::cursor::{Cursor, Start};
use crate::error::HubError;
use crate::fanout::{Listener, Registration};
use crate::hub::{Hub, Resolved};
use crate::message::Message;
use crate::store::{Append, Record};
use crate::topic::{Filter, TopicName};
use bytes::Bytes;
use state::{Failed, GroupState, Persisted, Refusal};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, watch};
use tokio::time::{Duration, Instant};

/// How a group is set up. `start` only matters when the group is created.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// Where a new group starts.
    pub start: Start,
    /// Default lease.
    pub lease: Duration,
    /// Deliveries of one message before it is dead-lettered.
    pub max_attempts: u32,
    /// Dead-letter topic; `{topic}.dlq` when absent.
    pub dead_letter: Option<TopicName>,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            start: Start::Earliest,
            lease: Duration::from_secs(30),
            max_attempts: 5,
            dead_letter: None,
        }
    }
}

/// A claim: up to `max` messages, waiting up to `wait` while none is available.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Most deliveries (1–1000).
    pub max: usize,
    /// Long-poll while empty.
    pub wait: Duration,
    /// Lease for these deliveries; the group's default when absent.
    pub lease: Option<Duration>,
}

/// One message handed to one member.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Proof of the lease: ack, nack or extend with it.
    pub receipt: String,
    /// 1 for the first delivery, then counting redeliveries.
    pub attempt: u32,
    /// The message.
    pub message: Arc<Message>,
}

/// The result of settling one receipt.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The receipt.
    pub receipt: String,
    /// `Ok` when it took effect.
    pub outcome: Result<(), HubError>,
}

/// A group's statistics.
#[derive(Debug, Clone)]
pub struct GroupStats {
    /// The topic.
    pub topic: TopicName,
    /// The group.
    pub group: String,
    /// Messages after the acked position that are not done yet (including in flight).
    pub lag: u64,
    /// Leased deliveries.
    pub in_flight: u64,
    /// Every message at or before this position is done.
    pub acked: Cursor,
    /// Messages dead-lettered and not redriven.
    pub dead_lettered: u64,
    /// Settings.
    pub settings: GroupSettings,
}

/// The dead letter of `m`: its payload, content type and event, with headers naming its
/// origin (`herald-origin-topic`, `herald-origin-id`), the group or endpoint that gave up
/// (`herald-group`), the attempts made and the last error.
pub fn dead_letter(
    m: &Message,
    dlq: TopicName,
    by: Option<&str>,
    attempts: u32,
    error: &str,
) -> crate::Publish {
    let mut headers: Vec<(String, String)> = m
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    headers.push(("herald-origin-topic".into(), m.topic.to_string()));
    headers.push(("herald-origin-id".into(), m.id.to_string()));
    if let Some(by) = by {
        headers.push(("herald-group".into(), by.to_owned()));
    }
    headers.push(("herald-attempts".into(), attempts.to_string()));
    let printable: String = error
        .chars()
        .filter(|c| (' '..='~').contains(c))
        .take(1000)
        .collect();
    headers.push(("herald-last-error".into(), printable));
    crate::Publish {
        topic: Some(dlq),
        event: m.event.as_deref().map(str::to_owned),
        content_type: Some(m.content_type.to_string()),
        headers,
        data: m.data.clone(),
        idempotency_key: None,
    }
}

/// Something notified of group events (jobs use it to track their status).
pub(crate) trait GroupObserver: Send + Sync {
    /// Messages were leased.
    fn delivered(&self, hub: &Hub, topic: &TopicName, deliveries: &[Delivery]);
    /// A message used up its attempts.
    fn dead_lettered(&self, hub: &Hub, topic: &TopicName, message: &Arc<Message>, error: &str);
}

/// Valid group names: one segment of `[A-Za-z0-9_-]`, 1–64 bytes.
pub fn check_group_name(name: &str) -> Result<(), HubError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(HubError::InvalidParameter(format!(
            "invalid group name {:?}: use 1-64 characters from A-Z a-z 0-9 _ -",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// Wakes a group's waiters when its topic gets messages.
struct Wake(Arc<Notify>);

impl Listener for Wake {
    fn offer(&self, _msg: &Arc<Message>) -> bool {
        true
    }
    fn wake(&self) {
        self.0.notify_waiters();
    }
    fn close(&self) {
        self.0.notify_waiters();
    }
}

pub(crate) struct Group {
    pub topic: TopicName,
    pub name: String,
    state: Mutex<GroupState>,
    /// Notified when something may have become claimable.
    pub changed: Arc<Notify>,
    /// (durably written version, failed version).
    persisted: watch::Sender<(u64, u64)>,
    persisting: AtomicBool,
    /// A deferred write is scheduled (see [`Group::persist_soon`]).
    persist_scheduled: AtomicBool,
    pending_dlq: Mutex<Vec<Append>>,
    /// Messages read from storage and not leased yet (at most one read's worth), so a
    /// batch read once serves many small claims.
    fetched: Mutex<HashMap<u64, Arc<Message>>>,
    _wake: Registration,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Group({}/{})", self.topic, self.name)
    }
}

/// Every group of a hub.
#[derive(Default)]
pub(crate) struct Groups {
    map: Mutex<HashMap<(TopicName, String), Arc<Group>>>,
    next_holder: AtomicU64,
    observers: Mutex<Vec<Arc<dyn GroupObserver>>>,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups").finish_non_exhaustive()
    }
}

fn record_key(topic: &TopicName, group: &str) -> String {
    format!("group/{topic}/{group}")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn refusal(r: Refusal, receipt: &str) -> HubError {
    match r {
        Refusal::Unknown => HubError::UnknownReceipt(receipt.chars().take(64).collect()),
        Refusal::Expired => HubError::LeaseExpired(receipt.chars().take(64).collect()),
    }
}

impl Groups {
    pub(crate) fn add_observer(&self, o: Arc<dyn GroupObserver>) {
        lock(&self.observers).push(o);
    }

    fn observers(&self) -> Vec<Arc<dyn GroupObserver>> {
        lock(&self.observers).clone()
    }

    pub(crate) fn holder_id(&self) -> u64 {
        self.next_holder.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn all(&self) -> Vec<Arc<Group>> {
        lock(&self.map).values().cloned().collect()
    }

    pub(crate) fn on_topic(&self, topic: &TopicName) -> Vec<Arc<Group>> {
        lock(&self.map)
            .values()
            .filter(|g| &g.topic == topic)
            .cloned()
            .collect()
    }

    pub(crate) fn get(&self, topic: &TopicName, name: &str) -> Option<Arc<Group>> {
        lock(&self.map)
            .get(&(topic.clone(), name.to_owned()))
            .cloned()
    }

    fn insert(&self, hub: &Hub, topic: TopicName, name: String, state: GroupState) -> Arc<Group> {
        let mut map = lock(&self.map);
        if let Some(g) = map.get(&(topic.clone(), name.clone())) {
            return g.clone();
        }
        let changed = Arc::new(Notify::new());
        let wake = hub
            .fanout()
            .register(&Filter::topic(&topic), Arc::new(Wake(changed.clone())));
        let version = state.version;
        let g = Arc::new(Group {
            topic: topic.clone(),
            name: name.clone(),
            state: Mutex::new(state),
            changed,
            persisted: watch::Sender::new((version, 0)),
            persisting: AtomicBool::new(false),
            persist_scheduled: AtomicBool::new(false),
            pending_dlq: Mutex::new(Vec::new()),
            fetched: Mutex::new(HashMap::new()),
            _wake: wake,
        });
        map.insert((topic, name), g.clone());
        g
    }

    /// Restores every group from storage (at startup).
    pub(crate) fn load(&self, hub: &Hub) -> Result<(), HubError> {
        for (key, value) in hub.store().records("group/")? {
            let Some((topic, name)) = key["group/".len()..].rsplit_once('/') else {
                continue;
            };
            let (Ok(topic), Ok(p)) = (
                TopicName::parse(topic),
                serde_json::from_slice::<Persisted>(&value),
            ) else {
                tracing::warn!(key, "skipping an unreadable group record");
                continue;
            };
            let g = self.insert(hub, topic, name.to_owned(), GroupState::restore(p));
            // Restored state matches storage.
            let v = lock(&g.state).version;
            g.persisted.send_replace((v, 0));
        }
        Ok(())
    }
}

impl Group {
    fn state(&self) -> MutexGuard<'_, GroupState> {
        lock(&self.state)
    }

    /// Queues a durable write of the current state (and pending dead letters); returns the
    /// version to wait for. One writer per group keeps writes in order and coalesces them.
    fn persist(self: &Arc<Self>, hub: &Hub) -> u64 {
        let v = self.state().version;
        if !self.persisting.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().persist_loop(hub.clone()));
        }
        v
    }

    /// Writes the state a moment from now, unless a write that includes it happens
    /// first. Claims use this: nobody waits for a lease to be durable, and the next ack
    /// usually carries it, so a claim-ack cycle costs one fsync instead of two.
    fn persist_soon(self: &Arc<Self>, hub: &Hub) {
        if self.persist_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let (g, hub) = (self.clone(), hub.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            g.persist_scheduled.store(false, Ordering::Release);
            g.persist(&hub);
        });
    }

    async fn persist_loop(self: Arc<Self>, hub: Hub) {
        loop {
            let (version, value) = {
                let s = self.state();
                (
                    s.version,
                    serde_json::to_vec(&s.persisted()).unwrap_or_default(),
                )
            };
            let dlq = std::mem::take(&mut *lock(&self.pending_dlq));
            let written = self.persisted.borrow().0;
            if version <= written && dlq.is_empty() {
                self.persisting.store(false, Ordering::Release);
                // A change may have slipped in after the check.
                if self.state().version > written && !self.persisting.swap(true, Ordering::AcqRel) {
                    continue;
                }
                return;
            }
            let record = Record {
                key: record_key(&self.topic, &self.name),
                value: Some(Bytes::from(value)),
            };
            match hub.store().append(dlq, vec![record]).await {
                Ok(_) => {
                    self.persisted.send_modify(|p| p.0 = p.0.max(version));
                }
                Err(e) => {
                    tracing::error!(group = %self.name, topic = %self.topic, error = %e, "writing group state failed");
                    self.persisted.send_modify(|p| p.1 = p.1.max(version));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Waits until version `v` is durable.
    async fn durable(&self, v: u64) -> Result<(), HubError> {
        let mut rx = self.persisted.subscribe();
        let (ok, failed) = *rx
            .wait_for(|(ok, failed)| *ok >= v || *failed >= v)
            .await
            .map_err(|_| HubError::ShuttingDown)?;
        if ok >= v || failed < v {
            Ok(())
        } else {
            Err(HubError::Storage(crate::StoreError::Io(
                "writing the group state failed".into(),
            )))
        }
    }

    /// Builds dead-letter messages for positions that used up their attempts.
    fn dead_letter(&self, hub: &Hub, failed: Vec<Failed>) {
        if failed.is_empty() {
            return;
        }
        let dlq = match TopicName::parse(&self.state().settings.dead_letter) {
            Ok(t) => t,
            Err(_) => return,
        };
        let observers = hub.groups().observers();
        let mut items = Vec::new();
        for f in failed {
            let Failed::DeadLetter {
                seq,
                attempts,
                error,
            } = f
            else {
                continue;
            };
            let Some(m) = hub.message_at(&self.topic, seq) else {
                continue;
            };
            for o in &observers {
                o.dead_lettered(hub, &self.topic, &m, &error);
            }
            let letter = dead_letter(&m, dlq.clone(), Some(&self.name), attempts, &error);
            items.push(Append {
                topic: dlq.clone(),
                event: m.event.clone(),
                content_type: m.content_type.clone(),
                headers: letter
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
                data: m.data.clone(),
                idempotency_key: None,
            });
        }
        lock(&self.pending_dlq).extend(items);
    }

    /// Expires due leases; dead-letters what ran out of attempts. True when something
    /// became claimable.
    pub(crate) fn tick(self: &Arc<Self>, hub: &Hub) -> bool {
        let (failed, ready, changed) = {
            let mut s = self.state();
            let v = s.version;
            let failed = s.tick(Instant::now());
            (failed, s.has_ready(), s.version != v)
        };
        let dead = !failed.is_empty();
        self.dead_letter(hub, failed);
        if changed || dead {
            self.persist(hub);
        }
        if ready {
            self.changed.notify_waiters();
        }
        ready
    }

    /// Leases up to `max` messages now, fetching from storage as needed.
    pub(crate) fn take(
        self: &Arc<Self>,
        hub: &Hub,
        max: usize,
        lease: Option<Duration>,
        holder: Option<u64>,
    ) -> Result<Vec<Delivery>, HubError> {
        let now = Instant::now();
        let mut fetched = lock(&self.fetched);
        let (leased, mut failed) = {
            let mut s = self.state();
            let mut failed = s.tick(now);
            if !s.has_ready() {
                let batch = hub
                    .store()
                    .read(&Filter::topic(&self.topic), s.next, max.max(64))?;
                let through = batch.messages.last().map_or(s.next, |m| m.seq());
                s.fetched(batch.messages.iter().map(|m| m.seq()), through);
                // Nothing was ready, so nothing kept from an earlier read is needed.
                fetched.clear();
                fetched.extend(batch.messages.into_iter().map(|m| (m.seq(), m)));
            }
            let lease = lease.unwrap_or(Duration::from_millis(s.settings.lease_ms));
            let (leased, exhausted) = s.lease(max, lease, holder, now);
            failed.extend(exhausted);
            (leased, failed)
        };
        let changed = !leased.is_empty() || !failed.is_empty();
        let mut out = Vec::with_capacity(leased.len());
        for (receipt, seq, attempt) in leased {
            let m = match fetched.remove(&seq) {
                Some(m) => Some(m),
                None => hub.message_at(&self.topic, seq),
            };
            match m {
                Some(message) => out.push(Delivery {
                    receipt,
                    attempt,
                    message,
                }),
                None => {
                    // Removed by retention or deletion before it was delivered.
                    self.state().forget(seq);
                }
            }
        }
        drop(fetched);
        self.dead_letter(hub, std::mem::take(&mut failed));
        if changed {
            self.persist_soon(hub);
        }
        if !out.is_empty() {
            for o in hub.groups().observers() {
                o.delivered(hub, &self.topic, &out);
            }
        }
        Ok(out)
    }

    /// Settles receipts with `f`; answers once the result is durable.
    async fn settle(
        self: &Arc<Self>,
        hub: &Hub,
        receipts: &[String],
        mut f: impl FnMut(&mut GroupState, &str, Instant) -> Result<Option<Failed>, Refusal>,
    ) -> Result<Vec<Settled>, HubError> {
        let now = Instant::now();
        let mut failed = Vec::new();
        let mut out = Vec::with_capacity(receipts.len());
        {
            let mut s = self.state();
            for r in receipts {
                let outcome = match f(&mut s, r, now) {
                    Ok(fail) => {
                        failed.extend(fail);
                        Ok(())
                    }
                    Err(e) => Err(refusal(e, r)),
                };
                out.push(Settled {
                    receipt: r.clone(),
                    outcome,
                });
            }
        }
        self.dead_letter(hub, failed);
        let v = self.persist(hub);
        // Settling frees room for prefetching consumers, and nacks make messages ready.
        // Waking them before the settlement is durable is safe: a crash before then
        // only means the (unconfirmed) settlement did not happen, and the message is
        // delivered again.
        self.changed.notify_waiters();
        self.durable(v).await?;
        Ok(out)
    }

    pub(crate) fn release(self: &Arc<Self>, hub: &Hub, holder: u64) {
        let failed = self.state().release(holder, Instant::now());
        self.dead_letter(hub, failed);
        self.persist(hub);
        self.changed.notify_waiters();
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.state().next_due()
    }

    fn stats(&self, hub: &Hub) -> Result<GroupStats, HubError> {
        let (floor, done, in_flight, dead, settings) = {
            let s = self.state();
            (
                s.floor,
                s.done_above_floor(),
                s.in_flight(),
                s.dead_lettered,
                s.settings.clone(),
            )
        };
        let after = hub.store().count_after(&self.topic, floor)?;
        Ok(GroupStats {
            topic: self.topic.clone(),
            group: self.name.clone(),
            lag: after.saturating_sub(done as u64),
            in_flight: in_flight as u64,
            acked: Cursor::new(hub.epoch(), floor),
            dead_lettered: dead,
            settings,
        })
    }
}

impl Hub {
    fn group_settings(
        &self,
        topic: &TopicName,
        cfg: &GroupConfig,
    ) -> Result<GroupSettings, HubError> {
        if cfg.max_attempts == 0 || cfg.max_attempts > 1000 {
            return Err(HubError::InvalidParameter(
                "max_attempts must be between 1 and 1000".into(),
            ));
        }
        if cfg.lease.is_zero() || cfg.lease > Duration::from_secs(12 * 3600) {
            return Err(HubError::InvalidParameter(
                "lease must be between 1 ms and 12 h".into(),
            ));
        }
        let dlq = match &cfg.dead_letter {
            Some(t) => t.clone(),
            None => TopicName::parse(&format!("{topic}.dlq")).map_err(|_| {
                HubError::InvalidParameter(format!(
                    "the default dead-letter topic {topic}.dlq would be over the topic name \
                     limit; configure the group with an explicit dead_letter topic"
                ))
            })?,
        };
        if &dlq == topic {
            return Err(HubError::InvalidParameter(
                "a group's dead-letter topic must differ from its topic".into(),
            ));
        }
        Ok(GroupSettings {
            lease_ms: cfg.lease.as_millis() as u64,
            max_attempts: cfg.max_attempts,
            dead_letter: dlq.to_string(),
        })
    }

    fn group(
        &self,
        who: &crate::Principal,
        topic: &TopicName,
        name: &str,
        create: Option<&GroupConfig>,
    ) -> Result<Arc<Group>, HubError> {
        check_group_name(name)?;
        if !who.may_subscribe(&Filter::topic(topic)) {
            return Err(who.refuse(format!("may not consume {topic}")));
        }
        if let Some(g) = self.groups().get(topic, name) {
            return Ok(g);
        }
        let cfg = create.cloned().unwrap_or_default();
        let settings = self.group_settings(topic, &cfg)?;
        let floor = match self.resolve(&Filter::topic(topic), cfg.start)? {
            Resolved::At { after, .. } => after,
            Resolved::Reset(_) => self.store().trimmed(&Filter::topic(topic))?,
        };
        let g = self.groups().insert(
            self,
            topic.clone(),
            name.to_owned(),
            GroupState::new(settings, floor),
        );
        g.persist(self);
        Ok(g)
    }

    /// Creates a group, or updates its lease, attempts and dead-letter topic (`start`
    /// applies only when the group is created). Answers once durable.
    pub async fn configure_group(
        &self,
        who: &crate::Principal,
        topic: &TopicName,
        name: &str,
        cfg: GroupConfig,
    ) -> Result<GroupStats, HubError> {
        let settings = self.group_settings(topic, &cfg)?;
        let g = self.group(who, topic, name, Some(&cfg))?;
        {
            let mut s = g.state();
            if s.settings != settings {
                s.settings = settings;
                s.version += 1;
            }
        }
        let v = g.persist(self);
        g.durable(v).await?;
        g.stats(self)
    }

    /// Leases up to `claim.max` messages to the caller, long-polling while none is
    /// available. Creates the group with defaults on first use.
    pub async fn claim(
        &self,
        who: &crate::Principal,
        topic: &TopicName,
        name: &str,
        claim: Claim,
    ) -> Result<Vec<Delivery>, HubError> {
        if claim.max == 0 || claim.max > crate::MAX_READ_LIMIT {
            return Err(HubError::InvalidParameter(format!(
                "max must be between 1 and {}",
                crate::MAX_READ_LIMIT
            )));
        }
        if claim.wait > self.options().max_wait {
            return Err(HubError::InvalidWait {
                got: format!("{}", claim.wait.as_secs_f64()),
                max: self.options().max_wait.as_secs(),
            });
        }
        if let Some(l) = claim.lease
            && (l.is_zero() || l > Duration::from_secs(12 * 3600))
        {
            return Err(HubError::InvalidParameter(
                "lease must be between 1 ms and 12 h".into(),
            ));
        }
        let g = self.group(who, topic, name, None)?;
        let deadline = Instant::now() + claim.wait;
        let shutdown = self.shutdown_token();
        loop {
            let notified = g.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = g.take(self, claim.max, claim.lease, None)?;
            if !got.is_empty() || Instant::now() >= deadline || shutdown.is_cancelled() {
                return Ok(got);
            }
            let due = g.next_due().map_or(deadline, |d| d.min(deadline));
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(due) => {}
                _ = shutdown.cancelled() => return Ok(Vec::new()),
            }
        }
    }

    fn existing_group(
        &self,
        who: &crate::Principal,
        topic: &TopicName,
        name: &str,
    ) -> Result<Arc<Group>, HubError> {
        check_group_name(name)?;
        if !who.may_subscribe(&Filter::topic(topic)) {
            return Err(who.refuse(format!("may not consume {topic}")));
        }
        self.groups()
            .get(topic, name)
            .ok_or_else(|| HubError::GroupNotFound(format!("{topic}/{name}")))
    }

    /// Acknowledges deliveries: each is done and never redelivered. Answers per receipt,
    /// once durable. A receipt whose lease expired is refused (`lease_expired`).
    pub async fn ack(
        &self,
        who: &crate::Principal,
        topic: &TopicName,
        name: &str,
        receipts: &[String],
    ) -> Result<Vec<Settled>, HubError> {
        let g = self.existing_group(who, topic, name)?;
        g.settle(self, receipts, |s, r, now| s.ack(r, now).map(|_| None))
            .await
    }

    /// Returns deliveries for redelivery after `delay` (dead-lettering those out of
    /// attempts).
    pub async fn nack(
        &self,
        who: &crate::Principal,
        topic: &TopicName,
        name: &str,
        receipts: &[String],
        delay: Duration,
        error: Option<String>,
    ) -> Result<Vec<Settled>, HubError> {
        if delay > Duration::from_secs(12 * 3600) {
            return Err(HubError::InvalidParameter(
                "delay must be at most 12 h".into(),
            ));
        }
        let g = self.existing_group(who, topic, name)?;
        g.settle(self, receipts, |s, r, now| {
            s.nack(r, delay, error.clone(), now)
                .map(|f| (f != Failed::Retry).then_some(f))
        })
        .await
    }

    /// Extends leases to `lease` from now.
    pub async fn extend(
        &self,
        who: &crate::Principal,
        topic: &TopicName,
        name: &str,
        receipts: &[String],
        lease: Duration,
    ) -> Result<Vec<Settled>, HubError> {
        if lease.is_zero() || lease > Duration::from_secs(12 * 3600) {
            return Err(HubError::InvalidParameter(
                "lease must be between 1 ms and 12 h".into(),
            ));
        }
        let g = self.existing_group(who, topic, name)?;
        g.settle(self, receipts, |s, r, now| {
            s.extend(r, lease, now).map(|_| None)
        })
        .await
    }

    /// A group's statistics.
    pub fn group_stats(
        &self,
        who: &crate::Principal,
        topic: &TopicName,
        name: &str,
    ) -> Result<GroupStats, HubError> {
        self.existing_group(who, topic, name)?.stats(self)
    }

    /// Moves the group's dead letters back for delivery, with fresh attempts. Answers how
    /// many, once durable.
    pub async fn redrive(
        &self,
        who: &crate::Principal,
        topic: &TopicName,
        name: &str,
    ) -> Result<usize, HubError> {
        let g = self.existing_group(who, topic, name)?;
        let n = g.state().redrive();
        let v = g.persist(self);
        g.durable(v).await?;
        g.changed.notify_waiters();
        Ok(n)
    }

    /// Follows a group with up to `prefetch` unsettled deliveries at a time (WebSocket
    /// and gRPC consumers). Dropping the consumer releases its leases for redelivery.
    pub fn consume(
        &self,
        who: &crate::Principal,
        topic: &TopicName,
        name: &str,
        prefetch: usize,
    ) -> Result<Consumer, HubError> {
        if prefetch == 0 || prefetch > crate::MAX_READ_LIMIT {
            return Err(HubError::InvalidParameter(format!(
                "prefetch must be between 1 and {}",
                crate::MAX_READ_LIMIT
            )));
        }
        let g = self.group(who, topic, name, None)?;
        Ok(Consumer::new(self.clone(), g, prefetch))
    }

    /// The message at exactly `seq` on `topic`, if still stored.
    pub(crate) fn message_at(&self, topic: &TopicName, seq: u64) -> Option<Arc<Message>> {
        let batch = self
            .store()
            .read(&Filter::topic(topic), seq.saturating_sub(1), 1)
            .ok()?;
        batch.messages.into_iter().next().filter(|m| m.seq() == seq)
    }

    /// Runs lease expiry for every group (the background reaper).
    pub(crate) fn reap_groups(&self) {
        for g in self.groups().all() {
            if g.next_due().is_some_and(|d| d <= Instant::now()) {
                g.tick(self);
            }
        }
    }

    /// Settles the delivery of `seq` in whichever group of `topic` holds it (jobs finish
    /// their delivery when completed or failed).
    pub(crate) async fn settle_position(&self, topic: &TopicName, seq: u64) {
        for g in self.groups().on_topic(topic) {
            let receipts: Vec<String> = g
                .state()
                .leases
                .iter()
                .filter(|(_, l)| l.seq == seq)
                .map(|(r, _)| r.clone())
                .collect();
            if !receipts.is_empty() {
                let _ = g
                    .settle(self, &receipts, |s, r, now| s.ack(r, now).map(|_| None))
                    .await;
            }
        }
    }
}
