//! Policy operations (setup key): publish editions, read, list, archive, preview.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{answer_of, Access, Body, Idempotency, Method, Operation, PageArgs, Route};
use crate::model::{Page, PolicyPublished, PolicyView};

/// `POST /v1/policies`: publishes an edition from a create body (the definition's fields and
/// `policy_id`, see docs/policy-format.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct CreatePolicy {
    #[serde(flatten)]
    pub body: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Operation for CreatePolicy {
    const ROUTE: Route = Route {
        operation: "create_policy",
        method: Method::Post,
        path: "/v1/policies",
        path_field: None,
        access: Access::Setup,
        idempotency: Idempotency::Optional,
        body: Body::Json,
        status: 201,
        large_body: true,
    };
    type Answer = PolicyView;
    answer_of!(CreatePolicy);

    fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }
}

/// `POST /v1/setup/policies/publish`: the create body, answered in the publish shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct PublishPolicy {
    #[serde(flatten)]
    pub body: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Operation for PublishPolicy {
    const ROUTE: Route = Route {
        operation: "publish_policy",
        method: Method::Post,
        path: "/v1/setup/policies/publish",
        path_field: None,
        access: Access::Setup,
        idempotency: Idempotency::Required,
        body: Body::Json,
        status: 201,
        large_body: true,
    };
    type Answer = PolicyPublished;
    answer_of!(PublishPolicy);

    fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }
}

/// `GET /v1/policies/{policy_id}`: the newest active edition, or edition `version`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct GetPolicy {
    pub policy_id: String,
    #[serde(default, with = "super::query_int", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(as = "Option<i64>", optional))]
    pub version: Option<i64>,
}

impl Operation for GetPolicy {
    const ROUTE: Route = Route {
        operation: "get_policy",
        method: Method::Get,
        path: "/v1/policies/{id}",
        path_field: Some("policy_id"),
        access: Access::Setup,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = PolicyView;
    answer_of!(GetPolicy);

    fn check_answer(&self, answer: &PolicyView) -> Result<(), String> {
        if answer.policy_ref.policy_id != self.policy_id {
            return Err(format!("asked for policy `{}`, got `{}`", self.policy_id, answer.policy_ref.policy_id));
        }
        Ok(())
    }
}

/// `GET /v1/policies`: one page of the active policies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ListPolicies {
    #[serde(flatten)]
    pub page: PageArgs,
}

impl Operation for ListPolicies {
    const ROUTE: Route = Route {
        operation: "list_policies",
        method: Method::Get,
        path: "/v1/policies",
        path_field: None,
        access: Access::Setup,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = Page<PolicyView>;
    answer_of!(ListPolicies);
}

/// `DELETE /v1/policies/{policy_id}`: archives every edition (answered with 204).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ArchivePolicy {
    pub policy_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Operation for ArchivePolicy {
    const ROUTE: Route = Route {
        operation: "archive_policy",
        method: Method::Delete,
        path: "/v1/policies/{id}",
        path_field: Some("policy_id"),
        access: Access::Setup,
        idempotency: Idempotency::Optional,
        body: Body::None,
        status: 204,
        large_body: false,
    };
    type Answer = ();
    answer_of!(ArchivePolicy);

    fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }
}

/// `POST /v1/setup/policies/preview`: a provisional evaluation of a definition on a context.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PreviewPolicy {
    pub definition: Value,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

impl Operation for PreviewPolicy {
    const ROUTE: Route = Route {
        operation: "preview_policy",
        method: Method::Post,
        path: "/v1/setup/policies/preview",
        path_field: None,
        access: Access::Setup,
        idempotency: Idempotency::None,
        body: Body::Json,
        status: 200,
        large_body: true,
    };
    type Answer = Value;
    answer_of!(PreviewPolicy);
}
