//! The writer thread: group commit, retention, deletion and key expiry.

use crate::codec::{
    ChunkBuilder, TopicRecord, chunk_entries, chunk_last, encode_message, message_data_len,
    message_time,
};
use crate::tables::{DEDUP, DEDUP_EXP, MESSAGES, META, RECORDS, TOPICS};
use crate::{Directory, RedbOptions, Shared, SyncMode, io};
use herald_core::{
    Append, Appended, Cursor, Epoch, Message, Record, Retention, StoreContext, StoreError,
    TopicInfo, TopicName,
};
use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Most messages one maintenance step removes before letting publishes in again.
const CHUNK: usize = 4096;
/// Most messages in one stored chunk.
const CHUNK_MESSAGES: usize = 512;
/// Most encoded bytes in one stored chunk (a chunk may exceed it by one message).
const CHUNK_BYTES: usize = 256 * 1024;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(crate) enum Request {
    Append {
        items: Vec<Append>,
        records: Vec<Record>,
        reply: Reply<Vec<Appended>>,
    },
    SetRetention {
        name: TopicName,
        retention: Retention,
        reply: Reply<TopicInfo>,
    },
    Delete {
        name: TopicName,
        reply: Reply<bool>,
    },
    Maintain {
        reply: Reply<()>,
    },
    Close {
        reply: Reply<()>,
    },
}

impl Request {
    fn weight(&self) -> (usize, usize) {
        match self {
            Request::Append { items, .. } => {
                (items.len(), items.iter().map(|i| i.data.len()).sum())
            }
            _ => (1, 0),
        }
    }
}

/// The writer's authoritative view of the log.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub topics: HashMap<u32, TopicRecord>,
    pub by_name: HashMap<TopicName, u32>,
    pub next_topic_id: u32,
    pub tail: u64,
    pub last_time: u64,
    /// Topics with removed rows still on disk.
    pub purge: BTreeSet<u32>,
}

impl State {
    /// Loads the state, creating the tables and the epoch on first open.
    pub(crate) fn load(db: &Database) -> Result<(State, Epoch), StoreError> {
        let txn = db.begin_write().map_err(io)?;
        let mut state = State {
            next_topic_id: 1,
            ..State::default()
        };
        let epoch;
        {
            let mut meta = txn.open_table(META).map_err(io)?;
            let stored = meta
                .get("epoch")
                .map_err(io)?
                .and_then(|v| v.value().try_into().ok().map(u32::from_le_bytes));
            epoch = match stored {
                Some(e) => Epoch(e),
                None => {
                    let e = Epoch::random();
                    meta.insert("epoch", &e.0.to_le_bytes()[..]).map_err(io)?;
                    e
                }
            };
            if let Some(v) = meta.get("next_topic_id").map_err(io)?
                && let Ok(b) = v.value().try_into()
            {
                state.next_topic_id = u32::from_le_bytes(b);
            }
            let topics = txn.open_table(TOPICS).map_err(io)?;
            let messages = txn.open_table(MESSAGES).map_err(io)?;
            txn.open_table(DEDUP).map_err(io)?;
            txn.open_table(DEDUP_EXP).map_err(io)?;
            txn.open_table(RECORDS).map_err(io)?;
            for row in topics.iter().map_err(io)? {
                let (k, v) = row.map_err(io)?;
                let id = k.value();
                let mut rec = TopicRecord::decode(v.value())
                    .ok_or_else(|| StoreError::Io(format!("topic record {id} is corrupt")))?;
                // Statistics are written lazily: count what was committed after them.
                let known = rec.last.unwrap_or(0).max(rec.trimmed);
                for row in messages
                    .range((id, known + 1)..=(id, u64::MAX))
                    .map_err(io)?
                {
                    let (_, v) = row.map_err(io)?;
                    for (seq, m) in chunk_entries(v.value()) {
                        rec.count += 1;
                        rec.bytes += message_data_len(m).unwrap_or(0) as u64;
                        rec.last = Some(seq);
                        rec.first.get_or_insert(seq);
                        rec.live = true;
                    }
                }
                state.tail = state.tail.max(rec.last.unwrap_or(0));
                let first_chunk_dead = match messages
                    .range((id, 0)..=(id, rec.trimmed))
                    .map_err(io)?
                    .next()
                {
                    Some(row) => chunk_last(row.map_err(io)?.1.value()).unwrap_or(0) <= rec.trimmed,
                    None => false,
                };
                if first_chunk_dead {
                    state.purge.insert(id);
                }
                state.next_topic_id = state.next_topic_id.max(id + 1);
                state.by_name.insert(rec.name.clone(), id);
                state.topics.insert(id, rec);
            }
        }
        txn.commit().map_err(io)?;
        Ok((state, epoch))
    }

    pub(crate) fn directory(&self) -> Directory {
        Directory {
            by_name: self.by_name.clone(),
            topics: self.topics.clone(),
        }
    }
}

struct Tables<'t> {
    meta: Table<'t, &'static str, &'static [u8]>,
    topics: Table<'t, u32, &'static [u8]>,
    messages: Table<'t, (u32, u64), &'static [u8]>,
    dedup: Table<'t, (u32, &'static str), (u64, u64)>,
    dedup_exp: Table<'t, (u64, u32, &'static str), ()>,
    records: Table<'t, &'static str, &'static [u8]>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            meta: txn.open_table(META).map_err(io)?,
            topics: txn.open_table(TOPICS).map_err(io)?,
            messages: txn.open_table(MESSAGES).map_err(io)?,
            dedup: txn.open_table(DEDUP).map_err(io)?,
            dedup_exp: txn.open_table(DEDUP_EXP).map_err(io)?,
            records: txn.open_table(RECORDS).map_err(io)?,
        })
    }
}

/// An answer to send once the transaction has committed.
enum Answer {
    Append(Reply<Vec<Appended>>, Vec<Appended>),
    Retention(Reply<TopicInfo>, u32),
    Delete(Reply<bool>, bool),
    Close(Reply<()>),
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    ctx: StoreContext,
    opts: RedbOptions,
    rx: mpsc::Receiver<Request>,
    state: State,
    /// Topics that may be over a count or byte limit.
    over: BTreeSet<u32>,
    /// Topics still to check in the current maintenance pass.
    pass: Vec<u32>,
    /// Expired idempotency keys may remain.
    expire_keys: bool,
    maintain_waiters: Vec<Reply<()>>,
    /// Topics whose record must be written in the next commit (creation, trims,
    /// retention, deletion).
    dirty: BTreeSet<u32>,
    /// Chunks being built in the current transaction, by topic.
    chunks: HashMap<u32, ChunkBuilder>,
    /// Topics whose statistics changed by appends only; written at most once a second
    /// (the store repairs them from the log on open).
    stale: BTreeSet<u32>,
    stats_written: Instant,
    /// The topic id counter as last written to the meta table.
    stored_next_topic_id: u32,
    last_sync: Instant,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        ctx: StoreContext,
        opts: RedbOptions,
        rx: mpsc::Receiver<Request>,
        state: State,
    ) -> Self {
        let stored_next_topic_id = state.next_topic_id;
        Writer {
            shared,
            ctx,
            opts,
            rx,
            state,
            over: BTreeSet::new(),
            pass: Vec::new(),
            expire_keys: false,
            maintain_waiters: Vec::new(),
            dirty: BTreeSet::new(),
            chunks: HashMap::new(),
            stale: BTreeSet::new(),
            stats_written: Instant::now(),
            stored_next_topic_id,
            last_sync: Instant::now(),
        }
    }

    fn background_pending(&self) -> bool {
        !self.state.purge.is_empty()
            || !self.over.is_empty()
            || !self.pass.is_empty()
            || self.expire_keys
            || !self.maintain_waiters.is_empty()
    }

    pub(crate) fn run(mut self) {
        loop {
            let first = if self.background_pending() {
                match self.rx.try_recv() {
                    Ok(r) => Some(r),
                    Err(mpsc::error::TryRecvError::Empty) => None,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            } else {
                match self.rx.blocking_recv() {
                    Some(r) => Some(r),
                    None => return,
                }
            };
            let Some(first) = first else {
                self.background_step();
                continue;
            };
            let reqs = self.gather(first);
            if self.commit_requests(reqs) {
                return;
            }
        }
    }

    /// Takes whatever else is queued, up to the batch limits.
    fn gather(&mut self, first: Request) -> Vec<Request> {
        let (mut n, mut bytes) = first.weight();
        let mut reqs = vec![first];
        let linger_until = Instant::now() + self.opts.commit_window;
        loop {
            if n >= self.opts.max_batch_messages || bytes >= self.opts.max_batch_bytes {
                break;
            }
            match self.rx.try_recv() {
                Ok(r) => {
                    let (a, b) = r.weight();
                    n += a;
                    bytes += b;
                    reqs.push(r);
                }
                Err(_) => {
                    if reqs.len() > 1 && Instant::now() < linger_until {
                        std::thread::yield_now();
                        continue;
                    }
                    break;
                }
            }
        }
        reqs
    }

    fn begin(&self) -> Result<WriteTransaction, StoreError> {
        let mut txn = self.shared.db.begin_write().map_err(io)?;
        let durability = match self.opts.sync {
            SyncMode::Always => Durability::Immediate,
            SyncMode::Never if self.last_sync.elapsed() >= Duration::from_secs(1) => {
                Durability::Immediate
            }
            SyncMode::Never => Durability::None,
        };
        txn.set_durability(durability).map_err(io)?;
        Ok(txn)
    }

    /// Applies a batch of requests in one transaction. Returns true when closing.
    fn commit_requests(&mut self, reqs: Vec<Request>) -> bool {
        let mut fresh: Vec<Arc<Message>> = Vec::new();
        let mut answers: Vec<Answer> = Vec::new();
        let mut closing = false;
        let result = self.begin().and_then(|txn| {
            {
                let mut t = Tables::open(&txn)?;
                let now = self.ctx.clock.now_ms().max(self.state.last_time);
                self.state.last_time = now;
                let mut batch_keys: HashMap<(u32, Box<str>), (u64, u64)> = HashMap::new();
                for req in reqs {
                    match req {
                        Request::Append {
                            items,
                            records,
                            reply,
                        } => {
                            for r in &records {
                                match &r.value {
                                    Some(v) => t.records.insert(r.key.as_str(), &v[..]).map(|_| ()),
                                    None => t.records.remove(r.key.as_str()).map(|_| ()),
                                }
                                .map_err(io)?;
                            }
                            let mut out = Vec::with_capacity(items.len());
                            for item in items {
                                out.push(self.append_one(
                                    &mut t,
                                    item,
                                    now,
                                    &mut batch_keys,
                                    &mut fresh,
                                )?);
                            }
                            answers.push(Answer::Append(reply, out));
                        }
                        Request::SetRetention {
                            name,
                            retention,
                            reply,
                        } => {
                            let id = self.topic_id(&name);
                            if let Some(rec) = self.state.topics.get_mut(&id) {
                                rec.retention = Some(retention);
                                rec.live = true;
                            }
                            self.over.insert(id);
                            self.dirty.insert(id);
                            answers.push(Answer::Retention(reply, id));
                        }
                        Request::Delete { name, reply } => {
                            let existed = self.delete(&name);
                            answers.push(Answer::Delete(reply, existed));
                        }
                        Request::Maintain { reply } => {
                            self.start_pass();
                            self.maintain_waiters.push(reply);
                        }
                        Request::Close { reply } => {
                            closing = true;
                            answers.push(Answer::Close(reply));
                        }
                    }
                }
                self.flush_chunks(&mut t)?;
                let touched: Vec<u32> = self.over.iter().copied().collect();
                let mut budget = CHUNK;
                for id in touched {
                    if budget == 0 {
                        break;
                    }
                    if self.trim(&mut t, id, now, &mut budget, false)? {
                        self.over.remove(&id);
                    }
                }
                let changed: BTreeSet<u32> = self.dirty.union(&self.stale).copied().collect();
                self.write_dirty(&mut t, closing)?;
                self.publish_directory(&changed);
                self.dirty.clear();
            }
            // redb shows a commit to new readers just before `commit` returns, so the tail
            // is published first: no reader can hold a position beyond it.
            self.shared.tail.store(self.state.tail, Ordering::Release);
            txn.commit().map_err(io)?;
            Ok(())
        });
        match result {
            Ok(()) => {
                if self.opts.sync == SyncMode::Always
                    || self.last_sync.elapsed() >= Duration::from_secs(1)
                {
                    self.last_sync = Instant::now();
                }
                if !fresh.is_empty() {
                    self.ctx.sink.committed(&fresh);
                }
                let mut closing = false;
                for a in answers {
                    match a {
                        Answer::Append(reply, out) => {
                            let _ = reply.send(Ok(out));
                        }
                        Answer::Retention(reply, id) => {
                            let info = self.state.topics.get(&id).map(info);
                            let _ = reply.send(info.ok_or(StoreError::Io("topic vanished".into())));
                        }
                        Answer::Delete(reply, existed) => {
                            let _ = reply.send(Ok(existed));
                        }
                        Answer::Close(reply) => {
                            closing = true;
                            let _ = reply.send(Ok(()));
                        }
                    }
                }
                closing
            }
            Err(e) => {
                tracing::error!(error = %e, "commit failed; reloading writer state");
                let mut closing = false;
                for a in answers {
                    match a {
                        Answer::Append(reply, _) => {
                            let _ = reply.send(Err(e.clone()));
                        }
                        Answer::Retention(reply, _) => {
                            let _ = reply.send(Err(e.clone()));
                        }
                        Answer::Delete(reply, _) => {
                            let _ = reply.send(Err(e.clone()));
                        }
                        Answer::Close(reply) => {
                            closing = true;
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
                self.reload();
                closing
            }
        }
    }

    fn reload(&mut self) {
        self.chunks.clear();
        self.dirty.clear();
        self.stale.clear();
        match State::load(&self.shared.db) {
            Ok((state, _)) => {
                // Positions handed out by a failed commit are never reused: a reader may
                // already hold one as its `latest`.
                let assigned = self.state.tail;
                self.stored_next_topic_id = state.next_topic_id;
                self.state = state;
                self.state.tail = self.state.tail.max(assigned);
                self.shared.tail.store(self.state.tail, Ordering::Release);
                self.publish_all();
            }
            Err(e) => tracing::error!(error = %e, "cannot reload writer state"),
        }
    }

    fn topic_id(&mut self, name: &TopicName) -> u32 {
        if let Some(&id) = self.state.by_name.get(name) {
            if self.state.topics.get(&id).is_some_and(|r| !r.live) {
                self.dirty.insert(id);
            }
            return id;
        }
        let id = self.state.next_topic_id;
        self.state.next_topic_id += 1;
        self.state.by_name.insert(name.clone(), id);
        self.state.topics.insert(id, TopicRecord::new(name.clone()));
        self.dirty.insert(id);
        id
    }

    fn append_one(
        &mut self,
        t: &mut Tables<'_>,
        item: Append,
        now: u64,
        batch_keys: &mut HashMap<(u32, Box<str>), (u64, u64)>,
        fresh: &mut Vec<Arc<Message>>,
    ) -> Result<Appended, StoreError> {
        let id = self.topic_id(&item.topic);
        let seq = self.state.tail + 1;
        if let Some(key) = &item.idempotency_key {
            if let Some(&(seq, time_ms)) = batch_keys.get(&(id, key.clone())) {
                return Ok(Appended::Duplicate { seq, time_ms });
            }
            let window = self.ctx.dedup_window.as_millis() as u64;
            if let Some(v) = t.dedup.get((id, &**key)).map_err(io)? {
                let (seq, time_ms) = v.value();
                if time_ms + window > now {
                    return Ok(Appended::Duplicate { seq, time_ms });
                }
            }
            t.dedup.insert((id, &**key), (seq, now)).map_err(io)?;
            t.dedup_exp.insert((now, id, &**key), ()).map_err(io)?;
            batch_keys.insert((id, key.clone()), (seq, now));
        }
        self.state.tail = seq;
        let chunk = self.chunks.entry(id).or_default();
        chunk.push(seq, |out| {
            encode_message(
                out,
                now,
                item.event.as_deref(),
                &item.content_type,
                &item.headers,
                &item.data,
            )
        });
        if chunk.count as usize >= CHUNK_MESSAGES || chunk.buf.len() >= CHUNK_BYTES {
            let (first, bytes) = chunk.take();
            t.messages.insert((id, first), bytes).map_err(io)?;
        }
        if let Some(rec) = self.state.topics.get_mut(&id) {
            rec.live = true;
            rec.last = Some(seq);
            rec.first.get_or_insert(seq);
            rec.count += 1;
            rec.bytes += item.data.len() as u64;
            let r = rec.retention.unwrap_or(self.shared.default_retention);
            if r.max_messages.is_some_and(|m| rec.count > m)
                || r.max_bytes.is_some_and(|m| rec.bytes > m)
            {
                self.over.insert(id);
            }
        }
        self.stale.insert(id);
        let msg = Arc::new(Message::new(
            Cursor::new(self.shared.epoch, seq),
            item.topic,
            now,
            item.event,
            item.content_type,
            item.headers,
            item.data,
        ));
        fresh.push(msg.clone());
        Ok(Appended::New(msg))
    }

    /// Marks a topic deleted at once; its rows are purged in the background.
    fn delete(&mut self, name: &TopicName) -> bool {
        let Some(&id) = self.state.by_name.get(name) else {
            return false;
        };
        let Some(rec) = self.state.topics.get_mut(&id) else {
            return false;
        };
        if !rec.live {
            return false;
        }
        rec.live = false;
        rec.trimmed = rec.trimmed.max(rec.last.unwrap_or(0));
        rec.count = 0;
        rec.bytes = 0;
        rec.first = None;
        rec.retention = None;
        self.state.purge.insert(id);
        self.over.remove(&id);
        self.dirty.insert(id);
        true
    }

    /// Writes the chunks being built in this transaction.
    fn flush_chunks(&mut self, t: &mut Tables<'_>) -> Result<(), StoreError> {
        for (id, mut chunk) in self.chunks.drain() {
            if !chunk.is_empty() {
                let (first, bytes) = chunk.take();
                t.messages.insert((id, first), bytes).map_err(io)?;
            }
        }
        Ok(())
    }

    /// Removes the oldest messages of a topic while it is over its limits (and, when
    /// `age` is set, while they are too old), within `budget` messages. Removal moves the
    /// topic's trim mark (readers skip everything at or below it); a chunk is deleted once
    /// all its messages are below the mark. Returns true when the topic is within its
    /// limits.
    fn trim(
        &mut self,
        t: &mut Tables<'_>,
        id: u32,
        now: u64,
        budget: &mut usize,
        age: bool,
    ) -> Result<bool, StoreError> {
        let default = self.shared.default_retention;
        let Some(rec) = self.state.topics.get_mut(&id) else {
            return Ok(true);
        };
        let r = rec.retention.unwrap_or(default);
        if r.is_unlimited() || !rec.live {
            return Ok(true);
        }
        let max_age = if age {
            r.max_age.map(|d| d.as_millis() as u64)
        } else {
            None
        };
        loop {
            // The oldest chunk that still holds a retained message.
            let chunk = {
                let mut range = t.messages.range((id, 0)..=(id, u64::MAX)).map_err(io)?;
                match range.next() {
                    None => None,
                    Some(row) => {
                        let (k, v) = row.map_err(io)?;
                        let entries: Vec<(u64, u64, usize)> = chunk_entries(v.value())
                            .map(|(seq, m)| {
                                (
                                    seq,
                                    message_time(m).unwrap_or(0),
                                    message_data_len(m).unwrap_or(0),
                                )
                            })
                            .collect();
                        Some((k.value().1, entries))
                    }
                }
            };
            let Some((key, entries)) = chunk else {
                rec.first = None;
                return Ok(true);
            };
            let mut whole = true;
            for (seq, time, len) in entries {
                if seq <= rec.trimmed {
                    continue;
                }
                let over = r.max_messages.is_some_and(|m| rec.count > m)
                    || r.max_bytes.is_some_and(|m| rec.bytes > m);
                let expired = max_age.is_some_and(|a| time + a <= now);
                if !(over || expired) {
                    rec.first = Some(seq);
                    return Ok(true);
                }
                if *budget == 0 {
                    rec.first = Some(seq);
                    whole = false;
                    break;
                }
                *budget -= 1;
                rec.count = rec.count.saturating_sub(1);
                rec.bytes = rec.bytes.saturating_sub(len as u64);
                rec.trimmed = seq;
                self.dirty.insert(id);
            }
            if !whole {
                return Ok(false);
            }
            t.messages.remove((id, key)).map_err(io)?;
        }
    }

    /// Deletes the chunks of a topic that lie wholly at or below its trim mark (after a
    /// deletion), within `budget` chunks. True when done.
    fn purge(
        &mut self,
        t: &mut Tables<'_>,
        id: u32,
        budget: &mut usize,
    ) -> Result<bool, StoreError> {
        let Some(rec) = self.state.topics.get(&id) else {
            return Ok(true);
        };
        let mut dead = Vec::new();
        for row in t.messages.range((id, 0)..=(id, rec.trimmed)).map_err(io)? {
            if dead.len() >= *budget {
                break;
            }
            let (k, v) = row.map_err(io)?;
            if chunk_last(v.value()).unwrap_or(0) > rec.trimmed {
                break;
            }
            dead.push(k.value().1);
        }
        for &key in &dead {
            t.messages.remove((id, key)).map_err(io)?;
        }
        *budget -= dead.len();
        Ok(*budget > 0)
    }

    /// Removes expired idempotency keys, within `budget`. True when done.
    fn expire(
        &mut self,
        t: &mut Tables<'_>,
        now: u64,
        budget: &mut usize,
    ) -> Result<bool, StoreError> {
        let cutoff = now.saturating_sub(self.ctx.dedup_window.as_millis() as u64);
        let mut rows: Vec<(u64, u32, String)> = Vec::new();
        for row in t.dedup_exp.range(..(cutoff, 0, "")).map_err(io)? {
            if rows.len() >= *budget {
                break;
            }
            let (k, _) = row.map_err(io)?;
            let (time, id, key) = k.value();
            rows.push((time, id, key.to_owned()));
        }
        for (time, id, key) in &rows {
            t.dedup_exp.remove((*time, *id, key.as_str())).map_err(io)?;
            let same = t
                .dedup
                .get((*id, key.as_str()))
                .map_err(io)?
                .is_some_and(|v| v.value().1 == *time);
            if same {
                t.dedup.remove((*id, key.as_str())).map_err(io)?;
            }
        }
        *budget -= rows.len();
        Ok(*budget > 0)
    }

    fn start_pass(&mut self) {
        let default = self.shared.default_retention;
        self.pass = self
            .state
            .topics
            .iter()
            .filter(|(_, r)| r.live && !r.retention.unwrap_or(default).is_unlimited())
            .map(|(id, _)| *id)
            .collect();
        self.expire_keys = true;
    }

    /// One bounded step of background work in its own transaction.
    fn background_step(&mut self) {
        let result = self.begin().and_then(|txn| {
            {
                let mut t = Tables::open(&txn)?;
                let now = self.ctx.clock.now_ms();
                let mut budget = CHUNK;
                while let Some(&id) = self.state.purge.first() {
                    if !self.purge(&mut t, id, &mut budget)? {
                        break;
                    }
                    self.state.purge.remove(&id);
                }
                while budget > 0 {
                    let Some(&id) = self.over.first() else { break };
                    if !self.trim(&mut t, id, now, &mut budget, false)? {
                        break;
                    }
                    self.over.remove(&id);
                }
                while budget > 0 {
                    let Some(&id) = self.pass.last() else { break };
                    if !self.trim(&mut t, id, now, &mut budget, true)? {
                        break;
                    }
                    self.pass.pop();
                }
                if budget > 0 && self.expire_keys && self.expire(&mut t, now, &mut budget)? {
                    self.expire_keys = false;
                }
                let changed: BTreeSet<u32> = self.dirty.union(&self.stale).copied().collect();
                self.write_dirty(&mut t, false)?;
                self.publish_directory(&changed);
                self.dirty.clear();
            }
            txn.commit().map_err(io)
        });
        match result {
            Ok(()) => {
                let done = self.state.purge.is_empty()
                    && self.over.is_empty()
                    && self.pass.is_empty()
                    && !self.expire_keys;
                if done {
                    for w in self.maintain_waiters.drain(..) {
                        let _ = w.send(Ok(()));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "maintenance step failed");
                for w in self.maintain_waiters.drain(..) {
                    let _ = w.send(Err(e.clone()));
                }
                self.pass.clear();
                self.expire_keys = false;
                self.over.clear();
                self.reload();
                self.state.purge.clear();
            }
        }
    }

    fn write_dirty(&mut self, t: &mut Tables<'_>, all: bool) -> Result<(), StoreError> {
        if all || self.stats_written.elapsed() >= Duration::from_secs(1) {
            self.dirty.append(&mut self.stale);
            self.stats_written = Instant::now();
        }
        for id in &self.dirty {
            if let Some(rec) = self.state.topics.get(id) {
                t.topics.insert(*id, &rec.encode()[..]).map_err(io)?;
            }
        }
        if self.state.next_topic_id != self.stored_next_topic_id {
            t.meta
                .insert("next_topic_id", &self.state.next_topic_id.to_le_bytes()[..])
                .map_err(io)?;
            self.stored_next_topic_id = self.state.next_topic_id;
        }
        Ok(())
    }

    /// Shows changed topics to readers. Runs before commit: a reader whose snapshot holds
    /// a message can always resolve its topic, knows its newest position, and never
    /// misses a removal.
    fn publish_directory(&mut self, changed: &BTreeSet<u32>) {
        if changed.is_empty() {
            return;
        }
        let mut dir = self.shared.dir.write().unwrap_or_else(|e| e.into_inner());
        for id in changed {
            if let Some(rec) = self.state.topics.get(id) {
                dir.by_name.entry(rec.name.clone()).or_insert(*id);
                dir.topics.insert(*id, rec.clone());
            }
        }
    }

    fn publish_all(&mut self) {
        let mut dir = self.shared.dir.write().unwrap_or_else(|e| e.into_inner());
        *dir = self.state.directory();
    }
}

fn info(rec: &TopicRecord) -> TopicInfo {
    TopicInfo {
        name: rec.name.clone(),
        first: rec.first,
        last: rec.last,
        count: rec.count,
        bytes: rec.bytes,
        retention: rec.retention.unwrap_or_default(),
    }
}
