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
    /// Seconds to send as `Retry-After`.
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a code and a detail message.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the client to retry after `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The problem document of this error.
    pub fn problem(&self) -> Problem {
        Problem::new(self.code, status(self.code).as_u16(), self.detail.clone())
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let retry = match &e {
            HubError::RateLimited { retry_after_ms, .. } => Some(retry_after_ms.div_ceil(1000)),
            HubError::LimitReached(_) => Some(1),
            _ => None,
        };
        let err = ApiError::new(e.code(), e.to_string());
        match retry {
            Some(s) => err.retry_after(s),
            None => err,
        }
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
        ErrorCode::LimitReached | ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
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
        crate::metrics::refused(self.code, "http");
        let problem = self.problem();
        if problem.status >= 500 {
            tracing::error!(code = %self.code, detail = %self.detail, "request failed");
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut res = (status(self.code), body).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.code == ErrorCode::Unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"herald\""),
            );
        }
        res
    }
}
