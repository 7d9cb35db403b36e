use herald_proto::{ErrorCode, Problem};

/// What kind of failure an [`Error`] is.
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

/// An SDK error.
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
