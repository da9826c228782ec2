//! In-memory store: one mutex-guarded state; a transaction holds the lock and keeps an undo log so
//! that a failed transaction leaves nothing behind.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use parking_lot::Mutex;

use super::{CheckpointRecord, Loaded, Store, Tx};
use crate::error::Result;
use crate::model::{
    ApiKeyRecord, Authorization, AuthorizationFilter, Confirmation, DecisionTally, Escalation, IdempotencyRecord,
    PolicyEdition, PromptStatus, ReceiptFilter, Reservation, SigningKeyRecord, StoredReceipt,
};
use crate::time::Timestamp;

#[derive(Default)]
struct State {
    workspace_id: Option<String>,
    keys: Vec<SigningKeyRecord>,
    policies: HashMap<(String, i64), PolicyEdition>,
    authorizations: HashMap<String, Authorization>,
    counters: HashMap<String, i64>,
    events: HashMap<String, VecDeque<Timestamp>>,
    confirmations: HashMap<String, Confirmation>,
    confirmation_by_nonce: HashMap<String, String>,
    latest_confirmation: HashMap<String, String>,
    escalations: HashMap<String, Escalation>,
    latest_escalation: HashMap<String, String>,
    reservations: HashMap<String, Reservation>,
    reservation_by_receipt: HashMap<String, String>,
    idempotency: HashMap<String, IdempotencyRecord>,
    receipts: HashMap<String, StoredReceipt>,
    checkpoints: HashMap<i64, CheckpointRecord>,
    api_keys: HashMap<String, ApiKeyRecord>,
}

type UndoStep = Box<dyn FnOnce(&mut State) + Send>;

/// Keeps the workspace in memory only; it is gone when the store is dropped.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn run(&self, commit: bool, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let mut state = self.state.lock();
        let mut tx = MemoryTx { state: &mut state, undo: Vec::new() };
        let outcome = work(&mut tx);
        if outcome.is_err() || !commit {
            let MemoryTx { state, undo } = tx;
            for step in undo.into_iter().rev() {
                step(state);
            }
        }
        outcome
    }
}

impl Store for MemoryStore {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.run(true, work)
    }

    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.run(false, work)
    }
}

struct MemoryTx<'a> {
    state: &'a mut State,
    undo: Vec<UndoStep>,
}

impl MemoryTx<'_> {
    /// Inserts into one of the state's maps, remembering how to restore the previous entry.
    fn set<K, V>(&mut self, table: fn(&mut State) -> &mut HashMap<K, V>, key: K, value: V)
    where
        K: Eq + Hash + Clone + Send + 'static,
        V: Send + 'static,
    {
        let previous = table(self.state).insert(key.clone(), value);
        self.undo.push(Box::new(move |state| {
            let map = table(state);
            match previous {
                Some(previous) => map.insert(key, previous),
                None => map.remove(&key),
            };
        }));
    }
}

impl Tx for MemoryTx<'_> {
    fn workspace_id(&mut self) -> Result<Option<String>> {
        Ok(self.state.workspace_id.clone())
    }

    fn set_workspace_id(&mut self, workspace_id: &str) -> Result<()> {
        let previous = self.state.workspace_id.replace(workspace_id.to_string());
        self.undo.push(Box::new(move |state| state.workspace_id = previous));
        Ok(())
    }

    fn signing_keys(&mut self) -> Result<Vec<SigningKeyRecord>> {
        Ok(self.state.keys.clone())
    }

    fn put_signing_key(&mut self, key: &SigningKeyRecord) -> Result<()> {
        let previous = self.state.keys.clone();
        match self.state.keys.iter_mut().find(|k| k.key_id == key.key_id) {
            Some(existing) => *existing = key.clone(),
            None => self.state.keys.push(key.clone()),
        }
        self.undo.push(Box::new(move |state| state.keys = previous));
        Ok(())
    }

    fn active_key_id(&mut self) -> Result<Option<String>> {
        Ok(self.state.keys.iter().find(|k| k.active_until.is_none()).map(|k| k.key_id.clone()))
    }

    fn policy_edition(&mut self, policy_id: &str, version: Option<i64>) -> Result<Option<PolicyEdition>> {
        Ok(match version {
            Some(version) => self.state.policies.get(&(policy_id.to_string(), version)).cloned(),
            None => self
                .state
                .policies
                .values()
                .filter(|e| e.policy_ref.policy_id == policy_id)
                .max_by_key(|e| e.policy_ref.policy_version)
                .cloned(),
        })
    }

    fn put_policy_edition(&mut self, edition: &PolicyEdition) -> Result<()> {
        let key = (edition.policy_ref.policy_id.clone(), edition.policy_ref.policy_version);
        self.set(|s| &mut s.policies, key, edition.clone());
        Ok(())
    }

    // Rows held as values always load.
    fn policy_editions(&mut self) -> Result<Vec<Loaded<PolicyEdition>>> {
        let mut all: Vec<PolicyEdition> = self.state.policies.values().cloned().collect();
        all.sort_by(|a, b| {
            (&a.policy_ref.policy_id, a.policy_ref.policy_version)
                .cmp(&(&b.policy_ref.policy_id, b.policy_ref.policy_version))
        });
        Ok(all.into_iter().map(Ok).collect())
    }

    fn authorization(&mut self, authorization_id: &str) -> Result<Option<Authorization>> {
        Ok(self.state.authorizations.get(authorization_id).cloned())
    }

    fn put_authorization(&mut self, authorization: &Authorization) -> Result<()> {
        self.set(|s| &mut s.authorizations, authorization.authorization_id.clone(), authorization.clone());
        Ok(())
    }

    fn authorizations(
        &mut self,
        filter: &AuthorizationFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Authorization>>> {
        let mut found: Vec<&Authorization> = self
            .state
            .authorizations
            .values()
            .filter(|a| after.is_none_or(|after| a.authorization_id.as_str() > after) && filter.matches(a))
            .collect();
        found.sort_by(|a, b| a.authorization_id.cmp(&b.authorization_id));
        Ok(found.into_iter().take(limit).cloned().map(Ok).collect())
    }

    fn counter(&mut self, key: &str) -> Result<i64> {
        Ok(self.state.counters.get(key).copied().unwrap_or(0))
    }

    fn set_counter(&mut self, key: &str, value: i64) -> Result<()> {
        self.set(|s| &mut s.counters, key.to_string(), value);
        Ok(())
    }

    fn count_events(&mut self, key: &str, since: Timestamp) -> Result<u64> {
        Ok(self.state.events.get(key).map_or(0, |events| events.iter().filter(|&&at| at >= since).count() as u64))
    }

    fn add_event(&mut self, key: &str, at: Timestamp, forget_before: Timestamp) -> Result<()> {
        let mut events = self.state.events.get(key).cloned().unwrap_or_default();
        while events.front().is_some_and(|&first| first < forget_before) {
            events.pop_front();
        }
        events.push_back(at);
        self.set(|s| &mut s.events, key.to_string(), events);
        Ok(())
    }

    fn confirmation(&mut self, confirmation_id: &str) -> Result<Option<Confirmation>> {
        Ok(self.state.confirmations.get(confirmation_id).cloned())
    }

    fn confirmation_by_nonce(&mut self, nonce: &str) -> Result<Option<Confirmation>> {
        let id = self.state.confirmation_by_nonce.get(nonce).cloned();
        Ok(id.and_then(|id| self.state.confirmations.get(&id).cloned()))
    }

    fn latest_confirmation(&mut self, prompt_key: &str) -> Result<Option<Confirmation>> {
        let id = self.state.latest_confirmation.get(prompt_key).cloned();
        Ok(id.and_then(|id| self.state.confirmations.get(&id).cloned()))
    }

    fn put_confirmation(&mut self, prompt_key: &str, confirmation: &Confirmation) -> Result<()> {
        let id = confirmation.confirmation_id.clone();
        if !self.state.confirmations.contains_key(&id) {
            self.set(|s| &mut s.confirmation_by_nonce, confirmation.nonce.clone(), id.clone());
            self.set(|s| &mut s.latest_confirmation, prompt_key.to_string(), id.clone());
        }
        self.set(|s| &mut s.confirmations, id, confirmation.clone());
        Ok(())
    }

    fn pending_confirmations(&mut self, authorization_id: &str) -> Result<Vec<Loaded<Confirmation>>> {
        let mut pending: Vec<Confirmation> = self
            .state
            .confirmations
            .values()
            .filter(|c| c.authorization_id == authorization_id && c.status == PromptStatus::Pending)
            .cloned()
            .collect();
        pending.sort_by(|a, b| a.confirmation_id.cmp(&b.confirmation_id));
        Ok(pending.into_iter().map(Ok).collect())
    }

    fn list_confirmations(
        &mut self,
        status: Option<PromptStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Confirmation>>> {
        let rows = self.state.confirmations.values().map(|c| (&c.confirmation_id, c.status, c));
        Ok(newest_prompts(rows, status, before, limit))
    }

    fn escalation(&mut self, escalation_id: &str) -> Result<Option<Escalation>> {
        Ok(self.state.escalations.get(escalation_id).cloned())
    }

    fn latest_escalation(&mut self, prompt_key: &str) -> Result<Option<Escalation>> {
        let id = self.state.latest_escalation.get(prompt_key).cloned();
        Ok(id.and_then(|id| self.state.escalations.get(&id).cloned()))
    }

    fn put_escalation(&mut self, prompt_key: &str, escalation: &Escalation) -> Result<()> {
        let id = escalation.escalation_id.clone();
        if !self.state.escalations.contains_key(&id) {
            self.set(|s| &mut s.latest_escalation, prompt_key.to_string(), id.clone());
        }
        self.set(|s| &mut s.escalations, id, escalation.clone());
        Ok(())
    }

    fn list_escalations(
        &mut self,
        status: Option<PromptStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Escalation>>> {
        let rows = self.state.escalations.values().map(|e| (&e.escalation_id, e.status, e));
        Ok(newest_prompts(rows, status, before, limit))
    }

    fn reservation_for_receipt(&mut self, receipt_id: &str) -> Result<Option<Reservation>> {
        let id = self.state.reservation_by_receipt.get(receipt_id).cloned();
        Ok(id.and_then(|id| self.state.reservations.get(&id).cloned()))
    }

    fn put_reservation(&mut self, reservation: &Reservation) -> Result<()> {
        for receipt_id in &reservation.receipt_ids {
            self.set(|s| &mut s.reservation_by_receipt, receipt_id.clone(), reservation.reservation_id.clone());
        }
        self.set(|s| &mut s.reservations, reservation.reservation_id.clone(), reservation.clone());
        Ok(())
    }

    fn idempotency(&mut self, key: &str) -> Result<Option<IdempotencyRecord>> {
        Ok(self.state.idempotency.get(key).cloned())
    }

    fn put_idempotency(&mut self, key: &str, record: &IdempotencyRecord) -> Result<()> {
        self.set(|s| &mut s.idempotency, key.to_string(), record.clone());
        Ok(())
    }

    fn put_receipt(&mut self, receipt: &StoredReceipt) -> Result<()> {
        self.set(|s| &mut s.receipts, receipt.receipt_id.clone(), receipt.clone());
        Ok(())
    }

    fn receipt(&mut self, receipt_id: &str) -> Result<Option<StoredReceipt>> {
        Ok(self.state.receipts.get(receipt_id).cloned())
    }

    fn for_each_receipt_between(
        &mut self,
        from: Timestamp,
        to: Timestamp,
        visit: &mut dyn FnMut(&StoredReceipt) -> Result<()>,
    ) -> Result<()> {
        let mut found: Vec<&StoredReceipt> =
            self.state.receipts.values().filter(|r| from <= r.issued_at && r.issued_at < to).collect();
        found.sort_by(|a, b| (a.issued_at, &a.receipt_id).cmp(&(b.issued_at, &b.receipt_id)));
        found.into_iter().try_for_each(visit)
    }

    fn latest_receipts(&mut self, limit: usize) -> Result<Vec<StoredReceipt>> {
        let mut all: Vec<&StoredReceipt> = self.state.receipts.values().collect();
        all.sort_by(|a, b| (a.issued_at, &a.receipt_id).cmp(&(b.issued_at, &b.receipt_id)));
        Ok(all[all.len().saturating_sub(limit)..].iter().map(|r| (*r).clone()).collect())
    }

    fn receipts_after(&mut self, after: Option<(Timestamp, String)>, limit: usize) -> Result<Vec<StoredReceipt>> {
        let mut found: Vec<&StoredReceipt> = self
            .state
            .receipts
            .values()
            .filter(|r| after.as_ref().is_none_or(|(at, id)| (r.issued_at, &r.receipt_id) > (*at, id)))
            .collect();
        found.sort_by(|a, b| (a.issued_at, &a.receipt_id).cmp(&(b.issued_at, &b.receipt_id)));
        Ok(found.into_iter().take(limit).cloned().collect())
    }

    fn find_receipts(
        &mut self,
        filter: &ReceiptFilter,
        before: Option<(Timestamp, String)>,
        limit: usize,
    ) -> Result<Vec<StoredReceipt>> {
        let mut found: Vec<&StoredReceipt> = self
            .state
            .receipts
            .values()
            .filter(|r| filter.matches(r))
            .filter(|r| before.as_ref().is_none_or(|(at, id)| (r.issued_at, &r.receipt_id) < (*at, id)))
            .collect();
        found.sort_by(|a, b| (b.issued_at, &b.receipt_id).cmp(&(a.issued_at, &a.receipt_id)));
        Ok(found.into_iter().take(limit).cloned().collect())
    }

    fn tally_decisions(&mut self, since: Timestamp) -> Result<Vec<DecisionTally>> {
        let mut counts: HashMap<(i64, &str, &str, Option<&str>), u64> = HashMap::new();
        for receipt in self.state.receipts.values().filter(|r| r.issued_at >= since && !r.is_checkpoint) {
            let facts = &receipt.facts;
            let Some(action) = facts.action.as_deref() else { continue };
            let denial_reason = (facts.decision == "deny").then_some(facts.reason.as_str());
            let day = receipt.issued_at.day_number();
            *counts.entry((day, &facts.decision, action, denial_reason)).or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(|((day, decision, action, denial_reason), count)| DecisionTally {
                day,
                decision: decision.to_string(),
                action: action.to_string(),
                denial_reason: denial_reason.map(str::to_string),
                count,
            })
            .collect())
    }

    fn first_receipt_at(&mut self) -> Result<Option<Timestamp>> {
        Ok(self.state.receipts.values().filter(|r| !r.is_checkpoint).map(|r| r.issued_at).min())
    }

    fn api_key(&mut self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        Ok(self.state.api_keys.get(key_id).cloned())
    }

    fn put_api_key(&mut self, key: &ApiKeyRecord) -> Result<()> {
        self.set(|s| &mut s.api_keys, key.key_id.clone(), key.clone());
        Ok(())
    }

    fn api_keys(&mut self) -> Result<Vec<Loaded<ApiKeyRecord>>> {
        let mut all: Vec<ApiKeyRecord> = self.state.api_keys.values().cloned().collect();
        all.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(all.into_iter().map(Ok).collect())
    }

    fn checkpoints(&mut self) -> Result<Vec<CheckpointRecord>> {
        let mut all: Vec<CheckpointRecord> = self.state.checkpoints.values().cloned().collect();
        all.sort_by_key(|c| c.period_start);
        Ok(all)
    }

    fn put_checkpoint(&mut self, checkpoint: &CheckpointRecord) -> Result<()> {
        self.set(|s| &mut s.checkpoints, checkpoint.period_start.millis(), checkpoint.clone());
        Ok(())
    }
}

/// Confirmations or escalations (`(id, status, row)`) with `status`, newest first by id.
fn newest_prompts<'a, T: Clone + 'a>(
    rows: impl Iterator<Item = (&'a String, PromptStatus, &'a T)>,
    status: Option<PromptStatus>,
    before: Option<&str>,
    limit: usize,
) -> Vec<Loaded<T>> {
    let mut found: Vec<(&String, &T)> = rows
        .filter(|(id, row_status, _)| {
            status.is_none_or(|s| s == *row_status) && before.is_none_or(|before| id.as_str() < before)
        })
        .map(|(id, _, row)| (id, row))
        .collect();
    found.sort_by(|a, b| b.0.cmp(a.0));
    found.into_iter().take(limit).map(|(_, row)| Ok(row.clone())).collect()
}
