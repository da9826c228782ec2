//! The embedded SQLite home as a data directory of several workspaces.
//!
//! `<home>/allowly.db` is the first workspace (the one `allowly init` and the other CLI commands
//! use); every further tenant lives in `<home>/workspaces/<workspace_id>.db`. A workspace id comes
//! from a presented API key, so it is checked against a strict alphabet before it ever becomes part
//! of a path, and a tenant file is only opened, never created, when a request names it.

use std::path::{Path, PathBuf};

use allowly_core::engine::DATABASE_FILE;
use allowly_core::model::{ApiKeyCreated, ApiKeyKind};
use allowly_core::store::{Durability, SqliteStore};
use allowly_core::{Allowly, Error, Options, SystemClock, Timestamp};
use serde::Serialize;

/// Directory of the tenants after the first, inside the home.
pub const WORKSPACES_DIR: &str = "workspaces";
const TENANT_EXTENSION: &str = "db";

/// Whether `id` is shaped like a workspace id (`ws_` and 1 to 64 of `[A-Za-z0-9_-]`). Nothing else
/// is ever turned into a file name.
pub fn valid_workspace_id(id: &str) -> bool {
    id.strip_prefix("ws_").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 64
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// The two keys a new workspace starts with; their secrets are in these values only.
#[derive(Clone, Debug, Serialize)]
pub struct StarterKeys {
    pub workspace_id: String,
    pub setup: ApiKeyCreated,
    pub runtime: ApiKeyCreated,
}

impl StarterKeys {
    /// The text printed once, when the keys are created.
    pub fn banner(&self) -> String {
        format!(
            "New API keys for workspace {ws}. Store them now: they are shown once and never again.\n  \
             setup key   (policies, API keys, everything): {setup}\n  \
             runtime key (checks, authorizations, approvals, receipts, budgets): {runtime}",
            ws = self.workspace_id,
            setup = self.setup.key,
            runtime = self.runtime.key,
        )
    }
}

/// One workspace of a home, as listed.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct WorkspaceEntry {
    pub workspace_id: String,
    /// True for `<home>/allowly.db`, the workspace the other CLI commands use.
    pub primary: bool,
    pub database: String,
}

/// A home directory and the workspaces in it.
#[derive(Clone, Debug)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    pub fn new(dir: impl Into<PathBuf>) -> Home {
        Home { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn primary_path(&self) -> PathBuf {
        self.dir.join(DATABASE_FILE)
    }

    pub fn has_primary(&self) -> bool {
        self.primary_path().is_file()
    }

    /// `<home>/workspaces/<id>.db`, or `None` for an id that is not a valid workspace id.
    pub fn tenant_path(&self, workspace_id: &str) -> Option<PathBuf> {
        valid_workspace_id(workspace_id)
            .then(|| self.dir.join(WORKSPACES_DIR).join(format!("{workspace_id}.{TENANT_EXTENSION}")))
    }

    /// Opens the first workspace, creating the home, the file and its signing key if needed.
    pub fn open_primary(&self, options: Options) -> Result<Allowly, Error> {
        create_private_dir(&self.dir)?;
        open_file(&self.primary_path(), options)
    }

    /// Opens a tenant file if it exists (never creates one).
    pub fn open_tenant(&self, workspace_id: &str, mut options: Options) -> Result<Option<Allowly>, Error> {
        let Some(path) = self.tenant_path(workspace_id).filter(|p| p.is_file()) else {
            return Ok(None);
        };
        options.workspace_id = Some(workspace_id.to_string());
        open_file(&path, options).map(Some)
    }

    /// Opens any workspace of the home by id: the primary if it has that id, else a tenant file.
    pub fn open_workspace(&self, workspace_id: &str, options: Options) -> Result<Option<Allowly>, Error> {
        if self.has_primary() {
            let primary = self.open_primary(options.clone())?;
            if primary.workspace_id() == workspace_id {
                return Ok(Some(primary));
            }
        }
        self.open_tenant(workspace_id, options)
    }

    /// Creates a workspace with a setup and a runtime key: the home's first workspace if it has
    /// none yet, else a new tenant file.
    pub fn create_workspace(&self, options: Options) -> Result<(WorkspaceEntry, StarterKeys), Error> {
        if !self.has_primary() {
            let engine = self.open_primary(options)?;
            let keys = create_starter_keys(&engine)?;
            let entry = WorkspaceEntry {
                workspace_id: engine.workspace_id().to_string(),
                primary: true,
                database: absolute(&self.primary_path()),
            };
            return Ok((entry, keys));
        }
        let workspace_id = allowly_core::ids::new_id("ws_", Timestamp::now())?;
        let path = self
            .tenant_path(&workspace_id)
            .ok_or_else(|| Error::io(format!("generated an invalid workspace id `{workspace_id}`")))?;
        create_private_dir(&self.dir)?;
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        let engine = open_file(&path, Options { workspace_id: Some(workspace_id.clone()), ..options })?;
        let keys = create_starter_keys(&engine)?;
        Ok((WorkspaceEntry { workspace_id, primary: false, database: absolute(&path) }, keys))
    }

    /// The primary workspace (if any) then the tenants, by id.
    pub fn list_workspaces(&self) -> Result<Vec<WorkspaceEntry>, Error> {
        let mut out = Vec::new();
        if self.has_primary() {
            let primary = self.open_primary(Options::default())?;
            out.push(WorkspaceEntry {
                workspace_id: primary.workspace_id().to_string(),
                primary: true,
                database: absolute(&self.primary_path()),
            });
        }
        let dir = self.dir.join(WORKSPACES_DIR);
        let mut tenants = Vec::new();
        if dir.is_dir() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|err| Error::io(format!("cannot read `{}`: {err}", dir.display())).caused_by(err))?;
            for entry in entries {
                let path = entry.map_err(|err| Error::io(err.to_string()).caused_by(err))?.path();
                let is_tenant = path.extension().is_some_and(|e| e == TENANT_EXTENSION);
                let id = path.file_stem().and_then(|s| s.to_str()).filter(|id| valid_workspace_id(id));
                if let (true, Some(id)) = (is_tenant && path.is_file(), id) {
                    tenants.push(WorkspaceEntry {
                        workspace_id: id.to_string(),
                        primary: false,
                        database: absolute(&path),
                    });
                }
            }
        }
        tenants.sort_by(|a, b| a.workspace_id.cmp(&b.workspace_id));
        out.extend(tenants);
        Ok(out)
    }
}

/// Creates the setup and runtime keys of a workspace that has no API key at all (first start);
/// `None` when it already has keys (revoked ones count), so they are printed only once.
pub fn starter_keys_if_none(engine: &Allowly) -> Result<Option<StarterKeys>, Error> {
    if !engine.list_api_keys()?.is_empty() {
        return Ok(None);
    }
    create_starter_keys(engine).map(Some)
}

/// Creates a setup and a runtime key for a new workspace.
pub fn create_starter_keys(engine: &Allowly) -> Result<StarterKeys, Error> {
    Ok(StarterKeys {
        workspace_id: engine.workspace_id().to_string(),
        setup: engine.create_api_key(ApiKeyKind::Setup, Some("first setup key"))?,
        runtime: engine.create_api_key(ApiKeyKind::Runtime, Some("first runtime key"))?,
    })
}

fn open_file(path: &Path, options: Options) -> Result<Allowly, Error> {
    let store = SqliteStore::open(path, Durability::default())?;
    Allowly::with_store(Box::new(store), Box::new(SystemClock), options)
}

/// Creates a directory (and its parents) readable by its owner only: it holds signing keys.
fn create_private_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|err| Error::io(format!("cannot create `{}`: {err}", dir.display())).caused_by(err))
}

fn absolute(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_ids_never_escape_the_home() {
        assert!(valid_workspace_id("ws_01JABCDEF"));
        assert!(valid_workspace_id("ws_a-b_c"));
        for bad in ["", "ws_", "ws_../x", "ws_a/b", "ws_a.b", "x_abc", "ws_a b", "ws_\u{e9}"] {
            assert!(!valid_workspace_id(bad), "{bad:?}");
        }
        let home = Home::new("/tmp/h");
        assert!(home.tenant_path("ws_../../etc").is_none());
    }

    #[test]
    fn first_workspace_then_tenants() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(e.to_string()).caused_by(e))?;
        let home = Home::new(dir.path().join("home"));
        let (first, keys) = home.create_workspace(Options::default())?;
        assert!(first.primary);
        assert!(keys.setup.key.starts_with(&format!("allowly.setup.{}.", first.workspace_id)));
        let (second, _) = home.create_workspace(Options::default())?;
        assert!(!second.primary);
        let listed = home.list_workspaces()?;
        assert_eq!(
            listed.iter().map(|w| w.workspace_id.clone()).collect::<Vec<_>>(),
            vec![first.workspace_id.clone(), second.workspace_id.clone()]
        );
        let opened = home.open_workspace(&second.workspace_id, Options::default())?;
        assert_eq!(opened.map(|e| e.workspace_id().to_string()), Some(second.workspace_id.clone()));
        assert!(home.open_tenant("ws_missing", Options::default())?.is_none());
        let primary = home.open_primary(Options::default())?;
        assert!(starter_keys_if_none(&primary)?.is_none(), "keys are created once");
        Ok(())
    }
}
