//! Table definitions.

use redb::TableDefinition;

/// `epoch` → u32 LE; `next_topic_id` → u32 LE.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// topic id → encoded `TopicRecord` (kept after deletion, as a tombstone with its marks).
pub(crate) const TOPICS: TableDefinition<u32, &[u8]> = TableDefinition::new("topics");
/// (topic id, position) → encoded message.
pub(crate) const MESSAGES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("messages");
/// (topic id, idempotency key) → (position, commit time ms).
pub(crate) const DEDUP: TableDefinition<(u32, &str), (u64, u64)> = TableDefinition::new("dedup");
/// Durable state of consumer groups and webhook endpoints, written with appends.
pub(crate) const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
/// (commit time ms, topic id, key) → (): idempotency keys in expiry order.
pub(crate) const DEDUP_EXP: TableDefinition<(u64, u32, &str), ()> =
    TableDefinition::new("dedup_expiry");
