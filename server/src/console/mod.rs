//! The web console under `/console`, served by `allowly serve` on the API's port: pages rendered on
//! the server (maud: compile-time checked templates that escape every value), a little JavaScript
//! that only adds conveniences (copy buttons, reading a file into a field), and assets embedded in
//! the binary. Signing in takes a setup key ([`session`]); Verify needs no key. Every screen runs
//! the same engine operations as the HTTP API (`allowly_core::ops`), so what the console shows and
//! does is what the API would.

mod approvals;
mod assets;
mod authorizations;
mod keys;
mod layout;
mod overview;
mod receipts;
mod scopes;
mod session;
mod sign_in;
mod verify;

use std::sync::Arc;

use allowly_core::Allowly;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::api::{blocking, App, RouteLabel};
use crate::error::ApiError;
use session::Session;
pub use session::Sessions;

/// The console's routes, to be merged into the server's router (outside the API key guard).
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/console", get(overview::show))
        .route("/console/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route(
            "/console/verify",
            get(verify::form).post(verify::submit).layer(DefaultBodyLimit::max(verify::MAX_FORM_BYTES)),
        )
        .route("/console/scopes", get(scopes::list))
        .route("/console/scopes/new", get(scopes::new_form).post(scopes::create))
        .route("/console/scopes/{policy_id}", get(scopes::show).post(scopes::publish))
        .route("/console/receipts", get(receipts::list))
        .route("/console/receipts/export", get(receipts::export))
        .route("/console/receipts/evidence", get(receipts::evidence))
        .route("/console/receipts/{id}", get(receipts::show))
        .route("/console/receipts/{id}/download", get(receipts::download))
        .route("/console/approvals", get(approvals::list))
        .route("/console/approvals/confirmations/{id}", post(approvals::resolve_confirmation))
        .route("/console/approvals/escalations/{id}", post(approvals::resolve_escalation))
        .route("/console/authorizations", get(authorizations::list))
        .route("/console/authorizations/{id}", get(authorizations::show))
        .route("/console/authorizations/{id}/revoke", get(authorizations::confirm_revoke).post(authorizations::revoke))
        .route("/console/keys", get(keys::show))
        .route("/console/keys/rotate", post(keys::rotate))
        .route("/console/assets/{name}", get(assets::serve))
        .layer(axum::middleware::map_response(label))
}

/// Logs and metrics count every console answer under one label (its paths carry ids).
async fn label(mut response: Response) -> Response {
    response.extensions_mut().insert(RouteLabel("/console"));
    response
}

/// The signed-in session of a request, if its key is still a live setup key.
async fn signed_in(app: &Arc<App>, headers: &HeaderMap) -> Option<(Session, Arc<Allowly>)> {
    let session = app.sessions.find(headers)?;
    let backend = app.backend.clone();
    let (workspace_id, key_id) = (session.workspace_id.clone(), session.key_id.clone());
    let engine = blocking(app, &session.workspace_id, move || {
        let engine = backend.workspace(&workspace_id)?.ok_or_else(|| ApiError::unauthorized("no such workspace"))?;
        let live = engine.list_api_keys()?.iter().any(|key| key.key_id == key_id && key.revoked_at.is_none());
        Ok(live.then_some(engine))
    })
    .await
    .ok()
    .flatten();
    match engine {
        Some(engine) => Some((session, engine)),
        None => {
            app.sessions.close(headers);
            None
        }
    }
}

/// Where a page that needs a session sends a browser without one.
fn to_sign_in() -> Response {
    Redirect::to("/console/sign-in").into_response()
}

/// Whether the server is reached over https (then cookies are `Secure`): its public URL says so,
/// or the proxy in front of it does.
fn over_tls(app: &App, headers: &HeaderMap) -> bool {
    app.public_url.starts_with("https://")
        || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
}

/// A redirect after a form (303, so the browser follows with a GET), setting `cookies`.
fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = Redirect::to(location).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}
