//! Hub errors as gRPC statuses, in one place: the gRPC code for each stable herald code,
//! the herald code in the `herald-code` trailer, and the problem document (JSON) as the
//! status details.

use herald_core::HubError;
use herald_proto::{ErrorCode, Problem};
use tonic::{Code, Status};

/// The gRPC code of each herald code.
pub fn code(c: ErrorCode) -> Code {
    match c {
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
        | ErrorCode::UnsupportedMediaType
        | ErrorCode::ForbiddenDestination => Code::InvalidArgument,
        ErrorCode::PayloadTooLarge | ErrorCode::LimitReached | ErrorCode::RateLimited => {
            Code::ResourceExhausted
        }
        ErrorCode::Unauthorized => Code::Unauthenticated,
        ErrorCode::Forbidden => Code::PermissionDenied,
        ErrorCode::TopicNotFound
        | ErrorCode::GroupNotFound
        | ErrorCode::JobNotFound
        | ErrorCode::WebhookNotFound
        | ErrorCode::UnknownReceipt
        | ErrorCode::NotFound => Code::NotFound,
        ErrorCode::LeaseExpired | ErrorCode::Conflict => Code::FailedPrecondition,
        ErrorCode::MethodNotAllowed => Code::Unimplemented,
        ErrorCode::NoResponder | ErrorCode::ShuttingDown | ErrorCode::ResponderGone => {
            Code::Unavailable
        }
        ErrorCode::Timeout => Code::DeadlineExceeded,
        ErrorCode::StorageFailure | ErrorCode::Internal => Code::Internal,
    }
}

/// A status for `code` with `detail`.
pub fn status_for(c: ErrorCode, detail: impl Into<String>) -> Status {
    crate::metrics::refused(c, "grpc");
    let detail = detail.into();
    let http = crate::http::status(c).as_u16();
    let problem = serde_json::to_vec(&Problem::new(c, http, detail.clone())).unwrap_or_default();
    let mut s = Status::with_details(code(c), detail, problem.into());
    if let Ok(v) = c.as_str().parse() {
        s.metadata_mut().insert("herald-code", v);
    }
    s
}

/// The status of a hub error.
pub fn status(e: HubError) -> Status {
    status_for(e.code(), e.to_string())
}

/// A malformed request.
pub fn invalid(detail: impl Into<String>) -> Status {
    status_for(ErrorCode::InvalidParameter, detail)
}
