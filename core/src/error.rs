//! The engine's error type. Every variant has a stable machine `code()`: the contract that the HTTP
//! API, the CLI's exit codes and the bindings' typed exceptions are built on. Messages may change.

use crate::receipt::VerifyError;

/// One invalid field of a request, named by its path (`actions[2]`, `context.amount`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
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
    #[error("store unavailable: {0}")]
    Store(String),
    /// The connection to the store broke while it committed, and whether the commit landed could
    /// not be learned: the operation may have happened. Retrying it under the same idempotency
    /// key answers what happened (the first answer, or a first run if it did not).
    #[error("the outcome is unknown: {0}")]
    OutcomeUnknown(String),
    /// Randomness or signing failed; nothing was written.
    #[error("signing failed: {0}")]
    Signing(String),
    /// A receipt, checkpoint or export did not verify.
    #[error(transparent)]
    Verification(#[from] VerifyError),
    /// An error answer from a remote runtime, kept exactly as the server sent it.
    #[error("{message}")]
    Api { status: u16, code: String, message: String, fields: Vec<FieldError>, retry_after_seconds: Option<f64> },
    /// A remote runtime could not be reached, did not answer in time (`code` is `timeout`,
    /// `unreachable` or `protocol_error`), or answered outside the wire contract.
    #[error("{message}")]
    Unreachable { code: &'static str, message: String },
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
}

impl Error {
    pub fn code(&self) -> &str {
        match self {
            Error::Api { code, .. } => code,
            Error::Unreachable { code, .. } => code,
            Error::InvalidRequest { .. } => "invalid_request",
            Error::NotFound { code, .. } | Error::Conflict { code, .. } | Error::Unauthorized { code, .. } => code,
            Error::Store(_) => "store_unavailable",
            Error::OutcomeUnknown(_) => "outcome_unknown",
            Error::Signing(_) => "signing_failed",
            Error::Verification(err) => err.code(),
            Error::Io(_) => "io_error",
        }
    }

    /// The HTTP status `allowly serve` answers with for this error, so that embedded SDKs raise
    /// what a remote caller would see. `None` for a runtime that never answered.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::InvalidRequest { .. } | Error::Verification(_) => Some(422),
            Error::NotFound { .. } => Some(404),
            Error::Unauthorized { .. } => Some(401),
            Error::Conflict { .. } => Some(409),
            Error::Store(_) | Error::OutcomeUnknown(_) => Some(503),
            Error::Signing(_) | Error::Io(_) => Some(500),
            Error::Unreachable { .. } => None,
        }
    }

    /// Field-level details of an invalid request (empty for other errors).
    pub fn fields(&self) -> &[FieldError] {
        match self {
            Error::InvalidRequest { fields, .. } | Error::Api { fields, .. } => fields,
            _ => &[],
        }
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
        Error::Store(err.to_string())
    }
}

impl From<getrandom::Error> for Error {
    fn from(err: getrandom::Error) -> Error {
        Error::Signing(format!("no randomness: {err}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        Error::Io(err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
