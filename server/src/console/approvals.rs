//! Approvals: what waits for a person. Pending confirmations (the user approves in the app; an
//! operator may answer for them here) and escalations (an approver decides), each with what was
//! asked, for whom and until when, and `Approve` / `Reject` forms. Resolving here is the engine's
//! own resolution, with its receipt.

use std::sync::Arc;

use allowly_core::model::{PromptStatus, Resolution};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{error_notice, page, respond, when_relative};
use super::session::{same_token, Session};
use super::{see_other, signed_in, to_sign_in};
use crate::api::{blocking, App};
use crate::error::ApiError;

pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let pending = blocking(&app, &session.workspace_id, move || {
        let confirmations = engine.list_confirmations(Some(PromptStatus::Pending), 100, None)?;
        let escalations = engine.list_escalations(Some(PromptStatus::Pending), 100, None)?;
        Ok((confirmations.items, escalations.items))
    })
    .await;
    let body = match pending {
        Ok((confirmations, escalations)) => html! {
            section aria-labelledby="escalations" {
                h2 id="escalations" { "Escalations (" (escalations.len()) ")" }
                @if escalations.is_empty() { p class="muted" { "No escalation waits for an approver." } }
                @for item in &escalations {
                    @let e = &item.escalation;
                    article class="card" aria-label={ "Escalation " (e.escalation_id) } {
                        (asked(&e.action, e.resource.as_deref(), item.user_id.as_deref(), item.agent_id.as_deref(), &item.created_at, &e.expires_at))
                        p class="muted small" { "Routed to " (item.escalation_to.as_deref().unwrap_or("any approver")) " · " code { (e.escalation_id) } }
                        (resolve_form(&session, &format!("/console/approvals/escalations/{}", e.escalation_id), Some(item.escalation_to.as_deref())))
                    }
                }
            }
            section aria-labelledby="confirmations" {
                h2 id="confirmations" { "Confirmations (" (confirmations.len()) ")" }
                @if confirmations.is_empty() { p class="muted" { "No confirmation waits for a user." } }
                @for item in &confirmations {
                    @let c = &item.confirmation;
                    article class="card" aria-label={ "Confirmation " (c.confirmation_id) } {
                        (asked(&c.action, c.resource.as_deref(), item.user_id.as_deref(), item.agent_id.as_deref(), &item.created_at, &c.expires_at))
                        p class="muted small" { "Normally the user answers in the app · " code { (c.confirmation_id) } }
                        (resolve_form(&session, &format!("/console/approvals/confirmations/{}", c.confirmation_id), None))
                    }
                }
            }
        },
        Err(err) => error_notice(&err.message),
    };
    respond(StatusCode::OK, page("Approvals", "/console/approvals", Some(&session), body))
}

fn asked(
    action: &str,
    resource: Option<&str>,
    user: Option<&str>,
    agent: Option<&str>,
    created: &str,
    expires: &str,
) -> Markup {
    html! {
        h3 { code { (action) } @if let Some(resource) = resource { " on " code { (resource) } } }
        dl class="facts" {
            div { dt { "User" } dd { (user.unwrap_or("-")) } }
            div { dt { "Agent" } dd { (agent.unwrap_or("-")) } }
            div { dt { "Asked" } dd { (when_relative(created)) } }
            div { dt { "Expires" } dd { (when_relative(expires)) } }
        }
    }
}

/// Approve / Reject; an escalation (`Some(routed_to)`) also names the person who resolved it, typed
/// by them (the signed receipt records it), and may carry a note.
fn resolve_form(session: &Session, action: &str, escalation: Option<Option<&str>>) -> Markup {
    let id = action.rsplit('/').next().unwrap_or_default();
    html! {
        form method="post" action=(action) class="resolve" {
            input type="hidden" name="csrf" value=(session.csrf);
            @if let Some(routed_to) = escalation {
                @let example = routed_to.and_then(|to| to.strip_prefix("member:")).unwrap_or("finance_lead");
                div class="field" {
                    label for={ "by-" (id) } { "Resolved by" }
                    input id={ "by-" (id) } name="resolved_by" required maxlength="256" autocomplete="name"
                        spellcheck="false" placeholder={ "e.g. " (example) } aria-describedby={ "by-hint-" (id) };
                    span class="hint" id={ "by-hint-" (id) } { "Who decides: recorded in the signed receipt." }
                }
                div class="field" {
                    label for={ "note-" (id) } { "Note " span class="optional" { "(optional)" } }
                    input id={ "note-" (id) } name="note" maxlength="2048" placeholder="e.g. matches the ticket";
                }
            }
            div class="actions" {
                button type="submit" name="decision" value="approve" { "Approve" }
                button type="submit" name="decision" value="reject" class="danger" { "Reject" }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    resolved_by: String,
    #[serde(default)]
    note: String,
}

pub async fn resolve_confirmation(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ResolveForm>,
) -> Response {
    resolve(&app, &headers, form, move |engine, approved, _, _| {
        engine.resolve_confirmation_by_id(&id, approved, None).map(|_| ())
    })
    .await
}

pub async fn resolve_escalation(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ResolveForm>,
) -> Response {
    resolve(&app, &headers, form, move |engine, approved, by, note| {
        let resolution = if approved { Resolution::Approved } else { Resolution::Rejected };
        engine.resolve_escalation(&id, resolution, &by, note.as_deref()).map(|_| ())
    })
    .await
}

async fn resolve(
    app: &Arc<App>,
    headers: &HeaderMap,
    form: ResolveForm,
    run: impl FnOnce(&allowly_core::Allowly, bool, String, Option<String>) -> allowly_core::Result<()> + Send + 'static,
) -> Response {
    let Some((session, engine)) = signed_in(app, headers).await else { return to_sign_in() };
    if !same_token(&session.csrf, &form.csrf) {
        let message = "This form did not come from this console, or your session changed. Nothing was resolved.";
        return respond(
            StatusCode::FORBIDDEN,
            page("Approvals", "/console/approvals", Some(&session), error_notice(message)),
        );
    }
    let approved = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            let message = "Choose Approve or Reject.";
            return respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                page("Approvals", "/console/approvals", Some(&session), error_notice(message)),
            );
        }
    };
    let by = form.resolved_by.trim().to_string();
    let note = Some(form.note.trim().to_string()).filter(|n| !n.is_empty());
    let outcome = blocking(app, &session.workspace_id, move || Ok(run(&engine, approved, by, note)?)).await;
    match outcome {
        Ok(()) => see_other("/console/approvals", &[]),
        Err(err) => failed(&session, &err),
    }
}

fn failed(session: &Session, err: &ApiError) -> Response {
    respond(err.status, page("Approvals", "/console/approvals", Some(session), error_notice(&err.message)))
}
