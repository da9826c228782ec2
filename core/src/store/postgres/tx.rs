//! [`PgTx`]: one run of the engine's closure, and the [`Tx`] implementation it serves: which
//! statement or buffered write each read and write of the engine becomes, under which lock. Kept
//! apart because it is the store's contract with the engine: it changes when the `Tx` trait does.

use std::sync::Arc;

use parking_lot::{MappedMutexGuard, MutexGuard};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::Row;
use serde::de::DeserializeOwned;

use super::commit::end_transaction;
use super::failure::{Failed, Failure, Retry};
use super::group::Batch;
use super::sql::*;
use super::transaction::TxState;
use super::PostgresStore;
use crate::error::{Error, Result};
use crate::model::{
    ApiKeyRecord, Authorization, AuthorizationFilter, Confirmation, DecisionTally, Escalation, IdempotencyRecord,
    PolicyEdition, PromptStatus, ReceiptFilter, Reservation, SigningKeyRecord, StoredReceipt,
};
use crate::store::{CheckpointRecord, Loaded, Tx};
use crate::time::Timestamp;

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
pub(super) struct PgTx<'s> {
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
    pub(super) fn new(store: &'s PostgresStore, writing: bool) -> PgTx<'s> {
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
                .map_err(|_| Error::store("the shared transaction is gone")),
            Binding::Unbound => Err(Error::store("the transaction did not begin")),
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
            return Err(
                self.fail_with(Failure::new("the active signing key changed; running again".into(), Retry::Conflict))
            );
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
                return Err(self.fail_with(Failure::new(message, retry)));
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
            None => Err(Error::store("allowly.begin_check returned no row")),
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
    pub(super) fn finish(mut self, outcome: Result<()>) -> std::result::Result<(), Failed> {
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
                    (None, Ok(())) => batch.outcome().map_err(|(message, retry)| Failure::new(message, retry).failed()),
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

    /// Buffers a write (see [`Pending`](super::transaction::Pending)).
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
            return Err(Error::store(format!("this PostgreSQL store serves workspace `{ws}`, not `{workspace_id}`")));
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
            state.pending.authorization(authorization, body);
        })
    }

    fn authorizations(
        &mut self,
        filter: &AuthorizationFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Authorization>>> {
        let ws = self.ws();
        let after = after.unwrap_or("");
        let limit = limit_param(limit);
        match (&filter.user_id, &filter.agent_id) {
            (None, None) => self.loaded_rows(AUTHORIZATIONS, &[&ws, &after, &limit], "authorization"),
            (Some(user_id), None) => {
                self.loaded_rows(AUTHORIZATIONS_OF_USER, &[&ws, &after, &limit, user_id], "authorization")
            }
            (None, Some(agent_id)) => {
                self.loaded_rows(AUTHORIZATIONS_OF_AGENT, &[&ws, &after, &limit, agent_id], "authorization")
            }
            (Some(user_id), Some(agent_id)) => self.loaded_rows(
                AUTHORIZATIONS_OF_USER_AND_AGENT,
                &[&ws, &after, &limit, user_id, agent_id],
                "authorization",
            ),
        }
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

    fn list_confirmations(
        &mut self,
        status: Option<PromptStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Confirmation>>> {
        let ws = self.ws();
        let status = status.map(status_text);
        self.loaded_rows(LIST_CONFIRMATIONS, &[&ws, &status, &before, &limit_param(limit)], "confirmation")
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
        self.buffer(|state| state.pending.escalation(prompt_key, escalation, body))
    }

    fn list_escalations(
        &mut self,
        status: Option<PromptStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Escalation>>> {
        let ws = self.ws();
        let status = status.map(status_text);
        self.loaded_rows(LIST_ESCALATIONS, &[&ws, &status, &before, &limit_param(limit)], "escalation")
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
        self.buffer(|state| state.pending.receipt(receipt))
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
            Err(err) => Err(state.fail(err)),
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

    fn find_receipts(
        &mut self,
        filter: &ReceiptFilter,
        before: Option<(Timestamp, String)>,
        limit: usize,
    ) -> Result<Vec<StoredReceipt>> {
        let ws = self.ws();
        let before = before.map(|(at, id)| (at.millis(), id));
        let (since, until) = (filter.since.map(Timestamp::millis), filter.until.map(Timestamp::millis));
        let limit = limit_param(limit);
        let (sql, params) = find_receipts(&ws, filter, &before, &since, &until, &limit);
        self.receipts(sql, &params)
    }

    fn tally_decisions(&mut self, since: Timestamp) -> Result<Vec<DecisionTally>> {
        let ws = self.ws();
        let rows = self.query(TALLY_DECISIONS, &[&ws, &since.millis()])?;
        rows.iter()
            .map(|row| {
                Ok(DecisionTally {
                    day: get(row, 0)?,
                    decision: get(row, 1)?,
                    action: get(row, 2)?,
                    denial_reason: get(row, 3)?,
                    count: get::<i64>(row, 4)?.max(0).unsigned_abs(),
                })
            })
            .collect()
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
