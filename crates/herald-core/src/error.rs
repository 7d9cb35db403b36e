//! The hub's error type. Each variant has one stable [`ErrorCode`].

use crate::cursor::CursorError;
use crate::store::StoreError;
use crate::topic::{FilterError, NameError};
use herald_proto::ErrorCode;

/// Why a hub call failed. Nothing changed when a call fails.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopic { name: String, reason: NameError },
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern { pattern: String, reason: NameError },
    #[error("{0}")]
    InvalidFilter(#[from] FilterError),
    #[error("{0}")]
    InvalidCursor(#[from] CursorError),
    #[error("limit must be a whole number between 1 and {max}; got {got:?}")]
    InvalidLimit { got: String, max: usize },
    #[error("wait must be between 0 and {max} seconds; got {got}")]
    InvalidWait { got: String, max: u64 },
    #[error("payload is {size} bytes; the limit is {max}")]
    PayloadTooLarge { size: usize, max: usize },
    #[error("payload declared as JSON is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("invalid event name {0:?}: use 1-64 characters from A-Z a-z 0-9 _ . : / -")]
    InvalidEvent(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidRetention(String),
    #[error("topic {0:?} does not exist")]
    TopicNotFound(String),
    #[error("consumer group {0:?} does not exist")]
    GroupNotFound(String),
    #[error("job {0:?} does not exist")]
    JobNotFound(String),
    #[error("webhook {0:?} does not exist")]
    WebhookNotFound(String),
    #[error("refused destination: {0}")]
    ForbiddenDestination(String),
    #[error("receipt {0:?} is not a current delivery of this group")]
    UnknownReceipt(String),
    #[error("the lease of receipt {0:?} expired; the message is redelivered with a new receipt")]
    LeaseExpired(String),
    #[error("{0}")]
    Conflict(String),
    #[error("no responder is serving {0:?}")]
    NoResponder(String),
    #[error("no reply from {service:?} within {ms} ms")]
    Timeout { service: String, ms: u64 },
    #[error("the responder of {0:?} went away before replying")]
    ResponderGone(String),
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("{what}; try again in {retry_after_ms} ms")]
    RateLimited { what: String, retry_after_ms: u64 },
    #[error("{0}")]
    LimitReached(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl HubError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            HubError::InvalidTopic { .. } => ErrorCode::InvalidTopic,
            HubError::InvalidPattern { .. } | HubError::InvalidFilter(_) => {
                ErrorCode::InvalidPattern
            }
            HubError::InvalidCursor(_) => ErrorCode::InvalidCursor,
            HubError::InvalidLimit { .. } => ErrorCode::InvalidLimit,
            HubError::InvalidWait { .. } => ErrorCode::InvalidWait,
            HubError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            HubError::InvalidJson(_) => ErrorCode::InvalidJson,
            HubError::InvalidEvent(_) => ErrorCode::InvalidEvent,
            HubError::InvalidParameter(_) => ErrorCode::InvalidParameter,
            HubError::InvalidBody(_) => ErrorCode::InvalidBody,
            HubError::InvalidRetention(_) => ErrorCode::InvalidRetention,
            HubError::TopicNotFound(_) => ErrorCode::TopicNotFound,
            HubError::GroupNotFound(_) => ErrorCode::GroupNotFound,
            HubError::JobNotFound(_) => ErrorCode::JobNotFound,
            HubError::WebhookNotFound(_) => ErrorCode::WebhookNotFound,
            HubError::ForbiddenDestination(_) => ErrorCode::ForbiddenDestination,
            HubError::UnknownReceipt(_) => ErrorCode::UnknownReceipt,
            HubError::LeaseExpired(_) => ErrorCode::LeaseExpired,
            HubError::Conflict(_) => ErrorCode::Conflict,
            HubError::NoResponder(_) => ErrorCode::NoResponder,
            HubError::Timeout { .. } => ErrorCode::Timeout,
            HubError::ResponderGone(_) => ErrorCode::ResponderGone,
            HubError::Forbidden(_) => ErrorCode::Forbidden,
            HubError::Unauthorized(_) => ErrorCode::Unauthorized,
            HubError::RateLimited { .. } => ErrorCode::RateLimited,
            HubError::LimitReached(_) => ErrorCode::LimitReached,
            HubError::ShuttingDown => ErrorCode::ShuttingDown,
            HubError::Storage(StoreError::Closed) => ErrorCode::ShuttingDown,
            HubError::Storage(StoreError::Io(_)) => ErrorCode::StorageFailure,
        }
    }

    /// Parses a topic name, mapping the failure.
    pub fn topic(name: &str) -> Result<crate::TopicName, HubError> {
        crate::TopicName::parse(name).map_err(|reason| HubError::InvalidTopic {
            name: name.chars().take(256).collect(),
            reason,
        })
    }

    /// Parses a pattern, mapping the failure.
    pub fn pattern(pattern: &str) -> Result<crate::Pattern, HubError> {
        crate::Pattern::parse(pattern).map_err(|reason| HubError::InvalidPattern {
            pattern: pattern.chars().take(256).collect(),
            reason,
        })
    }
}
