//! Admission: whether a request may be served, decided from its head before its body is read.
//!
//! Every route that takes a key runs behind [`guard`]: it authenticates the bearer key (on the
//! workspace's engine queue), so a client without a valid key never makes the server read, or wait
//! for, a body; a client address whose failed authentications exceed their rate is answered `429
//! rate_limited` without even a key lookup; and an authenticated key past its request (or write)
//! rate is answered `429` too. Each refusal is logged with the client address and the key id the
//! request named (never its secret). The authenticated caller is handed to the route's handler
//! (the `Caller` extractor), which does not authenticate again. It also labels every matched route's answer
//! with the route's template, for logs and metrics.

use std::net::IpAddr;
use std::sync::Arc;

use allowly_core::engine::ApiKeyParts;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use allowly_core::ops::Access;

use crate::api::{access_of, authenticate_key, bearer, blocking, caller_for, route_label, App, Caller, RouteLabel};
use crate::connections::ClientAddr;
use crate::error::ApiError;
use crate::limits::{retry_after_seconds, Limiter, Rate};

tokio::task_local! {
    /// The caller [`guard`] admitted, for the handler of the same request.
    static ADMITTED: Caller;
}

/// The caller admitted for the request being handled, if the guard ran for it.
pub fn admitted() -> Option<Caller> {
    ADMITTED.try_with(Caller::clone).ok()
}

/// The rate limits of one server.
pub struct Limits {
    auth_failures: Limiter<IpAddr>,
    requests: Limiter<String>,
    writes: Limiter<String>,
}

impl Limits {
    pub fn new(auth_failures_per_address: Rate, requests_per_key: Rate, writes_per_key: Rate) -> Limits {
        Limits {
            auth_failures: Limiter::new(auth_failures_per_address),
            requests: Limiter::new(requests_per_key),
            writes: Limiter::new(writes_per_key),
        }
    }
}

impl Limits {
    /// Whether `ip` may try to authenticate now (its failures are under their rate); the console's
    /// sign-in shares the API's budget of failures per address.
    pub fn may_try_to_authenticate(&self, ip: IpAddr) -> bool {
        self.auth_failures.has_token(&ip).is_ok()
    }

    pub fn failed_to_authenticate(&self, ip: IpAddr) {
        let _ = self.auth_failures.take(&ip);
    }
}

pub async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let template = request.extensions().get::<MatchedPath>().map_or("unmatched", |m| route_label(m.as_str()));
    let access = access_of(request.method(), template);
    let mut response = admitted_response(&app, access, request, next).await;
    // Logs and metrics name the route the router matched, whatever the handler called it.
    response.extensions_mut().insert(RouteLabel(template));
    response
}

async fn admitted_response(app: &Arc<App>, access: Option<Access>, request: Request, next: Next) -> Response {
    let Some(access) = access else { return next.run(request).await };
    let client = request.extensions().get::<ClientAddr>().map(|c| c.0.ip());
    let writes = matches!(*request.method(), Method::POST | Method::DELETE | Method::PUT | Method::PATCH);
    match admit(app, request.headers(), access, client, writes).await {
        Ok(caller) => ADMITTED.scope(caller, next.run(request)).await,
        Err(err) => {
            let mut response = err.into_response();
            // The body was never read, so the connection cannot carry another request: say so,
            // and a client opens a new one instead of writing into a closed one.
            if has_body(request.headers()) {
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }
}

/// Whether a request announces a body (`Content-Length` above 0, or a `Transfer-Encoding`).
fn has_body(headers: &HeaderMap) -> bool {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    headers.contains_key(header::TRANSFER_ENCODING) || length.is_some_and(|n| n > 0)
}

async fn admit(
    app: &Arc<App>,
    headers: &HeaderMap,
    access: Access,
    client: Option<IpAddr>,
    writes: bool,
) -> Result<Caller, ApiError> {
    let presented = bearer(headers);
    let named_key = presented.as_deref().ok().and_then(ApiKeyParts::parse).map(|p| p.key_id.to_string());
    let refuse = |err: ApiError, why: &str| {
        let key_id = named_key.as_deref().unwrap_or("-");
        let address = client.map_or_else(|| "-".to_string(), |ip| ip.to_string());
        if err.status == StatusCode::TOO_MANY_REQUESTS {
            tracing::info!(target: "allowly::http", client = %address, key_id, reason = why, "request refused");
        } else {
            tracing::warn!(target: "allowly::http", client = %address, key_id, reason = why, "request refused");
        }
        err
    };
    if let Some(ip) = client {
        if let Err(wait) = app.limits.auth_failures.has_token(&ip) {
            let message = "too many failed authentications from this address; retry later";
            return Err(refuse(rate_limited(message, wait), "failed authentications over the limit"));
        }
    }
    let failed = |err: ApiError| {
        if let Some(ip) = client {
            let _ = app.limits.auth_failures.take(&ip);
        }
        err
    };
    let presented = presented.map_err(|err| refuse(failed(err), "no valid bearer key"))?;
    let Some(parts) = ApiKeyParts::parse(&presented) else {
        let err = ApiError::unauthorized("the API key is invalid or revoked");
        return Err(refuse(failed(err), "not an API key"));
    };
    let workspace_id = parts.workspace_id.to_string();
    let known = match app.key_cache.get(&presented) {
        Some(key) => Ok(key),
        None => {
            let backend = app.backend.clone();
            let to_check = presented.clone();
            let known = blocking(app, &workspace_id, move || authenticate_key(backend.as_ref(), &to_check)).await;
            if let Ok(key) = &known {
                app.key_cache.remember(&presented, key.clone());
            }
            known
        }
    };
    let caller = match known.and_then(|key| caller_for(key, access)) {
        Ok(caller) => caller,
        Err(err) if err.status == StatusCode::UNAUTHORIZED => {
            return Err(refuse(failed(err), "unknown or revoked key"))
        }
        Err(err) if err.status == StatusCode::FORBIDDEN => return Err(refuse(err, "a runtime key on a setup route")),
        Err(err) => return Err(err),
    };
    let bucket = format!("{workspace_id}/{}", caller.key_id);
    if let Err(wait) = app.limits.requests.take(&bucket) {
        return Err(refuse(
            rate_limited("this API key is over its request rate; retry later", wait),
            "key request rate",
        ));
    }
    if writes {
        if let Err(wait) = app.limits.writes.take(&bucket) {
            return Err(refuse(
                rate_limited("this API key is over its write rate; retry later", wait),
                "key write rate",
            ));
        }
    }
    Ok(caller)
}

fn rate_limited(message: &str, wait: std::time::Duration) -> ApiError {
    let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
    err.retry_after = Some(u32::try_from(retry_after_seconds(wait)).unwrap_or(u32::MAX));
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_take_the_keys_their_operations_take() {
        assert_eq!(access_of(&Method::GET, "/healthz"), None);
        assert_eq!(access_of(&Method::GET, "/v1/workspaces/{id}/keys"), None);
        assert_eq!(access_of(&Method::GET, "/metrics"), Some(Access::Setup));
        assert_eq!(access_of(&Method::DELETE, "/v1/policies/{id}"), Some(Access::Setup));
        assert_eq!(access_of(&Method::POST, "/v1/setup/keys/rotate"), Some(Access::Setup));
        assert_eq!(access_of(&Method::POST, "/v1/check"), Some(Access::Runtime));
        assert_eq!(access_of(&Method::DELETE, "/v1/authorizations/{id}"), Some(Access::Runtime));
        // A method the path does not answer still needs the path's key before its 405.
        assert_eq!(access_of(&Method::PUT, "/v1/policies"), Some(Access::Setup));
    }
}
