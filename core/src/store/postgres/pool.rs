//! The connection pool: [`PostgresOptions`], [`PostgresPool`] and its leases of connections (each
//! with its prepared statements), handed out first come first served. Kept apart because it knows
//! nothing of workspaces or transactions: it only opens, lends, takes back and drops connections.

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use postgres::{Client, Config, NoTls, Row, Statement};

use super::advisory_key;
use super::failure::{conn_error, pg_message};
use super::sql::{get, Params, WORKSPACE_EXISTS};
use crate::error::{Error, Result};

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
    pub(super) inner: Arc<PoolInner>,
}

pub(super) struct PoolInner {
    config: Config,
    pub(super) options: PostgresOptions,
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
pub(super) struct Conn {
    pub(super) client: Client,
    statements: HashMap<&'static str, Statement>,
    /// Set when the connection failed in a way that leaves it unusable.
    pub(super) broken: bool,
    /// Between a successful `BEGIN` and the end of the transaction; such a connection is never
    /// reused (should the work have panicked).
    pub(super) in_transaction: bool,
}

impl Conn {
    pub(super) fn statement(&mut self, sql: &'static str) -> std::result::Result<Statement, postgres::Error> {
        if let Some(found) = self.statements.get(sql) {
            return Ok(found.clone());
        }
        let prepared = self.client.prepare(sql)?;
        self.statements.insert(sql, prepared.clone());
        Ok(prepared)
    }
}

/// A connection lent out by the pool; it goes back (or is dropped if broken) when this is dropped.
pub(super) struct Lease {
    pub(super) pool: Arc<PoolInner>,
    pub(super) conn: Option<Conn>,
    /// Opened for this lease rather than reused from the idle list.
    pub(super) fresh: bool,
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
            .map_err(|err| conn_error(conn, err))?;
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
        let store_error =
            |err: postgres::Error| Error::store(format!("postgresql: {}", pg_message(&err))).caused_by(err);
        let mut client = self.inner.config.connect(NoTls).map_err(|err| {
            Error::store(format!("cannot connect to PostgreSQL: {}", pg_message(&err))).caused_by(err)
        })?;
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
    pub(super) fn acquire(self: &Arc<Self>) -> Result<Lease> {
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
            None => Err(Error::store(format!(
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
                Err(Error::store(format!("cannot connect to PostgreSQL: {}", pg_message(&err))).caused_by(err))
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
    pub(super) fn side_query(self: &Arc<Self>, sql: &'static str, params: &Params<'_>) -> Result<Vec<Row>> {
        let idle = self.state.lock().idle.pop();
        match idle {
            Some(conn) => {
                let mut lease = Lease { pool: self.clone(), conn: Some(conn), fresh: false };
                let conn = lease.conn_mut()?;
                let outcome = match conn.statement(sql) {
                    Ok(statement) => conn.client.query(&statement, params),
                    Err(err) => Err(err),
                };
                outcome.map_err(|err| conn_error(conn, err))
            }
            None => {
                let mut client = self.config.connect(NoTls).map_err(|err| {
                    Error::store(format!("cannot connect to PostgreSQL: {}", pg_message(&err))).caused_by(err)
                })?;
                client
                    .query(sql, params)
                    .map_err(|err| Error::store(format!("postgresql: {}", pg_message(&err))).caused_by(err))
            }
        }
    }

    /// Drops the idle connections: one of them broke, so the server probably restarted and the
    /// others are stale too.
    pub(super) fn discard_idle(&self) {
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
    pub(super) fn conn_mut(&mut self) -> Result<&mut Conn> {
        self.conn.as_mut().ok_or_else(|| Error::store("the connection was already returned"))
    }
}
