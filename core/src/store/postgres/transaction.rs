//! One PostgreSQL transaction's state ([`TxState`]) and its write buffer ([`Pending`]), sent in one
//! statement ([`flush_statement`]) when the transaction next reads or commits. Kept apart from
//! [`super::tx`] because this is what the transaction holds, not what the engine asks of it.

use std::sync::{Arc, OnceLock};

use postgres::types::ToSql;
use postgres::Row;

use super::commit::InDoubtHandle;
use super::failure::{pg_message, Failure, Retry};
use super::pool::{Conn, Lease};
use super::sql::{get, status_text, to_compact, Params, ACTIVE_KEY_LOCKED};
use super::PostgresStore;
use crate::error::{Error, Result};
use crate::model::{Authorization, Confirmation, Escalation, Reservation, StoredReceipt};

/// The state of one PostgreSQL transaction.
pub(super) struct TxState {
    pub(super) lease: Lease,
    /// Writes not sent yet.
    pub(super) pending: Pending,
    /// The first database failure: it aborted the transaction, whatever the work does next.
    pub(super) failure: Option<Failure>,
    /// Writes buffered or sent so far (a batch participant compares before and after its turn).
    pub(super) writes: u64,
    /// Authorization rows as this transaction knows them: read under their row lock (nobody else
    /// can change them until it ends) or written by it.
    pub(super) rows: Vec<(String, Option<String>)>,
    /// The active signing key, once read under the shared signing lock.
    pub(super) active_key: Option<Option<String>>,
    /// How to learn this transaction's outcome if its COMMIT is cut off (write transactions).
    pub(super) in_doubt: Option<InDoubtHandle>,
}

impl TxState {
    pub(super) fn conn(&mut self) -> Result<&mut Conn> {
        self.lease.conn.as_mut().ok_or_else(|| Error::store("the transaction lost its connection"))
    }

    pub(super) fn fail(&mut self, err: postgres::Error) -> Error {
        let failure = match self.lease.conn.as_mut() {
            Some(conn) => Failure::of(conn, err),
            None => {
                let message = pg_message(&err);
                Failure { source: Some(Arc::new(err)), ..Failure::new(message, Retry::No) }
            }
        };
        let error = failure.error();
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
        error
    }

    pub(super) fn rollback(&mut self) {
        if let Some(conn) = self.lease.conn.as_mut() {
            match conn.client.batch_execute("ROLLBACK") {
                Ok(()) => conn.in_transaction = false,
                Err(_) => conn.broken = true,
            }
        }
    }

    /// Sends the buffered writes in one statement; every other statement is preceded by this,
    /// so the transaction always reads its own writes.
    pub(super) fn flush(&mut self, ws: &str) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let p = std::mem::take(&mut self.pending);
        // Parameters in the order of `FLUSH_PARTS`, for the parts with rows.
        let mut parts = 0;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&ws];
        let groups: [(bool, Vec<&(dyn ToSql + Sync)>); 8] = [
            (
                !p.authorization_ids.is_empty(),
                vec![
                    &p.authorization_ids,
                    &p.authorization_user_ids,
                    &p.authorization_agent_ids,
                    &p.authorization_bodies,
                ],
            ),
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
            (
                !p.escalation_ids.is_empty(),
                vec![&p.escalation_ids, &p.escalation_prompt_keys, &p.escalation_statuses, &p.escalation_bodies],
            ),
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
                    &p.receipt_user_ids,
                    &p.receipt_agent_ids,
                    &p.receipt_actions,
                    &p.receipt_events,
                    &p.receipt_decisions,
                    &p.receipt_reasons,
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
        outcome.map(|_| ()).map_err(|err| self.fail(err))
    }

    pub(super) fn query(&mut self, ws: &str, sql: &'static str, params: &Params<'_>) -> Result<Vec<Row>> {
        self.flush(ws)?;
        let conn = self.conn()?;
        let outcome = match conn.statement(sql) {
            Ok(statement) => conn.client.query(&statement, params),
            Err(err) => Err(err),
        };
        outcome.map_err(|err| self.fail(err))
    }

    pub(super) fn query_opt(&mut self, ws: &str, sql: &'static str, params: &Params<'_>) -> Result<Option<Row>> {
        self.flush(ws)?;
        let conn = self.conn()?;
        let outcome = match conn.statement(sql) {
            Ok(statement) => conn.client.query_opt(&statement, params),
            Err(err) => Err(err),
        };
        outcome.map_err(|err| self.fail(err))
    }

    pub(super) fn execute(&mut self, ws: &str, sql: &'static str, params: &Params<'_>) -> Result<u64> {
        self.flush(ws)?;
        let conn = self.conn()?;
        let outcome = match conn.statement(sql) {
            Ok(statement) => conn.client.execute(&statement, params),
            Err(err) => Err(err),
        };
        outcome.map_err(|err| self.fail(err))
    }

    /// The active key under the shared signing lock, read once per transaction.
    pub(super) fn active_key(&mut self, store: &PostgresStore) -> Result<Option<String>> {
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

    pub(super) fn known_row(&self, authorization_id: &str) -> Option<&Option<String>> {
        self.rows.iter().find(|(id, _)| id == authorization_id).map(|(_, body)| body)
    }

    pub(super) fn remember_row(&mut self, authorization_id: &str, body: Option<String>) {
        match self.rows.iter_mut().find(|(id, _)| id == authorization_id) {
            Some(known) => known.1 = body,
            None => self.rows.push((authorization_id.to_string(), body)),
        }
    }
}

/// The parts of the statement that applies a transaction's buffered writes, one per table (or
/// pair of tables), each with its number of array parameters (`{0}`, `{1}`, ... in its text).
/// [`flush_statement`] joins the parts a flush needs; `$1` is the workspace id.
const FLUSH_PARTS: [(usize, &str); 8] = [
    // An authorization's user and agent never change: an update (a budgeted check writes one)
    // rewrites only the body, and stays a HOT update off their indexes.
    (
        4,
        "authorizations AS (
        INSERT INTO allowly.authorizations (workspace_id, authorization_id, user_id, agent_id, body)
        SELECT $1, id, user_id, agent_id, body
        FROM unnest({0}::text[], {1}::text[], {2}::text[], {3}::text[]) AS t (id, user_id, agent_id, body)
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
        4,
        "escalations AS (
        INSERT INTO allowly.escalations (workspace_id, escalation_id, prompt_key, status, body)
        SELECT $1, id, prompt_key, status, body
        FROM unnest({0}::text[], {1}::text[], {2}::text[], {3}::text[]) AS t (id, prompt_key, status, body)
        ON CONFLICT (workspace_id, escalation_id) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body)",
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
        11,
        "receipts AS (
        INSERT INTO allowly.receipts (workspace_id, receipt_id, issued_at, authorization_id, is_checkpoint, jws,
            user_id, agent_id, action, event, decision, reason)
        SELECT $1, id, issued_at, authorization_id, is_checkpoint, jws, user_id, agent_id, action, event, decision, reason
        FROM unnest({0}::text[], {1}::bigint[], {2}::text[], {3}::boolean[], {4}::text[], {5}::text[], {6}::text[],
            {7}::text[], {8}::text[], {9}::text[], {10}::text[])
            AS t (id, issued_at, authorization_id, is_checkpoint, jws, user_id, agent_id, action, event, decision, reason))",
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
pub(super) struct Pending {
    authorization_ids: Vec<String>,
    authorization_user_ids: Vec<String>,
    authorization_agent_ids: Vec<String>,
    authorization_bodies: Vec<String>,
    counter_keys: Vec<String>,
    counter_values: Vec<i64>,
    pub(super) event_keys: Vec<String>,
    pub(super) event_ats: Vec<i64>,
    pub(super) event_forget_before: Vec<i64>,
    confirmation_ids: Vec<String>,
    confirmation_nonces: Vec<String>,
    confirmation_prompt_keys: Vec<String>,
    confirmation_authorization_ids: Vec<String>,
    confirmation_statuses: Vec<String>,
    confirmation_bodies: Vec<String>,
    escalation_ids: Vec<String>,
    escalation_prompt_keys: Vec<String>,
    escalation_statuses: Vec<String>,
    escalation_bodies: Vec<String>,
    reservation_ids: Vec<String>,
    reservation_bodies: Vec<String>,
    link_receipt_ids: Vec<String>,
    link_reservation_ids: Vec<String>,
    pub(super) idempotency_keys: Vec<String>,
    pub(super) idempotency_digests: Vec<String>,
    pub(super) idempotency_responses: Vec<String>,
    receipt_ids: Vec<String>,
    receipt_issued_at: Vec<i64>,
    receipt_authorization_ids: Vec<Option<String>>,
    receipt_is_checkpoint: Vec<bool>,
    receipt_jws: Vec<String>,
    receipt_user_ids: Vec<String>,
    receipt_agent_ids: Vec<String>,
    receipt_actions: Vec<Option<String>>,
    receipt_events: Vec<Option<String>>,
    receipt_decisions: Vec<String>,
    receipt_reasons: Vec<String>,
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

    pub(super) fn authorization(&mut self, authorization: &Authorization, body: String) {
        match slot(&self.authorization_ids, &authorization.authorization_id) {
            Some(i) => self.authorization_bodies[i] = body,
            None => {
                self.authorization_ids.push(authorization.authorization_id.clone());
                self.authorization_user_ids.push(authorization.user_id.clone());
                self.authorization_agent_ids.push(authorization.agent_id.clone());
                self.authorization_bodies.push(body);
            }
        }
    }

    pub(super) fn counter(&mut self, key: &str, value: i64) {
        match slot(&self.counter_keys, key) {
            Some(i) => self.counter_values[i] = value,
            None => {
                self.counter_keys.push(key.to_string());
                self.counter_values.push(value);
            }
        }
    }

    pub(super) fn confirmation(&mut self, prompt_key: &str, confirmation: &Confirmation, body: String) {
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

    pub(super) fn escalation(&mut self, prompt_key: &str, escalation: &Escalation, body: String) {
        let status = status_text(escalation.status).to_string();
        match slot(&self.escalation_ids, &escalation.escalation_id) {
            Some(i) => {
                self.escalation_statuses[i] = status;
                self.escalation_bodies[i] = body;
            }
            None => {
                self.escalation_ids.push(escalation.escalation_id.clone());
                self.escalation_prompt_keys.push(prompt_key.to_string());
                self.escalation_statuses.push(status);
                self.escalation_bodies.push(body);
            }
        }
    }

    pub(super) fn receipt(&mut self, receipt: &StoredReceipt) {
        let facts = receipt.facts.clone();
        self.receipt_ids.push(receipt.receipt_id.clone());
        self.receipt_issued_at.push(receipt.issued_at.millis());
        self.receipt_authorization_ids.push(receipt.authorization_id.clone());
        self.receipt_is_checkpoint.push(receipt.is_checkpoint);
        self.receipt_jws.push(to_compact(&receipt.receipt));
        self.receipt_user_ids.push(facts.user_id);
        self.receipt_agent_ids.push(facts.agent_id);
        self.receipt_actions.push(facts.action);
        self.receipt_events.push(facts.event);
        self.receipt_decisions.push(facts.decision);
        self.receipt_reasons.push(facts.reason);
    }

    pub(super) fn reservation(&mut self, reservation: &Reservation, body: String) {
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
