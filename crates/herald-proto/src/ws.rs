//! WebSocket frames (`/v1/ws`). Subprotocol `herald.v1.json` sends each frame as a JSON
//! text frame; `herald.v1.msgpack` sends the same objects MessagePack-encoded (maps with
//! string keys) in binary frames.

use crate::{ErrorCode, Reset};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The JSON subprotocol (the default).
pub const PROTOCOL_JSON: &str = "herald.v1.json";
/// The MessagePack subprotocol.
pub const PROTOCOL_MSGPACK: &str = "herald.v1.msgpack";

/// Close code: the server is going away (shutdown). The reason carries cursors.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: a frame was larger than allowed.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: nothing was received within the idle timeout.
pub const CLOSE_IDLE: u16 = 4000;
/// Close code: the peer did not keep up with its messages. The reason carries cursors.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// Close code: the connection's token expired or was revoked (reason `token_expired` or
/// `token_revoked`); reconnect with a fresh token. The reason carries cursors.
pub const CLOSE_TOKEN: u16 = 4001;

/// One or several topics or patterns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Topics {
    /// One topic or pattern.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Topics {
    /// The topics or patterns as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Topics::One(t) => vec![t.clone()],
            Topics::Many(v) => v.clone(),
        }
    }
}

/// A frame from client to server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Follow a topic or pattern: answered with `subscribed`, then `message` frames.
    Subscribe {
        /// Echoed in the answer.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// Topic or pattern (or a list).
        topic: Topics,
        /// `latest` (default), `earliest` or a cursor.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// Stop a subscription.
    Unsubscribe {
        /// Echoed in the answer.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// The subscription id from `subscribed`.
        sub: String,
    },
    /// Publish a message: answered with `published`.
    Publish {
        /// Echoed in the answer.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// Target topic.
        topic: String,
        /// Payload: a JSON value (stored as JSON), a string with a non-JSON content type,
        /// or a base64 string with `encoding: "base64"`.
        data: Value,
        /// Event type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
        /// Content type of `data`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
        /// `"base64"` for raw bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encoding: Option<String>,
        /// Deduplication key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
    },
    /// Join a consumer group with up to `prefetch` unsettled deliveries: answered with
    /// `consuming`, then `delivery` frames.
    Consume {
        /// Echoed in the answer.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// The topic.
        topic: String,
        /// The group.
        group: String,
        /// Most unsettled deliveries at a time (default 10).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefetch: Option<usize>,
    },
    /// Acknowledge deliveries (receipts from `delivery` frames of this connection).
    Ack {
        /// Echoed in the answer (`acked`); without it only refusals are reported.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// Receipts.
        receipts: Vec<String>,
    },
    /// Return deliveries for redelivery after `delay` seconds.
    Nack {
        /// Echoed in the answer (`nacked`).
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// Receipts.
        receipts: Vec<String>,
        /// Seconds before redelivery.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay: Option<f64>,
        /// Why processing failed (kept as the last error).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Liveness check: answered with `pong`.
    Ping {
        /// Echoed in the answer.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
    },
    /// Become a responder of an RPC service: answered with `serving`, then `request`
    /// frames, each to be answered with a `reply` frame.
    Serve {
        /// Echoed in the answer.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// The service.
        service: String,
    },
    /// A responder's answer to a `request` frame.
    Reply {
        /// The `request_id` of the request.
        request_id: u64,
        /// HTTP semantics (200–599); 200 when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Payload, by the same rules as `publish`.
        #[serde(default)]
        data: Value,
        /// Content type of `data`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
        /// `"base64"` for raw bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encoding: Option<String>,
    },
    /// Call an RPC service: answered with `reply` (or an error frame).
    Call {
        /// Echoed in the answer.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// The service.
        service: String,
        /// Payload, by the same rules as `publish`.
        #[serde(default)]
        data: Value,
        /// Content type of `data`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
        /// `"base64"` for raw bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encoding: Option<String>,
        /// Seconds to wait for the reply (the server's default when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<f64>,
    },
}

/// A frame from server to client (except `message`, which servers write directly as
/// `{"op":"message","sub":…,"message":<envelope>}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A subscription started.
    Subscribed {
        /// The client's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// The subscription id used in `message` frames.
        sub: String,
        /// The position it starts after.
        cursor: String,
    },
    /// A subscription stopped.
    Unsubscribed {
        /// The client's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// The subscription id.
        sub: String,
        /// Its last delivered position.
        cursor: String,
    },
    /// A publish was stored.
    Published {
        /// The client's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// The message id.
        id: String,
        /// The topic.
        topic: String,
        /// RFC 3339 commit time.
        time: String,
    },
    /// A consumer joined its group.
    Consuming {
        /// The client's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// The id used in `delivery` frames.
        sub: String,
    },
    /// Receipts were acknowledged.
    Acked {
        /// The client's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// How many took effect.
        settled: usize,
        /// Those that did not, with why.
        refused: Vec<Refused>,
    },
    /// Receipts were returned for redelivery.
    Nacked {
        /// The client's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// How many took effect.
        settled: usize,
        /// Those that did not, with why.
        refused: Vec<Refused>,
    },
    /// Answer to `ping`.
    Pong {
        /// The client's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
    },
    /// The gap signal for one subscription.
    Reset {
        /// The subscription.
        sub: String,
        /// The reset.
        #[serde(flatten)]
        reset: Reset,
    },
    /// A request failed; the connection stays open.
    Error {
        /// The client's `ref`, when the failing frame had one.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// Stable error code.
        code: ErrorCode,
        /// What went wrong.
        message: String,
    },
    /// The connection serves an RPC service.
    Serving {
        /// The client's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// The id of this responder on the connection (`unsubscribe` stops it).
        sub: String,
    },
    /// A request for a responder on this connection; answer with `reply`.
    Request {
        /// The responder.
        sub: String,
        /// Quote it in the `reply`.
        request_id: u64,
        /// The service called.
        service: String,
        /// Content type of `data`.
        content_type: String,
        /// Payload (a JSON value, a string for text, base64 with `encoding`).
        data: Value,
        /// `"base64"` for raw bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encoding: Option<String>,
    },
    /// The answer to `call`.
    Reply {
        /// The client's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Value>,
        /// The responder's status.
        status: u16,
        /// Content type of `data`.
        content_type: String,
        /// Payload (a JSON value, a string for text, base64 with `encoding`).
        data: Value,
        /// `"base64"` for raw bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encoding: Option<String>,
    },
    /// The server is about to close the connection; every subscription's cursor.
    Closing {
        /// The close code that follows.
        code: u16,
        /// Why.
        reason: String,
        /// Subscription id → last delivered position.
        cursors: BTreeMap<String, String>,
    },
}

/// A receipt that could not be settled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refused {
    /// The receipt.
    pub receipt: String,
    /// Why (`lease_expired`, `unknown_receipt`).
    pub code: ErrorCode,
    /// Details.
    pub message: String,
}

/// Renders a close reason with as many `sub=cursor` pairs as fit in the 123 bytes a
/// close frame allows.
pub fn close_reason(reason: &str, cursors: &BTreeMap<String, String>) -> String {
    let mut out = reason.to_owned();
    for (sub, c) in cursors {
        let part = format!(" {sub}={c}");
        if out.len() + part.len() > 123 {
            break;
        }
        out.push_str(&part);
    }
    out
}
