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

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, MappedMutexGuard, Mutex, MutexGuard};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{CheckpointRecord, Loaded, Store, Tx, UnreadableRow};
use crate::error::{Error, Result};
use crate::model::{
    ApiKeyRecord, Authorization, Confirmation, Escalation, IdempotencyRecord, PolicyEdition, PromptStatus, Reservation,
    SigningKeyRecord, StoredReceipt,
};
use crate::receipt::SignedReceipt;
use crate::time::Timestamp;

/// The schema version this engine writes; a database with a newer one is refused.
pub const SCHEMA_VERSION: i32 = 1;

/// Key of the advisory lock that serializes migrations across processes.
const MIGRATION_LOCK: i64 = 0x616c_6c6f_776c_7900; // "allowly\0"

/// Migrations by version; each runs once, in order, in the migrating transaction.
const MIGRATIONS: &[(i32, &str)] = &[(1, SCHEMA_V1)];

/// Identifier-like text columns use the "C" collation: byte order, like the other stores, and
/// independent of the database's locale.
const SCHEMA_V1: &str = r#"
CREATE TABLE IF NOT EXISTS allowly.workspaces (
    workspace_id text COLLATE "C" PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS allowly.signing_keys (
    workspace_id text COLLATE "C" NOT NULL, key_id text COLLATE "C" NOT NULL,
    secret_key bytea NOT NULL, public_key bytea NOT NULL, active_from bigint NOT NULL, active_until bigint,
    PRIMARY KEY (workspace_id, key_id));
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_one_active ON allowly.signing_keys (workspace_id)
    WHERE active_until IS NULL;
CREATE TABLE IF NOT EXISTS allowly.policy_editions (
    workspace_id text COLLATE "C" NOT NULL, policy_id text COLLATE "C" NOT NULL, policy_version bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (workspace_id, policy_id, policy_version));
CREATE TABLE IF NOT EXISTS allowly.authorizations (
    workspace_id text COLLATE "C" NOT NULL, authorization_id text COLLATE "C" NOT NULL, body text NOT NULL,
    PRIMARY KEY (workspace_id, authorization_id)) WITH (fillfactor = 70);
CREATE TABLE IF NOT EXISTS allowly.counters (
    workspace_id text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, value bigint NOT NULL,
    PRIMARY KEY (workspace_id, key)) WITH (fillfactor = 70);
CREATE TABLE IF NOT EXISTS allowly.events (
    workspace_id text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, at bigint NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_key ON allowly.events (workspace_id, key, at);
CREATE TABLE IF NOT EXISTS allowly.confirmations (
    workspace_id text COLLATE "C" NOT NULL, confirmation_id text COLLATE "C" NOT NULL,
    nonce text COLLATE "C" NOT NULL, prompt_key text COLLATE "C" NOT NULL,
    authorization_id text COLLATE "C" NOT NULL, status text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY, body text NOT NULL,
    PRIMARY KEY (workspace_id, confirmation_id), UNIQUE (workspace_id, nonce));
CREATE INDEX IF NOT EXISTS confirmations_by_prompt ON allowly.confirmations (workspace_id, prompt_key, seq);
CREATE INDEX IF NOT EXISTS confirmations_by_authorization
    ON allowly.confirmations (workspace_id, authorization_id, status);
CREATE TABLE IF NOT EXISTS allowly.escalations (
    workspace_id text COLLATE "C" NOT NULL, escalation_id text COLLATE "C" NOT NULL,
    prompt_key text COLLATE "C" NOT NULL, seq bigint GENERATED ALWAYS AS IDENTITY, body text NOT NULL,
    PRIMARY KEY (workspace_id, escalation_id));
CREATE INDEX IF NOT EXISTS escalations_by_prompt ON allowly.escalations (workspace_id, prompt_key, seq);
CREATE TABLE IF NOT EXISTS allowly.reservations (
    workspace_id text COLLATE "C" NOT NULL, reservation_id text COLLATE "C" NOT NULL, body text NOT NULL,
    PRIMARY KEY (workspace_id, reservation_id));
CREATE TABLE IF NOT EXISTS allowly.reservation_receipts (
    workspace_id text COLLATE "C" NOT NULL, receipt_id text COLLATE "C" NOT NULL,
    reservation_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (workspace_id, receipt_id));
CREATE TABLE IF NOT EXISTS allowly.idempotency (
    workspace_id text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, request_sha256 text NOT NULL,
    response text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, key));
CREATE TABLE IF NOT EXISTS allowly.receipts (
    workspace_id text COLLATE "C" NOT NULL, receipt_id text COLLATE "C" NOT NULL, issued_at bigint NOT NULL,
    authorization_id text COLLATE "C", is_checkpoint boolean NOT NULL, jws text NOT NULL,
    PRIMARY KEY (workspace_id, receipt_id));
CREATE INDEX IF NOT EXISTS receipts_by_time ON allowly.receipts (workspace_id, issued_at, receipt_id);
CREATE TABLE IF NOT EXISTS allowly.api_keys (
    workspace_id text COLLATE "C" NOT NULL, key_id text COLLATE "C" NOT NULL, body text NOT NULL,
    PRIMARY KEY (workspace_id, key_id));
CREATE TABLE IF NOT EXISTS allowly.checkpoints (
    workspace_id text COLLATE "C" NOT NULL, period_start bigint NOT NULL, receipt_id text COLLATE "C" NOT NULL,
    merkle_root text NOT NULL,
    PRIMARY KEY (workspace_id, period_start));
-- The active key under a shared advisory lock, in one round trip. The lock is taken before the
-- key is read: a VOLATILE function's queries each take a fresh snapshot, so the read sees a
-- rotation that committed while the lock was awaited.
CREATE OR REPLACE FUNCTION allowly.active_key_id(p_workspace_id text, p_lock bigint) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_lock);
    RETURN (SELECT key_id FROM allowly.signing_keys
            WHERE workspace_id = p_workspace_id AND active_until IS NULL LIMIT 1);
END
$$;
-- The start of a check, in one round trip: the active key as above, then the authorization under
-- its row lock (a fresh snapshot again, so it is the newest version once the lock is granted).
CREATE OR REPLACE FUNCTION allowly.begin_check(p_workspace_id text, p_lock bigint, p_authorization_id text,
    OUT o_key_id text, OUT o_body text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_lock);
    SELECT k.key_id INTO o_key_id FROM allowly.signing_keys k
        WHERE k.workspace_id = p_workspace_id AND k.active_until IS NULL LIMIT 1;
    SELECT a.body INTO o_body FROM allowly.authorizations a
        WHERE a.workspace_id = p_workspace_id AND a.authorization_id = p_authorization_id
        FOR NO KEY UPDATE;
END
$$;
"#;

/// Tunables of a [`PostgresPool`]; the defaults suit a server on the same network.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Most connections the pool keeps open (default 16).
    pub pool_size: usize,
    /// How long opening a connection may take, unless the URL sets `connect_timeout` (default 5 s).
    pub connect_timeout: Duration,
    /// How long a caller waits for a free connection when all are busy (default 10 s).
    pub acquire_timeout: Duration,
    /// Server-side limit on one statement (`statement_timeout`, default 10 s).
    pub statement_timeout: Duration,
    /// How long a statement waits for a row or advisory lock (`lock_timeout`, default 10 s).
    pub lock_timeout: Duration,
    /// How long a transaction may stay idle before the server ends it and frees its locks, should
    /// a client stall mid-transaction (`idle_in_transaction_session_timeout`, default 60 s).
    pub idle_in_transaction_timeout: Duration,
    /// Attempts of a transaction that loses a race or finds its connection broken (default 10).
    pub max_attempts: u32,
    /// Most checks of one authorization that share a transaction when they arrive together
    /// (default 64; 1 gives every check a transaction of its own). See the module documentation.
    pub batch_size: usize,
    /// `synchronous_commit` for this pool's sessions; `None` keeps the server's setting (default:
    /// every commit is durable before the answer is returned). `Some(false)` trades the last
    /// moments of commits on a server crash for latency, never consistency.
    pub synchronous_commit: Option<bool>,
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(10),
            idle_in_transaction_timeout: Duration::from_secs(60),
            max_attempts: 10,
            batch_size: 64,
            synchronous_commit: None,
        }
    }
}

/// A pool of connections to one PostgreSQL database, shared by the workspaces' stores. Cloning
/// is cheap and shares the connections.
#[derive(Clone)]
pub struct PostgresPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    config: Config,
    options: PostgresOptions,
    state: Mutex<PoolState>,
}

struct PoolState {
    idle: Vec<Conn>,
    /// Connections open or being opened, idle or lent out.
    open: usize,
    /// Callers waiting for a connection, first come first served.
    waiters: VecDeque<Arc<Waiter>>,
}

/// A connection with its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// Set when the connection failed in a way that leaves it unusable.
    broken: bool,
    /// Between a successful `BEGIN` and the end of the transaction; such a connection is never
    /// reused (should the work have panicked).
    in_transaction: bool,
}

impl Conn {
    fn statement(&mut self, sql: &'static str) -> std::result::Result<Statement, postgres::Error> {
        if let Some(found) = self.statements.get(sql) {
            return Ok(found.clone());
        }
        let prepared = self.client.prepare(sql)?;
        self.statements.insert(sql, prepared.clone());
        Ok(prepared)
    }
}

/// A connection lent out by the pool; it goes back (or is dropped if broken) when this is dropped.
struct Lease {
    pool: Arc<PoolInner>,
    conn: Option<Conn>,
    /// Opened for this lease rather than reused from the idle list.
    fresh: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.release(conn);
        }
    }
}

impl PostgresPool {
    /// Connects to `database_url` (`postgres://user:password@host:port/database?...`; libpq-style
    /// `key=value` strings work too) and creates or migrates the schema. TLS is not supported: use
    /// a local or tunneled connection. Fails with [`Error::Store`] when the server is unreachable.
    pub fn connect(database_url: &str, options: PostgresOptions) -> Result<PostgresPool> {
        if options.pool_size == 0 {
            return Err(Error::invalid("pool_size", "must be at least 1"));
        }
        let mut config = Config::from_str(database_url)
            .map_err(|err| Error::invalid("database_url", format!("is not a PostgreSQL URL: {err}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_tcp_user_timeout().is_none() {
            // Unacknowledged writes to a vanished server fail after this instead of minutes.
            config.tcp_user_timeout(options.connect_timeout.max(Duration::from_secs(10)));
        }
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(Duration::from_secs(30));
        }
        if config.get_application_name().is_none() {
            config.application_name("allowly");
        }
        let millis = |d: Duration| d.as_millis().clamp(1, i32::MAX as u128);
        let mut session = format!(
            "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
            millis(options.statement_timeout),
            millis(options.lock_timeout),
            millis(options.idle_in_transaction_timeout),
        );
        if let Some(synchronous) = options.synchronous_commit {
            session.push_str(if synchronous { " -c synchronous_commit=on" } else { " -c synchronous_commit=off" });
        }
        // The URL's own options come last, so they win.
        if let Some(own) = config.get_options() {
            session = format!("{session} {own}");
        }
        config.options(&session);
        let pool = PostgresPool {
            inner: Arc::new(PoolInner {
                config,
                options,
                state: Mutex::new(PoolState { idle: Vec::new(), open: 0, waiters: VecDeque::new() }),
            }),
        };
        pool.migrate()?;
        Ok(pool)
    }

    /// The ids of the workspaces in the database, in order.
    pub fn list_workspaces(&self) -> Result<Vec<String>> {
        let mut lease = self.inner.acquire()?;
        let conn = lease.conn_mut()?;
        let rows = conn
            .client
            .query("SELECT workspace_id FROM allowly.workspaces ORDER BY workspace_id", &[])
            .map_err(|err| conn_error(conn, &err))?;
        rows.iter().map(|row| get(row, 0)).collect()
    }

    /// Whether the database holds workspace `workspace_id` (opening an engine on an unknown id
    /// would register it, so servers ask first).
    pub fn workspace_exists(&self, workspace_id: &str) -> Result<bool> {
        Ok(!self.inner.side_query(WORKSPACE_EXISTS, &[&workspace_id])?.is_empty())
    }

    /// Runs `work` holding a session advisory lock named `lock`, so processes sharing the database
    /// do it one at a time (two servers starting on an empty database create one first workspace,
    /// not two). The lock lives on a connection of its own: `work` may use the whole pool.
    pub fn exclusively<T>(&self, lock: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let key = advisory_key(&format!("allowly.exclusive.{lock}"));
        let store_error = |err: postgres::Error| Error::Store(format!("postgresql: {}", pg_message(&err)));
        let mut client = self
            .inner
            .config
            .connect(NoTls)
            .map_err(|err| Error::Store(format!("cannot connect to PostgreSQL: {}", pg_message(&err))))?;
        client.execute("SELECT pg_advisory_lock($1)", &[&key]).map_err(store_error)?;
        let outcome = work();
        // Closing the session releases the lock even if this unlock fails.
        let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&key]);
        outcome
    }

    /// The pool's tunables.
    pub fn options(&self) -> &PostgresOptions {
        &self.inner.options
    }

    fn migrate(&self) -> Result<()> {
        let mut lease = self.inner.acquire()?;
        let conn = lease.conn_mut()?;
        // Fast path: an up-to-date schema needs no lock and no DDL privileges.
        let exists: bool = conn
            .client
            .query_one("SELECT to_regclass('allowly.schema_version') IS NOT NULL", &[])
            .and_then(|row| row.try_get(0))
            .map_err(|err| conn_error(conn, &err))?;
        if exists {
            let current: Option<i32> = conn
                .client
                .query_one("SELECT max(version) FROM allowly.schema_version", &[])
                .and_then(|row| row.try_get(0))
                .map_err(|err| conn_error(conn, &err))?;
            if current == Some(SCHEMA_VERSION) {
                return Ok(());
            }
        }
        conn.client.batch_execute("BEGIN").map_err(|err| conn_error(conn, &err))?;
        let migrated = migrate_locked(&mut conn.client);
        let finish = if migrated.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let finished = conn.client.batch_execute(finish).map_err(|err| conn_error(conn, &err));
        migrated?;
        finished
    }
}

fn migrate_locked(client: &mut Client) -> Result<()> {
    let sql_error =
        |err: postgres::Error| Error::Store(format!("cannot migrate the PostgreSQL schema: {}", pg_message(&err)));
    client.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(sql_error)?;
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS allowly;
             CREATE TABLE IF NOT EXISTS allowly.schema_version (
                 version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());",
        )
        .map_err(sql_error)?;
    let version: i32 = client
        .query_one("SELECT coalesce(max(version), 0) FROM allowly.schema_version", &[])
        .and_then(|row| row.try_get(0))
        .map_err(sql_error)?;
    if version > SCHEMA_VERSION {
        return Err(Error::Store(format!(
            "the database has allowly schema version {version}, newer than this engine's {SCHEMA_VERSION}"
        )));
    }
    for (step, sql) in MIGRATIONS.iter().filter(|(step, _)| *step > version) {
        client.batch_execute(sql).map_err(sql_error)?;
        client.execute("INSERT INTO allowly.schema_version (version) VALUES ($1)", &[step]).map_err(sql_error)?;
    }
    Ok(())
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // Closing a connection blocks on the driver's own runtime, which panics on a thread that
        // drives async tasks (a server dropping its engines at shutdown): close them elsewhere.
        let idle = std::mem::take(&mut self.state.get_mut().idle);
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

impl PoolInner {
    /// A connection: an idle one, a new one while the pool has room, or else the next one
    /// released, first come first served (a waiting caller is never overtaken).
    fn acquire(self: &Arc<Self>) -> Result<Lease> {
        let mut state = self.state.lock();
        if state.waiters.is_empty() {
            if let Some(conn) = state.idle.pop() {
                return Ok(Lease { pool: self.clone(), conn: Some(conn), fresh: false });
            }
            if state.open < self.options.pool_size {
                state.open += 1;
                drop(state);
                return self.open();
            }
        }
        let waiter = Arc::new(Waiter { handoff: Mutex::new(None), ready: Condvar::new() });
        state.waiters.push_back(waiter.clone());
        drop(state);
        let deadline = Instant::now() + self.options.acquire_timeout;
        let mut slot = waiter.handoff.lock();
        let handoff = loop {
            if let Some(handoff) = slot.take() {
                break Some(handoff);
            }
            if waiter.ready.wait_until(&mut slot, deadline).timed_out() {
                drop(slot);
                // Withdraw; a hand-off may have arrived meanwhile (it is made under the state lock).
                self.state.lock().waiters.retain(|w| !Arc::ptr_eq(w, &waiter));
                break waiter.handoff.lock().take();
            }
        };
        match handoff {
            Some(Handoff::Conn(conn)) => Ok(Lease { pool: self.clone(), conn: Some(*conn), fresh: false }),
            Some(Handoff::Open) => self.open(),
            None => Err(Error::Store(format!(
                "all {} PostgreSQL connections stayed busy for {:?}",
                self.options.pool_size, self.options.acquire_timeout
            ))),
        }
    }

    /// Opens a connection whose place in `open` is already counted.
    fn open(self: &Arc<Self>) -> Result<Lease> {
        match self.config.connect(NoTls) {
            Ok(client) => Ok(Lease {
                pool: self.clone(),
                conn: Some(Conn { client, statements: HashMap::new(), broken: false, in_transaction: false }),
                fresh: true,
            }),
            Err(err) => {
                self.closed(1);
                Err(Error::Store(format!("cannot connect to PostgreSQL: {}", pg_message(&err))))
            }
        }
    }

    fn release(&self, conn: Conn) {
        if conn.broken || conn.in_transaction || conn.client.is_closed() {
            self.closed(1);
            drop(conn);
            return;
        }
        let mut state = self.state.lock();
        match state.waiters.pop_front() {
            Some(waiter) => waiter.give(Handoff::Conn(Box::new(conn))),
            None => state.idle.push(conn),
        }
    }

    /// Forgets `count` connections and lets waiting callers open new ones in their place.
    fn closed(&self, count: usize) {
        let mut state = self.state.lock();
        state.open = state.open.saturating_sub(count);
        while state.open < self.options.pool_size {
            let Some(waiter) = state.waiters.pop_front() else { break };
            state.open += 1;
            waiter.give(Handoff::Open);
        }
    }

    /// Runs one read outside any transaction without waiting for the pool: on an idle
    /// connection, or else on a connection opened for it alone.
    fn side_query(self: &Arc<Self>, sql: &'static str, params: &Params<'_>) -> Result<Vec<Row>> {
        let idle = self.state.lock().idle.pop();
        match idle {
            Some(conn) => {
                let mut lease = Lease { pool: self.clone(), conn: Some(conn), fresh: false };
                let conn = lease.conn_mut()?;
                let outcome = match conn.statement(sql) {
                    Ok(statement) => conn.client.query(&statement, params),
                    Err(err) => Err(err),
                };
                outcome.map_err(|err| conn_error(conn, &err))
            }
            None => {
                let mut client = self
                    .config
                    .connect(NoTls)
                    .map_err(|err| Error::Store(format!("cannot connect to PostgreSQL: {}", pg_message(&err))))?;
                client.query(sql, params).map_err(|err| Error::Store(format!("postgresql: {}", pg_message(&err))))
            }
        }
    }

    /// Drops the idle connections: one of them broke, so the server probably restarted and the
    /// others are stale too.
    fn discard_idle(&self) {
        let stale = std::mem::take(&mut self.state.lock().idle);
        self.closed(stale.len());
        drop(stale);
    }
}

/// A caller waiting for a connection.
struct Waiter {
    handoff: Mutex<Option<Handoff>>,
    ready: Condvar,
}

enum Handoff {
    /// A released connection.
    Conn(Box<Conn>),
    /// Room to open a new connection (already counted in `open`).
    Open,
}

impl Waiter {
    fn give(&self, handoff: Handoff) {
        *self.handoff.lock() = Some(handoff);
        self.ready.notify_one();
    }
}

impl Lease {
    fn conn_mut(&mut self) -> Result<&mut Conn> {
        self.conn.as_mut().ok_or_else(|| Error::Store("the connection was already returned".into()))
    }
}

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
            Error::Store(message) => Failure { message, retry: Retry::No, fresh: false },
            other => Failure { message: other.to_string(), retry: Retry::No, fresh: false },
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
                let mut failure = Failure::of(conn, &err);
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

/// Ends a transaction: commits (flushing its buffered writes) or rolls back.
fn end_transaction(mut state: TxState, workspace_id: &str, commit: bool) -> std::result::Result<(), Failure> {
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
            let failure = Failure::of(conn, &err);
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
                })),
                None => Err(Failure {
                    message: format!(
                        "the PostgreSQL connection broke during COMMIT and the outcome could not be learned: {}",
                        failure.message
                    ),
                    retry: Retry::InDoubt,
                    fresh,
                }),
            }
        }
    }
}

/// Begins a write transaction and reads its transaction id (assigned now) and its backend's pid.
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT txid_current()::text, pg_backend_pid()::text";

/// What identifies a write transaction once its connection is gone.
#[derive(Clone, Copy, Debug)]
struct InDoubtHandle {
    /// `txid_current()`: the transaction id with its epoch, what `txid_status` takes.
    txid: i64,
    /// The backend that runs it.
    pid: i32,
}

fn in_doubt_handle(messages: &[postgres::SimpleQueryMessage]) -> Option<InDoubtHandle> {
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

// ---------------------------------------------------------------------------------------------
// Batches: checks of one authorization that arrive together share one transaction.

/// Write transactions that begin by reading the same authorization (checks, revocations) while
/// another is open on it join that one: they run one after another in a single PostgreSQL
/// transaction, each seeing the previous ones' writes, and commit together. It is the serial
/// execution the authorization's row lock would impose anyway, with one lock hand-off, one flush
/// and one `COMMIT` for the group instead of one each, which is what lets a hot authorization
/// take thousands of checks a second. A participant whose work fails before it wrote anything
/// just leaves; if one fails after writing (or the transaction fails), nobody commits and every
/// participant runs its work again.
///
/// A check asks for the active signing key before it reads its authorization, so that question
/// is answered from the store's memory and verified against the key read, under the shared
/// signing lock, by the transaction the check ends up in; if the key changed, the check runs
/// again. The first participant (the leader) registers the batch, opens the transaction, reads
/// and locks the authorization and the active key in one round trip, and after its own work
/// closes the batch to newcomers, waits for the others and commits.
struct Batch {
    authorization_id: String,
    /// The shared transaction; opened by the leader.
    tx: Mutex<Option<TxState>>,
    control: Mutex<Control>,
    /// Signals the leader that a participant finished.
    progress: Condvar,
    /// Signals the participants that the transaction ended.
    done: Condvar,
}

#[derive(Default)]
struct Control {
    /// Participants, the leader included; final once the batch is closed to newcomers.
    joined: usize,
    /// Participants whose work has ended.
    finished: usize,
    /// A participant is running its work.
    busy: bool,
    /// Participants waiting for their turn, in order of arrival (each woken alone).
    queue: VecDeque<Arc<Seat>>,
    /// Why the batch will not commit, once it will not.
    poisoned: Option<(String, Retry)>,
    /// The end of the transaction, once known.
    outcome: Option<std::result::Result<(), (String, Retry)>>,
}

/// A participant's place in the queue for its turn.
#[derive(Default)]
struct Seat {
    granted: Mutex<bool>,
    ready: Condvar,
}

impl Batch {
    fn new(authorization_id: &str) -> Batch {
        Batch {
            authorization_id: authorization_id.to_string(),
            tx: Mutex::new(None),
            control: Mutex::new(Control { joined: 1, busy: true, ..Control::default() }),
            progress: Condvar::new(),
            done: Condvar::new(),
        }
    }

    /// Waits for this participant's turn (joined under the store's batch lock, so the leader
    /// counts it) and returns why the batch will not commit, if it will not.
    fn take_turn(&self, mut control: MutexGuard<'_, Control>) -> Option<(String, Retry)> {
        if !control.busy {
            control.busy = true;
            return control.poisoned.clone();
        }
        let seat = Arc::new(Seat::default());
        control.queue.push_back(seat.clone());
        drop(control);
        let mut granted = seat.granted.lock();
        while !*granted {
            seat.ready.wait(&mut granted);
        }
        drop(granted);
        self.control.lock().poisoned.clone()
    }

    /// Runs after a participant's work (or its abandonment): records whether the batch can still
    /// commit, and passes the turn on.
    fn end_turn(&self, spoiled: Option<(String, Retry)>) {
        let mut control = self.control.lock();
        if control.poisoned.is_none() {
            control.poisoned = spoiled;
        }
        control.finished += 1;
        match control.queue.pop_front() {
            Some(next) => {
                *next.granted.lock() = true;
                next.ready.notify_one();
            }
            None => control.busy = false,
        }
        self.progress.notify_one();
    }

    /// The leader's part after its own work: close, wait for the others, end the transaction.
    fn close(&self, store: &PostgresStore) {
        {
            let mut batches = store.batches.lock();
            if batches.get(&self.authorization_id).is_some_and(|open| std::ptr::eq(Arc::as_ptr(open), self)) {
                batches.remove(&self.authorization_id);
            }
        }
        let poisoned = {
            let mut control = self.control.lock();
            while control.finished < control.joined {
                self.progress.wait(&mut control);
            }
            control.poisoned.clone()
        };
        let state = self.tx.lock().take();
        let outcome = match (state, poisoned) {
            (Some(state), None) => {
                end_transaction(state, &store.workspace_id, true).map_err(|failure| (failure.message, failure.retry))
            }
            (Some(state), Some(poisoned)) => {
                let _ = end_transaction(state, &store.workspace_id, false);
                Err(poisoned)
            }
            (None, poisoned) => {
                Err(poisoned.unwrap_or_else(|| ("the shared transaction never started".into(), Retry::Conflict)))
            }
        };
        let mut control = self.control.lock();
        control.outcome = Some(outcome);
        self.done.notify_all();
    }

    fn outcome(&self) -> std::result::Result<(), (String, Retry)> {
        let mut control = self.control.lock();
        loop {
            if let Some(outcome) = &control.outcome {
                return outcome.clone();
            }
            self.done.wait(&mut control);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Transactions

/// The state of one PostgreSQL transaction.
struct TxState {
    lease: Lease,
    /// Writes not sent yet.
    pending: Pending,
    /// The first database failure: it aborted the transaction, whatever the work does next.
    failure: Option<Failure>,
    /// Writes buffered or sent so far (a batch participant compares before and after its turn).
    writes: u64,
    /// Authorization rows as this transaction knows them: read under their row lock (nobody else
    /// can change them until it ends) or written by it.
    rows: Vec<(String, Option<String>)>,
    /// The active signing key, once read under the shared signing lock.
    active_key: Option<Option<String>>,
    /// How to learn this transaction's outcome if its COMMIT is cut off (write transactions).
    in_doubt: Option<InDoubtHandle>,
}

impl TxState {
    fn conn(&mut self) -> Result<&mut Conn> {
        self.lease.conn.as_mut().ok_or_else(|| Error::Store("the transaction lost its connection".into()))
    }

    fn fail(&mut self, err: &postgres::Error) -> Error {
        let failure = match self.lease.conn.as_mut() {
            Some(conn) => Failure::of(conn, err),
            None => Failure { message: pg_message(err), retry: Retry::No, fresh: false },
        };
        let error = failure.error();
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
        error
    }

    fn rollback(&mut self) {
        if let Some(conn) = self.lease.conn.as_mut() {
            match conn.client.batch_execute("ROLLBACK") {
                Ok(()) => conn.in_transaction = false,
                Err(_) => conn.broken = true,
            }
        }
    }

    /// Sends the buffered writes in one statement; every other statement is preceded by this,
    /// so the transaction always reads its own writes.
    fn flush(&mut self, ws: &str) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let p = std::mem::take(&mut self.pending);
        // Parameters in the order of `FLUSH_PARTS`, for the parts with rows.
        let mut parts = 0;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&ws];
        let groups: [(bool, Vec<&(dyn ToSql + Sync)>); 8] = [
            (!p.authorization_ids.is_empty(), vec![&p.authorization_ids, &p.authorization_bodies]),
            (!p.counter_keys.is_empty(), vec![&p.counter_keys, &p.counter_values]),
            (!p.event_keys.is_empty(), vec![&p.event_keys, &p.event_forget_before, &p.event_ats]),
            (
                !p.confirmation_ids.is_empty(),
                vec![
                    &p.confirmation_ids,
                    &p.confirmation_nonces,
                    &p.confirmation_prompt_keys,
                    &p.confirmation_authorization_ids,
                    &p.confirmation_statuses,
                    &p.confirmation_bodies,
                ],
            ),
            (!p.escalation_ids.is_empty(), vec![&p.escalation_ids, &p.escalation_prompt_keys, &p.escalation_bodies]),
            (
                !p.reservation_ids.is_empty() || !p.link_receipt_ids.is_empty(),
                vec![&p.reservation_ids, &p.reservation_bodies, &p.link_receipt_ids, &p.link_reservation_ids],
            ),
            (
                !p.idempotency_keys.is_empty(),
                vec![&p.idempotency_keys, &p.idempotency_digests, &p.idempotency_responses],
            ),
            (
                !p.receipt_ids.is_empty(),
                vec![
                    &p.receipt_ids,
                    &p.receipt_issued_at,
                    &p.receipt_authorization_ids,
                    &p.receipt_is_checkpoint,
                    &p.receipt_jws,
                ],
            ),
        ];
        for (bit, (used, values)) in groups.into_iter().enumerate() {
            if used {
                parts |= 1 << bit;
                params.extend(values);
            }
        }
        let conn = self.conn()?;
        let outcome = match conn.statement(flush_statement(parts)) {
            Ok(statement) => conn.client.execute(&statement, &params),
            Err(err) => Err(err),
        };
        outcome.map(|_| ()).map_err(|err| self.fail(&err))
    }

    fn query(&mut self, ws: &str, sql: &'static str, params: &Params<'_>) -> Result<Vec<Row>> {
        self.flush(ws)?;
        let conn = self.conn()?;
        let outcome = match conn.statement(sql) {
            Ok(statement) => conn.client.query(&statement, params),
            Err(err) => Err(err),
        };
        outcome.map_err(|err| self.fail(&err))
    }

    fn query_opt(&mut self, ws: &str, sql: &'static str, params: &Params<'_>) -> Result<Option<Row>> {
        self.flush(ws)?;
        let conn = self.conn()?;
        let outcome = match conn.statement(sql) {
            Ok(statement) => conn.client.query_opt(&statement, params),
            Err(err) => Err(err),
        };
        outcome.map_err(|err| self.fail(&err))
    }

    fn execute(&mut self, ws: &str, sql: &'static str, params: &Params<'_>) -> Result<u64> {
        self.flush(ws)?;
        let conn = self.conn()?;
        let outcome = match conn.statement(sql) {
            Ok(statement) => conn.client.execute(&statement, params),
            Err(err) => Err(err),
        };
        outcome.map_err(|err| self.fail(&err))
    }

    /// The active key under the shared signing lock, read once per transaction.
    fn active_key(&mut self, store: &PostgresStore) -> Result<Option<String>> {
        if let Some(known) = &self.active_key {
            return Ok(known.clone());
        }
        let ws = store.workspace_id.as_str();
        let lock = store.locks.signing;
        let key: Option<String> = match self.query_opt(ws, ACTIVE_KEY_LOCKED, &[&ws, &lock])? {
            Some(row) => get(&row, 0)?,
            None => None,
        };
        store.remember_key(&key);
        self.active_key = Some(key.clone());
        Ok(key)
    }

    fn known_row(&self, authorization_id: &str) -> Option<&Option<String>> {
        self.rows.iter().find(|(id, _)| id == authorization_id).map(|(_, body)| body)
    }

    fn remember_row(&mut self, authorization_id: &str, body: Option<String>) {
        match self.rows.iter_mut().find(|(id, _)| id == authorization_id) {
            Some(known) => known.1 = body,
            None => self.rows.push((authorization_id.to_string(), body)),
        }
    }
}

/// Where a transaction's statements go.
enum Binding {
    /// Nothing sent yet.
    Unbound,
    /// A transaction of its own.
    Own(Box<TxState>),
    /// A batch's shared transaction.
    Batch { batch: Arc<Batch>, leader: bool },
}

/// The transaction state, borrowed from this transaction or locked in the batch.
enum StateRef<'a> {
    Own(&'a mut TxState),
    Batch(MappedMutexGuard<'a, TxState>),
}

impl std::ops::Deref for StateRef<'_> {
    type Target = TxState;
    fn deref(&self) -> &TxState {
        match self {
            StateRef::Own(state) => state,
            StateRef::Batch(state) => state,
        }
    }
}

impl std::ops::DerefMut for StateRef<'_> {
    fn deref_mut(&mut self) -> &mut TxState {
        match self {
            StateRef::Own(state) => state,
            StateRef::Batch(state) => state,
        }
    }
}

/// One run of a closure: a transaction of one workspace, opened by its first statement.
struct PgTx<'s> {
    store: &'s PostgresStore,
    writing: bool,
    binding: Binding,
    /// Whether the work asked for the active key (so it signs, and does not rotate).
    active_key_read: bool,
    /// An active key answered from the store's memory before a transaction existed; the
    /// transaction must find the same key active, or the work runs again.
    promised_key: Option<Option<String>>,
    /// A failure of this run outside the transaction's statements (it could not begin, the key
    /// changed, its batch failed).
    failure: Option<Failure>,
    /// The batch's write count when this participant's turn began.
    writes_at_turn: u64,
}

impl<'s> PgTx<'s> {
    fn new(store: &'s PostgresStore, writing: bool) -> PgTx<'s> {
        PgTx {
            store,
            writing,
            binding: Binding::Unbound,
            active_key_read: false,
            promised_key: None,
            failure: None,
            writes_at_turn: 0,
        }
    }

    fn ws(&self) -> &'s str {
        self.store.workspace_id.as_str()
    }

    fn batching(&self) -> bool {
        self.writing && self.store.options().batch_size > 1
    }

    fn fail_with(&mut self, failure: Failure) -> Error {
        let error = failure.error();
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
        error
    }

    /// The transaction, begun now if this is the first statement.
    fn state(&mut self) -> Result<StateRef<'_>> {
        if matches!(self.binding, Binding::Unbound) {
            self.bind_own()?;
        }
        if let Binding::Batch { batch, .. } = &self.binding {
            if batch.tx.lock().is_none() {
                return Err(self.fail_with(Failure::internal("the shared transaction is gone")));
            }
        }
        match &mut self.binding {
            Binding::Own(state) => Ok(StateRef::Own(state)),
            Binding::Batch { batch, .. } => MutexGuard::try_map(batch.tx.lock(), Option::as_mut)
                .map(StateRef::Batch)
                .map_err(|_| Error::Store("the shared transaction is gone".into())),
            Binding::Unbound => Err(Error::Store("the transaction did not begin".into())),
        }
    }

    fn bind_own(&mut self) -> Result<()> {
        let state = match self.store.begin(self.writing) {
            Ok(state) => state,
            Err(failure) => return Err(self.fail_with(failure)),
        };
        self.binding = Binding::Own(Box::new(state));
        if let Some(promised) = self.promised_key.clone() {
            self.verify_promise(&promised)?;
        }
        Ok(())
    }

    /// Checks the key the work was told against the key its transaction finds active.
    fn verify_promise(&mut self, promised: &Option<String>) -> Result<()> {
        let store = self.store;
        let active = self.state()?.active_key(store)?;
        if &active != promised {
            return Err(self.fail_with(Failure {
                message: "the active signing key changed; running again".into(),
                retry: Retry::Conflict,
                fresh: false,
            }));
        }
        Ok(())
    }

    /// Joins the open batch of `authorization_id`, or opens one and leads it.
    fn enter_batch(&mut self, authorization_id: &str) -> Result<()> {
        let store = self.store;
        let mut batches = store.batches.lock();
        if let Some(batch) = batches.get(authorization_id).cloned() {
            let mut control = batch.control.lock();
            control.joined += 1;
            if control.joined >= store.options().batch_size {
                batches.remove(authorization_id);
            }
            drop(batches);
            let poisoned = batch.take_turn(control);
            self.binding = Binding::Batch { batch: batch.clone(), leader: false };
            if let Some((message, retry)) = poisoned {
                // Its transaction will not commit: fail as it did (usually: run again).
                return Err(self.fail_with(Failure { message, retry, fresh: false }));
            }
            self.writes_at_turn = batch.tx.lock().as_ref().map_or(0, |state| state.writes);
            if let Some(promised) = self.promised_key.clone() {
                self.verify_promise(&promised)?;
            }
            return Ok(());
        }
        let batch = Arc::new(Batch::new(authorization_id));
        batches.insert(authorization_id.to_string(), batch.clone());
        drop(batches);
        self.binding = Binding::Batch { batch: batch.clone(), leader: true };
        let mut state = match store.begin(true) {
            Ok(state) => state,
            Err(failure) => {
                batch.control.lock().poisoned = Some((failure.message.clone(), failure.retry));
                return Err(self.fail_with(failure));
            }
        };
        // The active key (under the shared signing lock) and the authorization (under its row
        // lock), in one round trip.
        let ws = store.workspace_id.as_str();
        let lock = store.locks.signing;
        let row = state.query_opt(ws, BEGIN_CHECK, &[&ws, &lock, &authorization_id]);
        let read = row.and_then(|row| match row {
            Some(row) => Ok((get::<Option<String>>(&row, 0)?, get::<Option<String>>(&row, 1)?)),
            None => Err(Error::Store("allowly.begin_check returned no row".into())),
        });
        if let Ok((key, body)) = &read {
            store.remember_key(key);
            state.active_key = Some(key.clone());
            state.remember_row(authorization_id, body.clone());
        }
        *batch.tx.lock() = Some(state);
        read?;
        if let Some(promised) = self.promised_key.clone() {
            self.verify_promise(&promised)?;
        }
        Ok(())
    }

    /// Ends this run: commits or rolls back its own transaction, or plays its part in a batch.
    fn finish(mut self, outcome: Result<()>) -> std::result::Result<(), Failed> {
        let binding = std::mem::replace(&mut self.binding, Binding::Unbound);
        let own_failure = self.failure.take();
        let ws = self.ws();
        match binding {
            Binding::Unbound => match (own_failure, outcome) {
                (Some(failure), _) => Err(failure.failed()),
                (None, Err(error)) => Err(Failed { error, retry: Retry::No, fresh: false }),
                (None, Ok(())) => Ok(()),
            },
            Binding::Own(mut state) => {
                let failure = own_failure.or_else(|| state.failure.take());
                match (failure, outcome) {
                    (Some(mut failure), _) => {
                        state.rollback();
                        failure.fresh = state.lease.fresh;
                        Err(failure.failed())
                    }
                    (None, Err(error)) => {
                        state.rollback();
                        Err(Failed { error, retry: Retry::No, fresh: false })
                    }
                    (None, Ok(())) => end_transaction(*state, ws, self.writing).map_err(Failure::failed),
                }
            }
            Binding::Batch { batch, leader } => {
                let (wrote, tx_failure) = match batch.tx.lock().as_mut() {
                    Some(state) => (state.writes != self.writes_at_turn, state.failure.as_ref().map(Failure::copy)),
                    None => (false, None),
                };
                // A failed statement aborts the shared transaction: nobody may commit it.
                let spoiled = match (&tx_failure, &outcome, &own_failure) {
                    (Some(failure), _, _) => Some((failure.message.clone(), failure.retry)),
                    (None, Err(_), _) | (None, Ok(()), Some(_)) if wrote => {
                        Some(("a check sharing this transaction failed".to_string(), Retry::Conflict))
                    }
                    _ => None,
                };
                batch.end_turn(spoiled);
                if leader {
                    batch.close(self.store);
                }
                match (own_failure.or(tx_failure), outcome) {
                    (Some(failure), _) => Err(failure.failed()),
                    (None, Err(error)) => Err(Failed { error, retry: Retry::No, fresh: false }),
                    (None, Ok(())) => {
                        batch.outcome().map_err(|(message, retry)| Failure { message, retry, fresh: false }.failed())
                    }
                }
            }
        }
    }
}

impl Drop for PgTx<'_> {
    /// Should the work unwind mid-batch, the others must not wait for it forever.
    fn drop(&mut self) {
        if let Binding::Batch { batch, leader } = std::mem::replace(&mut self.binding, Binding::Unbound) {
            batch.end_turn(Some(("a check sharing this transaction was abandoned".into(), Retry::Conflict)));
            if leader {
                batch.close(self.store);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
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

struct Failed {
    error: Error,
    retry: Retry,
    /// The connection had just been opened.
    fresh: bool,
}

/// A database failure seen by a transaction.
struct Failure {
    message: String,
    retry: Retry,
    fresh: bool,
}

impl Failure {
    fn of(conn: &mut Conn, err: &postgres::Error) -> Failure {
        let retry = classify(err, conn.client.is_closed());
        if retry == Retry::Reconnect {
            conn.broken = true;
        }
        Failure { message: pg_message(err), retry, fresh: false }
    }

    fn internal(message: &str) -> Failure {
        Failure { message: message.to_string(), retry: Retry::No, fresh: false }
    }

    fn copy(&self) -> Failure {
        Failure { message: self.message.clone(), retry: self.retry, fresh: self.fresh }
    }

    fn error(&self) -> Error {
        match self.retry {
            Retry::InDoubt => Error::OutcomeUnknown(format!("postgresql: {}", self.message)),
            _ => Error::Store(format!("postgresql: {}", self.message)),
        }
    }

    fn failed(self) -> Failed {
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
fn pg_message(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => err.to_string(),
    }
}

fn conn_error(conn: &mut Conn, err: &postgres::Error) -> Error {
    Failure::of(conn, err).error()
}

fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, index: usize) -> Result<T> {
    row.try_get(index).map_err(|err| Error::Store(format!("corrupt row: {err}")))
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|err| Error::Store(format!("cannot encode a row: {err}")))
}

/// A JSON `body` column as a row of `kind` named `id` (its key, or how it was looked up).
fn decode<T: DeserializeOwned>(kind: &'static str, id: &str, body: &str) -> Loaded<T> {
    serde_json::from_str(body).map_err(|err| UnreadableRow::new(kind, id, err))
}

/// Receipts are stored in the JWS compact form `protected.payload.signature` (base64url has no `.`).
fn to_compact(receipt: &SignedReceipt) -> String {
    format!("{}.{}.{}", receipt.protected, receipt.payload, receipt.signature)
}

fn from_compact(compact: &str) -> Result<SignedReceipt> {
    let mut segments = compact.splitn(3, '.');
    match (segments.next(), segments.next(), segments.next()) {
        (Some(protected), Some(payload), Some(signature)) if !signature.contains('.') => Ok(SignedReceipt {
            protected: protected.to_string(),
            payload: payload.to_string(),
            signature: signature.to_string(),
        }),
        _ => Err(Error::Store("corrupt receipt row".into())),
    }
}

fn key_bytes(bytes: Vec<u8>) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| Error::Store("corrupt signing key row".into()))
}

fn status_text(status: PromptStatus) -> &'static str {
    match status {
        PromptStatus::Pending => "pending",
        PromptStatus::Approved => "approved",
        PromptStatus::Rejected => "rejected",
        PromptStatus::Expired => "expired",
    }
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

// Statements. `$1` is always the store's workspace id.

const LIFT_STATEMENT_TIMEOUT: &str = "SET LOCAL statement_timeout = '1h'";
const LOCK_EXCLUSIVE: &str = "SELECT pg_advisory_xact_lock($1)";
const REGISTER_WORKSPACE: &str =
    "INSERT INTO allowly.workspaces (workspace_id) VALUES ($1) ON CONFLICT (workspace_id) DO NOTHING";
const WORKSPACE_EXISTS: &str = "SELECT 1 FROM allowly.workspaces WHERE workspace_id = $1";
const SIGNING_KEYS: &str = "SELECT key_id, secret_key, public_key, active_from, active_until
    FROM allowly.signing_keys WHERE workspace_id = $1 ORDER BY active_from, key_id";
const PUT_SIGNING_KEY: &str = "INSERT INTO allowly.signing_keys
    (workspace_id, key_id, secret_key, public_key, active_from, active_until) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (workspace_id, key_id) DO UPDATE SET secret_key = EXCLUDED.secret_key,
    public_key = EXCLUDED.public_key, active_from = EXCLUDED.active_from, active_until = EXCLUDED.active_until";
const ACTIVE_KEY_LOCKED: &str = "SELECT allowly.active_key_id($1, $2)";
const BEGIN_CHECK: &str = "SELECT o_key_id, o_body FROM allowly.begin_check($1, $2, $3)";
const ACTIVE_KEY: &str =
    "SELECT key_id FROM allowly.signing_keys WHERE workspace_id = $1 AND active_until IS NULL LIMIT 1";
const POLICY_EDITION: &str =
    "SELECT body FROM allowly.policy_editions WHERE workspace_id = $1 AND policy_id = $2 AND policy_version = $3";
const NEWEST_POLICY_EDITION: &str = "SELECT body FROM allowly.policy_editions
    WHERE workspace_id = $1 AND policy_id = $2 ORDER BY policy_version DESC LIMIT 1";
const PUT_POLICY_EDITION: &str = "INSERT INTO allowly.policy_editions (workspace_id, policy_id, policy_version, body)
    VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, policy_id, policy_version) DO UPDATE SET body = EXCLUDED.body";
const POLICY_EDITIONS: &str = "SELECT policy_id || '@' || policy_version, body FROM allowly.policy_editions
    WHERE workspace_id = $1 ORDER BY policy_id, policy_version";
const AUTHORIZATION: &str = "SELECT body FROM allowly.authorizations WHERE workspace_id = $1 AND authorization_id = $2";
const AUTHORIZATION_LOCKED: &str = "SELECT body FROM allowly.authorizations
    WHERE workspace_id = $1 AND authorization_id = $2 FOR NO KEY UPDATE";
const AUTHORIZATIONS: &str = "SELECT authorization_id, body FROM allowly.authorizations
    WHERE workspace_id = $1 AND authorization_id > $2 ORDER BY authorization_id LIMIT $3";
const COUNTER: &str = "SELECT value FROM allowly.counters WHERE workspace_id = $1 AND key = $2";
const COUNT_EVENTS: &str = "SELECT count(*) FROM allowly.events WHERE workspace_id = $1 AND key = $2 AND at >= $3";
const CONFIRMATION: &str = "SELECT body FROM allowly.confirmations WHERE workspace_id = $1 AND confirmation_id = $2";
const CONFIRMATION_LOCKED: &str =
    "SELECT body FROM allowly.confirmations WHERE workspace_id = $1 AND confirmation_id = $2 FOR UPDATE";
const CONFIRMATION_BY_NONCE: &str = "SELECT body FROM allowly.confirmations WHERE workspace_id = $1 AND nonce = $2";
const CONFIRMATION_BY_NONCE_LOCKED: &str =
    "SELECT body FROM allowly.confirmations WHERE workspace_id = $1 AND nonce = $2 FOR UPDATE";
const LATEST_CONFIRMATION: &str = "SELECT body FROM allowly.confirmations
    WHERE workspace_id = $1 AND prompt_key = $2 ORDER BY seq DESC LIMIT 1";
const PENDING_CONFIRMATIONS: &str = "SELECT confirmation_id, body FROM allowly.confirmations
    WHERE workspace_id = $1 AND authorization_id = $2 AND status = 'pending' ORDER BY confirmation_id";
const PENDING_CONFIRMATIONS_LOCKED: &str = "SELECT confirmation_id, body FROM allowly.confirmations
    WHERE workspace_id = $1 AND authorization_id = $2 AND status = 'pending' ORDER BY confirmation_id FOR UPDATE";
const ESCALATION: &str = "SELECT body FROM allowly.escalations WHERE workspace_id = $1 AND escalation_id = $2";
const ESCALATION_LOCKED: &str =
    "SELECT body FROM allowly.escalations WHERE workspace_id = $1 AND escalation_id = $2 FOR UPDATE";
const LATEST_ESCALATION: &str = "SELECT body FROM allowly.escalations
    WHERE workspace_id = $1 AND prompt_key = $2 ORDER BY seq DESC LIMIT 1";
const RESERVATION_FOR_RECEIPT: &str = "SELECT r.body FROM allowly.reservation_receipts x
    JOIN allowly.reservations r ON r.workspace_id = x.workspace_id AND r.reservation_id = x.reservation_id
    WHERE x.workspace_id = $1 AND x.receipt_id = $2";
const RESERVATION_FOR_RECEIPT_LOCKED: &str = "SELECT r.body FROM allowly.reservation_receipts x
    JOIN allowly.reservations r ON r.workspace_id = x.workspace_id AND r.reservation_id = x.reservation_id
    WHERE x.workspace_id = $1 AND x.receipt_id = $2 FOR UPDATE OF r";
const IDEMPOTENCY: &str =
    "SELECT request_sha256, response FROM allowly.idempotency WHERE workspace_id = $1 AND key = $2";
const RECEIPT: &str = "SELECT receipt_id, issued_at, authorization_id, is_checkpoint, jws
    FROM allowly.receipts WHERE workspace_id = $1 AND receipt_id = $2";
const RECEIPTS_BETWEEN: &str = "SELECT receipt_id, issued_at, authorization_id, is_checkpoint, jws
    FROM allowly.receipts WHERE workspace_id = $1 AND issued_at >= $2 AND issued_at < $3
    ORDER BY issued_at, receipt_id";
const LATEST_RECEIPTS: &str = "SELECT receipt_id, issued_at, authorization_id, is_checkpoint, jws
    FROM allowly.receipts WHERE workspace_id = $1 ORDER BY issued_at DESC, receipt_id DESC LIMIT $2";
const FIRST_RECEIPTS: &str = "SELECT receipt_id, issued_at, authorization_id, is_checkpoint, jws
    FROM allowly.receipts WHERE workspace_id = $1 ORDER BY issued_at, receipt_id LIMIT $2";
const RECEIPTS_AFTER: &str = "SELECT receipt_id, issued_at, authorization_id, is_checkpoint, jws
    FROM allowly.receipts WHERE workspace_id = $1 AND (issued_at, receipt_id) > ($2, $3)
    ORDER BY issued_at, receipt_id LIMIT $4";
const FIRST_RECEIPT_AT: &str =
    "SELECT min(issued_at) FROM allowly.receipts WHERE workspace_id = $1 AND NOT is_checkpoint";
const API_KEY: &str = "SELECT body FROM allowly.api_keys WHERE workspace_id = $1 AND key_id = $2";
const API_KEY_LOCKED: &str = "SELECT body FROM allowly.api_keys WHERE workspace_id = $1 AND key_id = $2 FOR UPDATE";
const PUT_API_KEY: &str = "INSERT INTO allowly.api_keys (workspace_id, key_id, body) VALUES ($1, $2, $3)
    ON CONFLICT (workspace_id, key_id) DO UPDATE SET body = EXCLUDED.body";
const API_KEYS: &str = "SELECT key_id, body FROM allowly.api_keys WHERE workspace_id = $1 ORDER BY key_id";
const CHECKPOINTS: &str = "SELECT period_start, receipt_id, merkle_root FROM allowly.checkpoints
    WHERE workspace_id = $1 ORDER BY period_start";
/// A plain insert: two processes checkpointing the same day cannot both commit.
const PUT_CHECKPOINT: &str =
    "INSERT INTO allowly.checkpoints (workspace_id, period_start, receipt_id, merkle_root) VALUES ($1, $2, $3, $4)";

/// The parts of the statement that applies a transaction's buffered writes, one per table (or
/// pair of tables), each with its number of array parameters (`{0}`, `{1}`, ... in its text).
/// [`flush_statement`] joins the parts a flush needs; `$1` is the workspace id.
const FLUSH_PARTS: [(usize, &str); 8] = [
    (
        2,
        "authorizations AS (
        INSERT INTO allowly.authorizations (workspace_id, authorization_id, body)
        SELECT $1, id, body FROM unnest({0}::text[], {1}::text[]) AS t (id, body)
        ON CONFLICT (workspace_id, authorization_id) DO UPDATE SET body = EXCLUDED.body)",
    ),
    (
        2,
        "counters AS (
        INSERT INTO allowly.counters (workspace_id, key, value)
        SELECT $1, key, value FROM unnest({0}::text[], {1}::bigint[]) AS t (key, value)
        ON CONFLICT (workspace_id, key) DO UPDATE SET value = EXCLUDED.value)",
    ),
    (
        3,
        "forgotten AS (
        DELETE FROM allowly.events e USING unnest({0}::text[], {1}::bigint[]) AS t (key, before)
        WHERE e.workspace_id = $1 AND e.key = t.key AND e.at < t.before),
    events AS (
        INSERT INTO allowly.events (workspace_id, key, at)
        SELECT $1, key, at FROM unnest({0}::text[], {2}::bigint[]) AS t (key, at))",
    ),
    (
        6,
        "confirmations AS (
        INSERT INTO allowly.confirmations
            (workspace_id, confirmation_id, nonce, prompt_key, authorization_id, status, body)
        SELECT $1, id, nonce, prompt_key, authorization_id, status, body
        FROM unnest({0}::text[], {1}::text[], {2}::text[], {3}::text[], {4}::text[], {5}::text[])
            AS t (id, nonce, prompt_key, authorization_id, status, body)
        ON CONFLICT (workspace_id, confirmation_id) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body)",
    ),
    (
        3,
        "escalations AS (
        INSERT INTO allowly.escalations (workspace_id, escalation_id, prompt_key, body)
        SELECT $1, id, prompt_key, body FROM unnest({0}::text[], {1}::text[], {2}::text[]) AS t (id, prompt_key, body)
        ON CONFLICT (workspace_id, escalation_id) DO UPDATE SET body = EXCLUDED.body)",
    ),
    (
        4,
        "reservations AS (
        INSERT INTO allowly.reservations (workspace_id, reservation_id, body)
        SELECT $1, id, body FROM unnest({0}::text[], {1}::text[]) AS t (id, body)
        ON CONFLICT (workspace_id, reservation_id) DO UPDATE SET body = EXCLUDED.body),
    reservation_receipts AS (
        INSERT INTO allowly.reservation_receipts (workspace_id, receipt_id, reservation_id)
        SELECT $1, receipt_id, reservation_id FROM unnest({2}::text[], {3}::text[]) AS t (receipt_id, reservation_id)
        ON CONFLICT (workspace_id, receipt_id) DO UPDATE SET reservation_id = EXCLUDED.reservation_id)",
    ),
    (
        3,
        "idempotency AS (
        INSERT INTO allowly.idempotency (workspace_id, key, request_sha256, response)
        SELECT $1, key, digest, response FROM unnest({0}::text[], {1}::text[], {2}::text[]) AS t (key, digest, response))",
    ),
    (
        5,
        "receipts AS (
        INSERT INTO allowly.receipts (workspace_id, receipt_id, issued_at, authorization_id, is_checkpoint, jws)
        SELECT $1, id, issued_at, authorization_id, is_checkpoint, jws
        FROM unnest({0}::text[], {1}::bigint[], {2}::text[], {3}::boolean[], {4}::text[])
            AS t (id, issued_at, authorization_id, is_checkpoint, jws))",
    ),
];

/// The statement that applies the buffered writes of the tables in `parts` (a bit per entry of
/// [`FLUSH_PARTS`]): one round trip, however many rows. Only the tables written take part, since
/// every table in a statement costs the server work even when no row goes to it.
fn flush_statement(parts: usize) -> &'static str {
    static STATEMENTS: [OnceLock<String>; 1 << FLUSH_PARTS.len()] = [const { OnceLock::new() }; 1 << FLUSH_PARTS.len()];
    let index = parts & ((1 << FLUSH_PARTS.len()) - 1);
    STATEMENTS[index].get_or_init(|| {
        let mut next = 2;
        let mut ctes = Vec::new();
        for (bit, (arity, text)) in FLUSH_PARTS.iter().enumerate() {
            if index & (1 << bit) == 0 {
                continue;
            }
            let mut cte = (*text).to_string();
            for k in 0..*arity {
                cte = cte.replace(&format!("{{{k}}}"), &format!("${}", next + k));
            }
            next += arity;
            ctes.push(cte);
        }
        format!("WITH {} SELECT 1", ctes.join(",\n    "))
    })
}

/// Writes of the hot path, buffered until the transaction next reads or commits and then sent in
/// one statement ([`flush_statement`]): a check holds its authorization's row lock for one write round trip
/// instead of one per row. Idempotency records and receipts stay plain inserts (a duplicate
/// fails the flush, and the transaction is retried).
#[derive(Default)]
struct Pending {
    authorization_ids: Vec<String>,
    authorization_bodies: Vec<String>,
    counter_keys: Vec<String>,
    counter_values: Vec<i64>,
    event_keys: Vec<String>,
    event_ats: Vec<i64>,
    event_forget_before: Vec<i64>,
    confirmation_ids: Vec<String>,
    confirmation_nonces: Vec<String>,
    confirmation_prompt_keys: Vec<String>,
    confirmation_authorization_ids: Vec<String>,
    confirmation_statuses: Vec<String>,
    confirmation_bodies: Vec<String>,
    escalation_ids: Vec<String>,
    escalation_prompt_keys: Vec<String>,
    escalation_bodies: Vec<String>,
    reservation_ids: Vec<String>,
    reservation_bodies: Vec<String>,
    link_receipt_ids: Vec<String>,
    link_reservation_ids: Vec<String>,
    idempotency_keys: Vec<String>,
    idempotency_digests: Vec<String>,
    idempotency_responses: Vec<String>,
    receipt_ids: Vec<String>,
    receipt_issued_at: Vec<i64>,
    receipt_authorization_ids: Vec<Option<String>>,
    receipt_is_checkpoint: Vec<bool>,
    receipt_jws: Vec<String>,
}

/// Where `key` sits in a buffered column, so a second write of a row replaces the first (one
/// statement may not change a row twice).
fn slot(keys: &[String], key: &str) -> Option<usize> {
    keys.iter().position(|k| k == key)
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.authorization_ids.is_empty()
            && self.counter_keys.is_empty()
            && self.event_keys.is_empty()
            && self.confirmation_ids.is_empty()
            && self.escalation_ids.is_empty()
            && self.reservation_ids.is_empty()
            && self.idempotency_keys.is_empty()
            && self.receipt_ids.is_empty()
    }

    fn authorization(&mut self, id: &str, body: String) {
        match slot(&self.authorization_ids, id) {
            Some(i) => self.authorization_bodies[i] = body,
            None => {
                self.authorization_ids.push(id.to_string());
                self.authorization_bodies.push(body);
            }
        }
    }

    fn counter(&mut self, key: &str, value: i64) {
        match slot(&self.counter_keys, key) {
            Some(i) => self.counter_values[i] = value,
            None => {
                self.counter_keys.push(key.to_string());
                self.counter_values.push(value);
            }
        }
    }

    fn confirmation(&mut self, prompt_key: &str, confirmation: &Confirmation, body: String) {
        let status = status_text(confirmation.status).to_string();
        match slot(&self.confirmation_ids, &confirmation.confirmation_id) {
            Some(i) => {
                self.confirmation_statuses[i] = status;
                self.confirmation_bodies[i] = body;
            }
            None => {
                self.confirmation_ids.push(confirmation.confirmation_id.clone());
                self.confirmation_nonces.push(confirmation.nonce.clone());
                self.confirmation_prompt_keys.push(prompt_key.to_string());
                self.confirmation_authorization_ids.push(confirmation.authorization_id.clone());
                self.confirmation_statuses.push(status);
                self.confirmation_bodies.push(body);
            }
        }
    }

    fn escalation(&mut self, prompt_key: &str, id: &str, body: String) {
        match slot(&self.escalation_ids, id) {
            Some(i) => self.escalation_bodies[i] = body,
            None => {
                self.escalation_ids.push(id.to_string());
                self.escalation_prompt_keys.push(prompt_key.to_string());
                self.escalation_bodies.push(body);
            }
        }
    }

    fn reservation(&mut self, reservation: &Reservation, body: String) {
        match slot(&self.reservation_ids, &reservation.reservation_id) {
            Some(i) => self.reservation_bodies[i] = body,
            None => {
                self.reservation_ids.push(reservation.reservation_id.clone());
                self.reservation_bodies.push(body);
            }
        }
        for receipt_id in &reservation.receipt_ids {
            match slot(&self.link_receipt_ids, receipt_id) {
                Some(i) => self.link_reservation_ids[i] = reservation.reservation_id.clone(),
                None => {
                    self.link_receipt_ids.push(receipt_id.clone());
                    self.link_reservation_ids.push(reservation.reservation_id.clone());
                }
            }
        }
    }
}

impl PgTx<'_> {
    fn query(&mut self, sql: &'static str, params: &Params<'_>) -> Result<Vec<Row>> {
        let ws = self.ws();
        self.state()?.query(ws, sql, params)
    }

    fn query_opt(&mut self, sql: &'static str, params: &Params<'_>) -> Result<Option<Row>> {
        let ws = self.ws();
        self.state()?.query_opt(ws, sql, params)
    }

    /// A statement that may change something (or take a lock): counted as a write.
    fn execute(&mut self, sql: &'static str, params: &Params<'_>) -> Result<u64> {
        let ws = self.ws();
        let mut state = self.state()?;
        state.writes += 1;
        state.execute(ws, sql, params)
    }

    fn lock(&mut self, sql: &'static str, key: i64) -> Result<()> {
        self.execute(sql, &[&key]).map(|_| ())
    }

    /// Buffers a write (see [`Pending`]).
    fn buffer(&mut self, write: impl FnOnce(&mut TxState)) -> Result<()> {
        let mut state = self.state()?;
        state.writes += 1;
        write(&mut state);
        Ok(())
    }

    /// The row `sql` selects (its `body`); `kind` and `shown` name it if it does not load.
    fn one_json<T: DeserializeOwned>(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
        kind: &'static str,
        shown: &str,
    ) -> Result<Option<T>> {
        match self.query_opt(sql, params)? {
            Some(row) => decode(kind, shown, get::<&str>(&row, 0)?).map(Some).map_err(|unreadable| unreadable.error()),
            None => Ok(None),
        }
    }

    /// The rows `sql` selects as `(id, body)`, each loaded or reported as unreadable.
    fn loaded_rows<T: DeserializeOwned>(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
        kind: &'static str,
    ) -> Result<Vec<Loaded<T>>> {
        self.query(sql, params)?
            .iter()
            .map(|row| -> Result<Loaded<T>> { Ok(decode(kind, get::<&str>(row, 0)?, get::<&str>(row, 1)?)) })
            .collect()
    }

    /// `locked` in write transactions, `plain` in read transactions.
    fn pick(&self, locked: &'static str, plain: &'static str) -> &'static str {
        if self.writing {
            locked
        } else {
            plain
        }
    }

    fn receipts(&mut self, sql: &'static str, params: &Params<'_>) -> Result<Vec<StoredReceipt>> {
        self.query(sql, params)?.iter().map(stored_receipt).collect()
    }
}

fn stored_receipt(row: &Row) -> Result<StoredReceipt> {
    let receipt_id: String = get(row, 0)?;
    let receipt = from_compact(get::<&str>(row, 4)?)
        .map_err(|_| UnreadableRow::new("receipt", &receipt_id, "not a compact JWS").error())?;
    Ok(StoredReceipt {
        receipt_id,
        issued_at: Timestamp(get(row, 1)?),
        authorization_id: get(row, 2)?,
        is_checkpoint: get(row, 3)?,
        receipt,
    })
}

impl Tx for PgTx<'_> {
    /// The store is bound to its workspace: in a write transaction (the engine's setup) this
    /// registers it, serialized with other processes setting it up at the same time.
    fn workspace_id(&mut self) -> Result<Option<String>> {
        let ws = self.ws();
        if self.writing {
            self.lock(LOCK_EXCLUSIVE, self.store.locks.setup)?;
            self.execute(REGISTER_WORKSPACE, &[&ws])?;
            return Ok(Some(ws.to_string()));
        }
        Ok(self.query_opt(WORKSPACE_EXISTS, &[&ws])?.map(|_| ws.to_string()))
    }

    fn set_workspace_id(&mut self, workspace_id: &str) -> Result<()> {
        let ws = self.ws();
        if workspace_id != ws {
            return Err(Error::Store(format!("this PostgreSQL store serves workspace `{ws}`, not `{workspace_id}`")));
        }
        self.execute(REGISTER_WORKSPACE, &[&ws]).map(|_| ())
    }

    fn signing_keys(&mut self) -> Result<Vec<SigningKeyRecord>> {
        if self.writing && !self.active_key_read {
            // Key rotation: wait for every transaction signing with the current key to finish
            // before the engine reads the clock that closes the key's window.
            self.lock(LOCK_EXCLUSIVE, self.store.locks.signing)?;
        }
        let ws = self.ws();
        let rows = if self.writing && self.promised_key.is_some() && matches!(self.binding, Binding::Unbound) {
            // The engine filling its signer cache between asking for the (promised) key and
            // reading the authorization, while it holds a lock that work holding pool
            // connections may wait for: read without waiting for the pool, outside the
            // transaction. Key records never change but for the end of their window, and the
            // promised key is still verified by the transaction.
            self.store.pool.inner.side_query(SIGNING_KEYS, &[&ws])?
        } else {
            self.query(SIGNING_KEYS, &[&ws])?
        };
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRecord {
                    key_id: get(row, 0)?,
                    secret_key: key_bytes(get(row, 1)?)?,
                    public_key: key_bytes(get(row, 2)?)?,
                    active_from: Timestamp(get(row, 3)?),
                    active_until: get::<Option<i64>>(row, 4)?.map(Timestamp),
                })
            })
            .collect()
    }

    fn put_signing_key(&mut self, key: &SigningKeyRecord) -> Result<()> {
        let ws = self.ws();
        let until = key.active_until.map(Timestamp::millis);
        self.execute(
            PUT_SIGNING_KEY,
            &[&ws, &key.key_id, &&key.secret_key[..], &&key.public_key[..], &key.active_from.millis(), &until],
        )
        .map(|_| ())
    }

    fn active_key_id(&mut self) -> Result<Option<String>> {
        if !self.writing {
            let ws = self.ws();
            return match self.query_opt(ACTIVE_KEY, &[&ws])? {
                Some(row) => get(&row, 0),
                None => Ok(None),
            };
        }
        self.active_key_read = true;
        if matches!(self.binding, Binding::Unbound) && self.batching() {
            // Answered now, verified by the transaction this work ends up in (see `Batch`).
            let known = self.store.active_key.lock().clone();
            if let Some(known) = known {
                self.promised_key = Some(Some(known.clone()));
                return Ok(Some(known));
            }
        }
        let store = self.store;
        self.state()?.active_key(store)
    }

    fn policy_edition(&mut self, policy_id: &str, version: Option<i64>) -> Result<Option<PolicyEdition>> {
        let ws = self.ws();
        match version {
            Some(version) => {
                let shown = format!("{policy_id}@{version}");
                self.one_json(POLICY_EDITION, &[&ws, &policy_id, &version], "policy edition", &shown)
            }
            None => {
                if self.writing {
                    // Publishing reads the newest edition, then writes the next one.
                    self.lock(LOCK_EXCLUSIVE, self.store.locks.policies)?;
                }
                self.one_json(NEWEST_POLICY_EDITION, &[&ws, &policy_id], "policy edition", policy_id)
            }
        }
    }

    fn put_policy_edition(&mut self, edition: &PolicyEdition) -> Result<()> {
        // Normally held already, since the read that decided this edition.
        self.lock(LOCK_EXCLUSIVE, self.store.locks.policies)?;
        let ws = self.ws();
        let body = to_json(edition)?;
        let r = &edition.policy_ref;
        self.execute(PUT_POLICY_EDITION, &[&ws, &r.policy_id, &r.policy_version, &body]).map(|_| ())
    }

    fn policy_editions(&mut self) -> Result<Vec<Loaded<PolicyEdition>>> {
        if self.writing {
            self.lock(LOCK_EXCLUSIVE, self.store.locks.policies)?;
        }
        let ws = self.ws();
        self.loaded_rows(POLICY_EDITIONS, &[&ws], "policy edition")
    }

    fn authorization(&mut self, authorization_id: &str) -> Result<Option<Authorization>> {
        if matches!(self.binding, Binding::Unbound) && self.batching() {
            self.enter_batch(authorization_id)?;
        }
        let ws = self.ws();
        let writing = self.writing;
        let mut state = self.state()?;
        let load = |body: &str| decode("authorization", authorization_id, body).map_err(|row| row.error());
        if let Some(known) = state.known_row(authorization_id) {
            return known.as_deref().map(load).transpose();
        }
        let sql = if writing { AUTHORIZATION_LOCKED } else { AUTHORIZATION };
        let body: Option<String> = match state.query_opt(ws, sql, &[&ws, &authorization_id])? {
            Some(row) => Some(get(&row, 0)?),
            None => None,
        };
        if writing {
            state.remember_row(authorization_id, body.clone());
        }
        body.as_deref().map(load).transpose()
    }

    fn put_authorization(&mut self, authorization: &Authorization) -> Result<()> {
        let body = to_json(authorization)?;
        self.buffer(|state| {
            state.remember_row(&authorization.authorization_id, Some(body.clone()));
            state.pending.authorization(&authorization.authorization_id, body);
        })
    }

    fn authorizations(&mut self, after: Option<&str>, limit: usize) -> Result<Vec<Loaded<Authorization>>> {
        let ws = self.ws();
        let after = after.unwrap_or("");
        self.loaded_rows(AUTHORIZATIONS, &[&ws, &after, &limit_param(limit)], "authorization")
    }

    fn counter(&mut self, key: &str) -> Result<i64> {
        let ws = self.ws();
        match self.query_opt(COUNTER, &[&ws, &key])? {
            Some(row) => get(&row, 0),
            None => Ok(0),
        }
    }

    fn set_counter(&mut self, key: &str, value: i64) -> Result<()> {
        self.buffer(|state| state.pending.counter(key, value))
    }

    fn count_events(&mut self, key: &str, since: Timestamp) -> Result<u64> {
        let ws = self.ws();
        let rows = self.query(COUNT_EVENTS, &[&ws, &key, &since.millis()])?;
        let count: i64 = match rows.first() {
            Some(row) => get(row, 0)?,
            None => 0,
        };
        Ok(count.max(0) as u64)
    }

    fn add_event(&mut self, key: &str, at: Timestamp, forget_before: Timestamp) -> Result<()> {
        self.buffer(|state| {
            state.pending.event_keys.push(key.to_string());
            state.pending.event_ats.push(at.millis());
            state.pending.event_forget_before.push(forget_before.millis());
        })
    }

    fn confirmation(&mut self, confirmation_id: &str) -> Result<Option<Confirmation>> {
        let ws = self.ws();
        let sql = self.pick(CONFIRMATION_LOCKED, CONFIRMATION);
        self.one_json(sql, &[&ws, &confirmation_id], "confirmation", confirmation_id)
    }

    fn confirmation_by_nonce(&mut self, nonce: &str) -> Result<Option<Confirmation>> {
        let ws = self.ws();
        let sql = self.pick(CONFIRMATION_BY_NONCE_LOCKED, CONFIRMATION_BY_NONCE);
        // Named without its nonce: that is a secret.
        self.one_json(sql, &[&ws, &nonce], "confirmation", "(by nonce)")
    }

    fn latest_confirmation(&mut self, prompt_key: &str) -> Result<Option<Confirmation>> {
        let ws = self.ws();
        self.one_json(LATEST_CONFIRMATION, &[&ws, &prompt_key], "confirmation", "(the latest of an action)")
    }

    fn put_confirmation(&mut self, prompt_key: &str, confirmation: &Confirmation) -> Result<()> {
        let body = to_json(confirmation)?;
        self.buffer(|state| state.pending.confirmation(prompt_key, confirmation, body))
    }

    fn pending_confirmations(&mut self, authorization_id: &str) -> Result<Vec<Loaded<Confirmation>>> {
        let ws = self.ws();
        let sql = self.pick(PENDING_CONFIRMATIONS_LOCKED, PENDING_CONFIRMATIONS);
        self.loaded_rows(sql, &[&ws, &authorization_id], "confirmation")
    }

    fn escalation(&mut self, escalation_id: &str) -> Result<Option<Escalation>> {
        let ws = self.ws();
        let sql = self.pick(ESCALATION_LOCKED, ESCALATION);
        self.one_json(sql, &[&ws, &escalation_id], "escalation", escalation_id)
    }

    fn latest_escalation(&mut self, prompt_key: &str) -> Result<Option<Escalation>> {
        let ws = self.ws();
        self.one_json(LATEST_ESCALATION, &[&ws, &prompt_key], "escalation", "(the latest of an action)")
    }

    fn put_escalation(&mut self, prompt_key: &str, escalation: &Escalation) -> Result<()> {
        let body = to_json(escalation)?;
        self.buffer(|state| state.pending.escalation(prompt_key, &escalation.escalation_id, body))
    }

    fn reservation_for_receipt(&mut self, receipt_id: &str) -> Result<Option<Reservation>> {
        let ws = self.ws();
        let sql = self.pick(RESERVATION_FOR_RECEIPT_LOCKED, RESERVATION_FOR_RECEIPT);
        self.one_json(sql, &[&ws, &receipt_id], "reservation", receipt_id)
    }

    fn put_reservation(&mut self, reservation: &Reservation) -> Result<()> {
        let body = to_json(reservation)?;
        self.buffer(|state| state.pending.reservation(reservation, body))
    }

    fn idempotency(&mut self, key: &str) -> Result<Option<IdempotencyRecord>> {
        let ws = self.ws();
        match self.query_opt(IDEMPOTENCY, &[&ws, &key])? {
            Some(row) => Ok(Some(IdempotencyRecord { request_sha256: get(&row, 0)?, response: get(&row, 1)? })),
            None => Ok(None),
        }
    }

    fn put_idempotency(&mut self, key: &str, record: &IdempotencyRecord) -> Result<()> {
        // A plain insert: of two transactions that both found the key absent, the second fails
        // with a unique violation and is retried, and then replays the first answer.
        self.buffer(|state| {
            state.pending.idempotency_keys.push(key.to_string());
            state.pending.idempotency_digests.push(record.request_sha256.clone());
            state.pending.idempotency_responses.push(record.response.clone());
        })
    }

    fn put_receipt(&mut self, receipt: &StoredReceipt) -> Result<()> {
        let jws = to_compact(&receipt.receipt);
        self.buffer(|state| {
            let p = &mut state.pending;
            p.receipt_ids.push(receipt.receipt_id.clone());
            p.receipt_issued_at.push(receipt.issued_at.millis());
            p.receipt_authorization_ids.push(receipt.authorization_id.clone());
            p.receipt_is_checkpoint.push(receipt.is_checkpoint);
            p.receipt_jws.push(jws);
        })
    }

    fn receipt(&mut self, receipt_id: &str) -> Result<Option<StoredReceipt>> {
        let ws = self.ws();
        Ok(self.receipts(RECEIPT, &[&ws, &receipt_id])?.pop())
    }

    fn for_each_receipt_between(
        &mut self,
        from: Timestamp,
        to: Timestamp,
        visit: &mut dyn FnMut(&StoredReceipt) -> Result<()>,
    ) -> Result<()> {
        // The statement lasts as long as the visits take (rows come with backpressure): lift the
        // statement timeout for it; lock and connection timeouts still apply.
        self.execute(LIFT_STATEMENT_TIMEOUT, &[])?;
        let ws = self.ws();
        let (from, to) = (from.millis(), to.millis());
        let mut state = self.state()?;
        let conn = state.conn()?;
        let streamed = conn.statement(RECEIPTS_BETWEEN).and_then(|statement| {
            // Rows stream from the socket one at a time: a day of receipts never sits in memory.
            let params: [&(dyn ToSql + Sync); 3] = [&ws, &from, &to];
            let mut rows = conn.client.query_raw(&statement, params.iter().map(|p| *p as &dyn ToSql))?;
            let mut visited = Ok(());
            while let Some(row) = rows.next()? {
                visited = stored_receipt(&row).and_then(|receipt| visit(&receipt));
                if visited.is_err() {
                    break;
                }
            }
            Ok(visited)
        });
        match streamed {
            Ok(visited) => visited,
            Err(err) => Err(state.fail(&err)),
        }
    }

    fn latest_receipts(&mut self, limit: usize) -> Result<Vec<StoredReceipt>> {
        let ws = self.ws();
        let mut newest_first = self.receipts(LATEST_RECEIPTS, &[&ws, &limit_param(limit)])?;
        newest_first.reverse();
        Ok(newest_first)
    }

    fn receipts_after(&mut self, after: Option<(Timestamp, String)>, limit: usize) -> Result<Vec<StoredReceipt>> {
        let ws = self.ws();
        let limit = limit_param(limit);
        match after {
            None => self.receipts(FIRST_RECEIPTS, &[&ws, &limit]),
            Some((at, id)) => self.receipts(RECEIPTS_AFTER, &[&ws, &at.millis(), &id, &limit]),
        }
    }

    fn first_receipt_at(&mut self) -> Result<Option<Timestamp>> {
        let ws = self.ws();
        let rows = self.query(FIRST_RECEIPT_AT, &[&ws])?;
        match rows.first() {
            Some(row) => Ok(get::<Option<i64>>(row, 0)?.map(Timestamp)),
            None => Ok(None),
        }
    }

    fn api_key(&mut self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        let ws = self.ws();
        let sql = self.pick(API_KEY_LOCKED, API_KEY);
        self.one_json(sql, &[&ws, &key_id], "API key", key_id)
    }

    fn put_api_key(&mut self, key: &ApiKeyRecord) -> Result<()> {
        let ws = self.ws();
        let body = to_json(key)?;
        self.execute(PUT_API_KEY, &[&ws, &key.key_id, &body]).map(|_| ())
    }

    fn api_keys(&mut self) -> Result<Vec<Loaded<ApiKeyRecord>>> {
        let ws = self.ws();
        self.loaded_rows(API_KEYS, &[&ws], "API key")
    }

    fn checkpoints(&mut self) -> Result<Vec<CheckpointRecord>> {
        let ws = self.ws();
        self.query(CHECKPOINTS, &[&ws])?
            .iter()
            .map(|row| {
                Ok(CheckpointRecord {
                    period_start: Timestamp(get(row, 0)?),
                    receipt_id: get(row, 1)?,
                    merkle_root: get(row, 2)?,
                })
            })
            .collect()
    }

    fn put_checkpoint(&mut self, checkpoint: &CheckpointRecord) -> Result<()> {
        let ws = self.ws();
        self.execute(
            PUT_CHECKPOINT,
            &[&ws, &checkpoint.period_start.millis(), &checkpoint.receipt_id, &checkpoint.merkle_root],
        )
        .map(|_| ())
    }
}
