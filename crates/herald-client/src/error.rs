use herald_proto::{ErrorCode, Problem};

/// What kind of failure an [`Error`] is.
///
/// ```
/// use herald_client::ErrorKind;
/// let kind = ErrorKind::Status(404);
/// assert!(matches!(kind, ErrorKind::Status(s) if s >= 400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server could not be reached or the connection broke.
    Connect,
    /// The request timed out.
    Timeout,
    /// The server answered with an error status (see [`Error::problem`]).
    Status(u16),
    /// The server's answer could not be understood.
    Decode,
    /// The request could not be built from the given input.
    InvalidInput,
}

/// An SDK error: its [`ErrorKind`], and the server's problem document when there was
/// one.
///
/// ```no_run
/// # async fn demo(client: herald_client::Client) {
/// use herald_client::{ErrorKind, ReadOptions};
/// match client.read(&["bad..pattern"], ReadOptions::default()).await {
///     Err(e) if e.kind() == ErrorKind::Status(400) => eprintln!("refused: {:?}", e.code()),
///     Err(e) if e.is_transient() => eprintln!("try again later: {e}"),
///     other => println!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    problem: Option<Problem>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            problem: None,
        }
    }

    pub(crate) fn from_problem(status: u16, problem: Problem) -> Self {
        Error {
            kind: ErrorKind::Status(status),
            message: format!("{} ({}): {}", problem.title, problem.code, problem.detail),
            problem: Some(problem),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The server's problem document, when it sent one.
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// The server's stable error code, when it sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        self.problem.as_ref().map(|p| p.code)
    }

    /// Whether retrying later may succeed (connection trouble, timeouts, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Connect | ErrorKind::Timeout => true,
            ErrorKind::Status(s) => s >= 500 || s == 429,
            ErrorKind::Decode | ErrorKind::InvalidInput => false,
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_decode() {
            ErrorKind::Decode
        } else if e.is_builder() {
            ErrorKind::InvalidInput
        } else {
            ErrorKind::Connect
        };
        Error::new(kind, e.to_string())
    }
}

impl From<tonic::Status> for Error {
    /// The server's problem document travels in the status details; without one, the
    /// gRPC code is mapped to the nearest kind.
    fn from(s: tonic::Status) -> Self {
        if let Ok(p) = serde_json::from_slice::<Problem>(s.details()) {
            return Error::from_problem(p.status, p);
        }
        use tonic::Code;
        let kind = match s.code() {
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Aborted => {
                ErrorKind::Connect
            }
            Code::DeadlineExceeded => ErrorKind::Timeout,
            Code::ResourceExhausted => ErrorKind::Status(429),
            Code::InvalidArgument | Code::OutOfRange => ErrorKind::Status(400),
            Code::NotFound => ErrorKind::Status(404),
            Code::PermissionDenied => ErrorKind::Status(403),
            Code::Unauthenticated => ErrorKind::Status(401),
            Code::Unimplemented => ErrorKind::Status(501),
            Code::FailedPrecondition | Code::AlreadyExists => ErrorKind::Status(409),
            Code::Ok | Code::Internal | Code::DataLoss => ErrorKind::Status(500),
        };
        Error::new(kind, format!("gRPC {:?}: {}", s.code(), s.message()))
    }
}
