//! The page shell every console screen shares: head, navigation, main landmark, footer; and the
//! headers every console answer carries (a strict Content-Security-Policy: no inline script or
//! style, nothing from elsewhere; no framing; nothing cached).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::session::Session;

/// The screens in the navigation, in order: (label, path). A screen is listed once it exists.
pub const SCREENS: [(&str, &str); 7] = [
    ("Overview", "/console"),
    ("Verify", "/console/verify"),
    ("Scopes", "/console/scopes"),
    ("Receipts", "/console/receipts"),
    ("Approvals", "/console/approvals"),
    ("Authorizations", "/console/authorizations"),
    ("Keys", "/console/keys"),
];

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A whole page: `title` names it in the tab and the heading; `current` is its navigation path.
pub fn page(title: &str, current: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Allowly" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/console" { "Allowly" }
                    nav aria-label="Console" {
                        ul {
                            @for (label, path) in SCREENS {
                                li {
                                    @if path == current {
                                        a href=(path) aria-current="page" { (label) }
                                    } @else {
                                        a href=(path) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div class="who" {
                        @if let Some(session) = session {
                            span class="muted" { "Signed in with " code { (session.key_id) } }
                            form method="post" action="/console/sign-out" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button type="submit" class="link" { "Sign out" }
                            }
                        } @else {
                            a href="/console/sign-in" { "Sign in" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An HTML answer with the console's security headers.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    secure(&mut response, "text/html; charset=utf-8");
    response
}

/// The console's headers on any answer.
pub fn secure(response: &mut Response, content_type: &'static str) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// An error above a form, announced to screen readers.
pub fn error_notice(text: &str) -> Markup {
    html! { p class="notice error" role="alert" { (text) } }
}
