//! The storage contract every log backend implements.

use crate::clock::Clock;
use crate::cursor::Epoch;
use crate::message::Message;
use crate::topic::{Filter, TopicName};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// A message to append.
#[derive(Debug, Clone)]
pub struct Append {
    /// Target topic.
    pub topic: TopicName,
    /// Optional event type.
    pub event: Option<Box<str>>,
    /// Payload content type.
    pub content_type: Box<str>,
    /// Optional headers.
    pub headers: Vec<(Box<str>, Box<str>)>,
    /// Payload.
    pub data: Bytes,
    /// Deduplication key, scoped to the topic.
    pub idempotency_key: Option<Box<str>>,
}

/// A piece of durable state (consumer groups, webhook endpoints) written in the same
/// transaction as an append. `value: None` deletes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The key, namespaced by its owner (`group/…`, `webhook/…`).
    pub key: String,
    /// The new value, or `None` to delete.
    pub value: Option<Bytes>,
}

/// The outcome of appending one message.
#[derive(Debug, Clone)]
pub enum Appended {
    /// Stored as a new message.
    New(Arc<Message>),
    /// The idempotency key was seen within the dedup window: the first message's position.
    Duplicate {
        /// Position of the first message with this key.
        seq: u64,
        /// Its commit time.
        time_ms: u64,
    },
}

/// What a read returns.
#[derive(Debug, Clone, Default)]
pub struct ReadBatch {
    /// Matching messages after the requested position, oldest first.
    pub messages: Vec<Arc<Message>>,
    /// The last committed position that the read saw (every matching message up to here
    /// is included, up to the limit).
    pub tail: u64,
    /// The highest position of a message removed (by retention or deletion) from a topic
    /// matching the filter; 0 when none was ever removed.
    pub trimmed: u64,
}

/// Retention limits of a topic; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many messages.
    pub max_messages: Option<u64>,
    /// Keep at most this many payload bytes.
    pub max_bytes: Option<u64>,
    /// Keep messages at most this long.
    pub max_age: Option<Duration>,
}

impl Retention {
    /// Whether no limit is set.
    pub fn is_unlimited(&self) -> bool {
        self.max_messages.is_none() && self.max_bytes.is_none() && self.max_age.is_none()
    }
}

/// Statistics of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The name.
    pub name: TopicName,
    /// Position of the oldest retained message.
    pub first: Option<u64>,
    /// Position of the newest message ever published (even if removed since).
    pub last: Option<u64>,
    /// Retained messages.
    pub count: u64,
    /// Retained payload bytes.
    pub bytes: u64,
    /// Retention limits.
    pub retention: Retention,
}

/// A storage failure. The operation that returned it did not take effect.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store is closed or closing.
    #[error("the store is closed")]
    Closed,
    /// An I/O or database failure.
    #[error("storage failure: {0}")]
    Io(String),
}

/// Receives every committed batch, in log order, exactly once, right after it is durable
/// and visible to reads. Must not block.
pub trait CommitSink: Send + Sync + 'static {
    /// A batch was committed.
    fn committed(&self, batch: &[Arc<Message>]);
}

/// What a store needs from the hub that owns it.
#[derive(Clone)]
pub struct StoreContext {
    /// Where committed batches go.
    pub sink: Arc<dyn CommitSink>,
    /// Wall-clock time for message times, dedup windows and age retention.
    pub clock: Arc<dyn Clock>,
    /// How long an idempotency key is remembered.
    pub dedup_window: Duration,
    /// Retention for topics that have none of their own.
    pub default_retention: Retention,
}

impl std::fmt::Debug for StoreContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreContext")
            .field("clock", &self.clock)
            .field("dedup_window", &self.dedup_window)
            .field("default_retention", &self.default_retention)
            .finish_non_exhaustive()
    }
}

/// The log storage contract. Appends are batched, atomic and durable before they are
/// answered; reads are snapshot-consistent.
pub trait LogStore: Send + Sync + std::fmt::Debug + 'static {
    /// The log's epoch, fixed for the lifetime of its data.
    fn epoch(&self) -> Epoch;
    /// The last committed position (0 when the log is empty).
    fn tail(&self) -> u64;
    /// Appends messages and writes records atomically, in order; answers after they are
    /// durable.
    fn append(
        &self,
        items: Vec<Append>,
        records: Vec<Record>,
    ) -> BoxFuture<'static, Result<Vec<Appended>, StoreError>>;
    /// Every record whose key starts with `prefix`, sorted by key.
    fn records(&self, prefix: &str) -> Result<Vec<(String, Bytes)>, StoreError>;
    /// Reads up to `limit` matching messages with positions greater than `after`.
    fn read(&self, filter: &Filter, after: u64, limit: usize) -> Result<ReadBatch, StoreError>;
    /// The highest position removed from any topic matching `filter` (0 if none): the
    /// filter's `earliest` position, from which nothing matching is missing.
    fn trimmed(&self, filter: &Filter) -> Result<u64, StoreError>;
    /// How many retained messages of `topic` lie after position `after`.
    fn count_after(&self, topic: &TopicName, after: u64) -> Result<u64, StoreError>;
    /// Every live topic, sorted by name.
    fn topics(&self) -> Result<Vec<TopicInfo>, StoreError>;
    /// One live topic.
    fn topic(&self, name: &TopicName) -> Result<Option<TopicInfo>, StoreError>;
    /// Sets a topic's retention (creating the topic if needed) and applies it.
    fn set_retention(
        &self,
        name: &TopicName,
        retention: Retention,
    ) -> BoxFuture<'static, Result<TopicInfo, StoreError>>;
    /// Removes a topic and its messages. Answers whether it existed.
    fn delete_topic(&self, name: &TopicName) -> BoxFuture<'static, Result<bool, StoreError>>;
    /// Applies retention and expires idempotency keys now, to completion.
    fn maintain(&self) -> BoxFuture<'static, Result<(), StoreError>>;
    /// Commits what is pending and stops accepting writes.
    fn close(&self) -> BoxFuture<'static, Result<(), StoreError>>;
}
