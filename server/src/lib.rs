//! `allowly serve`: the Allowly engine behind the wire-compatible HTTP API (docs/http-api.md).
//!
//! ```no_run
//! # async fn run() -> Result<(), allowly_server::ServeError> {
//! use allowly_server::{Config, Storage};
//! let config = Config::new("127.0.0.1:8787".parse().map_err(|_| allowly_server::ServeError::Config("addr".into()))?,
//!                          Storage::Sqlite { home: ".allowly".into() });
//! allowly_server::serve(config).await
//! # }
//! ```
//!
//! [`Server::bind`] opens the storage and the listener (port 0 picks a free port) and reports the
//! keys created on a first start; [`Server::run`] answers until its shutdown future completes, then
//! stops accepting and lets in-flight requests finish. [`serve`] does both, prints the keys once,
//! and stops on SIGTERM or SIGINT.

mod api;
pub mod backend;
mod checkpoints;
mod connections;
mod console;
mod error;
mod guard;
pub mod home;
mod key_cache;
mod limits;
mod metrics;
mod queue;

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use allowly_core::Options;
use tokio::net::TcpListener;

pub use backend::{Backend, PostgresWorkspaces, Storage};
pub use checkpoints::CheckpointSchedule;
pub use connections::ConnectionLimits;
pub use home::{Home, StarterKeys};
pub use limits::Rate;

/// Body limit of most routes: a check's context is at most 4 KiB, so 64 KiB is generous.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Body limit of the policy routes: a definition may be 64 KiB of canonical JSON, more as sent.
pub const DEFAULT_MAX_POLICY_BODY_BYTES: usize = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Engine(#[from] allowly_core::Error),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

impl ServeError {
    /// A stable machine code, like the engine's.
    pub fn code(&self) -> &str {
        match self {
            ServeError::Config(_) => "invalid_configuration",
            ServeError::Bind { .. } => "address_unavailable",
            ServeError::Engine(err) => err.code(),
            ServeError::Io(_) => "io_error",
        }
    }
}

/// How to run the server.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub storage: Storage,
    /// Base of the absolute `url` in pending receipt envelopes; default `http://<listen address>`.
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
    pub max_policy_body_bytes: usize,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Blocking threads that run one workspace's engine calls at once (its other requests wait
    /// their turn, first come first served).
    pub engine_concurrency: usize,
    /// Daily checkpoints issued while the server runs; `None` leaves them to `allowly checkpoints create`.
    pub checkpoints: Option<CheckpointSchedule>,
    /// Caps on open connections and the deadline of a request head (and of an idle connection).
    pub connections: ConnectionLimits,
    /// How long a client may take to send a request body (`408 request_timeout` after).
    pub body_timeout: Duration,
    /// Failed authentications one client address may make (`429 rate_limited` past it).
    pub auth_failures_per_address: Rate,
    /// Requests one API key may make (`429 rate_limited` past it); unlimited by default.
    pub requests_per_key: Rate,
    /// Requests that write (`POST`, `DELETE`) one API key may make; unlimited by default.
    pub writes_per_key: Rate,
    /// Serve `/metrics` without a key on this address as well (it always takes a setup key on the
    /// API's address).
    pub metrics_listen: Option<SocketAddr>,
}

impl Config {
    pub fn new(listen: SocketAddr, storage: Storage) -> Config {
        Config {
            listen,
            public_url: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_policy_body_bytes: DEFAULT_MAX_POLICY_BODY_BYTES,
            shutdown_grace: Duration::from_secs(30),
            engine_concurrency: match storage {
                // SQLite serializes a workspace's writes: more threads would only queue on its lock.
                Storage::Sqlite { .. } => 2,
                Storage::Postgres { .. } => backend::POSTGRES_ENGINE_THREADS,
            },
            storage,
            checkpoints: Some(CheckpointSchedule::default()),
            connections: ConnectionLimits::default(),
            body_timeout: Duration::from_secs(30),
            auth_failures_per_address: Rate::per_minute(30),
            requests_per_key: Rate::UNLIMITED,
            writes_per_key: Rate::UNLIMITED,
            metrics_listen: None,
        }
    }
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    public_url: String,
    app: Arc<api::App>,
    starter_keys: Option<StarterKeys>,
    shutdown_grace: Duration,
    checkpoints: Option<CheckpointSchedule>,
    connection_limits: ConnectionLimits,
    metrics_listener: Option<TcpListener>,
}

impl Server {
    /// Listens on `config.listen` and opens the storage (creating the first workspace if needed).
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind { addr: config.listen, source })?;
        let local_addr = listener.local_addr()?;
        let public_url = match &config.public_url {
            Some(url) => validate_public_url(url)?,
            None => default_public_url(local_addr),
        };
        let options = Options {
            public_base_url: public_url.clone(),
            provenance_source: "allowly.serve".into(),
            ..Options::default()
        };
        let storage = config.storage.clone();
        let (backend, starter_keys) = tokio::task::spawn_blocking(move || backend::open(&storage, options))
            .await
            .map_err(|err| ServeError::Config(format!("opening the storage failed: {err}")))??;
        tracing::info!(target: "allowly::serve", storage = %backend.describe(), workspace = backend.primary_workspace_id(), "storage open");
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?),
            None => None,
        };
        let app = Arc::new(api::App {
            backend,
            metrics: metrics::Metrics::default(),
            max_body_bytes: config.max_body_bytes,
            max_policy_body_bytes: config.max_policy_body_bytes,
            body_timeout: config.body_timeout,
            queue: queue::EngineQueue::new(config.engine_concurrency),
            key_cache: key_cache::KeyCache::default(),
            connections: Arc::new(connections::ConnectionState::new()),
            limits: guard::Limits::new(
                config.auth_failures_per_address,
                config.requests_per_key,
                config.writes_per_key,
            ),
            sessions: console::Sessions::default(),
            public_url: public_url.clone(),
        });
        Ok(Server {
            listener,
            local_addr,
            public_url,
            app,
            starter_keys,
            shutdown_grace: config.shutdown_grace,
            checkpoints: config.checkpoints,
            connection_limits: config.connections,
            metrics_listener,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `/metrics` is served without a key, if it is (`Config::metrics_listen`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// The base URL written into pending receipt envelopes.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The workspace opened (or created) at start.
    pub fn primary_workspace_id(&self) -> &str {
        self.app.backend.primary_workspace_id()
    }

    /// The setup and runtime keys created because the workspace had none (first start). They
    /// exist nowhere else: show them once.
    pub fn starter_keys(&self) -> Option<&StarterKeys> {
        self.starter_keys.as_ref()
    }

    /// Answers requests until `shutdown` completes, then stops accepting connections and waits (at
    /// most the configured grace) for in-flight requests to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let router = api::router(self.app.clone());
        let checkpoints =
            self.checkpoints.map(|schedule| tokio::spawn(checkpoints::run(self.app.backend.clone(), schedule)));
        let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
        let metrics = self.metrics_listener.map(|listener| {
            let router = api::metrics_router(self.app.clone());
            let limits = self.connection_limits.clone();
            let state = Arc::new(connections::ConnectionState::new());
            tokio::spawn(connections::serve(listener, router, limits, state, stopping_rx.clone()))
        });
        let serving = connections::serve(
            self.listener,
            router,
            self.connection_limits,
            self.app.connections.clone(),
            stopping_rx.clone(),
        );
        tokio::pin!(serving);
        let grace = self.shutdown_grace;
        tokio::select! {
            () = &mut serving => {}
            () = shutdown => {
                tracing::info!(target: "allowly::serve", "shutting down: no new connections; finishing requests in flight");
                let _ = stopping_tx.send(true);
                if tokio::time::timeout(grace, &mut serving).await.is_err() {
                    tracing::warn!(target: "allowly::serve", "grace period over: exiting with requests in flight");
                }
            }
        }
        if let Some(task) = metrics {
            task.abort();
        }
        if let Some(task) = checkpoints {
            task.abort();
        }
        tracing::info!(target: "allowly::serve", "stopped");
        Ok(())
    }
}

/// Binds, prints where it listens (and, on a first start, the new keys) to stdout, and serves
/// until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let server = Server::bind(config).await?;
    let mut text = format!(
        "allowly serve: listening on http://{} (workspace {}, public url {})\n",
        server.local_addr(),
        server.primary_workspace_id(),
        server.public_url()
    );
    if let Some(addr) = server.metrics_addr() {
        text.push_str(&format!("allowly serve: metrics on http://{addr}/metrics\n"));
    }
    if let Some(keys) = server.starter_keys() {
        text.push_str(&keys.banner());
        text.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    server.run(shutdown_signal()).await
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// Two: one thread holds the workspace's store while the other parses and serializes.
fn default_public_url(addr: SocketAddr) -> String {
    let ip = addr.ip();
    let host = if ip.is_unspecified() {
        // Listening everywhere: loopback is the one address certain to reach this server.
        if ip.is_ipv4() {
            "127.0.0.1".to_string()
        } else {
            "[::1]".to_string()
        }
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    format!("http://{host}:{}", addr.port())
}

fn validate_public_url(url: &str) -> Result<String, ServeError> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(trimmed.to_string()),
        _ => Err(ServeError::Config(format!("invalid --public-url `{url}`: expected http(s)://host[:port][/path]"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls() {
        let addr = |s: &str| s.parse::<SocketAddr>().map_err(|e| e.to_string());
        assert_eq!(addr("0.0.0.0:8787").map(default_public_url), Ok("http://127.0.0.1:8787".to_string()));
        assert_eq!(addr("[::]:80").map(default_public_url), Ok("http://[::1]:80".to_string()));
        assert_eq!(addr("10.0.0.2:9").map(default_public_url), Ok("http://10.0.0.2:9".to_string()));
        assert_eq!(validate_public_url("https://a.example/").ok(), Some("https://a.example".to_string()));
        assert!(validate_public_url("ftp://x").is_err());
    }
}
