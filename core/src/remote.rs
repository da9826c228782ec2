//! The remote client (feature `remote`): the [`Api`] of an `allowly serve` runtime over its HTTP API
//! (docs/http-api.md), with the local fallback of docs/decisions.md for checks.
//!
//! ```no_run
//! use allowly_core::model::CheckRequest;
//! use allowly_core::remote::{FallbackMode, RemoteOptions};
//!
//! let mut options = RemoteOptions::default(); // check_timeout_ms 1000, request_timeout_ms 10 000
//! options.fallback_by_action.insert("search.web".into(), FallbackMode::FailOpen);
//! let client = allowly_core::connect("http://127.0.0.1:8787", "allowly_rt_...", options)?;
//! let answer = client.check(&CheckRequest {
//!     authorization_id: "auth_...".into(),
//!     actions: vec!["email.send".into(), "search.web".into()],
//!     ..Default::default()
//! })?;
//! // If the runtime did not answer in time, `answer` is the local fallback: `email.send` denied
//! // (`fallback_closed_timeout`), `search.web` allowed (`fallback_open_timeout`), no receipts.
//! # Ok::<(), allowly_core::remote::RemoteError>(())
//! ```
//!
//! The client is lazy: [`connect`] validates its arguments and opens no connection; the first call
//! does, and later calls reuse it (HTTP keep-alive, one connection pool per client). The inherent
//! methods of [`RemoteClient`] return the typed [`RemoteError`]; through the [`Api`] trait they
//! return [`crate::Error`].
//!
//! `check` never raises for an unavailable runtime: the whole call (connect, send, receive) is
//! bounded by `check_timeout_ms`, and on timeout, transport failure, HTTP 408 or 5xx it returns,
//! per action, `deny` (or `allow` for actions mapped to [`FallbackMode::FailOpen`]) with reason
//! `fallback_{open|closed}_{timeout|unreachable}`, `is_fallback`, no receipt and `engine_version`
//! `sdk_fallback`. Any other 4xx (429 included) is a [`RemoteError::Api`]; an answer that breaks
//! the wire contract is a [`RemoteError::Protocol`].
//!
//! Every check is sent with an `Idempotency-Key`: the caller's, or one made for it
//! ([`AUTOMATIC_KEY_PREFIX`] and a random id). When the runtime answers `503 outcome_unknown` (its
//! store's connection broke while it committed the check), the client sends the check again under
//! the same key, pausing 100 ms, 200 ms, ... while `check_timeout_ms` lasts: the runtime answers
//! the first decision if it was applied, or decides now if it was not, so a budget is never spent
//! twice. Only when time runs out does the fallback answer.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use ureq::http::{Method, Request, Uri};
use ureq::{Agent, AsSendBody};

use crate::api::Api;
use crate::error::{Error, FieldError, Result};
use crate::ids;
use crate::model::indexmap_lite::OrderedResults;
use crate::model::{
    ActionResult, AuthorizationCreate, AuthorizationCreated, AuthorizationRevoked, AuthorizationView, BudgetSettlement,
    CheckRequest, CheckResponse, ConfirmationResolved, ConfirmationStatusView, EscalationResolved,
    EscalationStatusView, Page, PolicyPublished, PolicyView, ReceiptEnvelope, Resolution,
};
use crate::policy::Decision;
use crate::receipt::{decode_receipt, KeyDocument, PublishedKey, SignedReceipt};
use crate::time::Timestamp;

/// Default bound of one `check`, connect to last byte (docs/decisions.md).
pub const DEFAULT_CHECK_TIMEOUT_MS: u64 = 1000;
/// Default bound of every other call.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// `engine_version` of a fallback answer.
pub const FALLBACK_ENGINE_VERSION: &str = "sdk_fallback";
/// Largest response body read (a page of 100 policies is far below).
const MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;
/// Error code with which a runtime refuses identity-bound checks; never answered by a fallback.
const IDENTITY_UNAVAILABLE: &str = "identity_verification_unavailable";
/// Error code of a request that may or may not have been applied (its commit was cut off).
const OUTCOME_UNKNOWN: &str = "outcome_unknown";
/// Prefix of the idempotency key a check gets when its caller gave none.
pub const AUTOMATIC_KEY_PREFIX: &str = "chk_";
/// First pause before asking again about a check whose outcome is unknown; it doubles each time.
const IN_DOUBT_FIRST_PAUSE: Duration = Duration::from_millis(100);

/// What a check answers for an action when the runtime cannot decide it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackMode {
    /// `allow` without a receipt: for actions whose outage would hurt more than an unchecked call.
    FailOpen,
    /// `deny` (the default).
    #[default]
    FailClosed,
}

impl FallbackMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackMode::FailOpen => "fail_open",
            FallbackMode::FailClosed => "fail_closed",
        }
    }

    pub fn parse(text: &str) -> Option<FallbackMode> {
        match text {
            "fail_open" => Some(FallbackMode::FailOpen),
            "fail_closed" => Some(FallbackMode::FailClosed),
            _ => None,
        }
    }
}

/// Why a check was answered locally: the `{timeout|unreachable}` part of the fallback reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackFailure {
    /// No answer within `check_timeout_ms`, or HTTP 408.
    Timeout,
    /// Connection or transport failure, or HTTP 5xx.
    Unreachable,
}

impl FallbackFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackFailure::Timeout => "timeout",
            FallbackFailure::Unreachable => "unreachable",
        }
    }
}

/// Settings of a [`RemoteClient`].
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// Bound of one `check`, connect to last byte of the answer; > 0.
    pub check_timeout_ms: u64,
    /// Bound of every other call; > 0.
    pub request_timeout_ms: u64,
    /// Fallback per action; unmapped actions fail closed.
    pub fallback_by_action: HashMap<String, FallbackMode>,
    /// The runtime's workspace, needed for [`RemoteClient::key_document`] (the key document's
    /// path names it; the HTTP API offers no other way to learn it).
    pub workspace_id: Option<String>,
    /// Allow `http://` to a host other than a loopback address (the API key travels in clear).
    pub allow_insecure_http: bool,
}

impl Default for RemoteOptions {
    fn default() -> RemoteOptions {
        RemoteOptions {
            check_timeout_ms: DEFAULT_CHECK_TIMEOUT_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            fallback_by_action: HashMap::new(),
            workspace_id: None,
            allow_insecure_http: false,
        }
    }
}

/// An error of the remote client, with a stable machine [`code`](RemoteError::code).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RemoteError {
    /// The runtime answered with an error status (`code` is the server's, e.g. `rate_limited`).
    #[error("{message}")]
    Api { status: u16, code: String, message: String, fields: Vec<FieldError>, retry_after_seconds: Option<f64> },
    /// No answer within the call's timeout.
    #[error("the runtime did not answer within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    /// The runtime could not be reached, or the connection failed mid-call.
    #[error("cannot reach the runtime: {0}")]
    Unreachable(String),
    /// The answer does not match the wire contract (docs/http-api.md).
    #[error("unexpected answer from the runtime: {0}")]
    Protocol(String),
    /// The client's settings or a request argument cannot be used (nothing was sent).
    #[error("{0}")]
    InvalidRequest(String),
}

impl RemoteError {
    /// `Api`: the server's code; otherwise `timeout`, `unreachable`, `protocol_error`, `invalid_request`.
    pub fn code(&self) -> &str {
        match self {
            RemoteError::Api { code, .. } => code,
            RemoteError::Timeout { .. } => "timeout",
            RemoteError::Unreachable(_) => "unreachable",
            RemoteError::Protocol(_) => "protocol_error",
            RemoteError::InvalidRequest(_) => "invalid_request",
        }
    }

    /// The HTTP status of an [`RemoteError::Api`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            RemoteError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The `Retry-After` of an [`RemoteError::Api`] error, in seconds.
    pub fn retry_after_seconds(&self) -> Option<f64> {
        match self {
            RemoteError::Api { retry_after_seconds, .. } => *retry_after_seconds,
            _ => None,
        }
    }

    pub fn fields(&self) -> &[FieldError] {
        match self {
            RemoteError::Api { fields, .. } => fields,
            _ => &[],
        }
    }

    fn protocol(message: impl Into<String>) -> RemoteError {
        RemoteError::Protocol(message.into())
    }
}

/// Interim mapping onto the engine's error enum, which has no variant for an HTTP error with a
/// server-chosen code, a rate limit or a transport failure: known codes keep their `code()`,
/// unknown ones fall back to the variant's generic code, and 429/timeouts/transport failures
/// lose their structure. The lossless form is [`RemoteError`].
impl From<RemoteError> for Error {
    fn from(err: RemoteError) -> Error {
        match err {
            RemoteError::Api { status, code, message, fields, retry_after_seconds } => {
                Error::Api { status, code, message, fields, retry_after_seconds }
            }
            RemoteError::InvalidRequest(message) => Error::InvalidRequest { message, fields: Vec::new() },
            RemoteError::Timeout { .. } => Error::Unreachable { code: "timeout", message: err.to_string() },
            RemoteError::Unreachable(_) => Error::Unreachable { code: "unreachable", message: err.to_string() },
            RemoteError::Protocol(_) => Error::Unreachable { code: "protocol_error", message: err.to_string() },
        }
    }
}

/// The local answer of docs/decisions.md for a check the runtime could not decide: per action (duplicates
/// once), `allow` if mapped to fail-open else `deny`, reason `fallback_{open|closed}_{failure}`,
/// `is_fallback`, `fallback_mode`, no receipt; `engine_version` `sdk_fallback`.
pub fn fallback_check_response(
    authorization_id: &str,
    actions: &[String],
    fallback_by_action: &HashMap<String, FallbackMode>,
    failure: FallbackFailure,
) -> CheckResponse {
    let mut seen = HashSet::new();
    let results = actions
        .iter()
        .filter(|action| seen.insert(action.as_str()))
        .map(|action| {
            let mode = fallback_by_action.get(action).copied().unwrap_or_default();
            let (decision, side) = match mode {
                FallbackMode::FailOpen => (Decision::Allow, "open"),
                FallbackMode::FailClosed => (Decision::Deny, "closed"),
            };
            let mut result = ActionResult::bare(decision, &format!("fallback_{side}_{}", failure.as_str()));
            result.is_fallback = true;
            result.fallback_mode = Some(mode.as_str().to_string());
            (action.clone(), result)
        })
        .collect();
    CheckResponse {
        authorization_id: authorization_id.to_string(),
        user_id: None,
        agent_id: None,
        authorization_expires_at: None,
        engine_version: FALLBACK_ENGINE_VERSION.to_string(),
        results: OrderedResults(results),
    }
}

/// Opens a [`RemoteClient`] on an `allowly serve` runtime (`base_url` like `http://127.0.0.1:8787`).
/// Same as [`RemoteClient::connect`]: validates, connects lazily.
pub fn connect(base_url: &str, api_key: &str, options: RemoteOptions) -> Result<RemoteClient, RemoteError> {
    RemoteClient::connect(base_url, api_key, options)
}

/// A status and body of an HTTP answer.
struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
}

/// How a request authenticates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Bearer,
    /// The public key document is fetched without credentials, as the official client does.
    None,
}

/// The HTTP client of one runtime; `Send + Sync`, one connection pool, cheap to share by reference.
pub struct RemoteClient {
    agent: Agent,
    base_url: String,
    authorization: String,
    api_key: String,
    options: RemoteOptions,
    check_timeout: Duration,
    request_timeout: Duration,
    last_engine_version: Mutex<Option<String>>,
}

impl fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteClient").field("base_url", &self.base_url).field("options", &self.options).finish()
    }
}

impl RemoteClient {
    /// Validates the settings and prepares the connection pool; sends nothing (use
    /// [`RemoteClient::readiness`] to probe the runtime).
    pub fn connect(base_url: &str, api_key: &str, options: RemoteOptions) -> Result<RemoteClient, RemoteError> {
        let base_url = validate_base_url(base_url, options.allow_insecure_http)?;
        if api_key.is_empty() || !api_key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(RemoteError::InvalidRequest("the API key must be non-empty printable ASCII".into()));
        }
        if options.check_timeout_ms == 0 {
            return Err(RemoteError::InvalidRequest("`check_timeout_ms` must be positive".into()));
        }
        if options.request_timeout_ms == 0 {
            return Err(RemoteError::InvalidRequest("`request_timeout_ms` must be positive".into()));
        }
        let request_timeout = Duration::from_millis(options.request_timeout_ms);
        let config = Agent::config_builder()
            .http_status_as_error(false)
            // A redirect is answered as an error; credentials never follow one.
            .max_redirects(0)
            .timeout_global(Some(request_timeout))
            .user_agent(concat!("allowly-core/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(RemoteClient {
            agent: Agent::new_with_config(config),
            base_url,
            authorization: format!("Bearer {api_key}"),
            api_key: api_key.to_string(),
            check_timeout: Duration::from_millis(options.check_timeout_ms),
            request_timeout,
            options,
            last_engine_version: Mutex::new(None),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn options(&self) -> &RemoteOptions {
        &self.options
    }

    // -----------------------------------------------------------------------------------------
    // Check

    /// `POST /v1/check`, bounded by `check_timeout_ms`, with the local fallback of docs/decisions.md.
    pub fn check(&self, request: &CheckRequest) -> Result<CheckResponse, RemoteError> {
        let mut body = json!({
            "authorization_id": request.authorization_id,
            "actions": request.actions,
            "resource": request.resource,
            "session_id": request.session_id,
            "estimated_cost_micros": request.estimated_cost_micros,
            "context": request.context.clone().unwrap_or_else(|| json!({})),
        });
        if let Some(timestamp) = &request.client_timestamp {
            body["client_timestamp"] = Value::from(timestamp.as_str());
        }
        let fallback = |failure| {
            fallback_check_response(
                &request.authorization_id,
                &request.actions,
                &self.options.fallback_by_action,
                failure,
            )
        };
        // Every check carries an idempotency key (the caller's, or one made here), so that sending
        // it again is safe: the runtime answers a repeat with the first answer.
        let generated;
        let key = match request.idempotency_key.as_deref() {
            Some(key) => key,
            None => {
                generated = ids::new_id(AUTOMATIC_KEY_PREFIX, Timestamp::now()).map_err(|err| {
                    RemoteError::InvalidRequest(format!("no randomness for an idempotency key: {err}"))
                })?;
                &generated
            }
        };
        let deadline = Instant::now() + self.check_timeout;
        let mut pause = IN_DOUBT_FIRST_PAUSE;
        let mut in_doubt = false;
        let reply = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(fallback(FallbackFailure::Timeout));
            }
            let sent = self.send(Method::POST, "/v1/check", Some(&body), Some(key), Auth::Bearer, remaining);
            // Once the runtime said the check may have been applied (`outcome_unknown`), only an
            // answer under the same key settles it: keep asking while time is left, through
            // outages, and fall back only when it runs out.
            let unsettled = match &sent {
                Ok(reply) => reply.status == 503 && (in_doubt || says_outcome_unknown(&reply.body)),
                Err(RemoteError::Unreachable(_)) => in_doubt,
                Err(_) => false,
            };
            if unsettled {
                in_doubt = true;
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause *= 2;
                continue;
            }
            match sent {
                Ok(reply) => break reply,
                Err(RemoteError::Timeout { .. }) => return Ok(fallback(FallbackFailure::Timeout)),
                Err(RemoteError::Unreachable(_)) => return Ok(fallback(FallbackFailure::Unreachable)),
                Err(err) => return Err(err),
            }
        };
        let reply = match self.expect(reply, 200) {
            Ok(reply) => reply,
            Err(err @ RemoteError::Api { status, .. }) if err.code() != IDENTITY_UNAVAILABLE => {
                return match status {
                    408 => Ok(fallback(FallbackFailure::Timeout)),
                    500.. => Ok(fallback(FallbackFailure::Unreachable)),
                    _ => Err(err),
                };
            }
            Err(err) => return Err(err),
        };
        let response = validate_check(parse(&reply)?, request)?;
        *self.last_engine_version.lock() = Some(response.engine_version.clone());
        Ok(response)
    }

    // -----------------------------------------------------------------------------------------
    // Policies (setup credential)

    /// `POST /v1/policies` with the create body (definition fields + `policy_id`).
    pub fn create_policy(&self, body: &Value) -> Result<PolicyView, RemoteError> {
        let reply = self.call(Method::POST, "/v1/policies", Some(body), None, 201)?;
        parse(&reply)
    }

    /// `POST /v1/setup/policies/publish` (201); the runtime requires an `Idempotency-Key`, so one
    /// is made up when the caller gives none.
    pub fn publish_policy(&self, body: &Value, idempotency_key: Option<&str>) -> Result<PolicyPublished, RemoteError> {
        let made_up;
        let key = match idempotency_key {
            Some(key) => key,
            None => {
                made_up = ids::new_id("publish_", Timestamp::now())
                    .map_err(|err| RemoteError::InvalidRequest(err.to_string()))?;
                &made_up
            }
        };
        parse(&self.call(Method::POST, "/v1/setup/policies/publish", Some(body), Some(key), 201)?)
    }

    /// `GET /v1/policies/{id}`: the newest active edition.
    pub fn get_policy(&self, policy_id: &str) -> Result<PolicyView, RemoteError> {
        let reply = self.call(Method::GET, &format!("/v1/policies/{}", segment(policy_id)), None, None, 200)?;
        let view: PolicyView = parse(&reply)?;
        if view.policy_ref.policy_id != policy_id {
            return Err(RemoteError::protocol(format!(
                "asked for policy `{policy_id}`, got `{}`",
                view.policy_ref.policy_id
            )));
        }
        Ok(view)
    }

    /// `GET /v1/policies?limit=&cursor=`.
    pub fn list_policies(&self, limit: usize, cursor: Option<&str>) -> Result<Page<PolicyView>, RemoteError> {
        let reply = self.call(Method::GET, &list_path("/v1/policies", limit, cursor), None, None, 200)?;
        parse(&reply)
    }

    /// `DELETE /v1/policies/{id}` (204), with `Idempotency-Key` when given.
    pub fn archive_policy(&self, policy_id: &str, idempotency_key: Option<&str>) -> Result<(), RemoteError> {
        let path = format!("/v1/policies/{}", segment(policy_id));
        self.call(Method::DELETE, &path, None, idempotency_key, 204)?;
        Ok(())
    }

    /// `POST /v1/setup/policies/preview`.
    pub fn preview_policy(&self, definition: &Value, action: &str, context: &Value) -> Result<Value, RemoteError> {
        let body = json!({"definition": definition, "action": action, "context": context});
        let reply = self.call(Method::POST, "/v1/setup/policies/preview", Some(&body), None, 200)?;
        parse(&reply)
    }

    // -----------------------------------------------------------------------------------------
    // Authorizations

    /// `POST /v1/authorizations` (201), with `Idempotency-Key` when the request carries one.
    pub fn create_authorization(&self, request: &AuthorizationCreate) -> Result<AuthorizationCreated, RemoteError> {
        let mut body = json!({
            "user_id": request.user_id,
            "policy_id": request.policy_id,
            "metadata": request.metadata.clone().unwrap_or_else(|| json!({})),
        });
        let optional = [
            ("policy_version", request.policy_version.map(Value::from)),
            ("actions", request.actions.as_ref().map(|actions| json!(actions))),
            ("expires_at", request.expires_at.as_deref().map(Value::from)),
            ("budget_limit_micros", request.budget_limit_micros.map(Value::from)),
            ("replaces", request.replaces.as_deref().map(Value::from)),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                body[name] = value;
            }
        }
        let key = request.idempotency_key.as_deref();
        let reply = self.call(Method::POST, "/v1/authorizations", Some(&body), key, 201)?;
        parse(&reply)
    }

    /// `DELETE /v1/authorizations/{id}`, with a body only when `revoked_by` or `notes` is given.
    pub fn revoke_authorization(
        &self,
        authorization_id: &str,
        revoked_by: Option<&str>,
        notes: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<AuthorizationRevoked, RemoteError> {
        let mut body = serde_json::Map::new();
        if let Some(by) = revoked_by.filter(|by| !by.is_empty()) {
            body.insert("revoked_by".into(), Value::from(by));
        }
        if let Some(notes) = notes.filter(|notes| !notes.is_empty()) {
            body.insert("notes".into(), Value::from(notes));
        }
        let body = (!body.is_empty()).then_some(Value::Object(body));
        let path = format!("/v1/authorizations/{}", segment(authorization_id));
        let reply = self.call(Method::DELETE, &path, body.as_ref(), idempotency_key, 200)?;
        parse(&reply)
    }

    /// `GET /v1/authorizations?limit=&cursor=`.
    pub fn list_authorizations(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<AuthorizationView>, RemoteError> {
        let reply = self.call(Method::GET, &list_path("/v1/authorizations", limit, cursor), None, None, 200)?;
        parse(&reply)
    }

    /// One authorization. The HTTP API has no single read, so this pages through
    /// `GET /v1/authorizations` (100 per request) until it finds the id: one request per 100
    /// authorizations in the workspace in the worst case. A 404 `authorization_not_found` if absent.
    pub fn get_authorization(&self, authorization_id: &str) -> Result<AuthorizationView, RemoteError> {
        let mut cursor: Option<String> = None;
        loop {
            let page = self.list_authorizations(100, cursor.as_deref())?;
            if let Some(found) = page.items.into_iter().find(|a| a.authorization_id == authorization_id) {
                return Ok(found);
            }
            // Listed but not readable: the error a direct read gives (`authorization_unreadable`).
            if let Some(row) = page.unreadable.into_iter().find(|row| row.id == authorization_id) {
                return Err(RemoteError::Api {
                    status: 409,
                    code: row.code,
                    message: row.message,
                    fields: Vec::new(),
                    retry_after_seconds: None,
                });
            }
            match page.next_cursor {
                Some(next) if page.has_more => {
                    if cursor.as_deref() == Some(next.as_str()) {
                        return Err(RemoteError::protocol("the authorization list repeats its cursor"));
                    }
                    cursor = Some(next);
                }
                _ => break,
            }
        }
        Err(RemoteError::Api {
            status: 404,
            code: "authorization_not_found".into(),
            message: format!("authorization `{authorization_id}` was not found"),
            fields: Vec::new(),
            retry_after_seconds: None,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Confirmations and escalations

    /// `POST /v1/confirmations/{nonce}` with `{approved, ttl_seconds}` (60 unless given).
    pub fn resolve_confirmation(
        &self,
        nonce: &str,
        approved: bool,
        ttl_seconds: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> Result<ConfirmationResolved, RemoteError> {
        let body = json!({"approved": approved, "ttl_seconds": ttl_seconds.unwrap_or(60)});
        let path = format!("/v1/confirmations/{}", segment(nonce));
        let reply = self.call(Method::POST, &path, Some(&body), idempotency_key, 200)?;
        parse(&reply)
    }

    /// `GET /v1/confirmations/{id}/status`, by the confirmation's id or its nonce.
    pub fn confirmation_status(&self, id_or_nonce: &str) -> Result<ConfirmationStatusView, RemoteError> {
        let path = format!("/v1/confirmations/{}/status", segment(id_or_nonce));
        let view: ConfirmationStatusView = parse(&self.call(Method::GET, &path, None, None, 200)?)?;
        // A nonce is not in the answer; an id must come back as asked.
        let by_nonce = id_or_nonce.starts_with(ids::CONFIRMATION_NONCE_PREFIX);
        if !by_nonce && view.confirmation_id != id_or_nonce {
            return Err(RemoteError::protocol(format!(
                "asked for confirmation `{id_or_nonce}`, got `{}`",
                view.confirmation_id
            )));
        }
        Ok(view)
    }

    /// `POST /v1/escalations/{esc_id}/resolve` with `{resolution, resolved_by, note}`.
    pub fn resolve_escalation(
        &self,
        escalation_id: &str,
        resolution: Resolution,
        resolved_by: &str,
        note: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<EscalationResolved, RemoteError> {
        let body = json!({"resolution": resolution, "resolved_by": resolved_by, "note": note});
        let path = format!("/v1/escalations/{}/resolve", segment(escalation_id));
        parse(&self.call(Method::POST, &path, Some(&body), idempotency_key, 200)?)
    }

    /// `GET /v1/escalations/{esc_id}`.
    pub fn escalation_status(&self, escalation_id: &str) -> Result<EscalationStatusView, RemoteError> {
        let path = format!("/v1/escalations/{}", segment(escalation_id));
        let view: EscalationStatusView = parse(&self.call(Method::GET, &path, None, None, 200)?)?;
        if view.escalation_id != escalation_id {
            return Err(RemoteError::protocol(format!(
                "asked for escalation `{escalation_id}`, got `{}`",
                view.escalation_id
            )));
        }
        Ok(view)
    }

    // -----------------------------------------------------------------------------------------
    // Budgets, receipts, keys, readiness

    /// `POST /v1/budget-settlements`, with `Idempotency-Key` when given.
    pub fn settle_budget(
        &self,
        check_receipt_id: &str,
        actual_cost_micros: i64,
        idempotency_key: Option<&str>,
    ) -> Result<BudgetSettlement, RemoteError> {
        let body = json!({"check_receipt_id": check_receipt_id, "actual_cost_micros": actual_cost_micros});
        parse(&self.call(Method::POST, "/v1/budget-settlements", Some(&body), idempotency_key, 200)?)
    }

    /// `GET /v1/receipts/{id}`: the signed receipt, whose payload must name `receipt_id`. The
    /// runtime signs synchronously; a `pending` envelope is answered as a protocol error.
    pub fn receipt(&self, receipt_id: &str) -> Result<SignedReceipt, RemoteError> {
        let path = format!("/v1/receipts/{}", segment(receipt_id));
        match parse::<ReceiptEnvelope>(&self.call(Method::GET, &path, None, None, 200)?)? {
            ReceiptEnvelope::Signed { receipt } => {
                let payload = decode_receipt(&receipt.to_value())
                    .map_err(|err| RemoteError::protocol(format!("receipt `{receipt_id}` does not decode: {err}")))?;
                if payload.get("receipt_id").and_then(Value::as_str) != Some(receipt_id) {
                    return Err(RemoteError::protocol(format!(
                        "the receipt answered for `{receipt_id}` has another id"
                    )));
                }
                Ok(receipt)
            }
            ReceiptEnvelope::Pending { .. } => Err(RemoteError::protocol(format!(
                "receipt `{receipt_id}` is pending; this runtime should sign at once"
            ))),
        }
    }

    /// `POST /v1/setup/keys/rotate` (201): the server's workspace retires its signing key and
    /// starts a new one; the answer is the new key as the key document publishes it.
    pub fn rotate_signing_key(&self) -> Result<PublishedKey, RemoteError> {
        parse(&self.call(Method::POST, "/v1/setup/keys/rotate", None, None, 201)?)
    }

    /// `GET /v1/workspaces/{workspace_id}/keys` (no credentials), for the configured workspace.
    pub fn key_document(&self) -> Result<KeyDocument, RemoteError> {
        let Some(workspace_id) = self.options.workspace_id.as_deref() else {
            return Err(RemoteError::InvalidRequest(
                "the key document needs the workspace id: set `workspace_id` in the remote options".into(),
            ));
        };
        let path = format!("/v1/workspaces/{}/keys", segment(workspace_id));
        let reply = self.expect(self.send(Method::GET, &path, None, None, Auth::None, self.request_timeout)?, 200)?;
        let document: KeyDocument = parse(&reply)?;
        if document.workspace_id != workspace_id {
            return Err(RemoteError::protocol(format!(
                "asked for the keys of `{workspace_id}`, got those of `{}`",
                document.workspace_id
            )));
        }
        Ok(document)
    }

    /// `GET /readyz`: `true` for `{"status":"ready"}`, `false` for a 503 (up but not ready);
    /// other failures are errors.
    pub fn readiness(&self) -> Result<bool, RemoteError> {
        let reply = self.send(Method::GET, "/readyz", None, None, Auth::Bearer, self.request_timeout)?;
        if reply.status == 503 {
            return Ok(false);
        }
        let answer: Value = parse(&self.expect(reply, 200)?)?;
        Ok(answer.get("status").and_then(Value::as_str) == Some("ready"))
    }

    /// The `engine_version` of the last answer to a check, if any.
    pub fn engine_version(&self) -> Option<String> {
        self.last_engine_version.lock().clone()
    }

    // -----------------------------------------------------------------------------------------
    // HTTP

    /// An authenticated call bounded by `request_timeout_ms` that must answer `expected`.
    fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        expected: u16,
    ) -> Result<Reply, RemoteError> {
        let reply = self.send(method, path, body, idempotency_key, Auth::Bearer, self.request_timeout)?;
        self.expect(reply, expected)
    }

    /// Sends one request and reads the whole answer within `timeout`, whatever its status.
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        auth: Auth,
        timeout: Duration,
    ) -> Result<Reply, RemoteError> {
        let uri = format!("{}{path}", self.base_url);
        let mut builder = Request::builder().method(method).uri(uri).header("Accept", "application/json");
        if auth == Auth::Bearer {
            builder = builder.header("Authorization", &self.authorization);
        }
        if let Some(key) = idempotency_key {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                return Err(RemoteError::InvalidRequest("an idempotency key must be printable ASCII".into()));
            }
            builder = builder.header("Idempotency-Key", key);
        }
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let response = match body {
            Some(body) => {
                let bytes = serde_json::to_vec(body)
                    .map_err(|err| RemoteError::InvalidRequest(format!("the request cannot be encoded: {err}")))?;
                let request = builder
                    .header("Content-Type", "application/json")
                    .body(bytes)
                    .map_err(|err| RemoteError::InvalidRequest(format!("invalid request: {err}")))?;
                self.run(request, timeout)
            }
            None => {
                let request =
                    builder.body(()).map_err(|err| RemoteError::InvalidRequest(format!("invalid request: {err}")))?;
                self.run(request, timeout)
            }
        };
        let mut response = response.map_err(|err| transport_error(err, timeout_ms))?;
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get("Retry-After").and_then(|value| value.to_str().ok()).map(str::to_string);
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|err| transport_error(err, timeout_ms))?;
        Ok(Reply { status, retry_after, body })
    }

    fn run<S: AsSendBody>(
        &self,
        request: Request<S>,
        timeout: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let request = self.agent.configure_request(request).timeout_global(Some(timeout)).build();
        self.agent.run(request)
    }

    /// The reply if its status is `expected`; a typed error for an error status; a protocol
    /// error for any other success status.
    fn expect(&self, reply: Reply, expected: u16) -> Result<Reply, RemoteError> {
        if reply.status == expected {
            return Ok(reply);
        }
        if (200..300).contains(&reply.status) {
            return Err(RemoteError::protocol(format!("expected HTTP {expected}, got {}", reply.status)));
        }
        Err(self.api_error(&reply))
    }

    /// The typed error of an error answer: `{"error":{code,message,fields}}`, the load balancer's
    /// `{"error":"text"}`, or any other body (code `error`). The API key never appears in it.
    fn api_error(&self, reply: &Reply) -> RemoteError {
        let data: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let redact = |text: &str| text.replace(&self.api_key, "[REDACTED]");
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(redact);
        let (code, message, fields) = match data.get("error") {
            Some(Value::String(message)) => (None, Some(redact(message)), Vec::new()),
            Some(Value::Object(error)) => {
                let fields = error
                    .get("fields")
                    .and_then(Value::as_array)
                    .map(|fields| {
                        fields
                            .iter()
                            .filter(|field| field.is_object())
                            .map(|field| FieldError {
                                field: text(field.get("field")).unwrap_or_default(),
                                message: text(field.get("message")).unwrap_or_default(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (text(error.get("code")), text(error.get("message")), fields)
            }
            _ => (None, None, Vec::new()),
        };
        RemoteError::Api {
            status: reply.status,
            code: code.unwrap_or_else(|| "error".into()),
            message: message.unwrap_or_else(|| format!("the runtime answered HTTP {}", reply.status)),
            fields,
            retry_after_seconds: reply.retry_after.as_deref().and_then(parse_retry_after),
        }
    }
}

impl Api for RemoteClient {
    fn check(&self, request: &CheckRequest) -> Result<CheckResponse> {
        Ok(RemoteClient::check(self, request)?)
    }

    fn create_policy(&self, body: &Value) -> Result<PolicyView> {
        Ok(RemoteClient::create_policy(self, body)?)
    }

    fn publish_policy(&self, body: &Value, idempotency_key: Option<&str>) -> Result<PolicyPublished> {
        Ok(RemoteClient::publish_policy(self, body, idempotency_key)?)
    }

    fn get_policy(&self, policy_id: &str) -> Result<PolicyView> {
        Ok(RemoteClient::get_policy(self, policy_id)?)
    }

    fn list_policies(&self, limit: usize, cursor: Option<&str>) -> Result<Page<PolicyView>> {
        Ok(RemoteClient::list_policies(self, limit, cursor)?)
    }

    fn archive_policy(&self, policy_id: &str, idempotency_key: Option<&str>) -> Result<()> {
        Ok(RemoteClient::archive_policy(self, policy_id, idempotency_key)?)
    }

    fn preview_policy(&self, definition: &Value, action: &str, context: &Value) -> Result<Value> {
        Ok(RemoteClient::preview_policy(self, definition, action, context)?)
    }

    fn create_authorization(&self, request: &AuthorizationCreate) -> Result<AuthorizationCreated> {
        Ok(RemoteClient::create_authorization(self, request)?)
    }

    fn revoke_authorization(
        &self,
        authorization_id: &str,
        revoked_by: Option<&str>,
        notes: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<AuthorizationRevoked> {
        Ok(RemoteClient::revoke_authorization(self, authorization_id, revoked_by, notes, idempotency_key)?)
    }

    fn list_authorizations(&self, limit: usize, cursor: Option<&str>) -> Result<Page<AuthorizationView>> {
        Ok(RemoteClient::list_authorizations(self, limit, cursor)?)
    }

    fn get_authorization(&self, authorization_id: &str) -> Result<AuthorizationView> {
        Ok(RemoteClient::get_authorization(self, authorization_id)?)
    }

    fn resolve_confirmation(
        &self,
        nonce: &str,
        approved: bool,
        ttl_seconds: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> Result<ConfirmationResolved> {
        Ok(RemoteClient::resolve_confirmation(self, nonce, approved, ttl_seconds, idempotency_key)?)
    }

    fn confirmation_status(&self, id_or_nonce: &str) -> Result<ConfirmationStatusView> {
        Ok(RemoteClient::confirmation_status(self, id_or_nonce)?)
    }

    fn resolve_escalation(
        &self,
        escalation_id: &str,
        resolution: Resolution,
        resolved_by: &str,
        note: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<EscalationResolved> {
        Ok(RemoteClient::resolve_escalation(self, escalation_id, resolution, resolved_by, note, idempotency_key)?)
    }

    fn escalation_status(&self, escalation_id: &str) -> Result<EscalationStatusView> {
        Ok(RemoteClient::escalation_status(self, escalation_id)?)
    }

    fn settle_budget(
        &self,
        check_receipt_id: &str,
        actual_cost_micros: i64,
        idempotency_key: Option<&str>,
    ) -> Result<BudgetSettlement> {
        Ok(RemoteClient::settle_budget(self, check_receipt_id, actual_cost_micros, idempotency_key)?)
    }

    fn receipt(&self, receipt_id: &str) -> Result<SignedReceipt> {
        Ok(RemoteClient::receipt(self, receipt_id)?)
    }

    fn key_document(&self) -> Result<KeyDocument> {
        Ok(RemoteClient::key_document(self)?)
    }

    fn engine_version(&self) -> Option<String> {
        RemoteClient::engine_version(self)
    }

    fn workspace_id(&self) -> Option<String> {
        self.options.workspace_id.clone()
    }

    fn readiness(&self) -> Result<bool> {
        Ok(RemoteClient::readiness(self)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// `scheme://authority[/prefix]` without a trailing `/`. Plain `http` only to a loopback host
/// unless `allow_insecure_http`.
fn validate_base_url(base_url: &str, allow_insecure_http: bool) -> Result<String, RemoteError> {
    let trimmed = base_url.trim().trim_end_matches('/');
    let invalid = |why: &str| RemoteError::InvalidRequest(format!("invalid base url `{trimmed}`: {why}"));
    let uri: Uri = trimmed.parse().map_err(|_| invalid("not a url"))?;
    let host = uri.host().filter(|host| !host.is_empty()).ok_or_else(|| invalid("it names no host"))?;
    if uri.query().is_some() || trimmed.contains('#') {
        return Err(invalid("it must not have a query or fragment"));
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if allow_insecure_http || is_loopback(host) => {}
        Some("http") => {
            return Err(invalid("plain http sends the API key in clear; use https or allow insecure http"));
        }
        _ => return Err(invalid("the scheme must be http or https")),
    }
    Ok(trimmed.to_string())
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A path segment, percent-encoded except for RFC 3986 unreserved characters.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn list_path(path: &str, limit: usize, cursor: Option<&str>) -> String {
    match cursor {
        Some(cursor) => format!("{path}?limit={limit}&cursor={}", segment(cursor)),
        None => format!("{path}?limit={limit}"),
    }
}

/// Integer or decimal seconds ≥ 0; an HTTP date or garbage is ignored.
/// Whether an error answer's body says `outcome_unknown`.
fn says_outcome_unknown(body: &[u8]) -> bool {
    let data: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    data.pointer("/error/code").and_then(Value::as_str) == Some(OUTCOME_UNKNOWN)
}

fn parse_retry_after(value: &str) -> Option<f64> {
    value.trim().parse::<f64>().ok().filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
}

/// A success body as `T`; anything else is a protocol error.
fn parse<T: DeserializeOwned>(reply: &Reply) -> Result<T, RemoteError> {
    serde_json::from_slice(&reply.body)
        .map_err(|err| RemoteError::protocol(format!("the HTTP {} body does not parse: {err}", reply.status)))
}

fn transport_error(err: ureq::Error, timeout_ms: u64) -> RemoteError {
    match err {
        ureq::Error::Timeout(_) => RemoteError::Timeout { timeout_ms },
        ureq::Error::Io(io) if matches!(io.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            RemoteError::Timeout { timeout_ms }
        }
        ureq::Error::BodyExceedsLimit(limit) => {
            RemoteError::protocol(format!("the answer is larger than {limit} bytes"))
        }
        ureq::Error::Http(err) => RemoteError::InvalidRequest(format!("invalid request: {err}")),
        ureq::Error::BadUri(uri) => RemoteError::InvalidRequest(format!("invalid url `{uri}`")),
        ureq::Error::TlsRequired => {
            RemoteError::InvalidRequest("this build has no TLS support: use an http:// base url".into())
        }
        other => RemoteError::Unreachable(other.to_string()),
    }
}

/// The wire contract of a check answer (docs/http-api.md; what the official client checks): the
/// requested authorization, an `engine_version` of `sha256:<64 hex>`, one result per requested
/// action and no other, each with a receipt and its decision's members. Results come back in
/// request order.
fn validate_check(response: CheckResponse, request: &CheckRequest) -> Result<CheckResponse, RemoteError> {
    if response.authorization_id != request.authorization_id {
        return Err(RemoteError::protocol(format!(
            "the check answer names authorization `{}`, not `{}`",
            response.authorization_id, request.authorization_id
        )));
    }
    let digest = response.engine_version.strip_prefix("sha256:").unwrap_or_default();
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(RemoteError::protocol(format!(
            "`engine_version` `{}` is not sha256:<hex>",
            response.engine_version
        )));
    }
    let mut answered: HashMap<String, ActionResult> = HashMap::new();
    for (action, result) in response.results.0 {
        if answered.contains_key(&action) {
            return Err(RemoteError::protocol(format!("the check answer repeats action `{action}`")));
        }
        answered.insert(action, result);
    }
    let requested: HashSet<&str> = request.actions.iter().map(String::as_str).collect();
    if answered.len() != requested.len() || !answered.keys().all(|action| requested.contains(action.as_str())) {
        let mut got: Vec<&str> = answered.keys().map(String::as_str).collect();
        got.sort_unstable();
        return Err(RemoteError::protocol(format!(
            "the check answer's actions [{}] are not the requested ones",
            got.join(", ")
        )));
    }
    let mut results = Vec::with_capacity(answered.len());
    for action in &request.actions {
        let Some(result) = answered.remove(action) else { continue };
        let missing = |member: &str| RemoteError::protocol(format!("the result for `{action}` lacks `{member}`"));
        if result.receipt.is_none() {
            return Err(missing("receipt"));
        }
        if result.is_fallback || result.fallback_mode.is_some() {
            return Err(RemoteError::protocol(format!("the runtime marked `{action}` as a fallback")));
        }
        match result.decision {
            Decision::Confirm => {
                for (member, value) in [
                    ("confirm_nonce", &result.confirm_nonce),
                    ("confirm_expires_at", &result.confirm_expires_at),
                    ("confirm_prompt_hint", &result.confirm_prompt_hint),
                ] {
                    if value.is_none() {
                        return Err(missing(member));
                    }
                }
            }
            Decision::Escalate if result.escalation_id.is_none() => return Err(missing("escalation_id")),
            _ => {}
        }
        results.push((action.clone(), result));
    }
    Ok(CheckResponse { results: OrderedResults(results), ..response })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(validate_base_url("http://127.0.0.1:8787/", false).ok().as_deref(), Some("http://127.0.0.1:8787"));
        assert!(validate_base_url("http://localhost:8787", false).is_ok());
        assert!(validate_base_url("http://[::1]:8787", false).is_ok());
        assert!(validate_base_url("https://allowly.example.com/prefix/", false).is_ok());
        assert!(validate_base_url("http://allowly.example.com", false).is_err());
        assert!(validate_base_url("http://allowly.example.com", true).is_ok());
        assert!(validate_base_url("ftp://127.0.0.1", true).is_err());
        assert!(validate_base_url("127.0.0.1:8787", true).is_err());
        assert!(validate_base_url("http://127.0.0.1/?x=1", true).is_err());
    }

    #[test]
    fn segments_and_retry_after() {
        assert_eq!(segment("auth_01-x.y~z"), "auth_01-x.y~z");
        assert_eq!(segment("a/b c?d"), "a%2Fb%20c%3Fd");
        assert_eq!(parse_retry_after(" 7 "), Some(7.0));
        assert_eq!(parse_retry_after("1.5"), Some(1.5));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
    }
}
