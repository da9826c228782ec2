//! [`Api`]: the operations the CLI and the bindings use, behind one trait, whether the engine runs
//! in this process ([`Allowly`]) or behind an `allowly serve` runtime (`RemoteClient`, feature
//! `remote`). Both answer with the same model types, which serialize to the HTTP API's JSON.
//!
//! ```no_run
//! use allowly_core::api::Api;
//! use allowly_core::model::CheckRequest;
//!
//! fn decide(engine: &dyn Api, authorization_id: &str) -> allowly_core::Result<bool> {
//!     let request = CheckRequest {
//!         authorization_id: authorization_id.into(),
//!         actions: vec!["email.send".into()],
//!         ..Default::default()
//!     };
//!     let answer = engine.check(&request)?;
//!     Ok(answer.results.get("email.send").is_some_and(|r| r.decision == allowly_core::policy::Decision::Allow))
//! }
//! # let engine = allowly_core::Allowly::in_memory().unwrap();
//! # let _ = decide(&engine, "auth_x");
//! ```

use serde_json::Value;

use crate::engine::Allowly;
use crate::error::{Error, Result};
use crate::model::{
    AuthorizationCreate, AuthorizationCreated, AuthorizationRevoked, AuthorizationView, BudgetSettlement, CheckRequest,
    CheckResponse, ConfirmationResolved, ConfirmationStatusView, EscalationResolved, EscalationStatusView, Page,
    PolicyPublished, PolicyView, Resolution,
};
use crate::receipt::{KeyDocument, SignedReceipt};

/// `created_by` of a policy published through an embedded engine (the server names the API key).
pub const EMBEDDED_PUBLISHER: &str = "embedded";

/// One Allowly workspace, embedded or remote. Synchronous and `Send + Sync`, like the engine.
/// Page size of a list call that names none: the largest page, as the HTTP API's default. Every
/// binding uses this one value.
pub const DEFAULT_PAGE_SIZE: usize = crate::engine::MAX_PAGE_SIZE;

pub trait Api: Send + Sync {
    /// One decision per requested action, as an SDK answers it: when the decision cannot be made
    /// (an embedded store fails; a remote runtime times out, is unreachable or answers 408/5xx) the
    /// answer is the local fallback of docs/decisions.md (`is_fallback`, no receipt), not an error.
    /// Invalid requests and other refusals are errors.
    fn check(&self, request: &CheckRequest) -> Result<CheckResponse>;

    /// Several checks, decided in order, each answered as [`Api::check`] would. An embedded
    /// engine commits them together ([`Allowly::check_many`]); the default checks one at a time.
    fn check_many(&self, requests: &[CheckRequest]) -> Vec<Result<CheckResponse>> {
        requests.iter().map(|request| self.check(request)).collect()
    }

    /// Publishes a policy edition from the `POST /v1/policies` body (definition fields + `policy_id`).
    fn create_policy(&self, body: &Value) -> Result<PolicyView>;
    /// Publishes a policy edition (`POST /v1/setup/policies/publish`): the create body, answered in
    /// the publish shape. A remote client sends `idempotency_key` (one is made up when `None`: the
    /// runtime requires it); the embedded engine needs none (an unchanged definition is not a new edition).
    fn publish_policy(&self, body: &Value, idempotency_key: Option<&str>) -> Result<PolicyPublished>;
    /// The newest active edition of a policy.
    fn get_policy(&self, policy_id: &str) -> Result<PolicyView>;
    fn list_policies(&self, limit: usize, cursor: Option<&str>) -> Result<Page<PolicyView>>;
    /// Calls that change state take an optional `idempotency_key`: a retry under it gets the first
    /// answer (kept in the store, so from any process or server), never a second effect.
    fn archive_policy(&self, policy_id: &str, idempotency_key: Option<&str>) -> Result<()>;
    /// Provisional evaluation of a definition on a context (`POST /v1/setup/policies/preview`).
    fn preview_policy(&self, definition: &Value, action: &str, context: &Value) -> Result<Value>;

    fn create_authorization(&self, request: &AuthorizationCreate) -> Result<AuthorizationCreated>;
    fn revoke_authorization(
        &self,
        authorization_id: &str,
        revoked_by: Option<&str>,
        notes: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<AuthorizationRevoked>;
    fn list_authorizations(&self, limit: usize, cursor: Option<&str>) -> Result<Page<AuthorizationView>>;
    /// One authorization. The HTTP API has no single read: a remote client pages through the list.
    fn get_authorization(&self, authorization_id: &str) -> Result<AuthorizationView>;

    /// Approves (for `ttl_seconds`, default 60) or rejects a pending confirmation by its nonce.
    fn resolve_confirmation(
        &self,
        nonce: &str,
        approved: bool,
        ttl_seconds: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> Result<ConfirmationResolved>;
    fn confirmation_status(&self, id_or_nonce: &str) -> Result<ConfirmationStatusView>;
    fn resolve_escalation(
        &self,
        escalation_id: &str,
        resolution: Resolution,
        resolved_by: &str,
        note: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<EscalationResolved>;
    fn escalation_status(&self, escalation_id: &str) -> Result<EscalationStatusView>;

    fn settle_budget(
        &self,
        check_receipt_id: &str,
        actual_cost_micros: i64,
        idempotency_key: Option<&str>,
    ) -> Result<BudgetSettlement>;

    /// A signed receipt by id.
    fn receipt(&self, receipt_id: &str) -> Result<SignedReceipt>;
    /// The workspace's public key document, retired keys included.
    fn key_document(&self) -> Result<KeyDocument>;

    /// `sha256:<hex>` of the engine's manifest: always known when embedded; for a remote runtime,
    /// the value of its last (non-fallback) check answer, `None` before the first.
    fn engine_version(&self) -> Option<String>;
    /// The workspace id: always known when embedded; for a remote runtime, the configured one.
    fn workspace_id(&self) -> Option<String>;
    /// Whether the workspace can serve requests now (`GET /readyz`). Not an authorization decision.
    fn readiness(&self) -> Result<bool>;
}

impl Api for Allowly {
    fn check(&self, request: &CheckRequest) -> Result<CheckResponse> {
        self.check_or_fallback(request)
    }

    fn check_many(&self, requests: &[CheckRequest]) -> Vec<Result<CheckResponse>> {
        self.check_many_or_fallback(requests)
    }

    fn create_policy(&self, body: &Value) -> Result<PolicyView> {
        Allowly::create_policy(self, body)
    }

    fn publish_policy(&self, body: &Value, _idempotency_key: Option<&str>) -> Result<PolicyPublished> {
        Allowly::publish_policy(self, body, EMBEDDED_PUBLISHER)
    }

    fn get_policy(&self, policy_id: &str) -> Result<PolicyView> {
        Allowly::get_policy(self, policy_id)
    }

    fn list_policies(&self, limit: usize, cursor: Option<&str>) -> Result<Page<PolicyView>> {
        Allowly::list_policies(self, limit, cursor)
    }

    fn archive_policy(&self, policy_id: &str, idempotency_key: Option<&str>) -> Result<()> {
        self.idempotent(idempotency_key).archive_policy(policy_id)
    }

    fn preview_policy(&self, definition: &Value, action: &str, context: &Value) -> Result<Value> {
        Allowly::preview_policy(self, definition, action, context)
    }

    fn create_authorization(&self, request: &AuthorizationCreate) -> Result<AuthorizationCreated> {
        Allowly::create_authorization(self, request)
    }

    fn revoke_authorization(
        &self,
        authorization_id: &str,
        revoked_by: Option<&str>,
        notes: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<AuthorizationRevoked> {
        self.idempotent(idempotency_key).revoke_authorization(authorization_id, revoked_by, notes)
    }

    fn list_authorizations(&self, limit: usize, cursor: Option<&str>) -> Result<Page<AuthorizationView>> {
        Allowly::list_authorizations(self, limit, cursor)
    }

    fn get_authorization(&self, authorization_id: &str) -> Result<AuthorizationView> {
        Allowly::get_authorization(self, authorization_id)
    }

    fn resolve_confirmation(
        &self,
        nonce: &str,
        approved: bool,
        ttl_seconds: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> Result<ConfirmationResolved> {
        self.idempotent(idempotency_key).resolve_confirmation(nonce, approved, ttl_seconds)
    }

    fn confirmation_status(&self, id_or_nonce: &str) -> Result<ConfirmationStatusView> {
        Allowly::confirmation_status(self, id_or_nonce)
    }

    fn resolve_escalation(
        &self,
        escalation_id: &str,
        resolution: Resolution,
        resolved_by: &str,
        note: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<EscalationResolved> {
        self.idempotent(idempotency_key).resolve_escalation(escalation_id, resolution, resolved_by, note)
    }

    fn escalation_status(&self, escalation_id: &str) -> Result<EscalationStatusView> {
        Allowly::escalation_status(self, escalation_id)
    }

    fn settle_budget(
        &self,
        check_receipt_id: &str,
        actual_cost_micros: i64,
        idempotency_key: Option<&str>,
    ) -> Result<BudgetSettlement> {
        Allowly::settle_budget(self, check_receipt_id, actual_cost_micros, idempotency_key)
    }

    fn receipt(&self, receipt_id: &str) -> Result<SignedReceipt> {
        Allowly::receipt(self, receipt_id).map(|stored| stored.receipt)
    }

    fn key_document(&self) -> Result<KeyDocument> {
        Allowly::key_document(self)
    }

    fn engine_version(&self) -> Option<String> {
        Some(Allowly::engine_version(self).to_string())
    }

    fn workspace_id(&self) -> Option<String> {
        Some(Allowly::workspace_id(self).to_string())
    }

    /// Ready when the store answers a read; a failing store is "not ready", not an error.
    fn readiness(&self) -> Result<bool> {
        match Allowly::key_document(self) {
            Ok(_) => Ok(true),
            Err(Error::Store(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }
}
