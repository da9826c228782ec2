//! The routes of the HTTP API (docs/http-api.md): one per operation of the catalog
//! (`allowly_core::ops::CATALOG`), all answered by one generic handler, plus `/healthz`, `/readyz`
//! and `/metrics`.
//!
//! The guard (`crate::guard`) has authenticated the caller before a handler runs. The handler reads
//! the body (bounded) on the async side, merges path, query or body and `Idempotency-Key` into the
//! operation's serde form, then parses and runs it on one blocking thread of the workspace's queue:
//! the async runtime never waits on the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use allowly_core::canonical;
use allowly_core::engine::ApiKeyParts;
use allowly_core::model::ApiKeyKind;
use allowly_core::model::CheckRequest;
use allowly_core::ops::{
    self, Access, Answer, Body as Fields, Idempotency, Operation as _, Request as Operation, Route, CATALOG,
};
use allowly_core::Allowly;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodFilter, MethodRouter};
use axum::Router;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::backend::Backend;
use crate::error::{ApiError, StoreFailure};
use crate::key_cache::{KeyCache, KnownKey};
use crate::metrics::Metrics;

/// The one operation decided in groups (`crate::queue`).
const CHECK_OPERATION: &str = CheckRequest::ROUTE.operation;

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
    /// API keys authenticated in the last second.
    pub key_cache: KeyCache,
    /// The open connections, for readiness.
    pub connections: Arc<crate::connections::ConnectionState>,
    /// Failed authentications per address, requests and writes per key.
    pub limits: crate::guard::Limits,
    /// The console's signed-in sessions.
    pub sessions: crate::console::Sessions,
    /// The server's public URL (an https one makes console cookies `Secure`).
    pub public_url: String,
}

/// The route template a response answered, for logs and metrics (never the raw path: it may hold
/// a confirmation nonce).
#[derive(Clone, Copy, Debug)]
pub struct RouteLabel(pub &'static str);

/// An authenticated caller: the one the guard admitted for this request (the guard runs for every
/// route that takes a key, before the body is read).
#[derive(Clone)]
pub(crate) struct Caller {
    pub(crate) engine: Arc<Allowly>,
    pub(crate) key_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Caller, ApiError> {
        crate::guard::admitted().ok_or_else(|| ApiError::unauthorized("an API key is required"))
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Option<Caller>, ApiError> {
        Ok(crate::guard::admitted())
    }
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
    // One method router per path: `/v1/authorizations` answers a create and a list.
    let mut paths: BTreeMap<&'static str, MethodRouter<Arc<App>>> = BTreeMap::new();
    for route in CATALOG {
        let filter = match route.method {
            ops::Method::Get => MethodFilter::GET,
            ops::Method::Post => MethodFilter::POST,
            ops::Method::Delete => MethodFilter::DELETE,
        };
        let handler = move |State(app): State<Arc<App>>,
                            caller: Option<Caller>,
                            path: Result<Path<String>, PathRejection>,
                            query: Result<Query<HashMap<String, String>>, QueryRejection>,
                            headers: HeaderMap,
                            body: Body| async move {
            let input = Input { path, query, headers, body };
            answer(&app, route, caller, input).await
        };
        let methods = paths.remove(route.path).unwrap_or_default();
        paths.insert(route.path, methods.on(filter, handler));
    }
    let mut router = Router::new();
    for (path, methods) in paths {
        router = router.route(path, methods);
    }
    router
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(app.clone(), crate::guard::guard))
        // The console signs in its own way (a session cookie), so it is outside the key guard.
        .merge(crate::console::router())
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

/// The routes of [`router`] that are not operations.
const INFRASTRUCTURE_ROUTES: [&str; 3] = ["/readyz", "/healthz", "/metrics"];

/// The `'static` label of a matched route template (`unmatched` for any other).
pub(crate) fn route_label(template: &str) -> &'static str {
    CATALOG
        .iter()
        .map(|route| route.path)
        .chain(INFRASTRUCTURE_ROUTES)
        .find(|route| *route == template)
        .unwrap_or("unmatched")
}

/// Which key a matched route takes; `None` for the routes anyone may call.
pub(crate) fn access_of(method: &Method, template: &str) -> Option<Access> {
    match template {
        "/healthz" | "/readyz" => return None,
        "/metrics" => return Some(Access::Setup),
        _ => {}
    }
    let route =
        ops::route_at(method.as_str(), template).or_else(|| CATALOG.iter().find(|route| route.path == template))?;
    (route.access != Access::Public).then_some(route.access)
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
// The operations

/// What an operation's request carries besides its route.
struct Input {
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
}

/// Answers one operation of the catalog.
async fn answer(app: &Arc<App>, route: &'static Route, caller: Option<Caller>, input: Input) -> Response {
    let result = async {
        let fields = fields(app, route, input).await?;
        let engine = match (&caller, route.access) {
            (Some(caller), _) => caller.engine.clone(),
            // A public route names its workspace in its path.
            (None, Access::Public) => public_workspace(app, route, &fields).await?,
            (None, _) => return Err(ApiError::unauthorized("an API key is required")),
        };
        let workspace_id = engine.workspace_id().to_string();
        if route.operation == CHECK_OPERATION {
            return decide(app, &workspace_id, engine, fields).await;
        }
        let created_by = caller.as_ref().map_or_else(|| "public".to_string(), |c| format!("api_key:{}", c.key_id));
        let metrics_app = app.clone();
        blocking(app, &workspace_id, move || {
            let request = Operation::from_value(route.operation, Value::Object(fields))?;
            let revoked_key = match &request {
                Operation::RevokeApiKey(revoke) => Some(revoke.key_id.clone()),
                _ => None,
            };
            let answer = engine.execute(request, &created_by)?;
            if let Some(key_id) = revoked_key {
                // Refused here at once, not only when the cached authentication goes stale.
                metrics_app.key_cache.forget_key(engine.workspace_id(), &key_id);
            }
            if let Answer::Check(response) = &answer {
                metrics_app.metrics.count_decisions(response);
            }
            match StatusCode::from_u16(route.status) {
                Ok(StatusCode::NO_CONTENT) => Ok(Reply::no_content()),
                status => Reply::json(status.unwrap_or(StatusCode::OK), &answer),
            }
        })
        .await
    }
    .await;
    let mut response = match result {
        Ok(reply) => reply.into_response(),
        Err(err) => err.into_response(),
    };
    if route.access == Access::Public && response.status().is_success() {
        // Rotation adds keys: verifiers should not keep a stale document.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// `POST /v1/check`: decided in the workspace's queue with the checks queued beside it
/// (`crate::queue`), answered from here, so the queue's thread only decides.
async fn decide(
    app: &Arc<App>,
    workspace_id: &str,
    engine: Arc<Allowly>,
    fields: Map<String, Value>,
) -> Result<Reply, ApiError> {
    let Operation::Check(request) = Operation::from_value(CHECK_OPERATION, Value::Object(fields))? else {
        return Err(ApiError::internal("the check could not be read"));
    };
    let response = match app.queue.check(workspace_id, engine, request).await {
        Ok(decided) => decided?,
        Err(err) => {
            tracing::error!(target: "allowly::http", error = ?err, "a check failed");
            return Err(ApiError::internal("the request could not be completed"));
        }
    };
    app.metrics.count_decisions(&response);
    Reply::json(StatusCode::OK, &response)
}

/// The operation's serde form: its path id, its query (`GET`) or body members, and the
/// `Idempotency-Key` header.
async fn fields(app: &App, route: &'static Route, input: Input) -> Result<Map<String, Value>, ApiError> {
    let id = match route.path_field {
        Some(_) => Some(
            input
                .path
                .map(|Path(id)| id)
                .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", "the path is not valid"))?,
        ),
        None => None,
    };
    let key = match route.idempotency {
        Idempotency::None => None,
        Idempotency::Optional | Idempotency::Required => idempotency_key(&input.headers)?,
    };
    if key.is_none() && route.idempotency == Idempotency::Required {
        return Err(ApiError::invalid("Idempotency-Key", format!("is required by `{}`", route.operation)));
    }
    let mut fields = match route.body {
        Fields::Query => {
            let Query(query) = input.query.map_err(|_| ApiError::invalid("query", "the query string is not valid"))?;
            query.into_iter().map(|(name, value)| (name, Value::String(value))).collect()
        }
        Fields::None => Map::new(),
        Fields::Optional | Fields::Json => {
            let limit = if route.large_body { app.max_policy_body_bytes } else { app.max_body_bytes };
            let bytes = read_body(app, input.body, &input.headers, limit).await?;
            // The official client omits an optional body when it has nothing to say.
            if route.body == Fields::Optional && bytes.iter().all(u8::is_ascii_whitespace) {
                Map::new()
            } else {
                match parse_value(&bytes)? {
                    Value::Object(members) => members,
                    _ => return Err(ApiError::invalid("body", "must be a JSON object")),
                }
            }
        }
    };
    // What travels in the path or a header may not also come in the body.
    for reserved in route.path_field.into_iter().chain(["idempotency_key"]) {
        if route.body != Fields::Query && fields.contains_key(reserved) {
            return Err(ApiError::invalid(reserved, format!("unknown field `{reserved}` in the body")));
        }
        fields.remove(reserved);
    }
    if let (Some(field), Some(id)) = (route.path_field, id) {
        fields.insert(field.to_string(), Value::String(id));
    }
    if let Some(key) = key {
        fields.insert("idempotency_key".to_string(), Value::String(key));
    }
    Ok(fields)
}

/// The engine of the workspace a public route's path names (404 if there is none), or of the
/// server's first workspace for a public route whose path names none.
async fn public_workspace(
    app: &Arc<App>,
    route: &'static Route,
    fields: &Map<String, Value>,
) -> Result<Arc<Allowly>, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "workspace_not_found", "no such workspace");
    let id = match route.path_field {
        Some(field) => fields.get(field).and_then(Value::as_str).unwrap_or_default(),
        // A public route without a workspace in its path (`/v1/verify`) answers for the server's own.
        None => app.backend.primary_workspace_id(),
    };
    if !crate::home::valid_workspace_id(id) {
        return Err(not_found());
    }
    let backend = app.backend.clone();
    let id = id.to_string();
    let queue_key = id.clone();
    blocking(app, &queue_key, move || backend.workspace(&id)?.ok_or_else(not_found)).await
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
    caller_for(authenticate_key(backend, presented)?, access)
}

/// Resolves the key's workspace and authenticates it against the store. Blocking.
pub(crate) fn authenticate_key(backend: &dyn Backend, presented: &str) -> Result<KnownKey, ApiError> {
    let invalid = || ApiError::unauthorized("the API key is invalid or revoked");
    let parts = ApiKeyParts::parse(presented).ok_or_else(invalid)?;
    let engine = backend.workspace(parts.workspace_id)?.ok_or_else(invalid)?;
    let kind = engine.authenticate(presented)?;
    Ok(KnownKey { engine, key_id: parts.key_id.to_string(), kind })
}

/// The caller an authenticated key is on a route that needs `access` (403 for a runtime key on a
/// setup route).
pub(crate) fn caller_for(key: KnownKey, access: Access) -> Result<Caller, ApiError> {
    if access == Access::Setup && key.kind != ApiKeyKind::Setup {
        return Err(ApiError::forbidden());
    }
    Ok(Caller { engine: key.engine, key_id: key.key_id })
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

fn parse_value(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed_json("the body is empty"));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(ApiError::malformed_json)?;
    canonical::parse_document(bytes).map_err(|err| ApiError::invalid("body", err.to_string()))?;
    Ok(value)
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

// -------------------------------------------------------------------------------------------------
// Health and metrics

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
    let text = app.metrics.render(app.backend.open_workspaces(), connections, app.queue.group_counts());
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
