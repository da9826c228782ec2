//! [`Api`]: the operations the CLI and the bindings use, behind one trait, whether the engine runs
//! in this process ([`Allowly`]) or behind an `allowly serve` runtime (`RemoteClient`, feature
//! `remote`). An implementation answers one method, [`Api::call`], for every operation of the
//! catalog ([`crate::ops`]); the typed methods are thin defaults over it. Both answer with the
//! same model types, which serialize to the HTTP API's JSON.
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
//!     let answer = engine.check_or_fallback(&request)?;
//!     Ok(answer.results.get("email.send").is_some_and(|r| r.decision == allowly_core::policy::Decision::Allow))
//! }
//! # let engine = allowly_core::Allowly::in_memory().unwrap();
//! # let _ = decide(&engine, "auth_x");
//! ```

use serde_json::{Map, Value};

use crate::engine::Allowly;
use crate::error::{Error, Result};
use crate::model::{
    ApiKeyCreated, ApiKeyKind, ApiKeyView, AuthorizationCreate, AuthorizationCreated, AuthorizationRevoked,
    AuthorizationView, BudgetSettlement, CheckRequest, CheckResponse, ConfirmationItem, ConfirmationResolved,
    ConfirmationStatusView, EscalationItem, EscalationResolved, EscalationStatusView, Page, PolicyPublished,
    PolicyView, PromptStatus, ReceiptEnvelope, ReceiptSummary, Resolution,
};
use crate::ops::{self, Answer, Operation, PageArgs, Request};
use crate::receipt::{KeyDocument, PublishedKey, SignedReceipt, VerifyReport};

/// `created_by` of a policy published through an embedded engine (the server names the API key).
pub const EMBEDDED_PUBLISHER: &str = "embedded";

/// Page size of a list call that names none: the largest page, as the HTTP API's default. Every
/// binding uses this one value.
pub const DEFAULT_PAGE_SIZE: usize = crate::engine::MAX_PAGE_SIZE;

/// One Allowly workspace, embedded or remote. Synchronous and `Send + Sync`, like the engine.
pub trait Api: Send + Sync {
    /// Runs one operation of the catalog, as an SDK runs it: a check that cannot be decided (an
    /// embedded store fails; a remote runtime times out, is unreachable or answers 408/5xx) is
    /// answered with the local fallback of docs/decisions.md (`is_fallback`, no receipt), not an
    /// error. Invalid requests and other refusals are errors.
    fn call(&self, request: Request) -> Result<Answer>;

    /// Several checks, decided in order, each answered as [`Api::check_or_fallback`] would. An
    /// embedded engine commits them together ([`Allowly::check_many`]); the default checks one at a time.
    fn check_many_or_fallback(&self, requests: &[CheckRequest]) -> Vec<Result<CheckResponse>> {
        requests.iter().map(|request| self.check_or_fallback(request)).collect()
    }

    /// `sha256:<hex>` of the engine's manifest: always known when embedded; for a remote runtime,
    /// the value of its last (non-fallback) check answer, `None` before the first.
    fn engine_version(&self) -> Option<String>;
    /// The workspace id: always known when embedded; for a remote runtime, the configured one.
    fn workspace_id(&self) -> Option<String>;
    /// Whether the workspace can serve requests now (`GET /readyz`). Not an authorization decision.
    fn readiness(&self) -> Result<bool>;

    // ---------------------------------------------------------------------------------------------
    // Typed operations: each is one `call`.

    /// One decision per requested action, with the fallback of [`Api::call`].
    fn check_or_fallback(&self, request: &CheckRequest) -> Result<CheckResponse> {
        run(self, request.clone())
    }

    /// Publishes a policy edition from the `POST /v1/policies` body (definition fields + `policy_id`).
    fn create_policy(&self, body: &Value) -> Result<PolicyView> {
        run(self, ops::CreatePolicy { body: object(body)?, idempotency_key: None })
    }
    /// Publishes a policy edition (`POST /v1/setup/policies/publish`): the create body, answered in
    /// the publish shape. A remote client makes up the `idempotency_key` the runtime requires when
    /// `None`; the embedded engine needs none (an unchanged definition is not a new edition).
    fn publish_policy(&self, body: &Value, idempotency_key: Option<&str>) -> Result<PolicyPublished> {
        run(self, ops::PublishPolicy { body: object(body)?, idempotency_key: idempotency_key.map(str::to_string) })
    }
    /// The newest active edition of a policy.
    fn get_policy(&self, policy_id: &str) -> Result<PolicyView> {
        run(self, ops::GetPolicy { policy_id: policy_id.to_string(), version: None })
    }
    fn list_policies(&self, limit: usize, cursor: Option<&str>) -> Result<Page<PolicyView>> {
        run(self, ops::ListPolicies { page: PageArgs::new(limit, cursor) })
    }
    /// Calls that change state take an optional `idempotency_key`: a retry under it gets the first
    /// answer (kept in the store, so from any process or server), never a second effect.
    fn archive_policy(&self, policy_id: &str, idempotency_key: Option<&str>) -> Result<()> {
        run(
            self,
            ops::ArchivePolicy {
                policy_id: policy_id.to_string(),
                idempotency_key: idempotency_key.map(str::to_string),
            },
        )
    }
    /// Provisional evaluation of a definition on a context (`POST /v1/setup/policies/preview`).
    fn preview_policy(&self, definition: &Value, action: &str, context: &Value) -> Result<Value> {
        run(
            self,
            ops::PreviewPolicy {
                definition: definition.clone(),
                action: action.to_string(),
                context: Some(context.clone()),
            },
        )
    }

    fn create_authorization(&self, request: &AuthorizationCreate) -> Result<AuthorizationCreated> {
        run(self, request.clone())
    }
    fn revoke_authorization(
        &self,
        authorization_id: &str,
        revoked_by: Option<&str>,
        notes: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<AuthorizationRevoked> {
        run(
            self,
            ops::RevokeAuthorization {
                authorization_id: authorization_id.to_string(),
                revoked_by: revoked_by.map(str::to_string),
                notes: notes.map(str::to_string),
                idempotency_key: idempotency_key.map(str::to_string),
            },
        )
    }
    /// Authorizations in creation order, by user, agent and status as it stands now (`GET /v1/authorizations`).
    fn list_authorizations(&self, request: &ops::ListAuthorizations) -> Result<Page<AuthorizationView>> {
        run(self, request.clone())
    }
    fn get_authorization(&self, authorization_id: &str) -> Result<AuthorizationView> {
        run(self, ops::GetAuthorization { authorization_id: authorization_id.to_string() })
    }

    /// The audit lookup (`GET /v1/receipts`): receipts newest first, filtered.
    fn list_receipts(&self, request: &ops::ListReceipts) -> Result<Page<ReceiptSummary>> {
        run(self, request.clone())
    }
    /// Verifies pasted receipts (`POST /v1/verify`).
    fn verify_receipts(&self, request: &ops::VerifyReceipts) -> Result<VerifyReport> {
        run(self, request.clone())
    }
    /// Confirmations by their status as it stands now (`GET /v1/confirmations`).
    fn list_confirmations(
        &self,
        status: Option<PromptStatus>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<ConfirmationItem>> {
        run(self, ops::ListConfirmations { status, page: PageArgs::new(limit, cursor) })
    }
    /// Escalations by their status as it stands now (`GET /v1/escalations`).
    fn list_escalations(
        &self,
        status: Option<PromptStatus>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<EscalationItem>> {
        run(self, ops::ListEscalations { status, page: PageArgs::new(limit, cursor) })
    }

    /// Approves (for `ttl_seconds`, default 60) or rejects a pending confirmation by its nonce.
    fn resolve_confirmation(
        &self,
        nonce: &str,
        approved: bool,
        ttl_seconds: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> Result<ConfirmationResolved> {
        run(
            self,
            ops::ResolveConfirmation {
                nonce: nonce.to_string(),
                approved,
                // Named on the wire, as the official client names it.
                ttl_seconds: Some(ttl_seconds.unwrap_or(crate::engine::DEFAULT_CONFIRMATION_TTL_SECONDS)),
                idempotency_key: idempotency_key.map(str::to_string),
            },
        )
    }
    fn confirmation_status(&self, id_or_nonce: &str) -> Result<ConfirmationStatusView> {
        run(self, ops::ConfirmationStatus { confirmation_id: id_or_nonce.to_string() })
    }
    fn resolve_escalation(
        &self,
        escalation_id: &str,
        resolution: Resolution,
        resolved_by: &str,
        note: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<EscalationResolved> {
        run(
            self,
            ops::ResolveEscalation {
                escalation_id: escalation_id.to_string(),
                resolution,
                resolved_by: resolved_by.to_string(),
                note: note.map(str::to_string),
                idempotency_key: idempotency_key.map(str::to_string),
            },
        )
    }
    fn escalation_status(&self, escalation_id: &str) -> Result<EscalationStatusView> {
        run(self, ops::EscalationStatus { escalation_id: escalation_id.to_string() })
    }

    fn settle_budget(
        &self,
        check_receipt_id: &str,
        actual_cost_micros: i64,
        idempotency_key: Option<&str>,
    ) -> Result<BudgetSettlement> {
        run(
            self,
            ops::SettleBudget {
                check_receipt_id: check_receipt_id.to_string(),
                actual_cost_micros,
                idempotency_key: idempotency_key.map(str::to_string),
            },
        )
    }

    /// A signed receipt by id.
    fn receipt(&self, receipt_id: &str) -> Result<SignedReceipt> {
        match run(self, ops::GetReceipt { receipt_id: receipt_id.to_string() })? {
            ReceiptEnvelope::Signed { receipt } => Ok(receipt),
            ReceiptEnvelope::Pending { .. } => Err(Error::Protocol(format!("receipt `{receipt_id}` is pending"))),
        }
    }
    /// The workspace's public key document, retired keys included.
    fn key_document(&self) -> Result<KeyDocument> {
        let Some(workspace_id) = self.workspace_id() else {
            return Err(Error::invalid(
                "workspace_id",
                "the key document needs the workspace id: set `workspace_id` in the remote options",
            ));
        };
        run(self, ops::GetKeyDocument { workspace_id })
    }
    /// Retires the workspace's signing key and starts a new one, answered as the key document
    /// publishes it.
    fn rotate_signing_key(&self) -> Result<PublishedKey> {
        run(self, ops::RotateSigningKey {})
    }

    fn list_api_keys(&self) -> Result<Vec<ApiKeyView>> {
        Ok(run(self, ops::ListApiKeys {})?.items)
    }
    /// A new API key; its secret is in this answer only.
    fn create_api_key(&self, kind: ApiKeyKind, label: Option<&str>) -> Result<ApiKeyCreated> {
        run(self, ops::CreateApiKey { kind, label: label.map(str::to_string) })
    }
    fn revoke_api_key(&self, key_id: &str) -> Result<()> {
        run(self, ops::RevokeApiKey { key_id: key_id.to_string() })
    }
}

/// Runs a typed operation through [`Api::call`] of any implementation.
pub fn run<A: Api + ?Sized, O: Operation>(api: &A, op: O) -> Result<O::Answer> {
    ops::run(|request| api.call(request), op)
}

/// A create body must be a JSON object.
fn object(body: &Value) -> Result<Map<String, Value>> {
    match body {
        Value::Object(members) => Ok(members.clone()),
        _ => Err(Error::invalid("body", "must be a JSON object")),
    }
}

impl Api for Allowly {
    fn call(&self, request: Request) -> Result<Answer> {
        match request {
            Request::Check(check) => Ok(Answer::Check(self.check_or_fallback(&check)?)),
            other => self.execute(other, EMBEDDED_PUBLISHER),
        }
    }

    fn check_or_fallback(&self, request: &CheckRequest) -> Result<CheckResponse> {
        Allowly::check_or_fallback(self, request)
    }

    fn check_many_or_fallback(&self, requests: &[CheckRequest]) -> Vec<Result<CheckResponse>> {
        Allowly::check_many_or_fallback(self, requests)
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
            Err(Error::Store { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }
}
