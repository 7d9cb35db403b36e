use crate::Envelope;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

/// Why a reader's cursor was unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResetReason {
    /// Messages after the cursor were removed by retention or topic deletion.
    Expired,
    /// The cursor belongs to another log (other epoch) or lies beyond its end.
    Epoch,
}

/// The in-band gap signal: the reader's cursor was unknown and reading continues from
/// the oldest retained message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reset {
    /// Why the cursor was unknown.
    pub reason: ResetReason,
    /// The position just before the oldest retained message.
    pub earliest: String,
    /// The position of the newest message in the log.
    pub latest: String,
}

/// The answer to a read, short poll or long poll.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadResponse {
    /// Messages after the requested cursor, oldest first.
    pub messages: Vec<Envelope>,
    /// The cursor to pass as `after` next time.
    pub next: String,
    /// Present when the requested cursor was unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<Reset>,
}

/// One item of a batch publish.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchItem {
    /// The topic to publish to.
    pub topic: String,
    /// The payload: any JSON value (kept as JSON), or a string with a `text/*` or other
    /// content type.
    #[schema(value_type = serde_json::Value)]
    pub data: Box<RawValue>,
    /// Optional event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Content type of `data`; `application/json` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `"base64"` when `data` is a base64 string of raw bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Deduplication key (same semantics as the `Idempotency-Key` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Retention settings of one topic. Absent or zero fields mean "no limit".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionSpec {
    /// Keep at most this many messages.
    #[schema(maximum = 18446744073709551615u64)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<u64>,
    /// Keep at most this many payload bytes.
    #[schema(maximum = 18446744073709551615u64)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Keep messages at most this long (`"30s"`, `"12h"`, `"7d"`, `"1h 30m"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
}

/// Statistics of one topic.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopicStats {
    /// The topic name.
    pub name: String,
    /// Cursor of the oldest retained message, if any.
    pub first: Option<String>,
    /// Cursor of the newest message, if any.
    pub last: Option<String>,
    /// Number of retained messages.
    pub count: u64,
    /// Retained payload bytes.
    pub bytes: u64,
    /// Live subscribers on this topic (exact and matching patterns).
    pub subscribers: u64,
    /// Consumer groups on this topic.
    pub groups: u64,
    /// The topic's retention settings.
    pub retention: RetentionSpec,
}

/// The answer to `GET /v1/topics`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopicsResponse {
    /// Every topic, sorted by name.
    pub topics: Vec<TopicStats>,
}

/// Helper for decoding data that is known to be a raw JSON value.
pub fn raw(value: &str) -> Result<Box<RawValue>, serde_json::Error> {
    RawValue::from_string(value.to_owned())
}
