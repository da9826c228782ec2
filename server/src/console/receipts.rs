//! Receipts (the audit lookup: filter, page, export) and Receipt (one receipt, its signature
//! checked against this server's keys, its payload, copy and download).

use std::sync::Arc;

use allowly_core::engine::RelatedReceipt;
use allowly_core::model::{Page, ReceiptEnvelope, ReceiptSummary};
use allowly_core::ops::{ListReceipts, PageArgs};
use allowly_core::receipt::decode_receipt;
use allowly_core::{Allowly, Timestamp};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{attachment, breakable, error_notice, filter_field, page, respond, when};
use super::{signed_in, to_sign_in};
use crate::api::{blocking, App};
use crate::error::ApiError;

/// The filters of the Receipts screen, as its form sends them (empty fields are no filter).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    authorization_id: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

/// Receipts on one page of the screen.
const PAGE_SIZE: usize = 50;
/// Receipts in one export (the API pages through more).
const MAX_EXPORT: usize = 100_000;

impl Filters {
    fn request(&self, limit: usize, cursor: Option<&str>) -> ListReceipts {
        let given = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
        ListReceipts {
            user_id: given(&self.user_id),
            agent_id: given(&self.agent_id),
            action: given(&self.action),
            event: given(&self.event),
            decision: given(&self.decision),
            reason: given(&self.reason),
            authorization_id: given(&self.authorization_id),
            since: given(&self.since),
            until: given(&self.until),
            page: PageArgs::new(limit, cursor),
        }
    }

    /// The query string of these filters (without the cursor), for links.
    fn query(&self) -> String {
        let pairs = [
            ("user_id", &self.user_id),
            ("agent_id", &self.agent_id),
            ("action", &self.action),
            ("event", &self.event),
            ("decision", &self.decision),
            ("reason", &self.reason),
            ("authorization_id", &self.authorization_id),
            ("since", &self.since),
            ("until", &self.until),
        ];
        pairs
            .iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| format!("{name}={}", allowly_core::ops::percent_encode(value.trim())))
            .collect::<Vec<_>>()
            .join("&")
    }
}

pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let request = filters.request(PAGE_SIZE, Some(filters.cursor.as_str()).filter(|c| !c.is_empty()));
    let found = blocking(&app, &session.workspace_id, move || Ok(engine.list_receipts(&request)?)).await;
    let (status, results) = match found {
        Ok(page) => (StatusCode::OK, results_table(&page, &filters)),
        Err(err) => (err.status, error_notice(&err.message)),
    };
    let body = html! {
        (filter_form(&filters))
        (results)
    };
    respond(status, page("Receipts", "/console/receipts", Some(&session), body))
}

fn filter_form(filters: &Filters) -> Markup {
    let active = filters.query().split('&').filter(|pair| !pair.is_empty()).count();
    html! {
        // Open, but folded by console.js on a narrow screen while no filter is set.
        details class="filters-fold" open data-fold-narrow[active == 0] {
            summary { "Filters" @if active > 0 { " (" (active) " set)" } }
            form method="get" action="/console/receipts" class="filters" aria-label="Filter receipts" {
                (filter_field("user_id", "User", &filters.user_id, "user_42"))
                (filter_field("agent_id", "Agent", &filters.agent_id, "support_bot"))
                (filter_field("action", "Action", &filters.action, "email.send"))
                div class="field" {
                    label for="decision" { "Decision" }
                    select id="decision" name="decision" {
                        @for (value, label) in [("", "Any"), ("allow", "allow"), ("deny", "deny"), ("confirm", "confirm"), ("escalate", "escalate")] {
                            option value=(value) selected[filters.decision == value] { (label) }
                        }
                    }
                }
                (filter_field("reason", "Reason", &filters.reason, "budget_exceeded"))
                (filter_field("authorization_id", "Authorization", &filters.authorization_id, "auth_01JD…"))
                (filter_field("event", "Event", &filters.event, "budget.settle"))
                (filter_field("since", "Since", &filters.since, "2026-12-01"))
                (filter_field("until", "Until", &filters.until, "2026-12-31"))
                div class="actions" {
                    button type="submit" { "Filter" }
                    a href="/console/receipts" { "Clear" }
                }
            }
        }
    }
}

fn results_table(page: &Page<ReceiptSummary>, filters: &Filters) -> Markup {
    let query = filters.query();
    let export = if query.is_empty() {
        "/console/receipts/export".to_string()
    } else {
        format!("/console/receipts/export?{query}")
    };
    html! {
        div class="bar" {
            p class="muted" {
                (page.items.len()) " receipts on this page, newest first"
                @if page.has_more { " (more below)" }
                "."
            }
            div class="actions" {
                a class="button secondary" href=(export) download { "Export JSONL" }
                // Evidence proves whole days: it verifies beside an export that holds every receipt.
                @if query.is_empty() {
                    a class="button secondary" href="/console/receipts/evidence" download { "Checkpoint evidence" }
                }
            }
        }
        @if page.items.is_empty() {
            p { "No receipt matches these filters." }
        } @else {
            div class="scroll" {
                table class="cards" {
                    caption class="visually-hidden" { "Receipts" }
                    thead { tr {
                        th scope="col" { "Issued" } th scope="col" { "Decision" } th scope="col" { "Action or event" }
                        th scope="col" { "User" } th scope="col" { "Agent" } th scope="col" { "Reason" }
                    } }
                    tbody {
                        @for receipt in &page.items {
                            tr {
                                // The first cell opens the receipt: it is on screen however narrow.
                                td { a href={ "/console/receipts/" (receipt.receipt_id) } { (when(&receipt.issued_at)) } }
                                td { span class={ "tag " (receipt.decision) } { (receipt.decision) } }
                                td { (receipt.action.as_deref().or(receipt.event.as_deref()).unwrap_or("-")) }
                                td data-label="User" { (receipt.user_id) }
                                td data-label="Agent" { (receipt.agent_id) }
                                td class="wrap" data-label="Reason" { code { (breakable(&receipt.reason)) } }
                            }
                        }
                    }
                }
            }
        }
        @if let (true, Some(cursor)) = (page.has_more, &page.next_cursor) {
            @let separator = if query.is_empty() { "" } else { "&" };
            a class="button secondary" rel="next" href={ "/console/receipts?" (query) (separator) "cursor=" (cursor) } { "Next page" }
        }
    }
}

/// The filtered receipts as JSON Lines (one signed receipt per line), as `allowly verify` and the
/// reference verifier read them.
pub async fn export(State(app): State<Arc<App>>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let lines = blocking(&app, &session.workspace_id, move || {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        let mut count = 0;
        loop {
            let page = engine.list_receipts(&filters.request(100, cursor.as_deref()))?;
            for receipt in &page.items {
                serde_json::to_writer(&mut out, &receipt.receipt).map_err(|_| ApiError::internal("cannot encode"))?;
                out.push(b'\n');
                count += 1;
            }
            match page.next_cursor {
                Some(next) if page.has_more && count < MAX_EXPORT => cursor = Some(next),
                _ => return Ok(out),
            }
        }
    })
    .await;
    match lines {
        Ok(bytes) => attachment(bytes, "application/x-ndjson", "allowly-receipts.jsonl"),
        Err(err) => {
            respond(err.status, page("Receipts", "/console/receipts", Some(&session), error_notice(&err.message)))
        }
    }
}

/// The checkpoint evidence document (every daily checkpoint with its members' ids), to verify
/// beside an unfiltered export as `allowly-receipt-verify --checkpoint-evidence` does.
pub async fn evidence(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let document = blocking(&app, &session.workspace_id, move || {
        serde_json::to_vec_pretty(&engine.checkpoint_evidence()?).map_err(|_| ApiError::internal("cannot encode"))
    })
    .await;
    match document {
        Ok(bytes) => attachment(bytes, "application/json", "allowly-checkpoint-evidence.json"),
        Err(err) => {
            respond(err.status, page("Receipts", "/console/receipts", Some(&session), error_notice(&err.message)))
        }
    }
}

/// One receipt, and what this server's keys say of its signature.
pub async fn show(State(app): State<Arc<App>>, headers: HeaderMap, Path(receipt_id): Path<String>) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let id = receipt_id.clone();
    let found = blocking(&app, &session.workspace_id, move || {
        let stored = engine.receipt(&id)?;
        let checked = check_signature(&engine, &stored.receipt.to_value());
        let related = engine.related_receipts(&id)?;
        Ok((stored.receipt, checked, related))
    })
    .await;
    let body = match found {
        Ok((receipt, checked, related)) => receipt_page(&receipt_id, &receipt.to_value(), checked, &related),
        Err(err) => {
            return respond(
                err.status,
                page("Receipt", "/console/receipts", Some(&session), error_notice(&err.message)),
            )
        }
    };
    respond(StatusCode::OK, page("Receipt", "/console/receipts", Some(&session), body))
}

/// The receipt as `GET /v1/receipts/{id}` answers it, byte for byte.
pub async fn download(State(app): State<Arc<App>>, headers: HeaderMap, Path(receipt_id): Path<String>) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let id = receipt_id.clone();
    let found = blocking(&app, &session.workspace_id, move || {
        let stored = engine.receipt(&id)?;
        serde_json::to_vec(&ReceiptEnvelope::Signed { receipt: stored.receipt })
            .map_err(|_| ApiError::internal("cannot encode the receipt"))
    })
    .await;
    match found {
        Ok(bytes) => attachment(bytes, "application/json", &format!("{receipt_id}.json")),
        Err(err) => {
            respond(err.status, page("Receipt", "/console/receipts", Some(&session), error_notice(&err.message)))
        }
    }
}

/// The signature checked against this workspace's current key document: the key id and
/// fingerprint, or why it does not verify.
struct SignatureCheck {
    key_id: Option<String>,
    fingerprint: Option<String>,
    outcome: Result<(), String>,
}

fn check_signature(engine: &Allowly, receipt: &Value) -> SignatureCheck {
    match engine.own_verifier() {
        Ok(verifier) => {
            let (key_id, fingerprint) = verifier.signer(receipt).unzip();
            let outcome = verifier
                .verify(receipt, Timestamp::now())
                .map(|_| ())
                .map_err(|err| format!("{}: {err}", err.reference_class()));
            SignatureCheck { key_id, fingerprint, outcome }
        }
        Err(err) => SignatureCheck { key_id: None, fingerprint: None, outcome: Err(err.to_string()) },
    }
}

fn receipt_page(receipt_id: &str, receipt: &Value, check: SignatureCheck, related: &[RelatedReceipt]) -> Markup {
    let payload = decode_receipt(receipt).unwrap_or(Value::Null);
    let text = |name: &str| payload.get(name).and_then(Value::as_str).unwrap_or("-").to_string();
    let pretty = serde_json::to_string_pretty(&payload).unwrap_or_default();
    let budget = payload.pointer("/context/budget");
    let micros = |name: &str| budget.and_then(|b| b.get(name)).and_then(Value::as_i64);
    let policy = payload.get("policy_ref").filter(|p| !p.is_null());
    let authorization = payload.get("authorization_id").and_then(Value::as_str);
    let kind = if payload.get("action").is_some() { "decision" } else { "event" };
    html! {
        dl class="facts wide" {
            div { dt { "Receipt" } dd { code { (receipt_id) } } }
            div { dt { "Decision" } dd { span class={ "tag " (text("decision")) } { (text("decision")) } } }
            div { dt { "Reason" } dd { code { (breakable(&text("reason"))) } } }
            div { dt { "Kind" } dd { (kind) @if kind == "event" { " " code { (text("event")) } } } }
            @if kind == "decision" { div { dt { "Action" } dd { code { (text("action")) } } } }
            div { dt { "Resource" } dd { (text("resource")) } }
            div { dt { "User" } dd { (text("user_id")) } }
            div { dt { "Agent" } dd { (text("agent_id")) } }
            div { dt { "Authorization" } dd {
                @if let Some(id) = authorization {
                    a href={ "/console/authorizations/" (id) } { code { (id) } }
                    " · " a href={ "/console/receipts?authorization_id=" (id) } { "its receipts" }
                } @else { "-" }
            } }
            div { dt { "Policy" } dd {
                @if let Some(policy) = policy {
                    code { (policy.get("policy_id").and_then(Value::as_str).unwrap_or("?")) }
                    " version " (policy.get("policy_version").and_then(Value::as_i64).unwrap_or(0))
                } @else { "-" }
            } }
            div { dt { "Issued" } dd { (when(&text("issued_at"))) } }
            @if budget.is_some() {
                div { dt { "Budget before → after" } dd {
                    (micros("spent_micros").map_or("-".into(), |m| m.to_string())) " → "
                    (micros("spent_after_micros").map_or("unchanged".into(), |m| m.to_string()))
                    " of " (micros("limit_micros").map_or("no limit".into(), |m| m.to_string())) " micros"
                } }
            }
        }
        @if !related.is_empty() {
            section aria-labelledby="related" {
                h2 id="related" { "Related receipts" }
                ul class="plain" {
                    @for r in related {
                        li {
                            (r.relation) ": "
                            a href={ "/console/receipts/" (r.receipt_id) } { code { (r.receipt_id) } }
                            " " span class={ "tag " (r.decision) } { (r.decision) }
                            " " span class="muted small" { (when(&r.issued_at.to_string())) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="signature" {
            h2 id="signature" { "Signature" }
            dl class="facts" {
                div { dt { "Algorithm" } dd { "EdDSA (Ed25519)" } }
                div { dt { "Key" } dd { code { (check.key_id.as_deref().unwrap_or("unknown")) } } }
                div { dt { "Fingerprint" } dd { code { (check.fingerprint.as_deref().unwrap_or("-")) } } }
                div { dt { "Against this server's keys" } dd {
                    @match &check.outcome {
                        Ok(()) => span class="tag good" { "Valid" },
                        Err(reason) => { span class="tag bad" { "Invalid" } " " (reason) },
                    }
                } }
            }
        }
        section aria-labelledby="context" {
            h2 id="context" { "Context" }
            pre class="json" { (serde_json::to_string_pretty(payload.get("context").unwrap_or(&Value::Null)).unwrap_or_default()) }
        }
        section aria-labelledby="payload-heading" {
            h2 id="payload-heading" { "Payload" }
            div class="actions" {
                button type="button" class="secondary" data-copy="payload" { "Copy JSON" }
                a class="button secondary" href={ "/console/receipts/" (receipt_id) "/download" } download { "Download" }
            }
            pre class="json" id="payload" tabindex="0" { (pretty) }
        }
    }
}
