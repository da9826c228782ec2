//! The SQL the store sends (`$1` is always the store's workspace id) and the conversions between
//! rows and model values. Kept apart so the statements can be read (and reviewed against the
//! schema) in one place, away from the code that runs them.

use std::sync::OnceLock;

use postgres::types::ToSql;
use postgres::Row;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{PromptStatus, ReceiptFacts, ReceiptFilter, StoredReceipt};
use crate::receipt::SignedReceipt;
use crate::store::{Loaded, UnreadableRow};
use crate::time::Timestamp;

pub(super) fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, index: usize) -> Result<T> {
    row.try_get(index).map_err(|err| Error::store(format!("corrupt row: {err}")).caused_by(err))
}

pub(super) fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|err| Error::store(format!("cannot encode a row: {err}")).caused_by(err))
}

/// A JSON `body` column as a row of `kind` named `id` (its key, or how it was looked up).
pub(super) fn decode<T: DeserializeOwned>(kind: &'static str, id: &str, body: &str) -> Loaded<T> {
    serde_json::from_str(body).map_err(|err| UnreadableRow::new(kind, id, err))
}

/// Receipts are stored in the JWS compact form `protected.payload.signature` (base64url has no `.`).
pub(super) fn to_compact(receipt: &SignedReceipt) -> String {
    format!("{}.{}.{}", receipt.protected, receipt.payload, receipt.signature)
}

pub(super) fn from_compact(compact: &str) -> Result<SignedReceipt> {
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

pub(super) fn key_bytes(bytes: Vec<u8>) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| Error::store("corrupt signing key row"))
}

pub(super) fn status_text(status: PromptStatus) -> &'static str {
    match status {
        PromptStatus::Pending => "pending",
        PromptStatus::Approved => "approved",
        PromptStatus::Rejected => "rejected",
        PromptStatus::Expired => "expired",
    }
}

pub(super) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(super) type Params<'a> = [&'a (dyn ToSql + Sync)];

pub(super) fn stored_receipt(row: &Row) -> Result<StoredReceipt> {
    let receipt_id: String = get(row, 0)?;
    let receipt = from_compact(get::<&str>(row, 4)?)
        .map_err(|_| UnreadableRow::new("receipt", &receipt_id, "not a compact JWS").error())?;
    let text = |index: usize| get::<Option<String>>(row, index);
    let facts = ReceiptFacts {
        user_id: text(5)?.unwrap_or_default(),
        agent_id: text(6)?.unwrap_or_default(),
        action: text(7)?,
        event: text(8)?,
        decision: text(9)?.unwrap_or_default(),
        reason: text(10)?.unwrap_or_default(),
    };
    Ok(StoredReceipt {
        receipt_id,
        issued_at: Timestamp(get(row, 1)?),
        authorization_id: get(row, 2)?,
        is_checkpoint: get(row, 3)?,
        facts,
        receipt,
    })
}

// Statements. `$1` is always the store's workspace id.

pub(super) const LIFT_STATEMENT_TIMEOUT: &str = "SET LOCAL statement_timeout = '1h'";
pub(super) const LOCK_EXCLUSIVE: &str = "SELECT pg_advisory_xact_lock($1)";
pub(super) const REGISTER_WORKSPACE: &str =
    "INSERT INTO allowly.workspaces (workspace_id) VALUES ($1) ON CONFLICT (workspace_id) DO NOTHING";
pub(super) const WORKSPACE_EXISTS: &str = "SELECT 1 FROM allowly.workspaces WHERE workspace_id = $1";
pub(super) const SIGNING_KEYS: &str = "SELECT key_id, secret_key, public_key, active_from, active_until
    FROM allowly.signing_keys WHERE workspace_id = $1 ORDER BY active_from, key_id";
pub(super) const PUT_SIGNING_KEY: &str = "INSERT INTO allowly.signing_keys
    (workspace_id, key_id, secret_key, public_key, active_from, active_until) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (workspace_id, key_id) DO UPDATE SET secret_key = EXCLUDED.secret_key,
    public_key = EXCLUDED.public_key, active_from = EXCLUDED.active_from, active_until = EXCLUDED.active_until";
pub(super) const ACTIVE_KEY_LOCKED: &str = "SELECT allowly.active_key_id($1, $2)";
pub(super) const BEGIN_CHECK: &str = "SELECT o_key_id, o_body FROM allowly.begin_check($1, $2, $3)";
pub(super) const ACTIVE_KEY: &str =
    "SELECT key_id FROM allowly.signing_keys WHERE workspace_id = $1 AND active_until IS NULL LIMIT 1";
pub(super) const POLICY_EDITION: &str =
    "SELECT body FROM allowly.policy_editions WHERE workspace_id = $1 AND policy_id = $2 AND policy_version = $3";
pub(super) const NEWEST_POLICY_EDITION: &str = "SELECT body FROM allowly.policy_editions
    WHERE workspace_id = $1 AND policy_id = $2 ORDER BY policy_version DESC LIMIT 1";
pub(super) const PUT_POLICY_EDITION: &str =
    "INSERT INTO allowly.policy_editions (workspace_id, policy_id, policy_version, body)
    VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, policy_id, policy_version) DO UPDATE SET body = EXCLUDED.body";
pub(super) const POLICY_EDITIONS: &str = "SELECT policy_id || '@' || policy_version, body FROM allowly.policy_editions
    WHERE workspace_id = $1 ORDER BY policy_id, policy_version";
pub(super) const AUTHORIZATION: &str =
    "SELECT body FROM allowly.authorizations WHERE workspace_id = $1 AND authorization_id = $2";
pub(super) const AUTHORIZATION_LOCKED: &str = "SELECT body FROM allowly.authorizations
    WHERE workspace_id = $1 AND authorization_id = $2 FOR NO KEY UPDATE";
pub(super) const AUTHORIZATIONS: &str = "SELECT authorization_id, body FROM allowly.authorizations
    WHERE workspace_id = $1 AND authorization_id > $2 ORDER BY authorization_id LIMIT $3";
/// As [`AUTHORIZATIONS`], of one user (`$4`): a range of `authorizations_by_user`.
pub(super) const AUTHORIZATIONS_OF_USER: &str = "SELECT authorization_id, body FROM allowly.authorizations
    WHERE workspace_id = $1 AND user_id = $4 AND authorization_id > $2 ORDER BY authorization_id LIMIT $3";
/// As [`AUTHORIZATIONS`], of one agent (`$4`): a range of `authorizations_by_agent`.
pub(super) const AUTHORIZATIONS_OF_AGENT: &str = "SELECT authorization_id, body FROM allowly.authorizations
    WHERE workspace_id = $1 AND agent_id = $4 AND authorization_id > $2 ORDER BY authorization_id LIMIT $3";
/// As [`AUTHORIZATIONS`], of one user (`$4`) and agent (`$5`).
pub(super) const AUTHORIZATIONS_OF_USER_AND_AGENT: &str = "SELECT authorization_id, body FROM allowly.authorizations
    WHERE workspace_id = $1 AND user_id = $4 AND agent_id = $5 AND authorization_id > $2
    ORDER BY authorization_id LIMIT $3";
pub(super) const COUNTER: &str = "SELECT value FROM allowly.counters WHERE workspace_id = $1 AND key = $2";
pub(super) const COUNT_EVENTS: &str =
    "SELECT count(*) FROM allowly.events WHERE workspace_id = $1 AND key = $2 AND at >= $3";
pub(super) const CONFIRMATION: &str =
    "SELECT body FROM allowly.confirmations WHERE workspace_id = $1 AND confirmation_id = $2";
pub(super) const CONFIRMATION_LOCKED: &str =
    "SELECT body FROM allowly.confirmations WHERE workspace_id = $1 AND confirmation_id = $2 FOR UPDATE";
pub(super) const CONFIRMATION_BY_NONCE: &str =
    "SELECT body FROM allowly.confirmations WHERE workspace_id = $1 AND nonce = $2";
pub(super) const CONFIRMATION_BY_NONCE_LOCKED: &str =
    "SELECT body FROM allowly.confirmations WHERE workspace_id = $1 AND nonce = $2 FOR UPDATE";
pub(super) const LATEST_CONFIRMATION: &str = "SELECT body FROM allowly.confirmations
    WHERE workspace_id = $1 AND prompt_key = $2 ORDER BY seq DESC LIMIT 1";
pub(super) const PENDING_CONFIRMATIONS: &str = "SELECT confirmation_id, body FROM allowly.confirmations
    WHERE workspace_id = $1 AND authorization_id = $2 AND status = 'pending' ORDER BY confirmation_id";
pub(super) const PENDING_CONFIRMATIONS_LOCKED: &str = "SELECT confirmation_id, body FROM allowly.confirmations
    WHERE workspace_id = $1 AND authorization_id = $2 AND status = 'pending' ORDER BY confirmation_id FOR UPDATE";
pub(super) const ESCALATION: &str =
    "SELECT body FROM allowly.escalations WHERE workspace_id = $1 AND escalation_id = $2";
pub(super) const ESCALATION_LOCKED: &str =
    "SELECT body FROM allowly.escalations WHERE workspace_id = $1 AND escalation_id = $2 FOR UPDATE";
pub(super) const LATEST_ESCALATION: &str = "SELECT body FROM allowly.escalations
    WHERE workspace_id = $1 AND prompt_key = $2 ORDER BY seq DESC LIMIT 1";
pub(super) const RESERVATION_FOR_RECEIPT: &str = "SELECT r.body FROM allowly.reservation_receipts x
    JOIN allowly.reservations r ON r.workspace_id = x.workspace_id AND r.reservation_id = x.reservation_id
    WHERE x.workspace_id = $1 AND x.receipt_id = $2";
pub(super) const RESERVATION_FOR_RECEIPT_LOCKED: &str = "SELECT r.body FROM allowly.reservation_receipts x
    JOIN allowly.reservations r ON r.workspace_id = x.workspace_id AND r.reservation_id = x.reservation_id
    WHERE x.workspace_id = $1 AND x.receipt_id = $2 FOR UPDATE OF r";
pub(super) const IDEMPOTENCY: &str =
    "SELECT request_sha256, response FROM allowly.idempotency WHERE workspace_id = $1 AND key = $2";
pub(super) const RECEIPT: &str = "SELECT receipt_id, issued_at, authorization_id, is_checkpoint, jws,
    user_id, agent_id, action, event, decision, reason FROM allowly.receipts WHERE workspace_id = $1 AND receipt_id = $2";
pub(super) const RECEIPTS_BETWEEN: &str = "SELECT receipt_id, issued_at, authorization_id, is_checkpoint, jws,
    user_id, agent_id, action, event, decision, reason FROM allowly.receipts WHERE workspace_id = $1 AND issued_at >= $2 AND issued_at < $3
    ORDER BY issued_at, receipt_id";
pub(super) const LATEST_RECEIPTS: &str = "SELECT receipt_id, issued_at, authorization_id, is_checkpoint, jws,
    user_id, agent_id, action, event, decision, reason FROM allowly.receipts WHERE workspace_id = $1 ORDER BY issued_at DESC, receipt_id DESC LIMIT $2";
pub(super) const FIRST_RECEIPTS: &str = "SELECT receipt_id, issued_at, authorization_id, is_checkpoint, jws,
    user_id, agent_id, action, event, decision, reason FROM allowly.receipts WHERE workspace_id = $1 ORDER BY issued_at, receipt_id LIMIT $2";
pub(super) const RECEIPTS_AFTER: &str = "SELECT receipt_id, issued_at, authorization_id, is_checkpoint, jws,
    user_id, agent_id, action, event, decision, reason FROM allowly.receipts WHERE workspace_id = $1 AND (issued_at, receipt_id) > ($2, $3)
    ORDER BY issued_at, receipt_id LIMIT $4";
pub(super) const FIRST_RECEIPT_AT: &str =
    "SELECT min(issued_at) FROM allowly.receipts WHERE workspace_id = $1 AND NOT is_checkpoint";
/// Confirmations by status (any when `$2` is null), newest first, before id `$3` when not null.
pub(super) const LIST_CONFIRMATIONS: &str = "SELECT confirmation_id, body FROM allowly.confirmations
    WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR confirmation_id < $3)
    ORDER BY confirmation_id DESC LIMIT $4";
pub(super) const LIST_ESCALATIONS: &str = "SELECT escalation_id, body FROM allowly.escalations
    WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR escalation_id < $3)
    ORDER BY escalation_id DESC LIMIT $4";
pub(super) const API_KEY: &str = "SELECT body FROM allowly.api_keys WHERE workspace_id = $1 AND key_id = $2";
pub(super) const API_KEY_LOCKED: &str =
    "SELECT body FROM allowly.api_keys WHERE workspace_id = $1 AND key_id = $2 FOR UPDATE";
pub(super) const PUT_API_KEY: &str = "INSERT INTO allowly.api_keys (workspace_id, key_id, body) VALUES ($1, $2, $3)
    ON CONFLICT (workspace_id, key_id) DO UPDATE SET body = EXCLUDED.body";
pub(super) const API_KEYS: &str = "SELECT key_id, body FROM allowly.api_keys WHERE workspace_id = $1 ORDER BY key_id";
pub(super) const CHECKPOINTS: &str = "SELECT period_start, receipt_id, merkle_root FROM allowly.checkpoints
    WHERE workspace_id = $1 ORDER BY period_start";
/// A plain insert: two processes checkpointing the same day cannot both commit.
pub(super) const PUT_CHECKPOINT: &str =
    "INSERT INTO allowly.checkpoints (workspace_id, period_start, receipt_id, merkle_root) VALUES ($1, $2, $3, $4)";

/// The overview's counts: action receipts by day, decision, action and denial reason.
pub(super) const TALLY_DECISIONS: &str = "SELECT issued_at / 86400000 AS day, decision, action,
        CASE WHEN decision = 'deny' THEN reason END AS denial_reason, count(*)
    FROM allowly.receipts
    WHERE workspace_id = $1 AND issued_at >= $2 AND action IS NOT NULL AND NOT is_checkpoint
    GROUP BY day, decision, action, denial_reason";

/// The members of a [`ReceiptFilter`], in the order of their bits in [`find_receipts`]'s
/// statement index.
const RECEIPT_FILTER_COLUMNS: [&str; 7] =
    ["user_id", "agent_id", "action", "event", "decision", "reason", "authorization_id"];

/// The statement and parameters of an audit lookup: one statement per combination of the filter's
/// members (prepared once each), so every plan is made for the members actually given and can
/// use their index; a catch-all `($2 IS NULL OR ...)` statement would not.
pub(super) fn find_receipts<'a>(
    ws: &'a (dyn ToSql + Sync),
    filter: &'a ReceiptFilter,
    before: &'a Option<(i64, String)>,
    since: &'a Option<i64>,
    until: &'a Option<i64>,
    limit: &'a i64,
) -> (&'static str, Vec<&'a (dyn ToSql + Sync)>) {
    static STATEMENTS: [OnceLock<String>; 1 << 11] = [const { OnceLock::new() }; 1 << 11];
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![ws];
    let mut index = 0;
    let members = [
        &filter.user_id,
        &filter.agent_id,
        &filter.action,
        &filter.event,
        &filter.decision,
        &filter.reason,
        &filter.authorization_id,
    ];
    for (bit, member) in members.into_iter().enumerate() {
        if let Some(value) = member {
            index |= 1 << bit;
            params.push(value);
        }
    }
    if let Some(since) = since {
        index |= 1 << 7;
        params.push(since);
    }
    if let Some(until) = until {
        index |= 1 << 8;
        params.push(until);
    }
    if let Some((at, id)) = before {
        index |= 1 << 9;
        params.push(at);
        params.push(id);
    }
    if filter.decision.as_deref().is_some_and(|decision| decision != "allow") {
        index |= 1 << 10;
    }
    params.push(limit);
    let sql = STATEMENTS[index].get_or_init(|| {
        let mut conditions = vec!["workspace_id = $1".to_string()];
        if index & (1 << 10) != 0 {
            // Spelled out so a prepared plan may use the partial index, which leaves `allow` out.
            conditions.push("decision <> 'allow'".to_string());
        }
        let mut next = 2;
        let mut param = || {
            next += 1;
            next - 1
        };
        for (bit, column) in RECEIPT_FILTER_COLUMNS.iter().enumerate() {
            if index & (1 << bit) != 0 {
                conditions.push(format!("{column} = ${}", param()));
            }
        }
        if index & (1 << 7) != 0 {
            conditions.push(format!("issued_at >= ${}", param()));
        }
        if index & (1 << 8) != 0 {
            conditions.push(format!("issued_at < ${}", param()));
        }
        if index & (1 << 9) != 0 {
            let at = param();
            conditions.push(format!("(issued_at, receipt_id) < (${at}, ${})", param()));
        }
        format!(
            "SELECT receipt_id, issued_at, authorization_id, is_checkpoint, jws,
                user_id, agent_id, action, event, decision, reason FROM allowly.receipts
             WHERE {} ORDER BY issued_at DESC, receipt_id DESC LIMIT ${}",
            conditions.join(" AND "),
            param()
        )
    });
    (sql, params)
}
