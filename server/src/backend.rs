//! Where the workspaces live. The HTTP layer only needs "the engine of workspace X" and "does the
//! store answer"; a [`Backend`] provides both.
//!
//! [`SqliteHome`] is the embedded home (one SQLite file per workspace); [`PostgresBackend`] is one
//! PostgreSQL database shared by any number of servers (one connection pool per server, one
//! `PostgresStore` per workspace on it). Both cache one engine per workspace. See [`open`] for the
//! one place that chooses.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use allowly_core::store::{PostgresOptions, PostgresPool, PostgresStore};
use allowly_core::{ids, Allowly, Error, Options, SystemClock, Timestamp};
use parking_lot::RwLock;

use crate::home::{self, Home, StarterKeys, WorkspaceEntry};

/// Where `allowly serve` keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// The embedded SQLite home directory.
    Sqlite { home: PathBuf },
    /// A PostgreSQL database shared by several servers (`postgres://...`).
    Postgres { url: String },
}

impl Storage {
    /// `--database-url` if given, else the SQLite home. Only PostgreSQL URLs are accepted.
    pub fn from_flags(home: PathBuf, database_url: Option<&str>) -> Result<Storage, crate::ServeError> {
        match database_url {
            None => Ok(Storage::Sqlite { home }),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Storage::Postgres { url: url.to_string() })
            }
            Some(_) => Err(crate::ServeError::Config(
                "unsupported --database-url: expected `postgres://...` or `postgresql://...`".into(),
            )),
        }
    }
}

/// The workspaces a server answers for.
pub trait Backend: Send + Sync + 'static {
    /// The engine of `workspace_id`, or `None` if there is no such workspace. May block (opens
    /// files or connections); call it from a blocking thread.
    fn workspace(&self, workspace_id: &str) -> Result<Option<Arc<Allowly>>, Error>;

    /// Succeeds when the store answers a read (readiness). May block.
    fn ready(&self) -> Result<(), Error>;

    /// The workspace opened (or created) at start.
    fn primary_workspace_id(&self) -> &str;

    /// How many workspaces are open now (a metric).
    fn open_workspaces(&self) -> usize;

    /// Every workspace it holds, open or not. May block.
    fn workspace_ids(&self) -> Result<Vec<String>, Error>;

    /// What it is, for the start-up log (no secrets).
    fn describe(&self) -> String;
}

/// Opens the backend `storage` names, creating the first workspace if needed. Returns the keys
/// created on a first start, to be shown once. Blocking.
pub fn open(storage: &Storage, options: Options) -> Result<(Arc<dyn Backend>, Option<StarterKeys>), crate::ServeError> {
    match storage {
        Storage::Sqlite { home } => {
            let (backend, keys) = SqliteHome::open(Home::new(home.clone()), options)?;
            Ok((Arc::new(backend), keys))
        }
        Storage::Postgres { url } => {
            let (backend, keys) = PostgresBackend::open(url, options)?;
            Ok((Arc::new(backend), keys))
        }
    }
}

/// The SQLite home: the primary workspace is opened at start, tenants lazily on first use, and
/// each engine is cached (one `Allowly`, one connection, per workspace).
pub struct SqliteHome {
    home: Home,
    options: Options,
    engines: Engines,
}

impl SqliteHome {
    pub fn open(home: Home, options: Options) -> Result<(SqliteHome, Option<StarterKeys>), Error> {
        let primary = home.open_primary(options.clone())?;
        let keys = home::starter_keys_if_none(&primary)?;
        let backend = SqliteHome { home, options, engines: Engines::new(primary) };
        Ok((backend, keys))
    }
}

impl Backend for SqliteHome {
    fn workspace(&self, workspace_id: &str) -> Result<Option<Arc<Allowly>>, Error> {
        self.engines.get_or_open(workspace_id, || self.home.open_tenant(workspace_id, self.options.clone()))
    }

    fn ready(&self) -> Result<(), Error> {
        self.engines.primary.key_document().map(|_| ())
    }

    fn primary_workspace_id(&self) -> &str {
        &self.engines.primary_id
    }

    fn open_workspaces(&self) -> usize {
        self.engines.len()
    }

    fn workspace_ids(&self) -> Result<Vec<String>, Error> {
        Ok(self.home.list_workspaces()?.into_iter().map(|entry| entry.workspace_id).collect())
    }

    fn describe(&self) -> String {
        format!("sqlite home {}", self.home.dir().display())
    }
}

/// The engines a backend has open: its primary workspace's, opened at start, and tenants', opened
/// on first use and kept (one `Allowly` per workspace).
struct Engines {
    primary: Arc<Allowly>,
    primary_id: String,
    tenants: RwLock<HashMap<String, Arc<Allowly>>>,
}

impl Engines {
    fn new(primary: Allowly) -> Engines {
        let primary_id = primary.workspace_id().to_string();
        Engines { primary: Arc::new(primary), primary_id, tenants: RwLock::new(HashMap::new()) }
    }

    /// The engine of `workspace_id`: cached, or from `open` (`None`: no such workspace). `open`
    /// runs outside the lock, as it may wait on a file or the network; two threads may race to
    /// open one tenant, and the first engine cached wins.
    fn get_or_open(
        &self,
        workspace_id: &str,
        open: impl FnOnce() -> Result<Option<Allowly>, Error>,
    ) -> Result<Option<Arc<Allowly>>, Error> {
        if workspace_id == self.primary_id {
            return Ok(Some(self.primary.clone()));
        }
        if let Some(found) = self.tenants.read().get(workspace_id) {
            return Ok(Some(found.clone()));
        }
        let Some(opened) = open()? else { return Ok(None) };
        Ok(Some(self.tenants.write().entry(workspace_id.to_string()).or_insert_with(|| Arc::new(opened)).clone()))
    }

    fn len(&self) -> usize {
        1 + self.tenants.read().len()
    }
}

/// Connections each server keeps to PostgreSQL: two servers stay well inside PostgreSQL's default
/// `max_connections` of 100.
pub const POSTGRES_POOL_SIZE: usize = 32;
/// Engine threads per workspace shard on PostgreSQL: they wait on the network rather than on a
/// CPU, and checks of one hot authorization that arrive together share a transaction, so one per
/// connection keeps the pool busy.
pub const POSTGRES_ENGINE_THREADS: usize = 32;

/// A PostgreSQL database: the primary workspace is the oldest one (created on the first start of
/// the first server), tenants are opened on first use, and each engine is cached.
pub struct PostgresBackend {
    pool: PostgresPool,
    options: Options,
    engines: Engines,
}

impl PostgresBackend {
    /// Connects (migrating the schema) and opens the primary workspace, creating it and its keys
    /// if the database has none. Blocking.
    pub fn open(url: &str, options: Options) -> Result<(PostgresBackend, Option<StarterKeys>), Error> {
        let pool = PostgresPool::connect(url, PostgresOptions { pool_size: POSTGRES_POOL_SIZE, ..Default::default() })?;
        let (primary, keys) = pool.exclusively(FIRST_WORKSPACE_LOCK, || {
            let primary_id = match pool.list_workspaces()?.into_iter().next() {
                Some(existing) => existing,
                None => ids::new_id("ws_", Timestamp::now())?,
            };
            let primary = open_engine(&pool, &primary_id, options.clone())?;
            let keys = home::starter_keys_if_none(&primary)?;
            Ok((primary, keys))
        })?;
        let backend = PostgresBackend { pool, options, engines: Engines::new(primary) };
        Ok((backend, keys))
    }
}

/// Held while a process decides whether the database has a first workspace and creates it.
const FIRST_WORKSPACE_LOCK: &str = "first-workspace";

fn open_engine(pool: &PostgresPool, workspace_id: &str, options: Options) -> Result<Allowly, Error> {
    let store = PostgresStore::for_workspace(pool, workspace_id)?;
    let options = Options { workspace_id: Some(workspace_id.to_string()), ..options };
    Allowly::with_store(Box::new(store), Box::new(SystemClock), options)
}

/// The workspaces of a PostgreSQL database, for `allowly workspaces` and `allowly api-keys
/// --database-url`: the primary workspace is the oldest (lowest id, as ids start with their time).
pub struct PostgresWorkspaces {
    pool: PostgresPool,
}

impl PostgresWorkspaces {
    /// Connects with a small pool (migrating the schema). Blocking.
    pub fn connect(url: &str) -> Result<PostgresWorkspaces, Error> {
        let pool = PostgresPool::connect(url, PostgresOptions { pool_size: 2, ..Default::default() })?;
        Ok(PostgresWorkspaces { pool })
    }

    /// The engine of `workspace_id`, or of the primary workspace; `None` if there is no such one.
    pub fn open(&self, workspace_id: Option<&str>) -> Result<Option<Allowly>, Error> {
        let id = match workspace_id {
            Some(id) if home::valid_workspace_id(id) && self.pool.workspace_exists(id)? => id.to_string(),
            Some(_) => return Ok(None),
            None => match self.pool.list_workspaces()?.into_iter().next() {
                Some(primary) => primary,
                None => return Ok(None),
            },
        };
        open_engine(&self.pool, &id, Options::default()).map(Some)
    }

    /// Creates a workspace with a setup and a runtime key: the database's first, or a tenant.
    pub fn create(&self) -> Result<(WorkspaceEntry, StarterKeys), Error> {
        self.pool.exclusively(FIRST_WORKSPACE_LOCK, || {
            let primary = self.pool.list_workspaces()?.is_empty();
            let workspace_id = ids::new_id("ws_", Timestamp::now())?;
            let engine = open_engine(&self.pool, &workspace_id, Options::default())?;
            let keys = home::create_starter_keys(&engine)?;
            Ok((WorkspaceEntry { workspace_id, primary, database: POSTGRES_DATABASE_LABEL.into() }, keys))
        })
    }

    /// Every workspace, the primary first.
    pub fn list(&self) -> Result<Vec<WorkspaceEntry>, Error> {
        let ids = self.pool.list_workspaces()?;
        Ok(ids
            .into_iter()
            .enumerate()
            .map(|(n, workspace_id)| WorkspaceEntry {
                workspace_id,
                primary: n == 0,
                database: POSTGRES_DATABASE_LABEL.into(),
            })
            .collect())
    }
}

/// How a PostgreSQL workspace's database is shown (the URL may hold a password).
const POSTGRES_DATABASE_LABEL: &str = "postgresql";

impl Backend for PostgresBackend {
    fn workspace(&self, workspace_id: &str) -> Result<Option<Arc<Allowly>>, Error> {
        self.engines.get_or_open(workspace_id, || {
            // Opening an engine registers its workspace: only open ids the database already has
            // (created by `allowly workspaces create` or another server).
            if !home::valid_workspace_id(workspace_id) || !self.pool.workspace_exists(workspace_id)? {
                return Ok(None);
            }
            open_engine(&self.pool, workspace_id, self.options.clone()).map(Some)
        })
    }

    fn ready(&self) -> Result<(), Error> {
        self.engines.primary.key_document().map(|_| ())
    }

    fn primary_workspace_id(&self) -> &str {
        &self.engines.primary_id
    }

    fn open_workspaces(&self) -> usize {
        self.engines.len()
    }

    fn workspace_ids(&self) -> Result<Vec<String>, Error> {
        self.pool.list_workspaces()
    }

    fn describe(&self) -> String {
        POSTGRES_DATABASE_LABEL.to_string()
    }
}
