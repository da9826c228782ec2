//! Confirmations (the user approves in the app) and escalations (a human approver decides).

use serde::{Deserialize, Serialize};

use super::{answer_of, Access, Body, Idempotency, Method, Operation, PageArgs, Route};
use crate::ids;
use crate::model::{
    ConfirmationItem, ConfirmationResolved, ConfirmationStatusView, EscalationItem, EscalationResolved,
    EscalationStatusView, Page, PromptStatus, Resolution,
};

/// `GET /v1/confirmations/{confirmation_id}/status`, by the confirmation's id or its nonce.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ConfirmationStatus {
    pub confirmation_id: String,
}

impl Operation for ConfirmationStatus {
    const ROUTE: Route = Route {
        operation: "confirmation_status",
        method: Method::Get,
        path: "/v1/confirmations/{id}/status",
        path_field: Some("confirmation_id"),
        access: Access::Runtime,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = ConfirmationStatusView;
    answer_of!(ConfirmationStatus);

    /// A nonce is not in the answer; an id must come back as asked.
    fn check_answer(&self, answer: &ConfirmationStatusView) -> Result<(), String> {
        let by_nonce = self.confirmation_id.starts_with(ids::CONFIRMATION_NONCE_PREFIX);
        if !by_nonce && answer.confirmation_id != self.confirmation_id {
            return Err(format!("asked for confirmation `{}`, got `{}`", self.confirmation_id, answer.confirmation_id));
        }
        Ok(())
    }
}

/// `POST /v1/confirmations/{confirm_nonce}`: approve (for `ttl_seconds`, default 60) or reject.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ResolveConfirmation {
    pub nonce: String,
    pub approved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Operation for ResolveConfirmation {
    const ROUTE: Route = Route {
        operation: "resolve_confirmation",
        method: Method::Post,
        path: "/v1/confirmations/{id}",
        path_field: Some("nonce"),
        access: Access::Runtime,
        idempotency: Idempotency::Optional,
        body: Body::Json,
        status: 200,
        large_body: false,
    };
    type Answer = ConfirmationResolved;
    answer_of!(ResolveConfirmation);

    fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }
}

/// `GET /v1/escalations/{escalation_id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct EscalationStatus {
    pub escalation_id: String,
}

impl Operation for EscalationStatus {
    const ROUTE: Route = Route {
        operation: "escalation_status",
        method: Method::Get,
        path: "/v1/escalations/{id}",
        path_field: Some("escalation_id"),
        access: Access::Runtime,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = EscalationStatusView;
    answer_of!(EscalationStatus);

    fn check_answer(&self, answer: &EscalationStatusView) -> Result<(), String> {
        if answer.escalation_id != self.escalation_id {
            return Err(format!("asked for escalation `{}`, got `{}`", self.escalation_id, answer.escalation_id));
        }
        Ok(())
    }
}

/// `POST /v1/escalations/{escalation_id}/resolve`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ResolveEscalation {
    pub escalation_id: String,
    pub resolution: Resolution,
    pub resolved_by: String,
    /// Sent as `null` when absent, as the official client sends it.
    #[serde(default)]
    #[cfg_attr(feature = "typescript", ts(optional = nullable))]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Operation for ResolveEscalation {
    const ROUTE: Route = Route {
        operation: "resolve_escalation",
        method: Method::Post,
        path: "/v1/escalations/{id}/resolve",
        path_field: Some("escalation_id"),
        access: Access::Runtime,
        idempotency: Idempotency::Optional,
        body: Body::Json,
        status: 200,
        large_body: false,
    };
    type Answer = EscalationResolved;
    answer_of!(ResolveEscalation);

    fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }
}

/// `GET /v1/confirmations`: confirmations newest first, by `status` as it stands now (`pending`:
/// still waiting for the user). A page may hold fewer than `limit` when the status filter drops
/// rows; follow `next_cursor` while `has_more`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ListConfirmations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PromptStatus>,
    #[serde(flatten)]
    pub page: PageArgs,
}

impl Operation for ListConfirmations {
    const ROUTE: Route = Route {
        operation: "list_confirmations",
        method: Method::Get,
        path: "/v1/confirmations",
        path_field: None,
        access: Access::Setup,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = Page<ConfirmationItem>;
    answer_of!(ListConfirmations);
}

/// `GET /v1/escalations`: escalations newest first, by `status` as it stands now (`pending`:
/// waiting for an approver). Pages as [`ListConfirmations`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ListEscalations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PromptStatus>,
    #[serde(flatten)]
    pub page: PageArgs,
}

impl Operation for ListEscalations {
    const ROUTE: Route = Route {
        operation: "list_escalations",
        method: Method::Get,
        path: "/v1/escalations",
        path_field: None,
        access: Access::Setup,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = Page<EscalationItem>;
    answer_of!(ListEscalations);
}
