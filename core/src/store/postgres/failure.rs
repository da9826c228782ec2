//! What a database failure means for a transaction: retried (lost a race), run again on a new
//! connection (broken before COMMIT), or in doubt (broken during COMMIT, never run again). Kept
//! apart because every other part classifies and reports failures the same way through it.

use std::sync::Arc;

use postgres::error::SqlState;

use super::pool::Conn;
use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Retry {
    /// Not worth retrying.
    No,
    /// Lost a race with another transaction: run the work again.
    Conflict,
    /// The connection broke before anything was committed: run again on another connection.
    Reconnect,
    /// The connection broke during COMMIT and the outcome is unknown: never run again; the caller
    /// learns what happened by retrying under its idempotency key.
    InDoubt,
}

pub(super) struct Failed {
    pub(super) error: Error,
    pub(super) retry: Retry,
    /// The connection had just been opened.
    pub(super) fresh: bool,
}

/// A database failure seen by a transaction.
pub(super) struct Failure {
    pub(super) message: String,
    pub(super) retry: Retry,
    pub(super) fresh: bool,
    /// The driver's error, shared: one failure of a grouped transaction answers every caller in it.
    pub(super) source: Option<Arc<postgres::Error>>,
}

impl Failure {
    pub(super) fn new(message: String, retry: Retry) -> Failure {
        Failure { message, retry, fresh: false, source: None }
    }

    pub(super) fn of(conn: &mut Conn, err: postgres::Error) -> Failure {
        let retry = classify(&err, conn.client.is_closed());
        if retry == Retry::Reconnect {
            conn.broken = true;
        }
        Failure { message: pg_message(&err), retry, fresh: false, source: Some(Arc::new(err)) }
    }

    pub(super) fn internal(message: &str) -> Failure {
        Failure::new(message.to_string(), Retry::No)
    }

    pub(super) fn copy(&self) -> Failure {
        Failure { message: self.message.clone(), source: self.source.clone(), ..*self }
    }

    pub(super) fn error(&self) -> Error {
        let error = match self.retry {
            Retry::InDoubt => Error::outcome_unknown(format!("postgresql: {}", self.message)),
            _ => Error::store(format!("postgresql: {}", self.message)),
        };
        match &self.source {
            Some(source) => error.caused_by(Arc::clone(source)),
            None => error,
        }
    }

    pub(super) fn failed(self) -> Failed {
        Failed { error: self.error(), retry: self.retry, fresh: self.fresh }
    }
}

fn classify(err: &postgres::Error, client_closed: bool) -> Retry {
    let io = std::error::Error::source(err).is_some_and(|source| source.is::<std::io::Error>());
    if client_closed || err.is_closed() || io {
        return Retry::Reconnect;
    }
    match err.code() {
        Some(code)
            if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::UNIQUE_VIOLATION =>
        {
            Retry::Conflict
        }
        Some(code)
            if *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW =>
        {
            Retry::Reconnect
        }
        _ => Retry::No,
    }
}

/// The server's message when there is one (`postgres::Error` alone says only "db error").
pub(super) fn pg_message(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => err.to_string(),
    }
}

pub(super) fn conn_error(conn: &mut Conn, err: postgres::Error) -> Error {
    Failure::of(conn, err).error()
}
