//! Ending a transaction: COMMIT (after the last flush) or ROLLBACK, and learning the outcome of a
//! COMMIT whose connection broke (in doubt) from the server on another connection. Kept apart
//! because the in-doubt protocol is its own subsystem, shared by own and grouped transactions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::failure::{Failure, Retry};
use super::pool::PoolInner;
use super::transaction::TxState;

/// Ends a transaction: commits (flushing its buffered writes) or rolls back.
pub(super) fn end_transaction(
    mut state: TxState,
    workspace_id: &str,
    commit: bool,
) -> std::result::Result<(), Failure> {
    let fresh = state.lease.fresh;
    let with_fresh = |mut failure: Failure| {
        failure.fresh = fresh;
        failure
    };
    if let Some(failure) = state.failure.take() {
        state.rollback();
        return Err(with_fresh(failure));
    }
    if !commit {
        state.rollback();
        return Ok(());
    }
    if state.flush(workspace_id).is_err() {
        let failure = state.failure.take().unwrap_or_else(|| Failure::internal("the flush failed"));
        state.rollback();
        return Err(with_fresh(failure));
    }
    let in_doubt = state.in_doubt;
    let pool = state.lease.pool.clone();
    let conn = state.conn().map_err(|_| Failure::internal("the transaction lost its connection"))?;
    match conn.client.batch_execute("COMMIT") {
        Ok(()) => {
            conn.in_transaction = false;
            Ok(())
        }
        Err(err) => {
            let failure = Failure::of(conn, err);
            if failure.retry != Retry::Reconnect {
                // A COMMIT that fails with a server error has rolled back.
                conn.in_transaction = false;
                return Err(with_fresh(failure));
            }
            // The server may or may not have committed; the work must not run twice, so ask.
            match in_doubt.and_then(|handle| commit_outcome(&pool, handle)) {
                Some(CommitOutcome::Committed) => Ok(()),
                Some(CommitOutcome::RolledBack) => Err(with_fresh(Failure {
                    message: format!("the connection broke before COMMIT took effect: {}", failure.message),
                    retry: Retry::Reconnect,
                    fresh,
                    source: failure.source.clone(),
                })),
                None => Err(Failure {
                    message: format!(
                        "the PostgreSQL connection broke during COMMIT and the outcome could not be learned: {}",
                        failure.message
                    ),
                    retry: Retry::InDoubt,
                    fresh,
                    source: failure.source,
                }),
            }
        }
    }
}

/// Begins a write transaction and reads its transaction id (assigned now) and its backend's pid.
pub(super) const BEGIN_WRITE: &str =
    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT txid_current()::text, pg_backend_pid()::text";

/// What identifies a write transaction once its connection is gone.
#[derive(Clone, Copy, Debug)]
pub(super) struct InDoubtHandle {
    /// `txid_current()`: the transaction id with its epoch, what `txid_status` takes.
    txid: i64,
    /// The backend that runs it.
    pid: i32,
}

pub(super) fn in_doubt_handle(messages: &[postgres::SimpleQueryMessage]) -> Option<InDoubtHandle> {
    messages.iter().find_map(|message| match message {
        postgres::SimpleQueryMessage::Row(row) => {
            Some(InDoubtHandle { txid: row.get(0)?.parse().ok()?, pid: row.get(1)?.parse().ok()? })
        }
        _ => None,
    })
}

enum CommitOutcome {
    Committed,
    RolledBack,
}

/// How long a request waits to learn the outcome of a COMMIT whose connection broke: within the
/// remote client's default check timeout (1 s), so the client can still ask again under its key.
const IN_DOUBT_WAIT: Duration = Duration::from_millis(500);

/// The status of a transaction whose connection broke during COMMIT, asked on another connection:
/// the server knows it once the old backend has finished. A backend still in that transaction (the
/// COMMIT did not reach it, and it has not noticed the broken connection) is terminated, so the
/// answer is final at once: rolled back. `None` when the server cannot be asked in time.
fn commit_outcome(pool: &Arc<PoolInner>, handle: InDoubtHandle) -> Option<CommitOutcome> {
    let deadline = Instant::now() + IN_DOUBT_WAIT;
    loop {
        if let Ok(rows) = pool.side_query(TXID_STATUS, &[&handle.txid]) {
            match rows.first().and_then(|row| row.get::<_, Option<String>>(0)).as_deref() {
                Some("committed") => return Some(CommitOutcome::Committed),
                Some("aborted") => return Some(CommitOutcome::RolledBack),
                // In progress: the old backend still holds the transaction.
                _ => {
                    let _ = pool.side_query(TERMINATE_IN_DOUBT, &[&handle.pid, &handle.txid]);
                }
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const TXID_STATUS: &str = "SELECT txid_status($1)";

/// Ends backend `$1` only while it still runs transaction `$2` (a pid may be reused), comparing the
/// 32-bit xid the activity view shows with the txid's low 32 bits.
const TERMINATE_IN_DOUBT: &str = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
     WHERE pid = $1 AND backend_xid::text::bigint = ($2::bigint % 4294967296)";
