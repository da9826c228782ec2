//! Keys: the public key document receipts verify against, each key's fingerprint (with copy), and
//! `Rotate`: the active signing key retires and a new one starts; earlier receipts keep verifying.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::layout::{error_notice, page, respond, when};
use super::session::same_token;
use super::{see_other, signed_in, to_sign_in};
use crate::api::{blocking, App};
use crate::error::ApiError;

pub async fn show(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let document = blocking(&app, &session.workspace_id, move || Ok(engine.key_document()?)).await;
    let body = match document {
        Ok(document) => {
            let pretty = serde_json::to_string_pretty(&document).unwrap_or_default();
            html! {
                p { "Receipts are signed with Ed25519. Anyone can verify them offline with this document and the fingerprints they trust." }
                div class="scroll" {
                    table class="cards" {
                        caption class="visually-hidden" { "Signing keys" }
                        thead { tr { th scope="col" { "Key" } th scope="col" { "Fingerprint" } th scope="col" { "Active from" } th scope="col" { "Active until" } th scope="col" { "" } } }
                        tbody {
                            @for (index, key) in document.keys.iter().enumerate() {
                                tr {
                                    td { code { (key.key_id) } }
                                    td class="hash" { code id={ "fingerprint-" (index) } { (key.public_key_fingerprint) } }
                                    td data-label="Active from" { (when(&key.active_from)) }
                                    td data-label="Active until" { @if let Some(until) = &key.active_until { (when(until)) } @else { "active" } }
                                    td { button type="button" class="secondary" data-copy={ "fingerprint-" (index) } aria-label={ "Copy the fingerprint of " (key.key_id) } { "Copy" } }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="rotate" {
                    h2 id="rotate" { "Rotate the signing key" }
                    p { "The active key stops signing now and a new key starts. Receipts signed before stay valid: the old key stays in the document with the window it signed in." }
                    form method="post" action="/console/keys/rotate" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button type="submit" { "Rotate" }
                    }
                }
                section aria-labelledby="document" {
                    h2 id="document" { "Key document" }
                    p class="muted" { "Also served without a key at " code { "GET /v1/workspaces/" (session.workspace_id) "/keys" } "." }
                    div class="actions" { button type="button" class="secondary" data-copy="key-document" { "Copy JSON" } }
                    pre class="json" id="key-document" tabindex="0" { (pretty) }
                }
            }
        }
        Err(err) => error_notice(&err.message),
    };
    respond(StatusCode::OK, page("Keys", "/console/keys", Some(&session), body))
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    csrf: String,
}

pub async fn rotate(State(app): State<Arc<App>>, headers: HeaderMap, Form(form): Form<RotateForm>) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    if !same_token(&session.csrf, &form.csrf) {
        let message = "This form did not come from this console, or your session changed. No key was rotated.";
        return respond(StatusCode::FORBIDDEN, page("Keys", "/console/keys", Some(&session), error_notice(message)));
    }
    let rotated =
        blocking(&app, &session.workspace_id, move || engine.rotate_signing_key().map_err(ApiError::from)).await;
    match rotated {
        Ok(_) => see_other("/console/keys", &[]),
        Err(err) => respond(err.status, page("Keys", "/console/keys", Some(&session), error_notice(&err.message))),
    }
}
