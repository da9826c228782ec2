//! Verify: paste a receipt, a check response or an export (or upload a file) and see
//! whether it verifies. No sign-in: verification needs no secret. The key document and trusted
//! fingerprints default to this server's; both can be replaced to verify another workspace's.

use std::sync::Arc;

use allowly_core::ops::{Answer, Request, VerifyReceipts};
use allowly_core::receipt::{pasted::ReceiptVerdict, VerifyReport};
use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Request as HttpRequest, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{error_notice, page, respond};
use super::session::Session;
use crate::api::{blocking, App};
use crate::error::ApiError;

#[derive(Default, Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    receipt: String,
    #[serde(default)]
    key_document: String,
    #[serde(default)]
    trusted_key_fingerprints: String,
    #[serde(default)]
    checkpoint_evidence: String,
}

pub async fn form(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let session = app.sessions.find(&headers);
    match own_keys(&app).await {
        Ok((document, fingerprints)) => {
            let form =
                VerifyForm { key_document: document, trusted_key_fingerprints: fingerprints, ..Default::default() };
            respond(StatusCode::OK, render(session.as_ref(), &form, None))
        }
        Err(err) => {
            respond(err.status, page("Verify", "/console/verify", session.as_ref(), error_notice(&err.message)))
        }
    }
}

/// The largest form Verify reads: an export of thousands of receipts; larger ones verify offline
/// with `allowly verify`.
pub const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

/// Verifies what the form sent: urlencoded fields, or `multipart/form-data` when a file is chosen
/// (then the file, when not empty, stands for the `Receipt` field; this works without JavaScript).
pub async fn submit(State(app): State<Arc<App>>, request: HttpRequest) -> Response {
    let headers = request.headers().clone();
    let session = app.sessions.find(&headers);
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("multipart/form-data"));
    let read = if multipart {
        match Multipart::from_request(request, &app).await {
            Ok(parts) => read_parts(parts).await,
            Err(err) => Err(ApiError::invalid("receipt", format!("the form could not be read: {}", err.body_text()))),
        }
    } else {
        Form::<VerifyForm>::from_request(request, &app)
            .await
            .map(|Form(form)| form)
            .map_err(|err| ApiError::invalid("receipt", format!("the form could not be read: {}", err.body_text())))
    };
    let form = match read {
        Ok(form) => form,
        Err(err) => return respond(err.status, render(session.as_ref(), &VerifyForm::default(), Some(&Err(err)))),
    };
    let outcome = verify(&app, &form).await;
    let status = match &outcome {
        Ok(_) => StatusCode::OK,
        Err(err) => err.status,
    };
    respond(status, render(session.as_ref(), &form, Some(&outcome)))
}

/// The form's fields out of its parts; a chosen file (`receipt_file`) replaces the pasted text.
async fn read_parts(mut parts: Multipart) -> Result<VerifyForm, ApiError> {
    let unreadable =
        |err: MultipartError| ApiError::invalid("receipt", format!("the form could not be read: {}", err.body_text()));
    let mut form = VerifyForm::default();
    let mut file: Option<String> = None;
    while let Some(part) = parts.next_field().await.map_err(unreadable)? {
        let name = part.name().unwrap_or_default().to_string();
        let bytes = part.bytes().await.map_err(unreadable)?;
        let text = || String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::invalid(&name, "is not UTF-8 text"));
        match name.as_str() {
            "receipt" => form.receipt = text()?,
            "receipt_file" if !bytes.is_empty() => file = Some(text()?),
            "key_document" => form.key_document = text()?,
            "trusted_key_fingerprints" => form.trusted_key_fingerprints = text()?,
            "checkpoint_evidence" => form.checkpoint_evidence = text()?,
            _ => {}
        }
    }
    if let Some(file) = file {
        form.receipt = file;
    }
    Ok(form)
}

/// This server's key document (pretty JSON) and its fingerprints, one per line.
async fn own_keys(app: &Arc<App>) -> Result<(String, String), ApiError> {
    let backend = app.backend.clone();
    let primary = backend.primary_workspace_id().to_string();
    blocking(app, &primary.clone(), move || {
        let engine = backend.workspace(&primary)?.ok_or_else(|| ApiError::internal("the workspace is gone"))?;
        let document = engine.key_document()?;
        let fingerprints: Vec<String> = document.keys.iter().map(|key| key.public_key_fingerprint.clone()).collect();
        let pretty = serde_json::to_string_pretty(&document).map_err(|_| ApiError::internal("cannot encode"))?;
        Ok((pretty, fingerprints.join("\n")))
    })
    .await
}

async fn verify(app: &Arc<App>, form: &VerifyForm) -> Result<VerifyReport, ApiError> {
    let key_document = match form.key_document.trim() {
        "" => None,
        text => Some(
            serde_json::from_str::<Value>(text)
                .map_err(|err| ApiError::invalid("key_document", format!("the key document is not JSON: {err}")))?,
        ),
    };
    let fingerprints: Vec<String> = form
        .trusted_key_fingerprints
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    let checkpoint_evidence = match form.checkpoint_evidence.trim() {
        "" => None,
        text => Some(serde_json::from_str::<Value>(text).map_err(|err| {
            ApiError::invalid("checkpoint_evidence", format!("the checkpoint evidence is not JSON: {err}"))
        })?),
    };
    let request = VerifyReceipts {
        input: Value::String(form.receipt.clone()),
        // An emptied fingerprint field trusts the server's keys, as the API does when none are sent.
        trusted_key_fingerprints: (!fingerprints.is_empty()).then_some(fingerprints),
        key_document,
        checkpoint_evidence,
    };
    let backend = app.backend.clone();
    let primary = backend.primary_workspace_id().to_string();
    blocking(app, &primary.clone(), move || {
        let engine = backend.workspace(&primary)?.ok_or_else(|| ApiError::internal("the workspace is gone"))?;
        match engine.execute(Request::VerifyReceipts(request), "console")? {
            Answer::VerifyReceipts(report) => Ok(report),
            _ => Err(ApiError::internal("verify answered another operation")),
        }
    })
    .await
}

fn render(session: Option<&Session>, form: &VerifyForm, outcome: Option<&Result<VerifyReport, ApiError>>) -> Markup {
    let body = html! {
        p { "Check that receipts were signed by this workspace's keys and not changed since. Nothing you paste is stored." }
        @if let Some(outcome) = outcome {
            @match outcome {
                Ok(report) => (verdict(report)),
                Err(err) => (error_notice(&err.message)),
            }
        }
        form method="post" action="/console/verify" enctype="multipart/form-data" class="stack" {
            label for="receipt" { "Receipt" }
            p class="hint" id="receipt-hint" {
                "A receipt (JSON), a whole check response, or an export (one receipt per line)."
            }
            textarea id="receipt" name="receipt" rows="8" spellcheck="false" aria-describedby="receipt-hint" { (form.receipt) }
            label for="receipt_file" { "Or upload a file" }
            input type="file" id="receipt_file" name="receipt_file" accept=".json,.jsonl,application/json,text/plain" data-read-into="receipt";
            details {
                summary { "Keys and evidence" }
                label for="key_document" { "Key document" }
                textarea id="key_document" name="key_document" rows="8" spellcheck="false" { (form.key_document) }
                label for="trusted_key_fingerprints" { "Trusted key fingerprints" }
                textarea id="trusted_key_fingerprints" name="trusted_key_fingerprints" rows="3" spellcheck="false" { (form.trusted_key_fingerprints) }
                label for="checkpoint_evidence" { "Checkpoint evidence" }
                textarea id="checkpoint_evidence" name="checkpoint_evidence" rows="4" spellcheck="false" { (form.checkpoint_evidence) }
            }
            button type="submit" { "Verify" }
        }
    };
    page("Verify", "/console/verify", session, body)
}

/// The verdict, in a `role="status"` region.
fn verdict(report: &VerifyReport) -> Markup {
    html! {
        section class={ "verdict " (if report.valid { "valid" } else { "invalid" }) } role="status" aria-live="polite" {
            h2 { (if report.valid { "Valid" } else { "Invalid" }) }
            p class="muted" {
                (report.ok) " of " (report.ok + report.invalid)
                (if report.ok + report.invalid == 1 { " receipt verified" } else { " receipts verified" })
                @if !report.checkpoints.is_empty() { ", " (report.checkpoints.len()) " checkpoints" }
                "."
            }
            @if let Some(error) = &report.evidence_error {
                p { strong { (error.class) } ": " (error.message) }
            }
            ul class="receipts" {
                @for receipt in report.receipts.iter().take(200) { li { (receipt_line(receipt)) } }
            }
        }
    }
}

fn receipt_line(receipt: &ReceiptVerdict) -> Markup {
    html! {
        @if let Some(error) = &receipt.error {
            span class="tag bad" { "Invalid" }
            " " strong { (error.class) } " — " (plain_reason(&error.class))
            @if let Some(id) = &receipt.receipt_id { " (" code { (id) } ")" }
            @if let Some(line) = receipt.line { " line " (line) }
            p class="muted small" { (error.message) }
        } @else {
            span class="tag good" { "Valid" }
            " " code { (receipt.receipt_id.as_deref().unwrap_or("?")) }
            dl class="facts" {
                div { dt { "Kind" } dd { (receipt.kind.as_deref().unwrap_or("decision")) } }
                div { dt { "Action or event" } dd { (receipt.subject.as_deref().unwrap_or("?")) } }
                div { dt { "Decision" } dd { (receipt.decision.as_deref().unwrap_or("?")) } }
                @if let Some(key) = &receipt.key_id { div { dt { "Key" } dd { code { (key) } } } }
                @if let Some(fingerprint) = &receipt.key_fingerprint { div { dt { "Fingerprint" } dd { code { (fingerprint) } } } }
            }
        }
    }
}

/// What each of the reference verifier's failures means, for a person.
fn plain_reason(class: &str) -> &'static str {
    match class {
        "SignatureMismatchError" => {
            "the signature does not match the contents: the receipt was changed after it was signed, or another key signed it"
        }
        "UnknownKeyError" => "the receipt names a signing key that the key document does not hold",
        "KeyOutsideActiveWindowError" => "the signing key was not active when the receipt says it was issued",
        "VerificationError" => "the key that signed it is not one of the trusted fingerprints, or a checkpoint does not match",
        _ => "this is not a well-formed receipt of this workspace",
    }
}
