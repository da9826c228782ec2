//! The PostgreSQL schema and its migrations: DDL and server-side functions, versioned, applied once
//! under an advisory lock when a pool connects. Kept apart because it changes with the data model,
//! not with the connection or transaction machinery.

use postgres::Client;

use super::failure::{conn_error, pg_message};
use super::pool::PostgresPool;
use crate::error::{Error, Result};

/// The schema version this engine writes; a database with a newer one is refused.
const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Key of the advisory lock that serializes migrations across processes.
const MIGRATION_LOCK: i64 = 0x616c_6c6f_776c_7900; // "allowly\0"

/// Migrations by version; each runs once, in order, in the migrating transaction.
const MIGRATIONS: &[(i32, &str)] = &[(1, SCHEMA_V1), (2, SCHEMA_V2), (3, SCHEMA_V3)];

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

/// Version 2: the receipt facts the audit lookup filters on, in indexed columns (filled in for
/// receipts stored before, out of each JWS's base64url payload), and prompts by status. Each index
/// ends in the listing order, so a filtered page newest-first is one index range.
const SCHEMA_V2: &str = r#"
ALTER TABLE allowly.receipts ADD COLUMN IF NOT EXISTS user_id text COLLATE "C",
    ADD COLUMN IF NOT EXISTS agent_id text COLLATE "C", ADD COLUMN IF NOT EXISTS action text COLLATE "C",
    ADD COLUMN IF NOT EXISTS event text COLLATE "C", ADD COLUMN IF NOT EXISTS decision text COLLATE "C",
    ADD COLUMN IF NOT EXISTS reason text COLLATE "C";
UPDATE allowly.receipts r SET user_id = p->>'user_id', agent_id = p->>'agent_id', action = p->>'action',
    event = p->>'event', decision = p->>'decision', reason = p->>'reason'
FROM (SELECT workspace_id, receipt_id, convert_from(decode(rpad(translate(split_part(jws, '.', 2), '-_', '+/'),
        (length(split_part(jws, '.', 2)) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb AS p
      FROM allowly.receipts WHERE user_id IS NULL) AS payload
WHERE r.workspace_id = payload.workspace_id AND r.receipt_id = payload.receipt_id;
CREATE INDEX IF NOT EXISTS receipts_by_user ON allowly.receipts (workspace_id, user_id, issued_at, receipt_id);
CREATE INDEX IF NOT EXISTS receipts_by_agent ON allowly.receipts (workspace_id, agent_id, issued_at, receipt_id);
CREATE INDEX IF NOT EXISTS receipts_by_action ON allowly.receipts (workspace_id, action, issued_at, receipt_id);
CREATE INDEX IF NOT EXISTS receipts_by_decision ON allowly.receipts (workspace_id, decision, issued_at, receipt_id);
CREATE INDEX IF NOT EXISTS receipts_by_authorization
    ON allowly.receipts (workspace_id, authorization_id, issued_at, receipt_id);
CREATE INDEX IF NOT EXISTS receipts_by_reason ON allowly.receipts (workspace_id, reason, issued_at, receipt_id);
CREATE INDEX IF NOT EXISTS receipts_by_event ON allowly.receipts (workspace_id, event, issued_at, receipt_id)
    WHERE event IS NOT NULL;
CREATE INDEX IF NOT EXISTS confirmations_by_status ON allowly.confirmations (workspace_id, status, confirmation_id);
ALTER TABLE allowly.escalations ADD COLUMN IF NOT EXISTS status text;
UPDATE allowly.escalations SET status = body::jsonb->>'status' WHERE status IS NULL;
CREATE INDEX IF NOT EXISTS escalations_by_status ON allowly.escalations (workspace_id, status, escalation_id);
"#;

/// Version 3: fewer indexes for the write path to keep up (each index a receipt enters is more
/// work per commit). Receipts by agent or action are found by walking the newest receipts (a
/// workspace has few of each), and by decision only the rarer outcomes are indexed: the partial
/// index leaves out `allow`, most of a workspace's receipts, which that walk finds at once.
/// And authorizations by user and by agent, for the filtered list (filled in from each body for
/// the rows stored before); each index ends in the listing order, so a page is one index range.
const SCHEMA_V3: &str = r#"
DROP INDEX IF EXISTS allowly.receipts_by_agent;
DROP INDEX IF EXISTS allowly.receipts_by_action;
DROP INDEX IF EXISTS allowly.receipts_by_decision;
CREATE INDEX receipts_by_decision ON allowly.receipts (workspace_id, decision, issued_at, receipt_id)
    WHERE decision <> 'allow';
ALTER TABLE allowly.authorizations ADD COLUMN IF NOT EXISTS user_id text COLLATE "C",
    ADD COLUMN IF NOT EXISTS agent_id text COLLATE "C";
-- Every body at once; if one is not JSON (a damaged row), row by row, and that row keeps NULLs:
-- it is reported where it is read, and never stops the migration.
DO $$
DECLARE
    stored record;
    parsed jsonb;
BEGIN
    BEGIN
        UPDATE allowly.authorizations
        SET user_id = body::jsonb->>'user_id', agent_id = body::jsonb->>'agent_id' WHERE user_id IS NULL;
    EXCEPTION WHEN data_exception THEN
        FOR stored IN SELECT workspace_id, authorization_id, body FROM allowly.authorizations WHERE user_id IS NULL
        LOOP
            BEGIN
                parsed := stored.body::jsonb;
            EXCEPTION WHEN data_exception THEN
                parsed := NULL;
            END;
            IF parsed IS NOT NULL THEN
                UPDATE allowly.authorizations SET user_id = parsed->>'user_id', agent_id = parsed->>'agent_id'
                WHERE workspace_id = stored.workspace_id AND authorization_id = stored.authorization_id;
            END IF;
        END LOOP;
    END;
END
$$;
CREATE INDEX IF NOT EXISTS authorizations_by_user
    ON allowly.authorizations (workspace_id, user_id, authorization_id);
CREATE INDEX IF NOT EXISTS authorizations_by_agent
    ON allowly.authorizations (workspace_id, agent_id, authorization_id);
"#;

impl PostgresPool {
    pub(super) fn migrate(&self) -> Result<()> {
        let mut lease = self.inner.acquire()?;
        let conn = lease.conn_mut()?;
        // Fast path: an up-to-date schema needs no lock and no DDL privileges.
        let exists: bool = conn
            .client
            .query_one("SELECT to_regclass('allowly.schema_version') IS NOT NULL", &[])
            .and_then(|row| row.try_get(0))
            .map_err(|err| conn_error(conn, err))?;
        if exists {
            let current: Option<i32> = conn
                .client
                .query_one("SELECT max(version) FROM allowly.schema_version", &[])
                .and_then(|row| row.try_get(0))
                .map_err(|err| conn_error(conn, err))?;
            if current == Some(SCHEMA_VERSION) {
                return Ok(());
            }
        }
        conn.client.batch_execute("BEGIN").map_err(|err| conn_error(conn, err))?;
        let migrated = migrate_locked(&mut conn.client);
        let finish = if migrated.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let finished = conn.client.batch_execute(finish).map_err(|err| conn_error(conn, err));
        migrated?;
        finished
    }
}

fn migrate_locked(client: &mut Client) -> Result<()> {
    let sql_error = |err: postgres::Error| {
        Error::store(format!("cannot migrate the PostgreSQL schema: {}", pg_message(&err))).caused_by(err)
    };
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
        return Err(Error::store(format!(
            "the database has allowly schema version {version}, newer than this engine's {SCHEMA_VERSION}"
        )));
    }
    for (step, sql) in MIGRATIONS.iter().filter(|(step, _)| *step > version) {
        client.batch_execute(sql).map_err(sql_error)?;
        client.execute("INSERT INTO allowly.schema_version (version) VALUES ($1)", &[step]).map_err(sql_error)?;
    }
    Ok(())
}
