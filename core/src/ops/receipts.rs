//! Receipts and the budget settlement that follows an allowed, metered action.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{answer_of, Access, Body, Idempotency, Method, Operation, PageArgs, Route};
use crate::model::{BudgetSettlement, Page, ReceiptEnvelope, ReceiptSummary};
use crate::receipt::{decode_receipt, VerifyReport};

/// `GET /v1/receipts/{receipt_id}`: the signed receipt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct GetReceipt {
    pub receipt_id: String,
}

impl Operation for GetReceipt {
    const ROUTE: Route = Route {
        operation: "get_receipt",
        method: Method::Get,
        path: "/v1/receipts/{id}",
        path_field: Some("receipt_id"),
        access: Access::Runtime,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = ReceiptEnvelope;
    answer_of!(GetReceipt);

    /// This runtime signs synchronously: the answer is signed, and its payload names the receipt asked for.
    fn check_answer(&self, answer: &ReceiptEnvelope) -> Result<(), String> {
        let id = &self.receipt_id;
        let ReceiptEnvelope::Signed { receipt } = answer else {
            return Err(format!("receipt `{id}` is pending; this runtime should sign at once"));
        };
        let payload =
            decode_receipt(&receipt.to_value()).map_err(|err| format!("receipt `{id}` does not decode: {err}"))?;
        if payload.get("receipt_id").and_then(Value::as_str) != Some(id.as_str()) {
            return Err(format!("the receipt answered for `{id}` has another id"));
        }
        Ok(())
    }
}

/// `POST /v1/budget-settlements`: the actual cost of a checked action, against its reservation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SettleBudget {
    pub check_receipt_id: String,
    pub actual_cost_micros: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Operation for SettleBudget {
    const ROUTE: Route = Route {
        operation: "settle_budget",
        method: Method::Post,
        path: "/v1/budget-settlements",
        path_field: None,
        access: Access::Runtime,
        idempotency: Idempotency::Optional,
        body: Body::Json,
        status: 200,
        large_body: false,
    };
    type Answer = BudgetSettlement;
    answer_of!(SettleBudget);

    fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }
}

/// `GET /v1/receipts`: the audit lookup. The workspace's receipts newest first, each member a
/// filter that must match; `since` (inclusive) and `until` (exclusive) are RFC 3339 instants.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ListReceipts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// A lifecycle event (`authorization.revoke`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(flatten)]
    pub page: PageArgs,
}

impl Operation for ListReceipts {
    const ROUTE: Route = Route {
        operation: "list_receipts",
        method: Method::Get,
        path: "/v1/receipts",
        path_field: None,
        access: Access::Setup,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = Page<ReceiptSummary>;
    answer_of!(ListReceipts);
}

/// `POST /v1/verify`: verifies what a person pasted (one receipt, its API envelope, a check
/// response, or a JSONL export). No key is needed: verification needs no secret, and nothing is
/// read from or written to the store but this workspace's public keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct VerifyReceipts {
    /// What to verify: text as pasted (a receipt, its envelope, a check response or JSON Lines),
    /// or that document as JSON.
    pub input: Value,
    /// The key document to verify against; this workspace's by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_document: Option<Value>,
    /// The fingerprints trusted to sign (`sha256:<64 hex>`); this workspace's keys by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_key_fingerprints: Option<Vec<String>>,
    /// The checkpoint evidence document of an export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_evidence: Option<Value>,
}

impl Operation for VerifyReceipts {
    const ROUTE: Route = Route {
        operation: "verify_receipts",
        method: Method::Post,
        path: "/v1/verify",
        path_field: None,
        access: Access::Public,
        idempotency: Idempotency::None,
        body: Body::Json,
        status: 200,
        large_body: true,
    };
    type Answer = VerifyReport;
    answer_of!(VerifyReceipts);
}
