//! PostgreSQL store: one database holds many workspaces and is shared by many processes and
//! machines. A [`PostgresPool`] owns the connections (and migrates the schema when it connects);
//! a [`PostgresStore`] is one workspace on a pool, so one server process serves any number of
//! workspaces over one pool. Every table carries `workspace_id` and every statement filters by the
//! store's workspace: no statement reads or changes another workspace's rows.
//!
//! # Transactions: READ COMMITTED and explicit locks
//!
//! Write transactions run at READ COMMITTED, and every read the engine bases a change on takes a
//! lock first, so a budget, a daily or rate counter, a one-use escalation grant, a confirmation or
//! an idempotency key is never spent twice, whichever process or machine runs the engine:
//!
//! - **Authorization row lock.** `Tx::authorization` in a write transaction is
//!   `SELECT ... FOR NO KEY UPDATE`: every check reads its authorization before anything it may
//!   change, so checks on one authorization queue on that row and each sees the previous one's
//!   commit (each READ COMMITTED statement takes a fresh snapshot, and a row lock returns the
//!   newest version). Budgets, counters and rate events (keyed by authorization), and prompts
//!   (each of one authorization) are only changed under that lock. Checks on
//!   different authorizations do not wait for each other.
//! - **Prompt, reservation and API key row locks.** Resolving a confirmation (by nonce) or an
//!   escalation (by id), settling a reservation, revoking an API key and revoking an authorization's
//!   pending confirmations read their rows `FOR UPDATE`. Lock orders differ between a resolution
//!   (prompt, then authorization) and a revocation (authorization, then prompts); PostgreSQL's
//!   deadlock detector aborts one of the two and it is retried.
//! - **Unique keys for "insert if absent".** Idempotency records, checkpoints and the one active
//!   signing key are plain `INSERT`s against a unique key: two transactions that both saw "absent"
//!   cannot both commit; the loser gets a unique violation and is retried, and its retry sees the
//!   winner's row (a retried check replays the first answer).
//! - **Advisory locks** (transaction-scoped, per workspace) where no row exists to lock: reading the
//!   active signing key takes a *shared* lock that key rotation takes *exclusively* before it reads
//!   the clock, so no receipt is signed by a key after its window closed; reading the newest
//!   policy edition (to publish the next) and workspace setup (the first signing key) take
//!   exclusive locks. (Creating an authorization from the newest edition takes the policy lock
//!   too: such transactions are short, and they are not on the check path.)
//!
//! A transaction that loses a race (serialization failure, deadlock, unique violation) is rolled
//! back and the whole closure runs again (bounded attempts, jittered backoff); the engine's
//! closures are written so that running them again is safe. A connection that breaks before
//! `COMMIT` is replaced and the closure retried. One that breaks during `COMMIT` leaves the outcome
//! in doubt: the store asks the server, on another connection, for the status of the transaction's
//! id (read when it began), and answers what happened: committed (the work's answer stands), or
//! rolled back (the closure runs again). If the server cannot tell in time, the error is
//! [`Error::OutcomeUnknown`] (`outcome_unknown`), never "nothing was changed": the caller retries
//! under its idempotency key and gets the first answer if the commit landed.
//!
//! Why not SERIALIZABLE: every check on a hot authorization updates the same row, so under SSI
//! concurrent checks on it would nearly all fail and retry; queueing on the row lock does the same
//! work once. Read transactions use REPEATABLE READ for one consistent snapshot.
//!
//! # Round trips
//!
//! A check holds its authorization's row lock from its read to its commit, so what happens in
//! between bounds the checks per second of one authorization. Writes are therefore buffered and
//! sent in one statement when the transaction next reads or commits ([`Pending`]), the start of a
//! check (active key and locked authorization) is one call of a server-side function, and checks
//! of one authorization that arrive together share one transaction ([`Batch`]): one lock hand-off,
//! one flush and one commit for the group. Statements are prepared once per connection.
//!
//! # Failures
//!
//! Connections have a connect timeout, a TCP user timeout and keepalives; statements have a
//! `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout`. Every failure
//! is [`Error::Store`] (code `store_unavailable`), so a stopped server yields prompt errors (and
//! the engine's fail-closed fallback); broken connections are dropped and replaced on the next
//! use, so the store recovers by itself when the server comes back.
//!
//! # Layout
//!
//! This file holds the per-workspace [`PostgresStore`] and its retry loop; the rest lives beside it,
//! one concern a file: [`schema`] (migrations), [`pool`] (connections), [`transaction`] (one
//! transaction's state and write buffer), [`commit`] (ending a transaction, in-doubt commits),
//! [`group`] (checks sharing a transaction), [`tx`] (the [`Tx`] implementation), [`sql`] (statements
//! and row conversions) and [`failure`] (what is retried).

mod commit;
mod failure;
mod group;
mod pool;
mod schema;
mod sql;
mod transaction;
mod tx;

pub use pool::{PostgresOptions, PostgresPool};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::{Store, Tx};
use crate::error::{Error, Result};
use commit::{in_doubt_handle, BEGIN_WRITE};
use failure::{Failure, Retry};
use group::Batch;
use transaction::{Pending, TxState};
use tx::PgTx;

/// Advisory lock keys of one workspace (see the module documentation).
#[derive(Clone, Copy, Debug)]
struct LockKeys {
    /// Shared by every signing transaction, exclusive for key rotation.
    signing: i64,
    /// Held by transactions that read the newest policy edition (or all of them) to write one.
    policies: i64,
    /// Exclusive for workspace setup.
    setup: i64,
}

impl LockKeys {
    fn new(workspace_id: &str) -> LockKeys {
        let key = |purpose: &str| advisory_key(&format!("allowly:{purpose}:{workspace_id}"));
        LockKeys { signing: key("signing"), policies: key("policies"), setup: key("setup") }
    }
}

/// The advisory lock key of `name`: the first 8 bytes of its SHA-256.
fn advisory_key(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// One workspace in a PostgreSQL database.
pub struct PostgresStore {
    pool: PostgresPool,
    workspace_id: String,
    locks: LockKeys,
    /// The active signing key as last read under the signing lock, answered to a check before
    /// its transaction exists (see [`Batch`]); every transaction verifies what it was told.
    active_key: Mutex<Option<String>>,
    /// Open batches by authorization id.
    batches: Mutex<HashMap<String, Arc<Batch>>>,
}

impl PostgresStore {
    /// The store of `workspace_id` on `pool`. The workspace is registered (and gets its first
    /// signing key) when an engine is first opened on it.
    pub fn for_workspace(pool: &PostgresPool, workspace_id: &str) -> Result<PostgresStore> {
        let len = workspace_id.chars().count();
        if len == 0 || len > 128 || workspace_id.chars().any(char::is_control) {
            return Err(Error::invalid("workspace_id", "must be 1 to 128 printable characters"));
        }
        Ok(PostgresStore {
            pool: pool.clone(),
            workspace_id: workspace_id.to_string(),
            locks: LockKeys::new(workspace_id),
            active_key: Mutex::new(None),
            batches: Mutex::new(HashMap::new()),
        })
    }

    /// Connects a pool of `pool_size` connections (other options at their defaults) and returns
    /// the store of `workspace_id` on it.
    pub fn connect(database_url: &str, workspace_id: &str, pool_size: usize) -> Result<PostgresStore> {
        let pool = PostgresPool::connect(database_url, PostgresOptions { pool_size, ..PostgresOptions::default() })?;
        PostgresStore::for_workspace(&pool, workspace_id)
    }

    /// The ids of the workspaces in the pool's database, in order.
    pub fn list_workspaces(pool: &PostgresPool) -> Result<Vec<String>> {
        pool.list_workspaces()
    }

    pub fn workspace_id(&self) -> &str {
        &self.workspace_id
    }

    pub fn pool(&self) -> &PostgresPool {
        &self.pool
    }

    fn options(&self) -> &PostgresOptions {
        &self.pool.inner.options
    }

    fn run(&self, writing: bool, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let max_attempts = self.options().max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = PgTx::new(self, writing);
            let outcome = work(&mut tx);
            let failed = match tx.finish(outcome) {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            match failed.retry {
                Retry::Conflict if attempt < max_attempts => backoff(attempt),
                Retry::Reconnect if attempt < max_attempts => {
                    self.pool.inner.discard_idle();
                    // A connection that was just opened and broke at once points at the server,
                    // not at a stale connection: report it rather than loop.
                    if failed.fresh && attempt > 1 {
                        return Err(failed.error);
                    }
                }
                _ => return Err(failed.error),
            }
        }
    }

    /// A connection in a new transaction.
    fn begin(&self, writing: bool) -> std::result::Result<TxState, Failure> {
        let mut lease = self.pool.inner.acquire().map_err(|err| match err {
            Error::Store { message, .. } => Failure::new(message, Retry::No),
            other => Failure::new(other.to_string(), Retry::No),
        })?;
        let fresh = lease.fresh;
        let conn = lease.conn.as_mut().ok_or_else(|| Failure::internal("the pool lent an empty lease"))?;
        // Explicit isolation: the locking protocol relies on READ COMMITTED whatever the server's
        // default is.
        // A write transaction learns its id and its backend at once (same round trip), should its
        // COMMIT be cut off and its outcome have to be asked for (`commit_outcome`).
        let begun = if writing {
            conn.client.simple_query(BEGIN_WRITE).map(|messages| in_doubt_handle(&messages))
        } else {
            conn.client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ").map(|()| None)
        };
        let in_doubt = match begun {
            Ok(handle) => handle,
            Err(err) => {
                let mut failure = Failure::of(conn, err);
                failure.fresh = fresh;
                return Err(failure);
            }
        };
        conn.in_transaction = true;
        Ok(TxState {
            lease,
            pending: Pending::default(),
            failure: None,
            writes: 0,
            rows: Vec::new(),
            active_key: None,
            in_doubt,
        })
    }

    fn remember_key(&self, key: &Option<String>) {
        let mut cached = self.active_key.lock();
        if cached.as_ref() != key.as_ref() {
            cached.clone_from(key);
        }
    }
}

/// Sleeps a random time that grows with the attempt, so racing transactions spread out.
fn backoff(attempt: u32) {
    let cap_micros = 500u64 << attempt.min(6);
    let mut random = [0u8; 8];
    let jitter = match getrandom::getrandom(&mut random) {
        Ok(()) => u64::from_le_bytes(random) % cap_micros,
        Err(_) => cap_micros / 2,
    };
    std::thread::sleep(Duration::from_micros(jitter));
}

impl Store for PostgresStore {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.run(true, work)
    }

    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.run(false, work)
    }
}
