//! Storage behind the engine. A [`Store`] runs closures in transactions; a [`Tx`] reads and writes
//! the workspace's state. The engine decides, signs and writes the receipt inside one `write`
//! transaction, so a decision that was returned is never without its receipt and counters.
//!
//! Implementations: [`MemoryStore`] (tests, benchmarks, ephemeral use) and [`SqliteStore`] (one
//! file per workspace, WAL, safe for several processes at once).

mod memory;
mod packed;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;
mod wal;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresPool, PostgresStore};
pub use sqlite::{Durability, SqliteStore};
pub use wal::{after_fork_in_child, after_fork_in_parent, before_fork};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::{
    ApiKeyRecord, Authorization, AuthorizationFilter, Confirmation, DecisionTally, Escalation, IdempotencyRecord,
    PolicyEdition, PromptStatus, ReceiptFilter, Reservation, SigningKeyRecord, StoredReceipt,
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
///
/// Unambiguous by construction: `p2:` and the SHA-256 of the parts, each length-prefixed, with the
/// resource's presence explicit, so no action or resource text can make two different triples share
/// a key (whatever characters they hold), and every key has the same length however long the
/// resource. Keys written before joined the parts with U+001F, which action names could contain;
/// they begin with `auth_`, so no key of this form ever finds them: a prompt left pending or
/// approved by an older engine is asked again, never wrongly reused.
pub fn prompt_key(authorization_id: &str, action: &str, resource: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"allowly.prompt_key.v2\0");
    for part in [authorization_id, action] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    match resource {
        None => hasher.update([0u8]),
        Some(resource) => {
            hasher.update([1u8]);
            hasher.update((resource.len() as u64).to_be_bytes());
            hasher.update(resource.as_bytes());
        }
    }
    format!("p2:{}", crate::canonical::hex(&hasher.finalize()))
}

/// Counter of an action's allowed checks on one UTC day (the `max_per_day` guard).
///
/// Unambiguous without a digest, so counters written before keep counting: the authorization id is
/// minted by the engine (`auth_` and Crockford base32, never a `:`) and the day is a trailing
/// integer, so the action is exactly what lies between them, whatever it contains. The resource is
/// not part of it: the cap counts the action on every resource.
pub fn day_counter_key(authorization_id: &str, action: &str, day: i64) -> String {
    format!("day:{authorization_id}:{action}:{day}")
}

/// Events of an action's allowed checks (the `rate_limit` guard's sliding window); unambiguous for
/// the reason [`day_counter_key`] is (the action is everything after the authorization id).
pub fn rate_events_key(authorization_id: &str, action: &str) -> String {
    format!("rate:{authorization_id}:{action}")
}

/// A stored row this engine cannot load: damaged, or holding a value it no longer accepts (an
/// older engine stored an `expires_at` past year 9999, which no reader can parse). A list reports
/// it beside the rows that load, so one such row never hides the others; an operation that needs
/// it fails with [`UnreadableRow::error`]; a check that needs it denies, signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableRow {
    /// What the row holds: `authorization`, `policy edition`, `confirmation`, ...
    pub kind: &'static str,
    /// Its key (`auth_...`, `support_agent@3`).
    pub id: String,
    /// Why it does not load.
    pub reason: String,
}

/// A row of a list: loaded, or reported as unreadable.
pub type Loaded<T> = std::result::Result<T, UnreadableRow>;

impl UnreadableRow {
    pub fn new(kind: &'static str, id: &str, reason: impl std::fmt::Display) -> UnreadableRow {
        UnreadableRow { kind, id: id.to_string(), reason: reason.to_string() }
    }

    /// The error of an operation that needs this row: a `409`, not `503 store_unavailable`. It is
    /// no outage (a retry fails the same way), and a client must not answer it with a fallback.
    pub fn error(&self) -> Error {
        let message = format!(
            "the stored {} `{}` cannot be read ({}); it cannot be used or changed until it is repaired or deleted",
            self.kind, self.id, self.reason
        );
        if self.kind == "authorization" {
            Error::Conflict { code: "authorization_unreadable", message }
        } else {
            Error::Conflict { code: "stored_row_unreadable", message }
        }
    }
}

/// Whether `err` is an [`UnreadableRow::error`].
pub fn is_unreadable(err: &Error) -> bool {
    matches!(err, Error::Conflict { code: "authorization_unreadable" | "stored_row_unreadable", .. })
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
///
/// A stored row that does not load is an [`UnreadableRow`]: in its place in a list, or as its
/// [`UnreadableRow::error`] where one row is read; never a failure of the store.
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
    fn policy_editions(&mut self) -> Result<Vec<Loaded<PolicyEdition>>>;

    fn authorization(&mut self, authorization_id: &str) -> Result<Option<Authorization>>;
    fn put_authorization(&mut self, authorization: &Authorization) -> Result<()>;
    /// Authorizations matching `filter`, ordered by id (creation order), after `after`, at most
    /// `limit`. A row stored before its user and agent had columns, whose body did not parse when
    /// they were filled in, matches no user or agent (it is listed unfiltered, as unreadable).
    fn authorizations(
        &mut self,
        filter: &AuthorizationFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Authorization>>>;

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
    fn pending_confirmations(&mut self, authorization_id: &str) -> Result<Vec<Loaded<Confirmation>>>;

    /// Confirmations whose stored status is `status` (any when `None`), newest first, older than
    /// the one with id `before` when it is given; at most `limit`.
    fn list_confirmations(
        &mut self,
        status: Option<PromptStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Confirmation>>>;

    fn escalation(&mut self, escalation_id: &str) -> Result<Option<Escalation>>;
    fn latest_escalation(&mut self, prompt_key: &str) -> Result<Option<Escalation>>;
    fn put_escalation(&mut self, prompt_key: &str, escalation: &Escalation) -> Result<()>;
    /// As [`Tx::list_confirmations`], for escalations.
    fn list_escalations(
        &mut self,
        status: Option<PromptStatus>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Loaded<Escalation>>>;

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
    /// Receipts matching `filter`, newest first (by issue time, then id), strictly older than
    /// `before` when it is given; at most `limit`.
    fn find_receipts(
        &mut self,
        filter: &ReceiptFilter,
        before: Option<(Timestamp, String)>,
        limit: usize,
    ) -> Result<Vec<StoredReceipt>>;

    /// Action receipts issued at or after `since` (checkpoints and lifecycle receipts left out),
    /// counted by day, decision, action and denial reason.
    fn tally_decisions(&mut self, since: Timestamp) -> Result<Vec<DecisionTally>>;

    fn api_key(&mut self, key_id: &str) -> Result<Option<ApiKeyRecord>>;
    /// Inserts or replaces (revocation sets `revoked_at`).
    fn put_api_key(&mut self, key: &ApiKeyRecord) -> Result<()>;
    /// Every key, ordered by id.
    fn api_keys(&mut self) -> Result<Vec<Loaded<ApiKeyRecord>>>;

    fn checkpoints(&mut self) -> Result<Vec<CheckpointRecord>>;
    fn put_checkpoint(&mut self, checkpoint: &CheckpointRecord) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_keys_differ_whenever_a_part_does() {
        let triples = [
            ("auth_1", "pay\u{1f}r:acct1", None),
            ("auth_1", "pay", Some("acct1\u{1f}-")),
            ("auth_1", "pay", Some("acct1")),
            ("auth_1", "pay", Some("")),
            ("auth_1", "pay", None),
            ("auth_1", "pay\u{1f}-", None),
            ("auth_1\u{1f}pay", "", None),
            ("auth_1", "payr:acct1", None),
            ("auth_1", "pa", Some("yacct1")),
        ];
        let keys: std::collections::HashSet<String> = triples.iter().map(|(a, b, c)| prompt_key(a, b, *c)).collect();
        assert_eq!(keys.len(), triples.len());
        let key = prompt_key("auth_1", "pay", Some(&"r".repeat(1024)));
        assert!(key.starts_with("p2:") && key.len() == 3 + 64, "{key}");
    }

    #[test]
    fn counter_keys_keep_their_format_and_never_collide() {
        assert_eq!(day_counter_key("auth_01ABC", "crm.read", 20_514), "day:auth_01ABC:crm.read:20514");
        assert_eq!(rate_events_key("auth_01ABC", "search.web"), "rate:auth_01ABC:search.web");
        assert_ne!(day_counter_key("auth_1", "a:2", 3), day_counter_key("auth_1", "a", 23));
        assert_ne!(day_counter_key("auth_1", "a:2", 3), day_counter_key("auth_1", "a:23", 3));
        assert_ne!(rate_events_key("auth_1", "a:b"), rate_events_key("auth_1", "a"));
        // What keeps them unambiguous: a minted authorization id never holds a `:`.
        let minted = crate::ids::new_id("auth_", Timestamp(1_772_442_000_000)).unwrap_or_default();
        assert!(minted.starts_with("auth_") && !minted.contains(':'), "{minted}");
    }
}
