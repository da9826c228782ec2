//! The routes of the HTTP API (docs/http-api.md), their credentials, bodies and answers.
//!
//! Every handler reads its body (bounded) on the async side, then does everything else on one
//! blocking thread: resolve the key's workspace, authenticate, check the key's kind, parse the
//! body and call the synchronous engine. The async runtime never waits on the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use allowly_core::canonical;
use allowly_core::engine::ApiKeyParts;
use allowly_core::model::{ApiKeyKind, AuthorizationCreate, CheckRequest, ReceiptEnvelope, Resolution};
use allowly_core::receipt::KeyDocument;
use allowly_core::Allowly;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::backend::Backend;
use crate::error::{ApiError, StoreFailure};
use crate::metrics::Metrics;

/// Shared state of the server.
pub struct App {
    pub backend: Arc<dyn Backend>,
    pub metrics: Metrics,
    /// Body limit of every route but the policy routes.
    pub max_body_bytes: usize,
    /// Body limit of the policy routes (a definition may be 64 KiB of canonical JSON).
    pub max_policy_body_bytes: usize,
    /// How long a client may take to send a request body.
    pub body_timeout: std::time::Duration,
    /// Where engine calls run: blocking threads draining per-workspace FIFOs.
    pub queue: crate::queue::EngineQueue,
    /// The open connections, for readiness.
    pub connections: Arc<crate::connections::ConnectionState>,
    /// Failed authentications per address, requests and writes per key.
    pub limits: crate::guard::Limits,
}

/// The route template a response answered, for logs and metrics (never the raw path: it may hold
/// a confirmation nonce).
#[derive(Clone, Copy, Debug)]
pub struct RouteLabel(pub &'static str);

/// Which keys may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Runtime and setup keys.
    Runtime,
    /// Setup keys only.
    Setup,
}

/// An authenticated caller.
#[derive(Clone)]
pub(crate) struct Caller {
    engine: Arc<Allowly>,
    pub(crate) key_id: String,
    kind: ApiKeyKind,
}

/// A successful answer: a status and a JSON body (none for 204).
pub struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

impl Reply {
    fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Reply, ApiError> {
        let body = serde_json::to_vec(value).map_err(|_| ApiError::internal("cannot encode the response"))?;
        Ok(Reply { status, body })
    }

    fn no_content() -> Reply {
        Reply { status: StatusCode::NO_CONTENT, body: Vec::new() }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        if self.status == StatusCode::NO_CONTENT {
            return self.status.into_response();
        }
        json_bytes_response(self.status, self.body)
    }
}

pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes_response(status, body),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn json_bytes_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn finish(route: &'static str, result: Result<Reply, ApiError>) -> Response {
    let mut response = match result {
        Ok(reply) => reply.into_response(),
        Err(err) => err.into_response(),
    };
    response.extensions_mut().insert(RouteLabel(route));
    response
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/check", post(check))
        .route("/v1/authorizations", post(create_authorization).get(list_authorizations))
        .route("/v1/authorizations/{id}", get(get_authorization).delete(revoke_authorization))
        .route("/v1/confirmations/{id}", post(resolve_confirmation))
        .route("/v1/confirmations/{id}/status", get(confirmation_status))
        .route("/v1/escalations/{id}", get(escalation_status))
        .route("/v1/escalations/{id}/resolve", post(resolve_escalation))
        .route("/v1/receipts/{id}", get(get_receipt))
        .route("/v1/budget-settlements", post(settle_budget))
        .route("/v1/policies", get(list_policies).post(create_policy))
        .route("/v1/policies/{id}", get(get_policy).delete(archive_policy))
        .route("/v1/setup/policies/preview", post(preview_policy))
        .route("/v1/setup/policies/publish", post(publish_policy))
        .route("/v1/setup/api-keys", get(list_api_keys).post(create_api_key))
        .route("/v1/setup/api-keys/{id}", axum::routing::delete(revoke_api_key))
        .route("/v1/setup/keys/rotate", post(rotate_signing_key))
        .route("/v1/workspaces/{id}/keys", get(key_document))
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(app.clone(), crate::guard::guard))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

/// `/metrics` alone and without a key, for `Config::metrics_listen` (an address operators keep
/// private); on the API's address it takes a setup key.
pub fn metrics_router(app: Arc<App>) -> Router {
    Router::new().route("/metrics", get(metrics)).fallback(not_found).with_state(app)
}

/// The route templates of [`router`], for the labels of answers given before a handler runs.
const ROUTES: [&str; 20] = [
    "/v1/check",
    "/v1/authorizations",
    "/v1/authorizations/{id}",
    "/v1/confirmations/{id}",
    "/v1/confirmations/{id}/status",
    "/v1/escalations/{id}",
    "/v1/escalations/{id}/resolve",
    "/v1/receipts/{id}",
    "/v1/budget-settlements",
    "/v1/policies",
    "/v1/policies/{id}",
    "/v1/setup/policies/preview",
    "/v1/setup/policies/publish",
    "/v1/setup/api-keys",
    "/v1/setup/api-keys/{id}",
    "/v1/setup/keys/rotate",
    "/v1/workspaces/{id}/keys",
    "/readyz",
    "/healthz",
    "/metrics",
];

/// The `'static` label of a matched route template (`unmatched` for one not in [`ROUTES`]).
pub(crate) fn route_label(template: &str) -> &'static str {
    ROUTES.iter().find(|route| **route == template).copied().unwrap_or("unmatched")
}

/// One log line and the metrics of every request: method, route template, status, latency.
async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let started = Instant::now();
    app.metrics.request_started();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let route = response.extensions().get::<RouteLabel>().map_or("unmatched", |r| r.0);
    let status = response.status().as_u16();
    let store_failure = response.extensions().get::<StoreFailure>().is_some();
    app.metrics.request_finished(route, method, status, elapsed, store_failure);
    tracing::info!(
        target: "allowly::http",
        method,
        route,
        status,
        latency_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
        "request"
    );
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

// -------------------------------------------------------------------------------------------------
// Credentials, bodies, blocking calls

/// The bearer token of the request (the header's value is never logged or echoed).
pub(crate) fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized("an API key is required: send `Authorization: Bearer <key>`"));
    };
    let text = value.to_str().map_err(|_| ApiError::unauthorized("the API key is invalid or revoked"))?;
    match text.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim().to_string())
        }
        _ => Err(ApiError::unauthorized("the Authorization header must be `Bearer <key>`")),
    }
}

/// Resolves the key's workspace, authenticates it and checks its kind. Blocking.
pub(crate) fn authenticate(backend: &dyn Backend, presented: &str, access: Access) -> Result<Caller, ApiError> {
    let invalid = || ApiError::unauthorized("the API key is invalid or revoked");
    let parts = ApiKeyParts::parse(presented).ok_or_else(invalid)?;
    let engine = backend.workspace(parts.workspace_id)?.ok_or_else(invalid)?;
    let kind = engine.authenticate(presented)?;
    if access == Access::Setup && kind != ApiKeyKind::Setup {
        return Err(ApiError::forbidden());
    }
    Ok(Caller { engine, key_id: parts.key_id.to_string(), kind })
}

/// Runs `work` on a blocking thread, in the FIFO of workspace `workspace_id`.
pub(crate) async fn blocking<T: Send + 'static>(
    app: &App,
    workspace_id: &str,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    match app.queue.run(workspace_id, work).await {
        Ok(answer) => answer,
        Err(err) => {
            tracing::error!(target: "allowly::http", error = ?err, "a request handler failed");
            Err(ApiError::internal("the request could not be completed"))
        }
    }
}

/// Runs `work` on a blocking thread with the caller's engine: the caller the guard admitted, or
/// (for a route the guard did not run for) one authenticated there first.
async fn call(
    app: &Arc<App>,
    headers: &HeaderMap,
    access: Access,
    work: impl FnOnce(&Caller) -> Result<Reply, ApiError> + Send + 'static,
) -> Result<Reply, ApiError> {
    if let Some(caller) = crate::guard::admitted() {
        if access == Access::Setup && caller.kind != ApiKeyKind::Setup {
            return Err(ApiError::forbidden());
        }
        let workspace_id = caller.engine.workspace_id().to_string();
        return blocking(app, &workspace_id, move || work(&caller)).await;
    }
    let presented = bearer(headers)?;
    // Not shaped like a key: refused without using a thread. Otherwise its workspace picks the queue.
    let workspace_id = ApiKeyParts::parse(&presented)
        .map(|parts| parts.workspace_id.to_string())
        .ok_or_else(|| ApiError::unauthorized("the API key is invalid or revoked"))?;
    let backend = app.backend.clone();
    blocking(app, &workspace_id, move || {
        let caller = authenticate(backend.as_ref(), &presented, access)?;
        work(&caller)
    })
    .await
}

/// How much of an over-limit body is read and thrown away before the 413 goes out. A connection
/// closed with unread bytes is reset, and a reset destroys the answer the client has not read yet:
/// it would see a transport failure, which SDKs rightly treat as an outage, instead of its
/// `request_too_large`. Bodies declared larger than this are refused without being read.
const MAX_DISCARDED_BODY_BYTES: u64 = 1 << 20;

/// The body, at most `limit` bytes (413 otherwise), within the server's body timeout (408
/// otherwise; a trickled body must not hold a connection forever); malformed framing is 400.
async fn read_body(app: &App, body: Body, headers: &HeaderMap, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DISCARDED_BODY_BYTES) {
        return Err(ApiError::too_large(limit));
    }
    match tokio::time::timeout(app.body_timeout, read_limited(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(BodyError::TooLarge)) => Err(ApiError::too_large(limit)),
        // Bad chunked framing, or the client went away mid-body (then nobody reads the answer).
        Ok(Err(BodyError::Broken)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            "the request body is not framed correctly (Content-Length or chunked encoding)",
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body took too long to arrive",
        )),
    }
}

/// Why a body was not read whole.
enum BodyError {
    /// Over its limit.
    TooLarge,
    /// Its framing is malformed, or it broke off.
    Broken,
}

/// Reads the body, keeping at most `limit` bytes; past the limit it keeps reading, and discarding,
/// up to [`MAX_DISCARDED_BODY_BYTES`] so that the 413 reaches the client.
async fn read_limited(mut body: Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    use axum::body::HttpBody as _;
    let mut kept = Vec::new();
    let mut received: u64 = 0;
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else { continue };
        received = received.saturating_add(data.len() as u64);
        if received > MAX_DISCARDED_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        if received <= limit as u64 {
            kept.extend_from_slice(&data);
        }
    }
    if received > limit as u64 {
        return Err(BodyError::TooLarge);
    }
    Ok(kept)
}

/// Parses a JSON body into `T`: 400 if it is not JSON, 422 if it is JSON of the wrong shape
/// (duplicate member names included: the engine must never guess which one was meant).
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse_value(bytes)?;
    T::deserialize(&value).map_err(|err| shape_error::<T>(&value, &err))
}

fn parse_value(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed_json("the body is empty"));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(ApiError::malformed_json)?;
    canonical::parse_document(bytes).map_err(|err| ApiError::invalid("body", err.to_string()))?;
    Ok(value)
}

/// A 422 naming the member serde complained about. serde names a missing, unknown or repeated
/// member itself; a member of the wrong type (`"budget_limit_micros": 1e30`, a number no integer
/// type holds) it does not, so that member is found by leaving each out in turn.
fn shape_error<T: DeserializeOwned>(value: &Value, err: &serde_json::Error) -> ApiError {
    let text = err.to_string();
    let field = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| text.split_once(prefix).and_then(|(_, rest)| rest.split_once('`')).map(|(f, _)| f))
        .map(str::to_string)
        .or_else(|| wrong_member::<T>(value, &text))
        .unwrap_or_else(|| "body".into());
    ApiError::invalid(&field, text.clone())
}

/// The first member whose absence changes the complaint `text` (it goes away, becomes that the member
/// is missing, or is about another member): the one the complaint is about. Only on the error path,
/// over the few members a request type knows (an unknown one is named by serde already).
fn wrong_member<T: DeserializeOwned>(value: &Value, text: &str) -> Option<String> {
    let members = value.as_object()?;
    members
        .keys()
        .find(|member| {
            let mut without = members.clone();
            without.remove(member.as_str());
            match T::deserialize(&Value::Object(without)) {
                Ok(_) => true,
                Err(err) => err.to_string() != text,
            }
        })
        .cloned()
}

/// The `Idempotency-Key` header, if sent (1 to 256 visible ASCII characters).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let text = value.to_str().ok().map(str::trim).filter(|t| !t.is_empty() && t.len() <= 256);
    match text {
        Some(text) => Ok(Some(text.to_string())),
        None => Err(ApiError::invalid("Idempotency-Key", "must be 1 to 256 visible ASCII characters")),
    }
}

fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id).map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", "the path is not valid"))
}

fn query_map(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, ApiError> {
    query.map(|Query(map)| map).map_err(|_| ApiError::invalid("query", "the query string is not valid"))
}

/// `limit` (1 to 100, default 100) and `cursor` of a list call.
fn page_args(query: &HashMap<String, String>) -> Result<(usize, Option<String>), ApiError> {
    let limit = match query.get("limit") {
        None => 100,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "must be an integer from 1 to 100"))?,
    };
    Ok((limit, query.get("cursor").filter(|c| !c.is_empty()).cloned()))
}

// -------------------------------------------------------------------------------------------------
// Runtime routes

async fn check(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let bytes = read_body(&app, body, &headers, app.max_body_bytes).await?;
        let key = idempotency_key(&headers);
        let metrics_app = app.clone();
        call(&app, &headers, Access::Runtime, move |caller| {
            let mut request: CheckRequest = parse_json(&bytes)?;
            request.idempotency_key = key?;
            let response = caller.engine.check(&request)?;
            metrics_app.metrics.count_decisions(&response);
            Reply::json(StatusCode::OK, &response)
        })
        .await
    }
    .await;
    finish("/v1/check", result)
}

async fn create_authorization(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let bytes = read_body(&app, body, &headers, app.max_body_bytes).await?;
        let key = idempotency_key(&headers);
        call(&app, &headers, Access::Runtime, move |caller| {
            let mut request: AuthorizationCreate = parse_json(&bytes)?;
            request.idempotency_key = key?;
            Reply::json(StatusCode::CREATED, &caller.engine.create_authorization(&request)?)
        })
        .await
    }
    .await;
    finish("/v1/authorizations", result)
}

async fn list_authorizations(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let result = async {
        let page = query_map(query).and_then(|q| page_args(&q));
        call(&app, &headers, Access::Runtime, move |caller| {
            let (limit, cursor) = page?;
            Reply::json(StatusCode::OK, &caller.engine.list_authorizations(limit, cursor.as_deref())?)
        })
        .await
    }
    .await;
    finish("/v1/authorizations", result)
}

async fn get_authorization(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let result = async {
        let id = path_id(path)?;
        call(&app, &headers, Access::Runtime, move |caller| {
            Reply::json(StatusCode::OK, &caller.engine.get_authorization(&id)?)
        })
        .await
    }
    .await;
    finish("/v1/authorizations/{id}", result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    revoked_by: Option<String>,
    #[serde(default)]
    notes: Option<String>,
}

async fn revoke_authorization(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    let result = async {
        let id = path_id(path)?;
        let bytes = read_body(&app, body, &headers, app.max_body_bytes).await?;
        let key = idempotency_key(&headers);
        call(&app, &headers, Access::Runtime, move |caller| {
            // The official client omits the body when it has nothing to say.
            let key = key?;
            let request = if bytes.iter().all(u8::is_ascii_whitespace) {
                RevokeBody { revoked_by: None, notes: None }
            } else {
                parse_json::<RevokeBody>(&bytes)?
            };
            if request.revoked_by.as_ref().is_some_and(|by| by.is_empty() || by.chars().count() > 256) {
                return Err(ApiError::invalid("revoked_by", "must be 1 to 256 characters"));
            }
            let revoked = caller.engine.idempotent(key.as_deref()).revoke_authorization(
                &id,
                request.revoked_by.as_deref(),
                request.notes.as_deref(),
            )?;
            Reply::json(StatusCode::OK, &revoked)
        })
        .await
    }
    .await;
    finish("/v1/authorizations/{id}", result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    approved: bool,
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

async fn resolve_confirmation(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    let result = async {
        let nonce = path_id(path)?;
        let bytes = read_body(&app, body, &headers, app.max_body_bytes).await?;
        let key = idempotency_key(&headers);
        call(&app, &headers, Access::Runtime, move |caller| {
            let key = key?;
            let request: ConfirmBody = parse_json(&bytes)?;
            let resolved = caller.engine.idempotent(key.as_deref()).resolve_confirmation(
                &nonce,
                request.approved,
                request.ttl_seconds,
            )?;
            Reply::json(StatusCode::OK, &resolved)
        })
        .await
    }
    .await;
    finish("/v1/confirmations/{id}", result)
}

async fn confirmation_status(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let result = async {
        let id = path_id(path)?;
        call(&app, &headers, Access::Runtime, move |caller| {
            Reply::json(StatusCode::OK, &caller.engine.confirmation_status(&id)?)
        })
        .await
    }
    .await;
    finish("/v1/confirmations/{id}/status", result)
}

async fn escalation_status(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let result = async {
        let id = path_id(path)?;
        call(&app, &headers, Access::Runtime, move |caller| {
            Reply::json(StatusCode::OK, &caller.engine.escalation_status(&id)?)
        })
        .await
    }
    .await;
    finish("/v1/escalations/{id}", result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    resolution: Resolution,
    resolved_by: String,
    #[serde(default)]
    note: Option<String>,
}

async fn resolve_escalation(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    let result = async {
        let id = path_id(path)?;
        let bytes = read_body(&app, body, &headers, app.max_body_bytes).await?;
        let key = idempotency_key(&headers);
        call(&app, &headers, Access::Runtime, move |caller| {
            let key = key?;
            let request: ResolveBody = parse_json(&bytes)?;
            let resolved = caller.engine.idempotent(key.as_deref()).resolve_escalation(
                &id,
                request.resolution,
                &request.resolved_by,
                request.note.as_deref(),
            )?;
            Reply::json(StatusCode::OK, &resolved)
        })
        .await
    }
    .await;
    finish("/v1/escalations/{id}/resolve", result)
}

async fn get_receipt(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let result = async {
        let id = path_id(path)?;
        call(&app, &headers, Access::Runtime, move |caller| {
            let stored = caller.engine.receipt(&id)?;
            Reply::json(StatusCode::OK, &ReceiptEnvelope::Signed { receipt: stored.receipt })
        })
        .await
    }
    .await;
    finish("/v1/receipts/{id}", result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettleBody {
    check_receipt_id: String,
    actual_cost_micros: i64,
}

async fn settle_budget(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let bytes = read_body(&app, body, &headers, app.max_body_bytes).await?;
        let key = idempotency_key(&headers);
        call(&app, &headers, Access::Runtime, move |caller| {
            let key = key?;
            let request: SettleBody = parse_json(&bytes)?;
            let settled =
                caller.engine.settle_budget(&request.check_receipt_id, request.actual_cost_micros, key.as_deref())?;
            Reply::json(StatusCode::OK, &settled)
        })
        .await
    }
    .await;
    finish("/v1/budget-settlements", result)
}

// -------------------------------------------------------------------------------------------------
// Setup routes

async fn list_policies(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let result = async {
        let page = query_map(query).and_then(|q| page_args(&q));
        call(&app, &headers, Access::Setup, move |caller| {
            let (limit, cursor) = page?;
            Reply::json(StatusCode::OK, &caller.engine.list_policies(limit, cursor.as_deref())?)
        })
        .await
    }
    .await;
    finish("/v1/policies", result)
}

async fn create_policy(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let bytes = read_body(&app, body, &headers, app.max_policy_body_bytes).await?;
        let key = idempotency_key(&headers);
        call(&app, &headers, Access::Setup, move |caller| {
            let key = key?;
            let body = parse_value(&bytes)?;
            Reply::json(StatusCode::CREATED, &caller.engine.idempotent(key.as_deref()).create_policy(&body)?)
        })
        .await
    }
    .await;
    finish("/v1/policies", result)
}

async fn get_policy(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let result = async {
        let id = path_id(path)?;
        let version = match query_map(query)?.get("version") {
            None => None,
            Some(text) => Some(
                text.parse::<i64>()
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or_else(|| ApiError::invalid("version", "must be a positive integer"))?,
            ),
        };
        call(&app, &headers, Access::Setup, move |caller| {
            let view = match version {
                Some(version) => caller.engine.get_policy_edition(&id, version)?,
                None => caller.engine.get_policy(&id)?,
            };
            Reply::json(StatusCode::OK, &view)
        })
        .await
    }
    .await;
    finish("/v1/policies/{id}", result)
}

async fn archive_policy(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let result = async {
        let id = path_id(path)?;
        let key = idempotency_key(&headers);
        call(&app, &headers, Access::Setup, move |caller| {
            let key = key?;
            caller.engine.idempotent(key.as_deref()).archive_policy(&id)?;
            Ok(Reply::no_content())
        })
        .await
    }
    .await;
    finish("/v1/policies/{id}", result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    definition: Value,
    action: String,
    #[serde(default)]
    context: Option<Value>,
}

async fn preview_policy(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let bytes = read_body(&app, body, &headers, app.max_policy_body_bytes).await?;
        call(&app, &headers, Access::Setup, move |caller| {
            let request: PreviewBody = parse_json(&bytes)?;
            let context = request.context.unwrap_or_else(|| json!({}));
            Reply::json(StatusCode::OK, &caller.engine.preview_policy(&request.definition, &request.action, &context)?)
        })
        .await
    }
    .await;
    finish("/v1/setup/policies/preview", result)
}

/// Publishing creates the next edition of the policy (or returns the newest one if it already has
/// this definition); see [`allowly_core::Allowly::publish_policy`].
async fn publish_policy(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let bytes = read_body(&app, body, &headers, app.max_policy_body_bytes).await?;
        let key = idempotency_key(&headers);
        call(&app, &headers, Access::Setup, move |caller| {
            let Some(key) = key? else {
                return Err(ApiError::invalid("Idempotency-Key", "is required to publish a policy"));
            };
            let body = parse_value(&bytes)?;
            let created_by = format!("api_key:{}", caller.key_id);
            let published = caller.engine.idempotent(Some(&key)).publish_policy(&body, &created_by)?;
            Reply::json(StatusCode::CREATED, &published)
        })
        .await
    }
    .await;
    finish("/v1/setup/policies/publish", result)
}

/// Retires the workspace's signing key and starts a new one. Safe while other servers on the same
/// database sign: rotation waits for their signing transactions, and each notices the new key on
/// its next one.
async fn rotate_signing_key(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let result = call(&app, &headers, Access::Setup, move |caller| {
        let fresh = caller.engine.rotate_key()?;
        let document = KeyDocument::from_records(caller.engine.workspace_id(), &[fresh]);
        let key = document.keys.first().ok_or_else(|| ApiError::internal("the rotated key was not published"))?;
        Reply::json(StatusCode::CREATED, key)
    })
    .await;
    finish("/v1/setup/keys/rotate", result)
}

async fn list_api_keys(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let result = call(&app, &headers, Access::Setup, move |caller| {
        Reply::json(StatusCode::OK, &json!({"items": caller.engine.list_api_keys()?}))
    })
    .await;
    finish("/v1/setup/api-keys", result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyBody {
    kind: ApiKeyKind,
    #[serde(default)]
    label: Option<String>,
}

async fn create_api_key(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let bytes = read_body(&app, body, &headers, app.max_body_bytes).await?;
        call(&app, &headers, Access::Setup, move |caller| {
            let request: ApiKeyBody = parse_json(&bytes)?;
            Reply::json(StatusCode::CREATED, &caller.engine.create_api_key(request.kind, request.label.as_deref())?)
        })
        .await
    }
    .await;
    finish("/v1/setup/api-keys", result)
}

async fn revoke_api_key(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let result = async {
        let id = path_id(path)?;
        call(&app, &headers, Access::Setup, move |caller| {
            caller.engine.revoke_api_key(&id)?;
            Ok(Reply::no_content())
        })
        .await
    }
    .await;
    finish("/v1/setup/api-keys/{id}", result)
}

// -------------------------------------------------------------------------------------------------
// Public routes

async fn key_document(State(app): State<Arc<App>>, path: Result<Path<String>, PathRejection>) -> Response {
    let result = async {
        let id = path_id(path)?;
        let not_found = || ApiError::new(StatusCode::NOT_FOUND, "workspace_not_found", "no such workspace");
        if !crate::home::valid_workspace_id(&id) {
            return Err(not_found());
        }
        let backend = app.backend.clone();
        let queue_key = id.clone();
        blocking(&app, &queue_key, move || {
            let engine = backend.workspace(&id)?.ok_or_else(not_found)?;
            Reply::json(StatusCode::OK, &engine.key_document()?)
        })
        .await
    }
    .await;
    let mut response = finish("/v1/workspaces/{id}/keys", result);
    if response.status().is_success() {
        // Rotation adds keys: verifiers should not keep a stale document.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if let Some(why) = app.connections.cannot_accept() {
        let err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_accepting_connections", why);
        return finish("/readyz", Err(err));
    }
    let backend = app.backend.clone();
    let primary = backend.primary_workspace_id().to_string();
    let result = blocking(&app, &primary, move || {
        backend.ready()?;
        Reply::json(StatusCode::OK, &json!({"status": "ready"}))
    })
    .await;
    finish("/readyz", result)
}

async fn healthz() -> Response {
    finish("/healthz", Reply::json(StatusCode::OK, &json!({"status": "ok"})))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let connections = (app.connections.open(), app.connections.refused());
    let text = app.metrics.render(app.backend.open_workspaces(), connections);
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response.extensions_mut().insert(RouteLabel("/metrics"));
    response
}

async fn not_found() -> Response {
    finish("unmatched", Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")))
}

async fn method_not_allowed() -> Response {
    finish(
        "unmatched",
        Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take this method",
        )),
    )
}
