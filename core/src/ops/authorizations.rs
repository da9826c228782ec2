//! Authorization operations (runtime key); creating one is [`crate::model::AuthorizationCreate`].

use serde::{Deserialize, Serialize};

use super::{answer_of, Access, Body, Idempotency, Method, Operation, PageArgs, Route};
use crate::model::{AuthorizationRevoked, AuthorizationStatus, AuthorizationView, Page};

/// `GET /v1/authorizations`: one page in creation order (by id, oldest first), each given member
/// a filter that must match. `status` is the status as it stands now (an active authorization past
/// its `expires_at` is `expired`); a page may then hold fewer than `limit`: follow `next_cursor`
/// while `has_more`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ListAuthorizations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AuthorizationStatus>,
    #[serde(flatten)]
    pub page: PageArgs,
}

impl Operation for ListAuthorizations {
    const ROUTE: Route = Route {
        operation: "list_authorizations",
        method: Method::Get,
        path: "/v1/authorizations",
        path_field: None,
        access: Access::Runtime,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = Page<AuthorizationView>;
    answer_of!(ListAuthorizations);
}

/// `GET /v1/authorizations/{authorization_id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct GetAuthorization {
    pub authorization_id: String,
}

impl Operation for GetAuthorization {
    const ROUTE: Route = Route {
        operation: "get_authorization",
        method: Method::Get,
        path: "/v1/authorizations/{id}",
        path_field: Some("authorization_id"),
        access: Access::Runtime,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = AuthorizationView;
    answer_of!(GetAuthorization);

    fn check_answer(&self, answer: &AuthorizationView) -> Result<(), String> {
        if answer.authorization_id != self.authorization_id {
            return Err(format!(
                "asked for authorization `{}`, got `{}`",
                self.authorization_id, answer.authorization_id
            ));
        }
        Ok(())
    }
}

/// `DELETE /v1/authorizations/{authorization_id}`, with `revoked_by` and `notes` in an optional body.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RevokeAuthorization {
    pub authorization_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Operation for RevokeAuthorization {
    const ROUTE: Route = Route {
        operation: "revoke_authorization",
        method: Method::Delete,
        path: "/v1/authorizations/{id}",
        path_field: Some("authorization_id"),
        access: Access::Runtime,
        idempotency: Idempotency::Optional,
        body: Body::Optional,
        status: 200,
        large_body: false,
    };
    type Answer = AuthorizationRevoked;
    answer_of!(RevokeAuthorization);

    fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }
}
