//! The HTTP door's error: every failure becomes an RFC 9457 problem document.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_core::HubError;
use herald_proto::{ErrorCode, Problem};

/// A failed HTTP request.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    detail: String,
}

impl ApiError {
    /// An error with a code and a detail message.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            detail: detail.into(),
        }
    }

    /// The problem document of this error.
    pub fn problem(&self) -> Problem {
        Problem::new(self.code, status(self.code).as_u16(), self.detail.clone())
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

/// The HTTP status of each code.
pub fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidTopic
        | ErrorCode::InvalidPattern
        | ErrorCode::InvalidCursor
        | ErrorCode::InvalidLimit
        | ErrorCode::InvalidWait
        | ErrorCode::InvalidBody
        | ErrorCode::InvalidJson
        | ErrorCode::InvalidRetention
        | ErrorCode::InvalidEvent
        | ErrorCode::InvalidParameter
        | ErrorCode::InvalidFrame
        | ErrorCode::UnknownOp
        | ErrorCode::ForbiddenDestination => StatusCode::BAD_REQUEST,
        ErrorCode::LimitReached => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::TopicNotFound
        | ErrorCode::NotFound
        | ErrorCode::GroupNotFound
        | ErrorCode::JobNotFound
        | ErrorCode::WebhookNotFound
        | ErrorCode::UnknownReceipt => StatusCode::NOT_FOUND,
        ErrorCode::LeaseExpired | ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::ShuttingDown | ErrorCode::NoResponder => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::ResponderGone => StatusCode::BAD_GATEWAY,
        ErrorCode::StorageFailure | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        if problem.status >= 500 {
            tracing::error!(code = %self.code, detail = %self.detail, "request failed");
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut res = (status(self.code), body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        res
    }
}
