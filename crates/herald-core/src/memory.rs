//! The in-memory log store (`herald serve --memory`, tests).

use crate::cursor::{Cursor, Epoch};
use crate::message::Message;
use crate::store::{
    Append, Appended, LogStore, ReadBatch, Record, Retention, StoreContext, StoreError, TopicInfo,
};
use crate::topic::{Filter, TopicName};
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A log kept in memory. Same semantics as the durable store, minus durability.
#[derive(Debug)]
pub struct MemoryStore {
    epoch: Epoch,
    ctx: StoreContext,
    tail: AtomicU64,
    closed: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    log: BTreeMap<u64, Arc<Message>>,
    topics: BTreeMap<TopicName, TopicState>,
    dedup: HashMap<(TopicName, Box<str>), (u64, u64)>,
    dedup_order: VecDeque<(u64, TopicName, Box<str>)>,
    records: BTreeMap<String, Bytes>,
}

#[derive(Debug, Default)]
struct TopicState {
    seqs: VecDeque<u64>,
    bytes: u64,
    last: Option<u64>,
    trimmed: u64,
    retention: Option<Retention>,
    live: bool,
}

impl MemoryStore {
    /// A new, empty log with a fresh epoch.
    pub fn new(ctx: StoreContext) -> Self {
        MemoryStore {
            epoch: Epoch::random(),
            ctx,
            tail: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update; the maps stay
        // structurally valid, so keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn append_now(
        &self,
        items: Vec<Append>,
        records: Vec<Record>,
    ) -> Result<Vec<Appended>, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let now = self.ctx.clock.now_ms();
        let mut inner = self.lock();
        for r in records {
            match r.value {
                Some(v) => inner.records.insert(r.key, v),
                None => inner.records.remove(&r.key),
            };
        }
        expire_keys(&mut inner, now, self.ctx.dedup_window.as_millis() as u64);
        let mut seq = self.tail.load(Ordering::Acquire);
        let time_ms = inner
            .log
            .last_key_value()
            .map_or(now, |(_, m)| m.time_ms.max(now));
        let mut out = Vec::with_capacity(items.len());
        let mut fresh = Vec::with_capacity(items.len());
        for item in items {
            if let Some(key) = &item.idempotency_key {
                let k = (item.topic.clone(), key.clone());
                if let Some(&(seq, time_ms)) = inner.dedup.get(&k) {
                    out.push(Appended::Duplicate { seq, time_ms });
                    continue;
                }
                inner.dedup.insert(k, (seq + 1, time_ms));
                inner
                    .dedup_order
                    .push_back((time_ms, item.topic.clone(), key.clone()));
            }
            seq += 1;
            let msg = Arc::new(Message::new(
                Cursor::new(self.epoch, seq),
                item.topic,
                time_ms,
                item.event,
                item.content_type,
                item.headers,
                item.data,
            ));
            let t = inner.topics.entry(msg.topic.clone()).or_default();
            t.live = true;
            t.seqs.push_back(seq);
            t.bytes += msg.data.len() as u64;
            t.last = Some(seq);
            inner.log.insert(seq, msg.clone());
            fresh.push(msg.clone());
            out.push(Appended::New(msg));
        }
        self.tail.store(seq, Ordering::Release);
        let touched: Vec<TopicName> = {
            let mut names: Vec<TopicName> = fresh.iter().map(|m| m.topic.clone()).collect();
            names.dedup();
            names
        };
        for name in touched {
            self.trim(&mut inner, &name, now);
        }
        if !fresh.is_empty() {
            self.ctx.sink.committed(&fresh);
        }
        Ok(out)
    }

    fn trim(&self, inner: &mut Inner, name: &TopicName, now: u64) {
        let Some(t) = inner.topics.get(name) else {
            return;
        };
        let r = t.retention.unwrap_or(self.ctx.default_retention);
        let mut removed = Vec::new();
        {
            let Inner { log, topics, .. } = &mut *inner;
            let Some(t) = topics.get_mut(name) else {
                return;
            };
            while let Some(&first) = t.seqs.front() {
                let Some(m) = log.get(&first) else {
                    t.seqs.pop_front();
                    continue;
                };
                let over_count = r.max_messages.is_some_and(|max| t.seqs.len() as u64 > max);
                let over_bytes = r.max_bytes.is_some_and(|max| t.bytes > max);
                let too_old = r
                    .max_age
                    .is_some_and(|age| m.time_ms + (age.as_millis() as u64) <= now);
                if !(over_count || over_bytes || too_old) {
                    break;
                }
                t.bytes -= m.data.len() as u64;
                t.trimmed = t.trimmed.max(first);
                t.seqs.pop_front();
                removed.push(first);
            }
        }
        for seq in removed {
            inner.log.remove(&seq);
        }
    }

    fn trimmed_in(inner: &Inner, filter: &Filter) -> u64 {
        match filter.exact_topics() {
            Some(names) => names
                .iter()
                .filter_map(|n| TopicName::parse(n).ok())
                .filter_map(|n| inner.topics.get(&n).map(|t| t.trimmed))
                .max()
                .unwrap_or(0),
            None => inner
                .topics
                .iter()
                .filter(|(name, _)| filter.matches(name.as_str()))
                .map(|(_, t)| t.trimmed)
                .max()
                .unwrap_or(0),
        }
    }

    fn info(name: &TopicName, t: &TopicState) -> TopicInfo {
        TopicInfo {
            name: name.clone(),
            first: t.seqs.front().copied(),
            last: t.last,
            count: t.seqs.len() as u64,
            bytes: t.bytes,
            retention: t.retention.unwrap_or_default(),
        }
    }
}

fn expire_keys(inner: &mut Inner, now: u64, window: u64) {
    while let Some((t, _, _)) = inner.dedup_order.front() {
        if t + window > now {
            break;
        }
        if let Some((_, topic, key)) = inner.dedup_order.pop_front() {
            inner.dedup.remove(&(topic, key));
        }
    }
}

impl LogStore for MemoryStore {
    fn epoch(&self) -> Epoch {
        self.epoch
    }

    fn tail(&self) -> u64 {
        self.tail.load(Ordering::Acquire)
    }

    fn append(
        &self,
        items: Vec<Append>,
        records: Vec<Record>,
    ) -> BoxFuture<'static, Result<Vec<Appended>, StoreError>> {
        let result = self.append_now(items, records);
        async move { result }.boxed()
    }

    fn records(&self, prefix: &str) -> Result<Vec<(String, Bytes)>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .records
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn trimmed(&self, filter: &Filter) -> Result<u64, StoreError> {
        Ok(Self::trimmed_in(&self.lock(), filter))
    }

    fn read(&self, filter: &Filter, after: u64, limit: usize) -> Result<ReadBatch, StoreError> {
        let inner = self.lock();
        let tail = self.tail.load(Ordering::Acquire);
        let trimmed = Self::trimmed_in(&inner, filter);
        let mut messages = Vec::new();
        match filter.exact_topics() {
            Some(names) => {
                let mut seqs: Vec<u64> = Vec::new();
                for name in names {
                    let Ok(name) = TopicName::parse(name) else {
                        continue;
                    };
                    if let Some(t) = inner.topics.get(&name) {
                        let start = t.seqs.partition_point(|&s| s <= after);
                        seqs.extend(t.seqs.range(start..).take(limit));
                    }
                }
                seqs.sort_unstable();
                seqs.truncate(limit);
                messages.extend(seqs.iter().filter_map(|s| inner.log.get(s).cloned()));
            }
            None => {
                messages.extend(
                    inner
                        .log
                        .range(after.saturating_add(1)..)
                        .filter(|(_, m)| filter.matches(m.topic.as_str()))
                        .take(limit)
                        .map(|(_, m)| m.clone()),
                );
            }
        }
        Ok(ReadBatch {
            messages,
            tail,
            trimmed,
        })
    }

    fn count_after(&self, topic: &TopicName, after: u64) -> Result<u64, StoreError> {
        let inner = self.lock();
        Ok(inner.topics.get(topic).map_or(0, |t| {
            let from = after.max(t.trimmed);
            (t.seqs.len() - t.seqs.partition_point(|&s| s <= from)) as u64
        }))
    }

    fn topics(&self) -> Result<Vec<TopicInfo>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .topics
            .iter()
            .filter(|(_, t)| t.live)
            .map(|(n, t)| Self::info(n, t))
            .collect())
    }

    fn topic(&self, name: &TopicName) -> Result<Option<TopicInfo>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .topics
            .get(name)
            .filter(|t| t.live)
            .map(|t| Self::info(name, t)))
    }

    fn set_retention(
        &self,
        name: &TopicName,
        retention: Retention,
    ) -> BoxFuture<'static, Result<TopicInfo, StoreError>> {
        let now = self.ctx.clock.now_ms();
        let mut inner = self.lock();
        let t = inner.topics.entry(name.clone()).or_default();
        t.live = true;
        t.retention = Some(retention);
        self.trim(&mut inner, name, now);
        let info = inner.topics.get(name).map(|t| Self::info(name, t));
        drop(inner);
        async move { info.ok_or_else(|| StoreError::Io("topic vanished".into())) }.boxed()
    }

    fn delete_topic(&self, name: &TopicName) -> BoxFuture<'static, Result<bool, StoreError>> {
        let mut inner = self.lock();
        let Inner { log, topics, .. } = &mut *inner;
        let existed = match topics.get_mut(name) {
            Some(t) if t.live => {
                for seq in t.seqs.drain(..) {
                    log.remove(&seq);
                }
                t.trimmed = t.trimmed.max(t.last.unwrap_or(0));
                t.bytes = 0;
                t.retention = None;
                t.live = false;
                true
            }
            _ => false,
        };
        async move { Ok(existed) }.boxed()
    }

    fn maintain(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let now = self.ctx.clock.now_ms();
        let mut inner = self.lock();
        expire_keys(&mut inner, now, self.ctx.dedup_window.as_millis() as u64);
        let names: Vec<TopicName> = inner.topics.keys().cloned().collect();
        for name in names {
            self.trim(&mut inner, &name, now);
        }
        async { Ok(()) }.boxed()
    }

    fn close(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        self.closed.store(true, Ordering::Release);
        async { Ok(()) }.boxed()
    }
}
