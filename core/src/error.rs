//! The engine's error type. Every variant has a stable machine `code()`: the contract that the HTTP
//! API, the CLI's exit codes and the bindings' typed exceptions are built on. Messages may change.

use crate::receipt::VerifyError;

/// One invalid field of a request, named by its path (`actions[2]`, `context.amount`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// What kind of failure an error is: the one thing every surface maps. The HTTP status, the
/// Python exception class, the Node error class and the C result code are each one lookup from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed, out of range or over a limit; nothing was done.
    InvalidRequest,
    /// The credential is missing, malformed, unknown or revoked.
    Unauthorized,
    /// The credential may not make this call (a runtime key on a setup route).
    Forbidden,
    NotFound,
    /// The request conflicts with current state (a settled receipt, a reused idempotency key, ...).
    Conflict,
    /// Too many requests: retry after `retry_after_seconds`.
    RateLimited,
    /// The store (or the runtime's) is unavailable or busy; retry later.
    Unavailable,
    /// No answer in time.
    Timeout,
    /// The runtime could not be reached.
    Unreachable,
    /// The runtime answered outside the wire contract.
    Protocol,
    /// A receipt, checkpoint or export did not verify.
    Verification,
    /// The engine failed (signing, I/O, an unexpected server error).
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::InvalidRequest,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::RateLimited,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::Unreachable,
        ErrorKind::Protocol,
        ErrorKind::Verification,
        ErrorKind::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Verification => "verification",
            ErrorKind::Internal => "internal",
        }
    }

    /// The status `allowly serve` answers an error of this kind with; `None` for the kinds of a
    /// runtime that never answered.
    pub fn http_status(self) -> Option<u16> {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::Verification => Some(422),
            ErrorKind::Unauthorized => Some(401),
            ErrorKind::Forbidden => Some(403),
            ErrorKind::NotFound => Some(404),
            ErrorKind::Conflict => Some(409),
            ErrorKind::RateLimited => Some(429),
            ErrorKind::Unavailable => Some(503),
            ErrorKind::Internal => Some(500),
            ErrorKind::Timeout | ErrorKind::Unreachable | ErrorKind::Protocol => None,
        }
    }

    /// The kind of an error answer a runtime gave with `status`.
    pub fn of_http_status(status: u16) -> ErrorKind {
        match status {
            400 | 405 | 413 | 415 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 | 412 => ErrorKind::Conflict,
            408 | 504 => ErrorKind::Timeout,
            429 => ErrorKind::RateLimited,
            502 | 503 => ErrorKind::Unavailable,
            500..=599 => ErrorKind::Internal,
            _ => ErrorKind::Protocol,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or over a limit; nothing was written.
    #[error("{message}")]
    InvalidRequest { message: String, fields: Vec<FieldError> },
    /// The named object does not exist in this workspace (`code` is e.g. `authorization_not_found`).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The credential is missing, malformed, unknown or revoked.
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// The request conflicts with current state (a settled receipt, a reused idempotency key, ...).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The store failed or is busy; the operation did not happen.
    #[error("store unavailable: {message}")]
    Store {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The connection to the store broke while it committed, and whether the commit landed could
    /// not be learned: the operation may have happened. Retrying it under the same idempotency
    /// key answers what happened (the first answer, or a first run if it did not).
    #[error("the outcome is unknown: {message}")]
    OutcomeUnknown {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Randomness or signing failed; nothing was written.
    #[error("signing failed: {message}")]
    Signing {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// A receipt, checkpoint or export did not verify.
    #[error(transparent)]
    Verification(#[from] VerifyError),
    /// An error answer from a remote runtime, kept exactly as the server sent it.
    #[error("{message}")]
    Api { status: u16, code: String, message: String, fields: Vec<FieldError>, retry_after_seconds: Option<f64> },
    /// A remote runtime did not answer within the call's timeout.
    #[error("the runtime did not answer within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    /// A remote runtime could not be reached, or the connection failed mid-call.
    #[error("cannot reach the runtime: {message}")]
    Unreachable {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// A remote runtime's answer does not match the wire contract (docs/http-api.md).
    #[error("unexpected answer from the runtime: {0}")]
    Protocol(String),
    /// A file could not be read or written.
    #[error("{message}")]
    Io {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// A failure that is a bug: an answer that cannot be encoded, a broken invariant.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The stable machine code: for an error a runtime answered, the server's own.
    pub fn code(&self) -> &str {
        match self {
            Error::Api { code, .. } => code,
            Error::InvalidRequest { .. } => "invalid_request",
            Error::NotFound { code, .. } | Error::Conflict { code, .. } | Error::Unauthorized { code, .. } => code,
            Error::Store { .. } => "store_unavailable",
            Error::OutcomeUnknown { .. } => "outcome_unknown",
            Error::Signing { .. } => "signing_failed",
            Error::Verification(err) => err.code(),
            Error::Timeout { .. } => "timeout",
            Error::Unreachable { .. } => "unreachable",
            Error::Protocol(_) => "protocol_error",
            Error::Io { .. } => "io_error",
            Error::Internal(_) => "internal_error",
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Store { .. } | Error::OutcomeUnknown { .. } => ErrorKind::Unavailable,
            Error::Signing { .. } | Error::Io { .. } | Error::Internal(_) => ErrorKind::Internal,
            Error::Verification(_) => ErrorKind::Verification,
            Error::Api { status, .. } => ErrorKind::of_http_status(*status),
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Unreachable { .. } => ErrorKind::Unreachable,
            Error::Protocol(_) => ErrorKind::Protocol,
        }
    }

    /// The HTTP status `allowly serve` answers with for this error (or did answer), so that
    /// embedded SDKs raise what a remote caller would see. `None` for a runtime that never answered.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            other => other.kind().http_status(),
        }
    }

    /// How long to wait before retrying: the runtime's `Retry-After`, or the server's advice for
    /// an unavailable store (1 s).
    pub fn retry_after_seconds(&self) -> Option<f64> {
        match self {
            Error::Api { retry_after_seconds, .. } => *retry_after_seconds,
            Error::Store { .. } | Error::OutcomeUnknown { .. } => Some(1.0),
            _ => None,
        }
    }

    /// Field-level details of an invalid request (empty for other errors).
    pub fn fields(&self) -> &[FieldError] {
        match self {
            Error::InvalidRequest { fields, .. } | Error::Api { fields, .. } => fields,
            _ => &[],
        }
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::Internal(message.into())
    }

    pub fn store(message: impl Into<String>) -> Error {
        Error::Store { message: message.into(), source: None }
    }

    pub fn outcome_unknown(message: impl Into<String>) -> Error {
        Error::OutcomeUnknown { message: message.into(), source: None }
    }

    pub fn signing(message: impl Into<String>) -> Error {
        Error::Signing { message: message.into(), source: None }
    }

    pub fn unreachable(message: impl Into<String>) -> Error {
        Error::Unreachable { message: message.into(), source: None }
    }

    pub fn io(message: impl Into<String>) -> Error {
        Error::Io { message: message.into(), source: None }
    }

    /// Keeps the error this one came from (a SQLite, PostgreSQL, I/O or HTTP error), reachable
    /// through `std::error::Error::source`. Only the failures below the engine carry one; on other
    /// variants the cause is dropped.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Error {
        match &mut self {
            Error::Store { source, .. }
            | Error::OutcomeUnknown { source, .. }
            | Error::Signing { source, .. }
            | Error::Unreachable { source, .. }
            | Error::Io { source, .. } => *source = Some(Box::new(cause)),
            _ => {}
        }
        self
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        let message = message.into();
        let field = field.into();
        Error::InvalidRequest {
            message: format!("invalid `{field}`: {message}"),
            fields: vec![FieldError { field, message }],
        }
    }

    pub fn not_found(code: &'static str, kind: &str, id: &str) -> Error {
        Error::NotFound { code, message: format!("{kind} `{id}` was not found") }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict { code, message: message.into() }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Error {
        Error::store(err.to_string()).caused_by(err)
    }
}

impl From<getrandom::Error> for Error {
    fn from(err: getrandom::Error) -> Error {
        // getrandom::Error is not a std error without its `std` feature; its text says it all.
        Error::signing(format!("no randomness: {err}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        Error::io(err.to_string()).caused_by(err)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error a store, signing, I/O or connection failure came from.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn source_is<T: std::error::Error + 'static>(err: &Error) -> bool {
        err.source().is_some_and(|source| source.is::<T>())
    }

    #[test]
    fn failures_below_the_engine_keep_the_error_they_came_from() {
        let sqlite = rusqlite::Connection::open_in_memory().unwrap().execute("not sql", []).unwrap_err();
        let err = Error::from(sqlite);
        assert_eq!((err.code(), err.kind()), ("store_unavailable", ErrorKind::Unavailable));
        assert!(source_is::<rusqlite::Error>(&err), "{err:?}");

        let file = tempfile::NamedTempFile::new().unwrap();
        let err = crate::Allowly::open_embedded(file.path().join("home")).err().expect("a home under a file");
        assert_eq!(err.code(), "io_error");
        assert!(err.to_string().contains("cannot create"), "{err}");
        assert!(source_is::<std::io::Error>(&err), "{err:?}");

        // Errors the engine raises itself have nothing below them.
        assert!(Error::store("the transaction was rolled back").source().is_none());
    }

    #[cfg(feature = "remote")]
    #[test]
    fn an_unreachable_runtime_keeps_the_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let client = crate::remote::connect(&url, "ak_test", Default::default()).unwrap();
        let err = client.readiness().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unreachable, "{err:?}");
        assert!(source_is::<ureq::Error>(&err), "{err:?}");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn a_postgresql_connection_failure_keeps_the_driver_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("postgres://allowly@127.0.0.1:{port}/allowly?connect_timeout=2");
        let err = crate::store::PostgresStore::connect(&url, "ws_test", 1).err().expect("no server on the port");
        assert_eq!(err.code(), "store_unavailable");
        assert!(err.to_string().contains("cannot connect to PostgreSQL"), "{err}");
        assert!(source_is::<postgres::Error>(&err), "{err:?}");
    }
}
