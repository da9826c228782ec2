//! `allowly serve`, `allowly api-keys` and `allowly workspaces`: the HTTP runtime and the
//! credentials and tenants of a home.

use std::path::Path;
use std::time::Duration;

use allowly_core::model::{ApiKeyCreated, ApiKeyKind, ApiKeyView};
use allowly_core::receipt::KeyDocument;
use allowly_core::{Allowly, Error, Options};
use allowly_server::{CheckpointSchedule, Config, ConnectionLimits, Home, PostgresWorkspaces, Rate, Storage};
use serde_json::json;

use crate::args::{ApiKeysCommand, KeyKind, LogFormat, ServeArgs, WorkspacesCommand};
use crate::commands::{open_existing, EXIT_ERROR, EXIT_OK};
use crate::output::{self, table, Output};

/// Runs the server until SIGTERM or SIGINT; exit 0 after a clean shutdown.
pub fn serve(home: &Path, args: &ServeArgs) -> i32 {
    init_logging(args.log_format);
    let fail = |code: &str, message: &str| {
        output::stderr(&format!("error[{code}]: {message}"));
        EXIT_ERROR
    };
    let storage = match Storage::from_flags(home.to_path_buf(), args.database_url.as_deref()) {
        Ok(storage) => storage,
        Err(err) => return fail(err.code(), &err.to_string()),
    };
    let mut config = Config::new(args.listen, storage);
    config.public_url = args.public_url.clone();
    if let Some(threads) = args.engine_threads {
        config.engine_concurrency = threads;
    }
    config.checkpoints = match args.checkpoint_interval {
        0 => None,
        seconds => Some(CheckpointSchedule { every: Duration::from_secs(seconds), ..CheckpointSchedule::default() }),
    };
    config.connections = ConnectionLimits {
        max_connections: args.max_connections.max(1),
        max_connections_per_address: args.max_connections_per_address.max(1),
        header_timeout: Duration::from_secs(args.header_timeout_seconds.max(1)),
    };
    config.body_timeout = Duration::from_secs(args.body_timeout_seconds.max(1));
    config.auth_failures_per_address = Rate::per_minute(args.auth_failures_per_minute);
    config.requests_per_key = Rate::per_minute(args.key_requests_per_minute);
    config.writes_per_key = Rate::per_minute(args.key_writes_per_minute);
    config.metrics_listen = args.metrics_listen;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return fail("io_error", &format!("cannot start the async runtime: {err}")),
    };
    match runtime.block_on(allowly_server::serve(config)) {
        Ok(()) => EXIT_OK,
        Err(err) => fail(err.code(), &err.to_string()),
    }
}

/// One line per request on stderr; `ALLOWLY_LOG` (or `RUST_LOG`) filters, default `info`.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ALLOWLY_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    // Only fails if a subscriber is already installed, and then logs still go somewhere.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Where `allowly api-keys` and `allowly workspaces` find the workspaces.
pub enum Workspaces {
    Home(Home),
    Postgres(PostgresWorkspaces),
}

impl Workspaces {
    /// The home, or the database of `--database-url` (connected now).
    pub fn of(home: &Path, database_url: Option<&str>) -> Result<Workspaces, Error> {
        match Storage::from_flags(home.to_path_buf(), database_url) {
            Ok(Storage::Sqlite { home }) => Ok(Workspaces::Home(Home::new(home))),
            Ok(Storage::Postgres { url }) => Ok(Workspaces::Postgres(PostgresWorkspaces::connect(&url)?)),
            Err(err) => Err(Error::invalid("database_url", err.to_string())),
        }
    }

    /// The engine of `workspace`, or of the first workspace.
    fn open(&self, workspace: Option<&str>) -> Result<Allowly, Error> {
        let (opened, place) = match self {
            Workspaces::Home(home) => match workspace {
                None => return open_existing(home.dir()),
                Some(id) => (home.open_workspace(id, Options::default())?, format!("`{}`", home.dir().display())),
            },
            Workspaces::Postgres(database) => (database.open(workspace)?, "the database".to_string()),
        };
        opened.ok_or_else(|| Error::NotFound {
            code: "workspace_not_found",
            message: match workspace {
                Some(id) => format!("no workspace `{id}` in {place} (see `allowly workspaces list`)"),
                None => format!("no workspace in {place} (`allowly workspaces create` creates one)"),
            },
        })
    }
}

pub fn api_keys(workspaces: &Workspaces, command: &ApiKeysCommand, out: &Output) -> Result<i32, Error> {
    match command {
        ApiKeysCommand::Create { kind, label, workspace, .. } => {
            let engine = workspaces.open(workspace.as_deref())?;
            let kind = match kind {
                KeyKind::Setup => ApiKeyKind::Setup,
                KeyKind::Runtime => ApiKeyKind::Runtime,
            };
            let created = engine.create_api_key(kind, label.as_deref())?;
            out.emit(&created, created_text)?;
        }
        ApiKeysCommand::List { workspace, .. } => {
            let engine = workspaces.open(workspace.as_deref())?;
            let keys = engine.list_api_keys()?;
            out.emit(&json!({ "workspace_id": engine.workspace_id(), "items": keys }), |_| keys_text(&keys))?;
        }
        ApiKeysCommand::Revoke { key_id, workspace, .. } => {
            let engine = workspaces.open(workspace.as_deref())?;
            engine.revoke_api_key(key_id)?;
            out.emit(&json!({ "key_id": key_id, "revoked": true }), |_| format!("revoked API key {key_id}"))?;
        }
    }
    Ok(EXIT_OK)
}

/// `allowly keys rotate` on a home or a database: safe while servers on it keep signing (each
/// notices the new key on its next signing transaction).
pub fn rotate_key(workspaces: &Workspaces, workspace: Option<&str>, out: &Output) -> Result<i32, Error> {
    rotate_on(&workspaces.open(workspace)?, out)
}

pub fn rotate_on(engine: &Allowly, out: &Output) -> Result<i32, Error> {
    let fresh = engine.rotate_key()?;
    let published = KeyDocument::from_records(engine.workspace_id(), &[fresh]).keys;
    let key = published.first().ok_or_else(|| Error::signing("the rotated key was not published"))?;
    out.emit(key, output::key_rotated)?;
    Ok(EXIT_OK)
}

fn created_text(created: &ApiKeyCreated) -> String {
    format!(
        "created {kind} key {id} for workspace {ws}\n\n  {key}\n\nit is shown this once: store it now",
        kind = created.kind.as_str(),
        id = created.key_id,
        ws = created.workspace_id,
        key = created.key
    )
}

fn keys_text(keys: &[ApiKeyView]) -> String {
    if keys.is_empty() {
        return "no API keys (create one with `allowly api-keys create --kind setup`)".into();
    }
    let mut rows = vec![vec!["KEY".into(), "KIND".into(), "CREATED".into(), "REVOKED".into(), "LABEL".into()]];
    for key in keys {
        rows.push(vec![
            key.key_id.clone(),
            key.kind.as_str().into(),
            key.created_at.clone(),
            key.revoked_at.clone().unwrap_or_else(|| "-".into()),
            key.label.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table(&rows)
}

pub fn workspaces(workspaces: &Workspaces, command: &WorkspacesCommand, out: &Output) -> Result<i32, Error> {
    match command {
        WorkspacesCommand::Create(_) => {
            let (entry, keys) = match workspaces {
                Workspaces::Home(home) => home.create_workspace(Options::default())?,
                Workspaces::Postgres(database) => database.create()?,
            };
            let report = json!({
                "workspace_id": entry.workspace_id,
                "primary": entry.primary,
                "database": entry.database,
                "setup_key": keys.setup,
                "runtime_key": keys.runtime,
            });
            out.emit(&report, |_| {
                let kind = if entry.primary { "the first workspace" } else { "a new tenant" };
                format!("created {} ({kind}) in {}\n{}", entry.workspace_id, entry.database, keys.banner())
            })?;
        }
        WorkspacesCommand::List(_) => {
            let listed = match workspaces {
                Workspaces::Home(home) => home.list_workspaces()?,
                Workspaces::Postgres(database) => database.list()?,
            };
            out.emit(&json!({ "items": listed }), |_| {
                if listed.is_empty() {
                    return "no workspaces (`allowly workspaces create` or `allowly serve` creates the first)".into();
                }
                let mut rows = vec![vec!["WORKSPACE".into(), "PRIMARY".into(), "DATABASE".into()]];
                for entry in &listed {
                    rows.push(vec![
                        entry.workspace_id.clone(),
                        if entry.primary { "yes" } else { "no" }.into(),
                        entry.database.clone(),
                    ]);
                }
                table(&rows)
            })?;
        }
    }
    Ok(EXIT_OK)
}
