//! Signing in with a setup key, signing out, and the landing page.

use std::net::IpAddr;
use std::sync::Arc;

use allowly_core::ops::Access;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;

use super::layout::{error_notice, page, respond};
use super::session::{cookie, random_token, same_token, set_cookie, COOKIE_NAME, LIFETIME, SIGN_IN_COOKIE};
use super::{over_tls, see_other, to_sign_in};
use crate::api::{authenticate, blocking, App};
use crate::connections::ClientAddr;

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    setup_key: String,
    #[serde(default)]
    csrf: String,
}

/// The sign-in form; its CSRF token travels in a cookie of its own until there is a session.
pub async fn form(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    render_form(&app, &headers, StatusCode::OK, None)
}

fn render_form(app: &App, headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    let Some(csrf) = random_token() else {
        return respond(StatusCode::SERVICE_UNAVAILABLE, page("Sign in", "", None, error_notice("no randomness")));
    };
    let body = html! {
        @if let Some(error) = error { (error_notice(error)) }
        p { "Sign in with a setup key of this workspace. Runtime keys cannot sign in: they belong to apps." }
        form method="post" action="/console/sign-in" class="stack narrow" {
            input type="hidden" name="csrf" value=(csrf);
            label for="setup_key" { "Setup key" }
            input type="password" id="setup_key" name="setup_key" autocomplete="off" required
                spellcheck="false" placeholder="allowly.setup.…";
            button type="submit" { "Sign in" }
        }
        p class="muted" { "Verifying a receipt needs no key: " a href="/console/verify" { "Verify" } "." }
    };
    let mut response = respond(status, page("Sign in", "", None, body));
    let cookie = set_cookie(SIGN_IN_COOKIE, &csrf, over_tls(app, headers), Some(std::time::Duration::from_secs(3600)));
    if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
        response.headers_mut().append(axum::http::header::SET_COOKIE, value);
    }
    response
}

pub async fn submit(
    State(app): State<Arc<App>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if !same_token(&expected, &form.csrf) {
        let message = "This form has expired or did not come from this console. Sign in again.";
        return render_form(&app, &headers, StatusCode::FORBIDDEN, Some(message));
    }
    let ip: Option<IpAddr> = client.map(|Extension(ClientAddr(addr))| addr.ip());
    if let Some(ip) = ip {
        if !app.limits.may_try_to_authenticate(ip) {
            let message = "Too many failed sign-ins from this address. Wait a minute, then try again.";
            return render_form(&app, &headers, StatusCode::TOO_MANY_REQUESTS, Some(message));
        }
    }
    let key = form.setup_key.trim().to_string();
    let backend = app.backend.clone();
    let queue = allowly_core::engine::ApiKeyParts::parse(&key).map_or_else(String::new, |p| p.workspace_id.into());
    let caller = blocking(&app, &queue, move || authenticate(backend.as_ref(), &key, Access::Setup)).await;
    match caller {
        Ok(caller) => {
            let workspace_id = caller.engine.workspace_id().to_string();
            let Some((token, _)) = app.sessions.open(&workspace_id, &caller.key_id) else {
                return render_form(
                    &app,
                    &headers,
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some("Cannot open a session now."),
                );
            };
            let secure = over_tls(&app, &headers);
            let cookies = [
                set_cookie(COOKIE_NAME, &token, secure, Some(LIFETIME)),
                set_cookie(SIGN_IN_COOKIE, "", secure, Some(std::time::Duration::ZERO)),
            ];
            see_other("/console", &cookies)
        }
        Err(err) => {
            if let Some(ip) = ip {
                app.limits.failed_to_authenticate(ip);
            }
            let message = if err.status == StatusCode::FORBIDDEN {
                "That is a runtime key. The console takes a setup key: runtime keys are for apps that check actions."
            } else {
                "That key is not a key of this server, or it was revoked."
            };
            render_form(&app, &headers, StatusCode::UNAUTHORIZED, Some(message))
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(State(app): State<Arc<App>>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    match app.sessions.find(&headers) {
        Some(session) if same_token(&session.csrf, &form.csrf) => {
            app.sessions.close(&headers);
            let cookie = set_cookie(COOKIE_NAME, "", over_tls(&app, &headers), Some(std::time::Duration::ZERO));
            see_other("/console/sign-in", &[cookie])
        }
        Some(session) => respond(
            StatusCode::FORBIDDEN,
            page("Sign out", "", Some(&session), error_notice("This form did not come from this console.")),
        ),
        None => to_sign_in(),
    }
}
