//! Receipts and the budget settlement that follows an allowed, metered action.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{answer_of, Access, Body, Idempotency, Method, Operation, Route};
use crate::model::{BudgetSettlement, ReceiptEnvelope};
use crate::receipt::decode_receipt;

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
