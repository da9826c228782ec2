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
//! let answer = client.check_or_fallback(&CheckRequest {
//!     authorization_id: "auth_...".into(),
//!     actions: vec!["email.send".into(), "search.web".into()],
//!     ..Default::default()
//! })?;
//! // If the runtime did not answer in time, `answer` is the local fallback: `email.send` denied
//! // (`fallback_closed_timeout`), `search.web` allowed (`fallback_open_timeout`), no receipts.
//! # Ok::<(), allowly_core::Error>(())
//! ```
//!
//! The client is lazy: [`connect`] validates its arguments and opens no connection; the first call
//! does, and later calls reuse it (HTTP keep-alive, one connection pool per client). Every
//! operation of the catalog ([`crate::ops`]) goes through one function, [`RemoteClient::send_operation`],
//! which reads the operation's route; the typed methods are those of [`Api`].
//!
//! `check` never raises for an unavailable runtime: the whole call (connect, send, receive) is
//! bounded by `check_timeout_ms`, and on timeout, transport failure, HTTP 408 or 5xx it returns,
//! per action, `deny` (or `allow` for actions mapped to [`FallbackMode::FailOpen`]) with reason
//! `fallback_{open|closed}_{timeout|unreachable}`, `is_fallback`, no receipt and `engine_version`
//! `sdk_fallback`. Any other 4xx (429 included) is a [`Error::Api`]; an answer that breaks
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
use serde_json::Value;
use ureq::http::{Method, Request as HttpRequest, Uri};
use ureq::{Agent, AsSendBody};

use crate::api::Api;
use crate::error::{Error, FieldError, Result};
use crate::ids;
use crate::model::indexmap_lite::OrderedResults;
use crate::model::{ActionResult, CheckRequest, CheckResponse};
use crate::ops::{self, percent_encode, Access, Answer, Body, Idempotency, Request};
use crate::policy::Decision;
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
/// Prefix of the idempotency key made up for an operation whose route requires one.
const MADE_UP_KEY_PREFIX: &str = "idem_";
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
pub fn connect(base_url: &str, api_key: &str, options: RemoteOptions) -> Result<RemoteClient> {
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
    pub fn connect(base_url: &str, api_key: &str, options: RemoteOptions) -> Result<RemoteClient> {
        let base_url = validate_base_url(base_url, options.allow_insecure_http)?;
        if api_key.is_empty() || !api_key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid_request("the API key must be non-empty printable ASCII".into()));
        }
        if options.check_timeout_ms == 0 {
            return Err(invalid_request("`check_timeout_ms` must be positive".into()));
        }
        if options.request_timeout_ms == 0 {
            return Err(invalid_request("`request_timeout_ms` must be positive".into()));
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
    // Operations

    /// `POST /v1/check`, bounded by `check_timeout_ms`, with the local fallback of docs/decisions.md.
    pub fn check_or_fallback(&self, request: &CheckRequest) -> Result<CheckResponse> {
        // The key travels as the header; the other members are the body.
        let body = serde_json::to_value(CheckRequest { idempotency_key: None, ..request.clone() })
            .map_err(|err| invalid_request(format!("the check cannot be encoded: {err}")))?;
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
                generated = ids::new_id(AUTOMATIC_KEY_PREFIX, Timestamp::now())
                    .map_err(|err| invalid_request(format!("no randomness for an idempotency key: {err}")))?;
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
                Err(Error::Unreachable { .. }) => in_doubt,
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
                Err(Error::Timeout { .. }) => return Ok(fallback(FallbackFailure::Timeout)),
                Err(Error::Unreachable { .. }) => return Ok(fallback(FallbackFailure::Unreachable)),
                Err(err) => return Err(err),
            }
        };
        let reply = match self.expect(reply, 200) {
            Ok(reply) => reply,
            Err(err @ Error::Api { status, .. }) if err.code() != IDENTITY_UNAVAILABLE => {
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

    /// Any other operation of the catalog: its fields go where its route says (path, query or
    /// body, `Idempotency-Key`), and its answer must have the route's status and be about what was
    /// asked (see [`crate::ops::Operation::check_answer`]).
    pub fn send_operation(&self, request: &Request) -> Result<Answer> {
        let route = request.route();
        let Value::Object(mut fields) = request.to_value()? else {
            return Err(Error::internal(format!("`{}` does not encode as an object", route.operation)));
        };
        fields.remove("idempotency_key");
        let made_up;
        let mut key = request.idempotency_key();
        if key.is_none() && route.idempotency == Idempotency::Required {
            made_up = ids::new_id(MADE_UP_KEY_PREFIX, Timestamp::now())?;
            key = Some(&made_up);
        }
        let id = match route.path_field {
            Some(field) => match fields.remove(field) {
                Some(Value::String(id)) => Some(id),
                _ => return Err(Error::invalid(field, "is required")),
            },
            None => None,
        };
        let mut path = route.path_with(id.as_deref());
        let body = match route.body {
            Body::Query => {
                path.push_str(&query_string(&fields));
                None
            }
            Body::None => None,
            Body::Optional if fields.is_empty() => None,
            Body::Optional | Body::Json => Some(Value::Object(fields)),
        };
        let auth = if route.access == Access::Public { Auth::None } else { Auth::Bearer };
        let method = match route.method {
            ops::Method::Get => Method::GET,
            ops::Method::Post => Method::POST,
            ops::Method::Delete => Method::DELETE,
        };
        let reply = self.send(method, &path, body.as_ref(), key, auth, self.request_timeout)?;
        let reply = self.expect(reply, route.status)?;
        let value = if route.status == 204 { Value::Null } else { parse(&reply)? };
        let answer = request
            .decode_answer(value)
            .map_err(|err| Error::Protocol(format!("the HTTP {} body does not parse: {err}", reply.status)))?;
        request.check_answer(&answer).map_err(Error::Protocol)?;
        Ok(answer)
    }

    /// `GET /readyz`: `true` for `{"status":"ready"}`, `false` for a 503 (up but not ready);
    /// other failures are errors.
    pub fn readiness(&self) -> Result<bool> {
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

    /// Sends one request and reads the whole answer within `timeout`, whatever its status.
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        auth: Auth,
        timeout: Duration,
    ) -> Result<Reply> {
        let uri = format!("{}{path}", self.base_url);
        let mut builder = HttpRequest::builder().method(method).uri(uri).header("Accept", "application/json");
        if auth == Auth::Bearer {
            builder = builder.header("Authorization", &self.authorization);
        }
        if let Some(key) = idempotency_key {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                return Err(invalid_request("an idempotency key must be printable ASCII".into()));
            }
            builder = builder.header("Idempotency-Key", key);
        }
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let response = match body {
            Some(body) => {
                let bytes = serde_json::to_vec(body)
                    .map_err(|err| invalid_request(format!("the request cannot be encoded: {err}")))?;
                let request = builder
                    .header("Content-Type", "application/json")
                    .body(bytes)
                    .map_err(|err| invalid_request(format!("invalid request: {err}")))?;
                self.run(request, timeout)
            }
            None => {
                let request = builder.body(()).map_err(|err| invalid_request(format!("invalid request: {err}")))?;
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
        request: HttpRequest<S>,
        timeout: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let request = self.agent.configure_request(request).timeout_global(Some(timeout)).build();
        self.agent.run(request)
    }

    /// The reply if its status is `expected`; a typed error for an error status; a protocol
    /// error for any other success status.
    fn expect(&self, reply: Reply, expected: u16) -> Result<Reply> {
        if reply.status == expected {
            return Ok(reply);
        }
        if (200..300).contains(&reply.status) {
            return Err(Error::Protocol(format!("expected HTTP {expected}, got {}", reply.status)));
        }
        Err(self.api_error(&reply))
    }

    /// The typed error of an error answer: `{"error":{code,message,fields}}`, the load balancer's
    /// `{"error":"text"}`, or any other body (code `error`). The API key never appears in it.
    fn api_error(&self, reply: &Reply) -> Error {
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
        Error::Api {
            status: reply.status,
            code: code.unwrap_or_else(|| "error".into()),
            message: message.unwrap_or_else(|| format!("the runtime answered HTTP {}", reply.status)),
            fields,
            retry_after_seconds: reply.retry_after.as_deref().and_then(parse_retry_after),
        }
    }
}

impl Api for RemoteClient {
    fn call(&self, request: Request) -> Result<Answer> {
        match request {
            Request::Check(check) => Ok(Answer::Check(self.check_or_fallback(&check)?)),
            other => self.send_operation(&other),
        }
    }

    fn check_or_fallback(&self, request: &CheckRequest) -> Result<CheckResponse> {
        RemoteClient::check_or_fallback(self, request)
    }

    fn engine_version(&self) -> Option<String> {
        RemoteClient::engine_version(self)
    }

    fn workspace_id(&self) -> Option<String> {
        self.options.workspace_id.clone()
    }

    fn readiness(&self) -> Result<bool> {
        RemoteClient::readiness(self)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A setting or argument the client cannot use (nothing was sent).
fn invalid_request(message: String) -> Error {
    Error::InvalidRequest { message, fields: Vec::new() }
}

/// `scheme://authority[/prefix]` without a trailing `/`. Plain `http` only to a loopback host
/// unless `allow_insecure_http`.
fn validate_base_url(base_url: &str, allow_insecure_http: bool) -> Result<String> {
    let trimmed = base_url.trim().trim_end_matches('/');
    let invalid = |why: &str| invalid_request(format!("invalid base url `{trimmed}`: {why}"));
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

/// `?name=value&...` of the fields of a `GET` operation (none: the empty string).
fn query_string(fields: &serde_json::Map<String, Value>) -> String {
    let pairs: Vec<String> = fields
        .iter()
        .filter_map(|(name, value)| {
            let text = match value {
                Value::Null => return None,
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            Some(format!("{}={}", percent_encode(name), percent_encode(&text)))
        })
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
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
fn parse<T: DeserializeOwned>(reply: &Reply) -> Result<T> {
    serde_json::from_slice(&reply.body)
        .map_err(|err| Error::Protocol(format!("the HTTP {} body does not parse: {err}", reply.status)))
}

fn transport_error(err: ureq::Error, timeout_ms: u64) -> Error {
    match err {
        ureq::Error::Timeout(_) => Error::Timeout { timeout_ms },
        ureq::Error::Io(io) if matches!(io.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            Error::Timeout { timeout_ms }
        }
        ureq::Error::BodyExceedsLimit(limit) => Error::Protocol(format!("the answer is larger than {limit} bytes")),
        ureq::Error::Http(err) => invalid_request(format!("invalid request: {err}")),
        ureq::Error::BadUri(uri) => invalid_request(format!("invalid url `{uri}`")),
        ureq::Error::TlsRequired => invalid_request("this build has no TLS support: use an http:// base url".into()),
        other => Error::unreachable(other.to_string()).caused_by(other),
    }
}

/// The wire contract of a check answer (docs/http-api.md; what the official client checks): the
/// requested authorization, an `engine_version` of `sha256:<64 hex>`, one result per requested
/// action and no other, each with a receipt and its decision's members. Results come back in
/// request order.
fn validate_check(response: CheckResponse, request: &CheckRequest) -> Result<CheckResponse> {
    if response.authorization_id != request.authorization_id {
        return Err(Error::Protocol(format!(
            "the check answer names authorization `{}`, not `{}`",
            response.authorization_id, request.authorization_id
        )));
    }
    let digest = response.engine_version.strip_prefix("sha256:").unwrap_or_default();
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Error::Protocol(format!("`engine_version` `{}` is not sha256:<hex>", response.engine_version)));
    }
    let mut answered: HashMap<String, ActionResult> = HashMap::new();
    for (action, result) in response.results.0 {
        if answered.contains_key(&action) {
            return Err(Error::Protocol(format!("the check answer repeats action `{action}`")));
        }
        answered.insert(action, result);
    }
    let requested: HashSet<&str> = request.actions.iter().map(String::as_str).collect();
    if answered.len() != requested.len() || !answered.keys().all(|action| requested.contains(action.as_str())) {
        let mut got: Vec<&str> = answered.keys().map(String::as_str).collect();
        got.sort_unstable();
        return Err(Error::Protocol(format!(
            "the check answer's actions [{}] are not the requested ones",
            got.join(", ")
        )));
    }
    let mut results = Vec::with_capacity(answered.len());
    for action in &request.actions {
        let Some(result) = answered.remove(action) else { continue };
        let missing = |member: &str| Error::Protocol(format!("the result for `{action}` lacks `{member}`"));
        if result.receipt.is_none() {
            return Err(missing("receipt"));
        }
        if result.is_fallback || result.fallback_mode.is_some() {
            return Err(Error::Protocol(format!("the runtime marked `{action}` as a fallback")));
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
        assert_eq!(percent_encode("auth_01-x.y~z"), "auth_01-x.y~z");
        assert_eq!(percent_encode("a/b c?d"), "a%2Fb%20c%3Fd");
        assert_eq!(parse_retry_after(" 7 "), Some(7.0));
        assert_eq!(parse_retry_after("1.5"), Some(1.5));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
    }
}
