use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stable, machine-readable error code. The string form (`as_str`) is part of the
/// public contract: it appears as `code` in problem documents and WebSocket error frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A topic name breaks the naming rules.
    InvalidTopic,
    /// A pattern breaks the naming rules.
    InvalidPattern,
    /// A cursor string cannot be parsed.
    InvalidCursor,
    /// `limit` is outside 1–1000.
    InvalidLimit,
    /// `wait` is negative, not a number, or above the configured maximum.
    InvalidWait,
    /// The body does not parse (for example malformed JSON).
    InvalidBody,
    /// A payload declared as JSON is not valid JSON.
    InvalidJson,
    /// A payload or body is over its size limit.
    PayloadTooLarge,
    /// The request's content type is not accepted on this route.
    UnsupportedMediaType,
    /// A retention setting is invalid.
    InvalidRetention,
    /// An event name or header is invalid.
    InvalidEvent,
    /// A query or header parameter is malformed.
    InvalidParameter,
    /// A WebSocket frame could not be decoded.
    InvalidFrame,
    /// A WebSocket frame names an operation that does not exist.
    UnknownOp,
    /// A per-connection limit was reached (subscriptions, operations in flight).
    LimitReached,
    /// No valid credentials were presented.
    Unauthorized,
    /// Too many requests; retry after the time given.
    RateLimited,
    /// The credentials do not allow this operation.
    Forbidden,
    /// The topic does not exist.
    TopicNotFound,
    /// The consumer group does not exist.
    GroupNotFound,
    /// The job does not exist.
    JobNotFound,
    /// The webhook endpoint does not exist.
    WebhookNotFound,
    /// A webhook or callback URL points somewhere herald may not call.
    ForbiddenDestination,
    /// The receipt does not name a current delivery.
    UnknownReceipt,
    /// The receipt's lease expired; the message is redelivered under a new receipt.
    LeaseExpired,
    /// The request conflicts with the current state.
    Conflict,
    /// No responder is serving the RPC service.
    NoResponder,
    /// The responder did not reply in time.
    Timeout,
    /// Every responder tried went away before replying.
    ResponderGone,
    /// The route does not exist.
    NotFound,
    /// The method is not allowed on this route.
    MethodNotAllowed,
    /// The server is shutting down.
    ShuttingDown,
    /// Storage failed; the operation did not happen.
    StorageFailure,
    /// An unexpected internal failure.
    Internal,
}

impl ErrorCode {
    /// The stable string form of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidTopic => "invalid_topic",
            ErrorCode::InvalidPattern => "invalid_pattern",
            ErrorCode::InvalidCursor => "invalid_cursor",
            ErrorCode::InvalidLimit => "invalid_limit",
            ErrorCode::InvalidWait => "invalid_wait",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InvalidRetention => "invalid_retention",
            ErrorCode::InvalidEvent => "invalid_event",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::InvalidFrame => "invalid_frame",
            ErrorCode::UnknownOp => "unknown_op",
            ErrorCode::LimitReached => "limit_reached",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TopicNotFound => "topic_not_found",
            ErrorCode::GroupNotFound => "group_not_found",
            ErrorCode::JobNotFound => "job_not_found",
            ErrorCode::WebhookNotFound => "webhook_not_found",
            ErrorCode::ForbiddenDestination => "forbidden_destination",
            ErrorCode::UnknownReceipt => "unknown_receipt",
            ErrorCode::LeaseExpired => "lease_expired",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NoResponder => "no_responder",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ResponderGone => "responder_gone",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::StorageFailure => "storage_failure",
            ErrorCode::Internal => "internal",
        }
    }

    /// A short human title for the code (the problem document's `title`).
    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::InvalidTopic => "Invalid topic name",
            ErrorCode::InvalidPattern => "Invalid topic pattern",
            ErrorCode::InvalidCursor => "Invalid cursor",
            ErrorCode::InvalidLimit => "Invalid limit",
            ErrorCode::InvalidWait => "Invalid wait",
            ErrorCode::InvalidBody => "Invalid request body",
            ErrorCode::InvalidJson => "Invalid JSON payload",
            ErrorCode::PayloadTooLarge => "Payload too large",
            ErrorCode::UnsupportedMediaType => "Unsupported media type",
            ErrorCode::InvalidRetention => "Invalid retention",
            ErrorCode::InvalidEvent => "Invalid event name",
            ErrorCode::InvalidParameter => "Invalid parameter",
            ErrorCode::InvalidFrame => "Invalid frame",
            ErrorCode::UnknownOp => "Unknown operation",
            ErrorCode::LimitReached => "Limit reached",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::RateLimited => "Too many requests",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::TopicNotFound => "Topic not found",
            ErrorCode::GroupNotFound => "Consumer group not found",
            ErrorCode::JobNotFound => "Job not found",
            ErrorCode::WebhookNotFound => "Webhook not found",
            ErrorCode::ForbiddenDestination => "Forbidden destination",
            ErrorCode::UnknownReceipt => "Unknown receipt",
            ErrorCode::LeaseExpired => "Lease expired",
            ErrorCode::Conflict => "Conflict",
            ErrorCode::NoResponder => "No responder",
            ErrorCode::Timeout => "Timed out",
            ErrorCode::ResponderGone => "Responder gone",
            ErrorCode::NotFound => "Not found",
            ErrorCode::MethodNotAllowed => "Method not allowed",
            ErrorCode::ShuttingDown => "Shutting down",
            ErrorCode::StorageFailure => "Storage failure",
            ErrorCode::Internal => "Internal error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 9457 problem document with herald's stable `code`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type (`https://herald.dev/errors/<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// The stable error code.
    pub code: ErrorCode,
}

impl Problem {
    /// Builds a problem document for `code` with the given HTTP status and detail.
    pub fn new(code: ErrorCode, status: u16, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("https://herald.dev/errors/{}", code.as_str()),
            title: code.title().to_owned(),
            status,
            detail: detail.into(),
            code,
        }
    }
}
