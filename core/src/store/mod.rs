//! Storage behind the engine. A [`Store`] runs closures in transactions; a [`Tx`] reads and writes
//! the workspace's state. The engine decides, signs and writes the receipt inside one `write`
//! transaction, so a decision that was returned is never without its receipt and counters.
//!
//! Implementations: [`MemoryStore`] (tests, benchmarks, ephemeral use) and [`SqliteStore`] (one
//! file per workspace, WAL, safe for several processes at once).

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;
mod wal;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresPool, PostgresStore};
pub use sqlite::{Durability, SqliteStore};

use crate::error::Result;
use crate::model::{
    ApiKeyRecord, Authorization, Confirmation, Escalation, IdempotencyRecord, PolicyEdition, Reservation,
    SigningKeyRecord, StoredReceipt,
};
use crate::time::Timestamp;

/// A checkpoint row: which day it commits and to what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointRecord {
    pub period_start: Timestamp,
    pub receipt_id: String,
    pub merkle_root: String,
}

/// Key of the "latest prompt" index: confirmations and escalations are reused per
/// authorization, action and resource.
pub fn prompt_key(authorization_id: &str, action: &str, resource: Option<&str>) -> String {
    // The separator cannot occur in ids or action names; resource presence is explicit.
    match resource {
        Some(resource) => format!("{authorization_id}\u{1f}{action}\u{1f}r:{resource}"),
        None => format!("{authorization_id}\u{1f}{action}\u{1f}-"),
    }
}

pub trait Store: Send + Sync {
    /// Runs `work` in one serializable write transaction (across threads and processes); commits
    /// if it returns `Ok`, rolls everything back otherwise.
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()>;

    /// Runs `work` on a consistent snapshot; writes made by `work` are rolled back.
    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()>;

    /// Runs `work(0)` … `work(count - 1)` in turn, each with the atomicity of [`Store::write`]: one
    /// that fails leaves nothing behind, and its error is its own. A store that can isolate part
    /// of a transaction runs them all in one, so they commit together (or, if the commit fails,
    /// all fail); the default runs one transaction each.
    fn write_each(&self, count: usize, work: &mut dyn FnMut(usize, &mut dyn Tx) -> Result<()>) -> Vec<Result<()>> {
        (0..count).map(|n| self.write(&mut |tx| work(n, tx))).collect()
    }
}

/// Operations on the workspace's state inside a transaction.
pub trait Tx {
    fn workspace_id(&mut self) -> Result<Option<String>>;
    fn set_workspace_id(&mut self, workspace_id: &str) -> Result<()>;

    fn signing_keys(&mut self) -> Result<Vec<SigningKeyRecord>>;
    /// Inserts or replaces a key (rotation closes the old key's window).
    fn put_signing_key(&mut self, key: &SigningKeyRecord) -> Result<()>;
    /// The id of the key with an open window, cheaply (checked on every signing transaction).
    fn active_key_id(&mut self) -> Result<Option<String>>;

    /// One edition, or the newest edition when `version` is `None`.
    fn policy_edition(&mut self, policy_id: &str, version: Option<i64>) -> Result<Option<PolicyEdition>>;
    fn put_policy_edition(&mut self, edition: &PolicyEdition) -> Result<()>;
    /// Every edition, ordered by policy id then version.
    fn policy_editions(&mut self) -> Result<Vec<PolicyEdition>>;

    fn authorization(&mut self, authorization_id: &str) -> Result<Option<Authorization>>;
    fn put_authorization(&mut self, authorization: &Authorization) -> Result<()>;
    /// Authorizations ordered by id, after `after`, at most `limit`.
    fn authorizations(&mut self, after: Option<&str>, limit: usize) -> Result<Vec<Authorization>>;

    /// A named counter (daily caps); absent counters are 0.
    fn counter(&mut self, key: &str) -> Result<i64>;
    fn set_counter(&mut self, key: &str, value: i64) -> Result<()>;
    /// Number of events recorded under `key` at or after `since` (sliding-window rate limits).
    fn count_events(&mut self, key: &str, since: Timestamp) -> Result<u64>;
    /// Records an event and forgets those before `forget_before`.
    fn add_event(&mut self, key: &str, at: Timestamp, forget_before: Timestamp) -> Result<()>;

    fn confirmation(&mut self, confirmation_id: &str) -> Result<Option<Confirmation>>;
    fn confirmation_by_nonce(&mut self, nonce: &str) -> Result<Option<Confirmation>>;
    /// The newest confirmation for a [`prompt_key`].
    fn latest_confirmation(&mut self, prompt_key: &str) -> Result<Option<Confirmation>>;
    fn put_confirmation(&mut self, prompt_key: &str, confirmation: &Confirmation) -> Result<()>;
    fn pending_confirmations(&mut self, authorization_id: &str) -> Result<Vec<Confirmation>>;

    fn escalation(&mut self, escalation_id: &str) -> Result<Option<Escalation>>;
    fn latest_escalation(&mut self, prompt_key: &str) -> Result<Option<Escalation>>;
    fn put_escalation(&mut self, prompt_key: &str, escalation: &Escalation) -> Result<()>;

    fn reservation_for_receipt(&mut self, receipt_id: &str) -> Result<Option<Reservation>>;
    fn put_reservation(&mut self, reservation: &Reservation) -> Result<()>;

    fn idempotency(&mut self, key: &str) -> Result<Option<IdempotencyRecord>>;
    fn put_idempotency(&mut self, key: &str, record: &IdempotencyRecord) -> Result<()>;

    fn put_receipt(&mut self, receipt: &StoredReceipt) -> Result<()>;
    fn receipt(&mut self, receipt_id: &str) -> Result<Option<StoredReceipt>>;
    /// Visits the receipts with `from <= issued_at < to` in issue order, one at a time, so a day
    /// of receipts never has to fit in memory.
    fn for_each_receipt_between(
        &mut self,
        from: Timestamp,
        to: Timestamp,
        visit: &mut dyn FnMut(&StoredReceipt) -> Result<()>,
    ) -> Result<()>;
    /// The newest `limit` receipts, oldest first.
    fn latest_receipts(&mut self, limit: usize) -> Result<Vec<StoredReceipt>>;
    /// Receipts in issue order after the `(issued_at, receipt_id)` position, at most `limit`.
    fn receipts_after(&mut self, after: Option<(Timestamp, String)>, limit: usize) -> Result<Vec<StoredReceipt>>;
    fn first_receipt_at(&mut self) -> Result<Option<Timestamp>>;

    fn api_key(&mut self, key_id: &str) -> Result<Option<ApiKeyRecord>>;
    /// Inserts or replaces (revocation sets `revoked_at`).
    fn put_api_key(&mut self, key: &ApiKeyRecord) -> Result<()>;
    /// Every key, ordered by id.
    fn api_keys(&mut self) -> Result<Vec<ApiKeyRecord>>;

    fn checkpoints(&mut self) -> Result<Vec<CheckpointRecord>>;
    fn put_checkpoint(&mut self, checkpoint: &CheckpointRecord) -> Result<()>;
}
