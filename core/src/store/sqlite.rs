//! SQLite store: one file holds the whole workspace. WAL mode; every write transaction starts with
//! `BEGIN IMMEDIATE`, which takes SQLite's write lock up front, so transactions from any thread or
//! process sharing the file are serialized and a budget or one-use grant is never spent twice.

use std::path::Path;

use parking_lot::Mutex;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{CheckpointRecord, Loaded, Store, Tx, UnreadableRow};
use crate::error::{Error, Result};
use crate::model::{
    ApiKeyRecord, Authorization, AuthorizationFilter, Confirmation, DecisionTally, Escalation, IdempotencyRecord,
    PolicyEdition, PromptStatus, ReceiptFacts, ReceiptFilter, Reservation, SigningKeyRecord, StoredReceipt,
};
use crate::receipt::{decode_receipt, SignedReceipt};
use crate::time::Timestamp;

/// Version 4: receipts are stored packed (the `jws` column holds [`super::packed`] bytes, or a
/// receipt's compact JWS as text when it does not pack). No table changes: receipts stored before
/// stay as text and read as before; the version keeps older engines, which would misread a packed
/// row, from opening the file.
const SCHEMA_VERSION: i64 = 4;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signing_keys (
    key_id TEXT PRIMARY KEY, secret_key BLOB NOT NULL, public_key BLOB NOT NULL,
    active_from INTEGER NOT NULL, active_until INTEGER);
CREATE TABLE IF NOT EXISTS policy_editions (
    policy_id TEXT NOT NULL, policy_version INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (policy_id, policy_version));
CREATE TABLE IF NOT EXISTS authorizations (authorization_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (key TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_key ON events (key, at);
CREATE TABLE IF NOT EXISTS confirmations (
    confirmation_id TEXT PRIMARY KEY, nonce TEXT NOT NULL UNIQUE, prompt_key TEXT NOT NULL,
    authorization_id TEXT NOT NULL, status TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS confirmations_by_prompt ON confirmations (prompt_key);
CREATE INDEX IF NOT EXISTS confirmations_by_authorization ON confirmations (authorization_id, status);
CREATE TABLE IF NOT EXISTS escalations (
    escalation_id TEXT PRIMARY KEY, prompt_key TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS escalations_by_prompt ON escalations (prompt_key);
CREATE TABLE IF NOT EXISTS reservations (reservation_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reservation_receipts (receipt_id TEXT PRIMARY KEY, reservation_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, request_sha256 TEXT NOT NULL, response TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (
    receipt_id TEXT PRIMARY KEY, issued_at INTEGER NOT NULL, authorization_id TEXT,
    is_checkpoint INTEGER NOT NULL, jws TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS receipts_by_time ON receipts (issued_at, receipt_id);
CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    period_start INTEGER PRIMARY KEY, receipt_id TEXT NOT NULL, merkle_root TEXT NOT NULL);
"#;

/// Version 2: the receipt facts the audit lookup filters on, in indexed columns (filled in for
/// receipts stored before), and escalations by status. Each index ends in the listing order so a
/// filtered page newest-first is one index range.
const SCHEMA_V2: &str = r#"
ALTER TABLE receipts ADD COLUMN user_id TEXT;
ALTER TABLE receipts ADD COLUMN agent_id TEXT;
ALTER TABLE receipts ADD COLUMN action TEXT;
ALTER TABLE receipts ADD COLUMN event TEXT;
ALTER TABLE receipts ADD COLUMN decision TEXT;
ALTER TABLE receipts ADD COLUMN reason TEXT;
CREATE INDEX receipts_by_user ON receipts (user_id, issued_at, receipt_id);
CREATE INDEX receipts_by_agent ON receipts (agent_id, issued_at, receipt_id);
CREATE INDEX receipts_by_action ON receipts (action, issued_at, receipt_id);
CREATE INDEX receipts_by_decision ON receipts (decision, issued_at, receipt_id);
CREATE INDEX receipts_by_authorization ON receipts (authorization_id, issued_at, receipt_id);
CREATE INDEX receipts_by_reason ON receipts (reason, issued_at, receipt_id);
CREATE INDEX receipts_by_event ON receipts (event, issued_at, receipt_id) WHERE event IS NOT NULL;
CREATE INDEX confirmations_by_status ON confirmations (status, confirmation_id);
ALTER TABLE escalations ADD COLUMN status TEXT;
UPDATE escalations SET status = json_quote(json_extract(body, '$.status'));
CREATE INDEX escalations_by_status ON escalations (status, escalation_id);
"#;

/// Version 3: fewer indexes for the write path to keep up. Every index a receipt enters costs each
/// commit another page written, so an index now earns its place by what it finds that a walk of
/// the newest receipts would not find soon: receipts by agent or action stay on that walk (a
/// workspace has few of each), and by decision only the rarer outcomes are indexed (the partial
/// index leaves out `allow`, most of a workspace's receipts, which the walk finds at once).
/// And authorizations by user and by agent, for the filtered list (filled in from each body for
/// the rows stored before); each index ends in the listing order, so a page is one index range.
const SCHEMA_V3: &str = r#"
DROP INDEX IF EXISTS receipts_by_agent;
DROP INDEX IF EXISTS receipts_by_action;
DROP INDEX IF EXISTS receipts_by_decision;
CREATE INDEX receipts_by_decision ON receipts (decision, issued_at, receipt_id) WHERE decision <> 'allow';
ALTER TABLE authorizations ADD COLUMN user_id TEXT;
ALTER TABLE authorizations ADD COLUMN agent_id TEXT;
CREATE INDEX authorizations_by_user ON authorizations (user_id, authorization_id);
CREATE INDEX authorizations_by_agent ON authorizations (agent_id, authorization_id);
"#;

/// How hard a commit tries to reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a committed transaction survives the process being killed;
    /// the last commits may be lost if the machine loses power.
    #[default]
    Process,
    /// `synchronous=FULL`: every commit is fsynced; survives power loss.
    Power,
}

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Background checkpoints of this file's WAL (see [`super::wal`]).
    _wal: super::wal::WalWatch,
}

impl SqliteStore {
    /// Opens (creating if needed) the workspace file at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteStore> {
        let existed = path.exists();
        let conn = Connection::open(path)?;
        if !existed {
            restrict_permissions(path);
        }
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let synchronous = match durability {
            Durability::Process => "NORMAL",
            Durability::Power => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.pragma_update(None, "wal_autocheckpoint", 16384)?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let migrated = migrate(&conn);
        conn.execute_batch(if migrated.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
        migrated?;
        Ok(SqliteStore { conn: Mutex::new(conn), _wal: super::wal::watch(path) })
    }

    fn run(&self, begin: &str, commit: bool, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let conn = self.conn.lock();
        conn.execute_batch(begin)?;
        let outcome = work(&mut SqliteTx { conn: &conn });
        let finish = if outcome.is_ok() && commit { "COMMIT" } else { "ROLLBACK" };
        match (outcome, conn.execute_batch(finish)) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(err), _) => Err(err),
            (Ok(()), Err(err)) => {
                // A failed COMMIT may leave the transaction open; close it so the connection stays usable.
                let _ = conn.execute_batch("ROLLBACK");
                Err(err.into())
            }
        }
    }
}

fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::store(format!(
            "the workspace file has schema version {version}, newer than this engine's {SCHEMA_VERSION}"
        )));
    }
    conn.execute_batch(SCHEMA)?;
    if version < 2 {
        conn.execute_batch(SCHEMA_V2)?;
        fill_receipt_facts(conn)?;
    }
    if version < 3 {
        conn.execute_batch(SCHEMA_V3)?;
        fill_authorization_user_and_agent(conn)?;
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// Copies the filtered-on members of every receipt stored before version 2 out of its payload.
fn fill_receipt_facts(conn: &Connection) -> Result<()> {
    let mut select = conn.prepare("SELECT receipt_id, jws FROM receipts WHERE user_id IS NULL")?;
    let mut update = conn.prepare(
        "UPDATE receipts SET user_id = ?2, agent_id = ?3, action = ?4, event = ?5, decision = ?6, reason = ?7
         WHERE receipt_id = ?1",
    )?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let receipt_id: String = row.get(0)?;
        // An unreadable row keeps empty facts: it is reported where it is read, not here.
        let facts = from_stored(row.get_ref(1)?)
            .ok()
            .and_then(|receipt| decode_receipt(&receipt.to_value()).ok())
            .map(|payload| ReceiptFacts::of_payload(&payload))
            .unwrap_or_default();
        update.execute(params![
            receipt_id,
            facts.user_id,
            facts.agent_id,
            facts.action,
            facts.event,
            facts.decision,
            facts.reason
        ])?;
    }
    Ok(())
}

/// Copies the user and agent of every authorization stored before version 3 out of its body.
fn fill_authorization_user_and_agent(conn: &Connection) -> Result<()> {
    let mut select = conn.prepare("SELECT authorization_id, body FROM authorizations WHERE user_id IS NULL")?;
    let mut update =
        conn.prepare("UPDATE authorizations SET user_id = ?2, agent_id = ?3 WHERE authorization_id = ?1")?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let authorization_id: String = row.get(0)?;
        // Read as loosely as a row can be: a body this engine would refuse for another member (an
        // `expires_at` past year 9999) still names its user. One that does not parse keeps NULLs;
        // it is reported where it is read, not here.
        let body: Option<serde_json::Value> = match row.get_ref(1)? {
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => serde_json::from_slice(bytes).ok(),
            _ => None,
        };
        let member = |name: &str| body.as_ref().and_then(|b| b.get(name)).and_then(|v| v.as_str()).map(str::to_string);
        update.execute(params![authorization_id, member("user_id"), member("agent_id")])?;
    }
    Ok(())
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // The file holds the workspace's private signing keys.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}

impl Store for SqliteStore {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.run("BEGIN IMMEDIATE", true, work)
    }

    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.run("BEGIN", false, work)
    }

    /// One transaction for the group, a savepoint around each work: one commit (one WAL append)
    /// instead of one per work, and a failed work's writes are undone alone.
    fn write_each(&self, count: usize, work: &mut dyn FnMut(usize, &mut dyn Tx) -> Result<()>) -> Vec<Result<()>> {
        write_each_on(&self.conn.lock(), count, &mut |n, tx| work(n, tx))
    }
}

fn write_each_on(
    conn: &Connection,
    count: usize,
    work: &mut dyn FnMut(usize, &mut SqliteTx<'_>) -> Result<()>,
) -> Vec<Result<()>> {
    if count == 0 {
        return Vec::new();
    }
    let mut outcomes = Vec::with_capacity(count);
    let mut group = || -> Result<()> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for n in 0..count {
            conn.execute_batch("SAVEPOINT each_write")?;
            let outcome = work(n, &mut SqliteTx { conn });
            if conn.is_autocommit() {
                // Some failures (I/O, a full disk) end the whole transaction.
                return Err(Error::store("the transaction was rolled back"));
            }
            let end = if outcome.is_ok() { "RELEASE each_write" } else { "ROLLBACK TO each_write; RELEASE each_write" };
            conn.execute_batch(end)?;
            outcomes.push(outcome);
        }
        conn.execute_batch("COMMIT")?;
        Ok(())
    };
    match group() {
        Ok(()) => outcomes,
        Err(err) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            // Nothing committed: the works that had succeeded fail with the group; those that had
            // failed keep their own error.
            let message = format!("the group's transaction failed: {err}");
            outcomes.resize_with(count, || Ok(()));
            outcomes.into_iter().map(|outcome| outcome.and(Err(Error::store(message.clone())))).collect()
        }
    }
}

struct SqliteTx<'a> {
    conn: &'a Connection,
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|err| Error::store(format!("cannot encode a row: {err}")).caused_by(err))
}

/// A JSON `body` column as a row of `kind` named `id` (its key, or how it was looked up).
fn decode<T: DeserializeOwned>(kind: &'static str, id: &str, body: ValueRef<'_>) -> Loaded<T> {
    let text = body.as_str().map_err(|err| UnreadableRow::new(kind, id, format!("the body is not text: {err}")))?;
    serde_json::from_str(text).map_err(|err| UnreadableRow::new(kind, id, err))
}

/// Receipts are stored in the JWS compact form `protected.payload.signature`: base64url has no `.`,
/// so the three segments come back exactly, without a JSON round trip on the hot path.
fn to_compact(receipt: &SignedReceipt) -> String {
    let mut compact =
        String::with_capacity(receipt.protected.len() + receipt.payload.len() + receipt.signature.len() + 2);
    for (i, segment) in [&receipt.protected, &receipt.payload, &receipt.signature].into_iter().enumerate() {
        if i > 0 {
            compact.push('.');
        }
        compact.push_str(segment);
    }
    compact
}

/// What the `jws` column holds for `receipt`: packed, or its compact JWS when it does not pack.
fn stored_form(receipt: &SignedReceipt) -> rusqlite::types::Value {
    match super::packed::pack(receipt) {
        Some(packed) => rusqlite::types::Value::Blob(packed),
        None => rusqlite::types::Value::Text(to_compact(receipt)),
    }
}

/// The receipt a `jws` column holds (see [`stored_form`]).
fn from_stored(stored: ValueRef<'_>) -> std::result::Result<SignedReceipt, String> {
    match stored {
        ValueRef::Blob(packed) => super::packed::unpack(packed).map_err(|error| error.to_string()),
        ValueRef::Text(text) => std::str::from_utf8(text)
            .ok()
            .and_then(|text| from_compact(text).ok())
            .ok_or_else(|| "not a compact JWS".to_string()),
        _ => Err("not a receipt".to_string()),
    }
}

fn from_compact(compact: &str) -> Result<SignedReceipt> {
    let mut segments = compact.splitn(3, '.');
    match (segments.next(), segments.next(), segments.next()) {
        (Some(protected), Some(payload), Some(signature)) if !signature.contains('.') => Ok(SignedReceipt {
            protected: protected.to_string(),
            payload: payload.to_string(),
            signature: signature.to_string(),
        }),
        _ => Err(Error::store("corrupt receipt row")),
    }
}

fn key_bytes(bytes: Vec<u8>) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| Error::store("corrupt signing key row"))
}

impl SqliteTx<'_> {
    /// The first row `sql` selects (its `body`); `kind` and `shown` name it if it does not load.
    fn one_json<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        kind: &'static str,
        shown: &str,
    ) -> Result<Option<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        match rows.next()? {
            None => Ok(None),
            Some(row) => decode(kind, shown, row.get_ref(0)?).map(Some).map_err(|unreadable| unreadable.error()),
        }
    }

    /// The rows `sql` selects as `(id, body)`, each loaded or reported as unreadable.
    fn loaded_rows<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        kind: &'static str,
    ) -> Result<Vec<Loaded<T>>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        let mut loaded = Vec::new();
        while let Some(row) = rows.next()? {
            let id = row.get_ref(0)?.as_bytes().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
            loaded.push(decode(kind, &id, row.get_ref(1)?));
        }
        Ok(loaded)
    }

    /// A page of confirmations or escalations (`table`), newest first by id.
    fn prompts<T: DeserializeOwned>(
        &self,
        table: &str,
        id: &str,
        kind: &'static str,
        status: Option<PromptStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<T>>> {
        let status = status.map(|status| to_json(&status)).transpose()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.loaded_rows(
            &format!(
                "SELECT {id}, body FROM {table} WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR {id} < ?2)
                 ORDER BY {id} DESC LIMIT ?3"
            ),
            &[&status, &before, &limit],
            kind,
        )
    }

    fn receipts(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<StoredReceipt>> {
        let mut found = Vec::new();
        self.visit_receipts(sql, params, &mut |receipt| {
            found.push(receipt.clone());
            Ok(())
        })?;
        Ok(found)
    }

    fn visit_receipts(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        visit: &mut dyn FnMut(&StoredReceipt) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        while let Some(row) = rows.next()? {
            let receipt_id: String = row.get(0)?;
            let receipt =
                from_stored(row.get_ref(4)?).map_err(|why| UnreadableRow::new("receipt", &receipt_id, why).error())?;
            let text = |index: usize| row.get::<_, Option<String>>(index);
            let facts = ReceiptFacts {
                user_id: text(5)?.unwrap_or_default(),
                agent_id: text(6)?.unwrap_or_default(),
                action: text(7)?,
                event: text(8)?,
                decision: text(9)?.unwrap_or_default(),
                reason: text(10)?.unwrap_or_default(),
            };
            visit(&StoredReceipt {
                receipt_id,
                issued_at: Timestamp(row.get(1)?),
                authorization_id: row.get(2)?,
                is_checkpoint: row.get(3)?,
                facts,
                receipt,
            })?;
        }
        Ok(())
    }
}

const RECEIPT_COLUMNS: &str =
    "receipt_id, issued_at, authorization_id, is_checkpoint, jws, user_id, agent_id, action, event, decision, reason";

impl Tx for SqliteTx<'_> {
    fn workspace_id(&mut self) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = 'workspace_id'")?
            .query_row([], |row| row.get(0))
            .optional()?)
    }

    fn set_workspace_id(&mut self, workspace_id: &str) -> Result<()> {
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('workspace_id', ?1)", [workspace_id])?;
        Ok(())
    }

    fn signing_keys(&mut self) -> Result<Vec<SigningKeyRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key_id, secret_key, public_key, active_from, active_until FROM signing_keys ORDER BY active_from, key_id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, Vec<u8>>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<i64>>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (key_id, secret, public, from, until) = row?;
            Ok(SigningKeyRecord {
                key_id,
                secret_key: key_bytes(secret)?,
                public_key: key_bytes(public)?,
                active_from: Timestamp(from),
                active_until: until.map(Timestamp),
            })
        })
        .collect()
    }

    fn put_signing_key(&mut self, key: &SigningKeyRecord) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO signing_keys (key_id, secret_key, public_key, active_from, active_until) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key.key_id, &key.secret_key[..], &key.public_key[..], key.active_from.millis(), key.active_until.map(Timestamp::millis)],
        )?;
        Ok(())
    }

    fn active_key_id(&mut self) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT key_id FROM signing_keys WHERE active_until IS NULL")?
            .query_row([], |row| row.get(0))
            .optional()?)
    }

    fn policy_edition(&mut self, policy_id: &str, version: Option<i64>) -> Result<Option<PolicyEdition>> {
        match version {
            Some(version) => {
                let shown = format!("{policy_id}@{version}");
                self.one_json(
                    "SELECT body FROM policy_editions WHERE policy_id = ?1 AND policy_version = ?2",
                    params![policy_id, version],
                    "policy edition",
                    &shown,
                )
            }
            None => self.one_json(
                "SELECT body FROM policy_editions WHERE policy_id = ?1 ORDER BY policy_version DESC LIMIT 1",
                &[&policy_id],
                "policy edition",
                policy_id,
            ),
        }
    }

    fn put_policy_edition(&mut self, edition: &PolicyEdition) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO policy_editions (policy_id, policy_version, body) VALUES (?1, ?2, ?3)",
            params![edition.policy_ref.policy_id, edition.policy_ref.policy_version, to_json(edition)?],
        )?;
        Ok(())
    }

    fn policy_editions(&mut self) -> Result<Vec<Loaded<PolicyEdition>>> {
        self.loaded_rows(
            "SELECT policy_id || '@' || policy_version, body FROM policy_editions ORDER BY policy_id, policy_version",
            &[],
            "policy edition",
        )
    }

    fn authorization(&mut self, authorization_id: &str) -> Result<Option<Authorization>> {
        self.one_json(
            "SELECT body FROM authorizations WHERE authorization_id = ?1",
            &[&authorization_id],
            "authorization",
            authorization_id,
        )
    }

    fn put_authorization(&mut self, authorization: &Authorization) -> Result<()> {
        // An authorization's user and agent never change, so an update (a budgeted check writes
        // one) rewrites only the body and leaves their indexes alone.
        self.conn
            .prepare_cached(
                "INSERT INTO authorizations (authorization_id, user_id, agent_id, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (authorization_id) DO UPDATE SET body = excluded.body",
            )?
            .execute(params![
                authorization.authorization_id,
                authorization.user_id,
                authorization.agent_id,
                to_json(authorization)?
            ])?;
        Ok(())
    }

    fn authorizations(
        &mut self,
        filter: &AuthorizationFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Authorization>>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = after.unwrap_or("");
        // A user has fewer authorizations than an agent, so with both the user's index is walked.
        match (&filter.user_id, &filter.agent_id) {
            (None, None) => self.loaded_rows(
                "SELECT authorization_id, body FROM authorizations WHERE authorization_id > ?1
                 ORDER BY authorization_id LIMIT ?2",
                &[&after, &limit],
                "authorization",
            ),
            (Some(user_id), None) => self.loaded_rows(
                "SELECT authorization_id, body FROM authorizations INDEXED BY authorizations_by_user
                 WHERE user_id = ?3 AND authorization_id > ?1 ORDER BY authorization_id LIMIT ?2",
                &[&after, &limit, user_id],
                "authorization",
            ),
            (None, Some(agent_id)) => self.loaded_rows(
                "SELECT authorization_id, body FROM authorizations INDEXED BY authorizations_by_agent
                 WHERE agent_id = ?3 AND authorization_id > ?1 ORDER BY authorization_id LIMIT ?2",
                &[&after, &limit, agent_id],
                "authorization",
            ),
            (Some(user_id), Some(agent_id)) => self.loaded_rows(
                "SELECT authorization_id, body FROM authorizations INDEXED BY authorizations_by_user
                 WHERE user_id = ?3 AND agent_id = ?4 AND authorization_id > ?1 ORDER BY authorization_id LIMIT ?2",
                &[&after, &limit, user_id, agent_id],
                "authorization",
            ),
        }
    }

    fn counter(&mut self, key: &str) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM counters WHERE key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()?
            .unwrap_or(0))
    }

    fn set_counter(&mut self, key: &str, value: i64) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO counters (key, value) VALUES (?1, ?2)")?
            .execute(params![key, value])?;
        Ok(())
    }

    fn count_events(&mut self, key: &str, since: Timestamp) -> Result<u64> {
        let count: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM events WHERE key = ?1 AND at >= ?2")?
            .query_row(params![key, since.millis()], |row| row.get(0))?;
        Ok(count.max(0) as u64)
    }

    fn add_event(&mut self, key: &str, at: Timestamp, forget_before: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM events WHERE key = ?1 AND at < ?2")?
            .execute(params![key, forget_before.millis()])?;
        self.conn.prepare_cached("INSERT INTO events (key, at) VALUES (?1, ?2)")?.execute(params![key, at.millis()])?;
        Ok(())
    }

    fn confirmation(&mut self, confirmation_id: &str) -> Result<Option<Confirmation>> {
        self.one_json(
            "SELECT body FROM confirmations WHERE confirmation_id = ?1",
            &[&confirmation_id],
            "confirmation",
            confirmation_id,
        )
    }

    fn confirmation_by_nonce(&mut self, nonce: &str) -> Result<Option<Confirmation>> {
        // Named without its nonce: that is a secret.
        self.one_json("SELECT body FROM confirmations WHERE nonce = ?1", &[&nonce], "confirmation", "(by nonce)")
    }

    fn latest_confirmation(&mut self, prompt_key: &str) -> Result<Option<Confirmation>> {
        self.one_json(
            "SELECT body FROM confirmations WHERE prompt_key = ?1 ORDER BY rowid DESC LIMIT 1",
            &[&prompt_key],
            "confirmation",
            "(the latest of an action)",
        )
    }

    fn put_confirmation(&mut self, prompt_key: &str, confirmation: &Confirmation) -> Result<()> {
        let status = to_json(&confirmation.status)?;
        self.conn
            .prepare_cached(
                "INSERT INTO confirmations (confirmation_id, nonce, prompt_key, authorization_id, status, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (confirmation_id) DO UPDATE SET status = excluded.status, body = excluded.body",
            )?
            .execute(params![
                confirmation.confirmation_id,
                confirmation.nonce,
                prompt_key,
                confirmation.authorization_id,
                status,
                to_json(confirmation)?
            ])?;
        Ok(())
    }

    fn pending_confirmations(&mut self, authorization_id: &str) -> Result<Vec<Loaded<Confirmation>>> {
        let pending = to_json(&crate::model::PromptStatus::Pending)?;
        self.loaded_rows(
            "SELECT confirmation_id, body FROM confirmations WHERE authorization_id = ?1 AND status = ?2
             ORDER BY confirmation_id",
            &[&authorization_id, &pending],
            "confirmation",
        )
    }

    fn list_confirmations(
        &mut self,
        status: Option<PromptStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Confirmation>>> {
        self.prompts("confirmations", "confirmation_id", "confirmation", status, before, limit)
    }

    fn escalation(&mut self, escalation_id: &str) -> Result<Option<Escalation>> {
        self.one_json(
            "SELECT body FROM escalations WHERE escalation_id = ?1",
            &[&escalation_id],
            "escalation",
            escalation_id,
        )
    }

    fn latest_escalation(&mut self, prompt_key: &str) -> Result<Option<Escalation>> {
        self.one_json(
            "SELECT body FROM escalations WHERE prompt_key = ?1 ORDER BY rowid DESC LIMIT 1",
            &[&prompt_key],
            "escalation",
            "(the latest of an action)",
        )
    }

    fn put_escalation(&mut self, prompt_key: &str, escalation: &Escalation) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO escalations (escalation_id, prompt_key, status, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (escalation_id) DO UPDATE SET status = excluded.status, body = excluded.body",
            )?
            .execute(params![
                escalation.escalation_id,
                prompt_key,
                to_json(&escalation.status)?,
                to_json(escalation)?
            ])?;
        Ok(())
    }

    fn list_escalations(
        &mut self,
        status: Option<PromptStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Escalation>>> {
        self.prompts("escalations", "escalation_id", "escalation", status, before, limit)
    }

    fn reservation_for_receipt(&mut self, receipt_id: &str) -> Result<Option<Reservation>> {
        self.one_json(
            "SELECT r.body FROM reservation_receipts x JOIN reservations r ON r.reservation_id = x.reservation_id
             WHERE x.receipt_id = ?1",
            &[&receipt_id],
            "reservation",
            receipt_id,
        )
    }

    fn put_reservation(&mut self, reservation: &Reservation) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO reservations (reservation_id, body) VALUES (?1, ?2)")?
            .execute(params![reservation.reservation_id, to_json(reservation)?])?;
        let mut link = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO reservation_receipts (receipt_id, reservation_id) VALUES (?1, ?2)",
        )?;
        for receipt_id in &reservation.receipt_ids {
            link.execute(params![receipt_id, reservation.reservation_id])?;
        }
        Ok(())
    }

    fn idempotency(&mut self, key: &str) -> Result<Option<IdempotencyRecord>> {
        Ok(self
            .conn
            .prepare_cached("SELECT request_sha256, response FROM idempotency WHERE key = ?1")?
            .query_row([key], |row| Ok(IdempotencyRecord { request_sha256: row.get(0)?, response: row.get(1)? }))
            .optional()?)
    }

    fn put_idempotency(&mut self, key: &str, record: &IdempotencyRecord) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO idempotency (key, request_sha256, response) VALUES (?1, ?2, ?3)")?
            .execute(params![key, record.request_sha256, record.response])?;
        Ok(())
    }

    fn put_receipt(&mut self, receipt: &StoredReceipt) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO receipts (receipt_id, issued_at, authorization_id, is_checkpoint, jws,
                     user_id, agent_id, action, event, decision, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                receipt.receipt_id,
                receipt.issued_at.millis(),
                receipt.authorization_id,
                receipt.is_checkpoint,
                stored_form(&receipt.receipt),
                receipt.facts.user_id,
                receipt.facts.agent_id,
                receipt.facts.action,
                receipt.facts.event,
                receipt.facts.decision,
                receipt.facts.reason,
            ])?;
        Ok(())
    }

    fn receipt(&mut self, receipt_id: &str) -> Result<Option<StoredReceipt>> {
        let sql = format!("SELECT {RECEIPT_COLUMNS} FROM receipts WHERE receipt_id = ?1");
        Ok(self.receipts(&sql, &[&receipt_id])?.pop())
    }

    fn for_each_receipt_between(
        &mut self,
        from: Timestamp,
        to: Timestamp,
        visit: &mut dyn FnMut(&StoredReceipt) -> Result<()>,
    ) -> Result<()> {
        let sql = format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE issued_at >= ?1 AND issued_at < ?2 ORDER BY issued_at, receipt_id"
        );
        self.visit_receipts(&sql, &[&from.millis(), &to.millis()], visit)
    }

    fn latest_receipts(&mut self, limit: usize) -> Result<Vec<StoredReceipt>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!("SELECT {RECEIPT_COLUMNS} FROM receipts ORDER BY issued_at DESC, receipt_id DESC LIMIT ?1");
        let mut newest_first = self.receipts(&sql, &[&limit])?;
        newest_first.reverse();
        Ok(newest_first)
    }

    fn receipts_after(&mut self, after: Option<(Timestamp, String)>, limit: usize) -> Result<Vec<StoredReceipt>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match after {
            None => {
                let sql = format!("SELECT {RECEIPT_COLUMNS} FROM receipts ORDER BY issued_at, receipt_id LIMIT ?1");
                self.receipts(&sql, &[&limit])
            }
            Some((at, id)) => {
                let sql = format!(
                    "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE (issued_at, receipt_id) > (?1, ?2)
                     ORDER BY issued_at, receipt_id LIMIT ?3"
                );
                self.receipts(&sql, &[&at.millis(), &id, &limit])
            }
        }
    }

    fn first_receipt_at(&mut self) -> Result<Option<Timestamp>> {
        let first: Option<i64> = self
            .conn
            .prepare_cached("SELECT MIN(issued_at) FROM receipts WHERE is_checkpoint = 0")?
            .query_row([], |row| row.get(0))?;
        Ok(first.map(Timestamp))
    }

    fn find_receipts(
        &mut self,
        filter: &ReceiptFilter,
        before: Option<(Timestamp, String)>,
        limit: usize,
    ) -> Result<Vec<StoredReceipt>> {
        // SQLite keeps no statistics here (nothing runs ANALYZE), so it may walk a common value's
        // index to find a rare one (a user's receipts of one reason through the reason's). The
        // index is chosen by how few receipts each filter usually leaves, most selective first;
        // without one, the walk of the newest receipts (agent, action, `allow`: common values).
        let held = filter.decision.as_deref().is_some_and(|decision| decision != "allow");
        let index = [
            (filter.authorization_id.is_some(), "receipts_by_authorization"),
            (filter.user_id.is_some(), "receipts_by_user"),
            (filter.reason.is_some(), "receipts_by_reason"),
            (filter.event.is_some(), "receipts_by_event"),
            (held, "receipts_by_decision"),
        ]
        .into_iter()
        .find_map(|(given, index)| given.then_some(index))
        .unwrap_or("receipts_by_time");
        let mut conditions: Vec<String> = Vec::new();
        if held {
            // Spelled out so the planner may use the partial index, which leaves `allow` out.
            conditions.push("decision <> 'allow'".to_string());
        }
        let mut params: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        let mut push = |condition: &str, param: Box<dyn rusqlite::ToSql>| {
            params.push(param);
            conditions.push(condition.replace('?', &format!("?{}", params.len())));
        };
        for (column, wanted) in [
            ("user_id", &filter.user_id),
            ("agent_id", &filter.agent_id),
            ("action", &filter.action),
            ("event", &filter.event),
            ("decision", &filter.decision),
            ("reason", &filter.reason),
            ("authorization_id", &filter.authorization_id),
        ] {
            if let Some(value) = wanted {
                push(&format!("{column} = ?"), Box::new(value.clone()));
            }
        }
        if let Some(since) = filter.since {
            push("issued_at >= ?", Box::new(since.millis()));
        }
        if let Some(until) = filter.until {
            push("issued_at < ?", Box::new(until.millis()));
        }
        if let Some((at, id)) = before {
            params.push(Box::new(at.millis()));
            params.push(Box::new(id));
            let n = params.len();
            conditions.push(format!("(issued_at, receipt_id) < (?{}, ?{n})", n - 1));
        }
        params.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
        let filter_sql =
            if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let sql = format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts INDEXED BY {index} {filter_sql}
             ORDER BY issued_at DESC, receipt_id DESC LIMIT ?{}",
            params.len()
        );
        let params: Vec<&dyn rusqlite::ToSql> = params.iter().map(|param| param.as_ref()).collect();
        self.receipts(&sql, &params)
    }

    fn tally_decisions(&mut self, since: Timestamp) -> Result<Vec<DecisionTally>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT issued_at / 86400000 AS day, decision, action,
                    CASE WHEN decision = 'deny' THEN reason END AS denial_reason, COUNT(*)
             FROM receipts INDEXED BY receipts_by_time
             WHERE issued_at >= ?1 AND action IS NOT NULL AND is_checkpoint = 0
             GROUP BY day, decision, action, denial_reason",
        )?;
        let rows = statement.query_map([since.millis()], |row| {
            Ok(DecisionTally {
                day: row.get(0)?,
                decision: row.get(1)?,
                action: row.get(2)?,
                denial_reason: row.get(3)?,
                count: row.get::<_, i64>(4)?.max(0).unsigned_abs(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn api_key(&mut self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        self.one_json("SELECT body FROM api_keys WHERE key_id = ?1", &[&key_id], "API key", key_id)
    }

    fn put_api_key(&mut self, key: &ApiKeyRecord) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO api_keys (key_id, body) VALUES (?1, ?2)")?
            .execute(params![key.key_id, to_json(key)?])?;
        Ok(())
    }

    fn api_keys(&mut self) -> Result<Vec<Loaded<ApiKeyRecord>>> {
        self.loaded_rows("SELECT key_id, body FROM api_keys ORDER BY key_id", &[], "API key")
    }

    fn checkpoints(&mut self) -> Result<Vec<CheckpointRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT period_start, receipt_id, merkle_root FROM checkpoints ORDER BY period_start")?;
        let rows = stmt.query_map([], |row| {
            Ok(CheckpointRecord {
                period_start: Timestamp(row.get(0)?),
                receipt_id: row.get(1)?,
                merkle_root: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn put_checkpoint(&mut self, checkpoint: &CheckpointRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO checkpoints (period_start, receipt_id, merkle_root) VALUES (?1, ?2, ?3)",
            params![checkpoint.period_start.millis(), checkpoint.receipt_id, checkpoint.merkle_root],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// When SQLite ends the transaction under a group (as an I/O error or a full disk can),
    /// nothing of the group commits and every work reports the failure, earlier ones included.
    #[test]
    fn a_group_whose_transaction_ends_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("group.db"), Durability::Process).unwrap();
        let outcomes = write_each_on(&store.conn.lock(), 3, &mut |n, tx| {
            tx.set_counter(&format!("counter-{n}"), 1)?;
            if n == 1 {
                // Stands in for a failure that makes SQLite roll the transaction back.
                tx.conn.execute_batch("ROLLBACK")?;
            }
            Ok(())
        });
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes.iter().all(|outcome| matches!(outcome, Err(Error::Store { .. }))), "{outcomes:?}");
        let mut first = -1;
        store
            .read(&mut |tx| {
                first = tx.counter("counter-0")?;
                Ok(())
            })
            .unwrap();
        assert_eq!(first, 0);
    }
}
