//! Keys: the public key document, signing-key rotation, and the workspace's API keys (setup key).

use serde::{Deserialize, Serialize};

use super::{answer_of, Access, Body, Idempotency, Method, Operation, Route};
use crate::model::{ApiKeyCreated, ApiKeyKind, ApiKeyView};
use crate::receipt::{KeyDocument, PublishedKey};

/// `GET /v1/workspaces/{workspace_id}/keys` (no key): every signing key, retired ones included.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct GetKeyDocument {
    pub workspace_id: String,
}

impl Operation for GetKeyDocument {
    const ROUTE: Route = Route {
        operation: "get_key_document",
        method: Method::Get,
        path: "/v1/workspaces/{id}/keys",
        path_field: Some("workspace_id"),
        access: Access::Public,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = KeyDocument;
    answer_of!(GetKeyDocument);

    fn check_answer(&self, answer: &KeyDocument) -> Result<(), String> {
        if answer.workspace_id != self.workspace_id {
            return Err(format!(
                "asked for the keys of `{}`, got those of `{}`",
                self.workspace_id, answer.workspace_id
            ));
        }
        Ok(())
    }
}

/// `POST /v1/setup/keys/rotate`: retires the signing key and starts a new one (the answer).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RotateSigningKey {}

impl Operation for RotateSigningKey {
    const ROUTE: Route = Route {
        operation: "rotate_signing_key",
        method: Method::Post,
        path: "/v1/setup/keys/rotate",
        path_field: None,
        access: Access::Setup,
        idempotency: Idempotency::None,
        body: Body::None,
        status: 201,
        large_body: false,
    };
    type Answer = PublishedKey;
    answer_of!(RotateSigningKey);
}

/// `GET /v1/setup/api-keys`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ListApiKeys {}

/// The answer of [`ListApiKeys`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

impl Operation for ListApiKeys {
    const ROUTE: Route = Route {
        operation: "list_api_keys",
        method: Method::Get,
        path: "/v1/setup/api-keys",
        path_field: None,
        access: Access::Setup,
        idempotency: Idempotency::None,
        body: Body::Query,
        status: 200,
        large_body: false,
    };
    type Answer = ApiKeyList;
    answer_of!(ListApiKeys);
}

/// `POST /v1/setup/api-keys`: a new key, whose secret is in this answer only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub kind: ApiKeyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Operation for CreateApiKey {
    const ROUTE: Route = Route {
        operation: "create_api_key",
        method: Method::Post,
        path: "/v1/setup/api-keys",
        path_field: None,
        access: Access::Setup,
        idempotency: Idempotency::None,
        body: Body::Json,
        status: 201,
        large_body: false,
    };
    type Answer = ApiKeyCreated;
    answer_of!(CreateApiKey);
}

/// `DELETE /v1/setup/api-keys/{key_id}` (answered with 204).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RevokeApiKey {
    pub key_id: String,
}

impl Operation for RevokeApiKey {
    const ROUTE: Route = Route {
        operation: "revoke_api_key",
        method: Method::Delete,
        path: "/v1/setup/api-keys/{id}",
        path_field: Some("key_id"),
        access: Access::Setup,
        idempotency: Idempotency::None,
        body: Body::None,
        status: 204,
        large_body: false,
    };
    type Answer = ();
    answer_of!(RevokeApiKey);
}
