//! Authorizations: the list (in creation order, paged, filtered by user, agent and status), one
//! authorization (its frozen scopes, budget, expiry, latest receipts) and `Revoke`, behind a
//! confirmation step.

use std::sync::Arc;

use allowly_core::model::{AuthorizationStatus, AuthorizationView, Page};
use allowly_core::ops::{percent_encode, ListAuthorizations, ListReceipts, PageArgs};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{error_notice, filter_field, page, respond, when, when_relative};
use super::session::{same_token, Session};
use super::{see_other, signed_in, to_sign_in};
use crate::api::{blocking, App};

const PAGE_SIZE: usize = 50;

/// The statuses the filter offers, as the API names them.
const STATUSES: [(&str, AuthorizationStatus); 3] = [
    ("active", AuthorizationStatus::Active),
    ("revoked", AuthorizationStatus::Revoked),
    ("expired", AuthorizationStatus::Expired),
];

/// The filters of the list, as its form sends them (empty fields are no filter).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

impl Filters {
    /// The engine's request; `None` for a status the engine does not know.
    fn request(&self) -> Option<ListAuthorizations> {
        let given = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
        let status = match self.status.trim() {
            "" => None,
            named => Some(STATUSES.iter().find(|(name, _)| *name == named)?.1),
        };
        let cursor = Some(self.cursor.as_str()).filter(|c| !c.is_empty());
        Some(ListAuthorizations {
            user_id: given(&self.user_id),
            agent_id: given(&self.agent_id),
            status,
            page: PageArgs::new(PAGE_SIZE, cursor),
        })
    }

    /// The query string of these filters (without the cursor), for links.
    fn query(&self) -> String {
        [("user_id", &self.user_id), ("agent_id", &self.agent_id), ("status", &self.status)]
            .iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| format!("{name}={}", percent_encode(value.trim())))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn any(&self) -> bool {
        !self.query().is_empty()
    }
}

pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap, Query(filters): Query<Filters>) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let (status, results) = match filters.request() {
        None => (
            StatusCode::UNPROCESSABLE_ENTITY,
            error_notice("Unknown status: choose active, revoked or expired. Nothing was listed."),
        ),
        Some(request) => {
            match blocking(&app, &session.workspace_id, move || Ok(engine.list_authorizations(&request)?)).await {
                Ok(page) => (StatusCode::OK, results_table(&page, &filters)),
                Err(err) => (err.status, error_notice(&err.message)),
            }
        }
    };
    let body = html! {
        (filter_form(&filters))
        (results)
    };
    respond(status, page("Authorizations", "/console/authorizations", Some(&session), body))
}

fn filter_form(filters: &Filters) -> Markup {
    html! {
        form method="get" action="/console/authorizations" class="filters" aria-label="Filter authorizations" {
            (filter_field("user_id", "User", &filters.user_id, "user_42"))
            (filter_field("agent_id", "Agent", &filters.agent_id, "support_bot"))
            div class="field" {
                label for="status" { "Status" }
                select id="status" name="status" {
                    option value="" selected[filters.status.trim().is_empty()] { "Any" }
                    @for (name, _) in STATUSES {
                        option value=(name) selected[filters.status.trim() == name] { (name) }
                    }
                }
            }
            div class="actions" {
                button type="submit" { "Filter" }
                a href="/console/authorizations" { "Clear" }
            }
        }
    }
}

fn results_table(page: &Page<AuthorizationView>, filters: &Filters) -> Markup {
    let query = filters.query();
    html! {
        @if page.items.is_empty() {
            @if !filters.any() && filters.cursor.is_empty() {
                p { "No authorization yet: an app creates one when a user authorizes an agent." }
            } @else if page.has_more {
                p { "No authorization on this page matches these filters; the next page reads on." }
            } @else {
                p { "No authorization matches these filters." }
            }
        } @else {
            p class="muted" {
                (page.items.len()) " authorizations on this page, in the order they were created"
                @if page.has_more { " (more below)" }
                "."
            }
            div class="scroll" {
                table class="cards" {
                    caption class="visually-hidden" { "Authorizations" }
                    thead { tr {
                        th scope="col" { "Authorization" } th scope="col" { "User" } th scope="col" { "Agent" }
                        th scope="col" { "Status" } th scope="col" { "Budget" } th scope="col" { "Expires" }
                    } }
                    tbody {
                        @for a in &page.items {
                            tr {
                                td { a href={ "/console/authorizations/" (a.authorization_id) } { code { (a.authorization_id) } } }
                                td data-label="User" { (a.user_id) }
                                td data-label="Agent" { (a.agent_id) }
                                td { (status_tag(a.status)) }
                                td data-label="Budget" { (budget_text(a)) }
                                td data-label="Expires" { (when(&a.expires_at)) }
                            }
                        }
                    }
                }
            }
        }
        @if let (true, Some(next)) = (page.has_more, &page.next_cursor) {
            @let separator = if query.is_empty() { "" } else { "&" };
            a class="button secondary" rel="next" href={ "/console/authorizations?" (query) (separator) "cursor=" (percent_encode(next)) } { "Next page" }
        }
    }
}

fn status_tag(status: AuthorizationStatus) -> Markup {
    let (class, text) = match status {
        AuthorizationStatus::Active => ("good", "active"),
        AuthorizationStatus::Revoked => ("bad", "revoked"),
        AuthorizationStatus::Expired => ("bad", "expired"),
    };
    html! { span class={ "tag " (class) } { (text) } }
}

fn budget_text(a: &AuthorizationView) -> String {
    match a.budget_limit_micros {
        Some(limit) => format!("{} of {} micros", a.budget_spent_micros, limit),
        None => "no budget".to_string(),
    }
}

pub async fn show(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let lookup = id.clone();
    let found = blocking(&app, &session.workspace_id, move || {
        let authorization = engine.get_authorization(&lookup)?;
        let receipts = engine.list_receipts(&ListReceipts {
            authorization_id: Some(lookup.clone()),
            page: PageArgs::new(10, None),
            ..ListReceipts::default()
        })?;
        Ok((authorization, receipts.items))
    })
    .await;
    match found {
        Ok((a, receipts)) => {
            let body = html! {
                (details(&a))
                section aria-labelledby="scopes" {
                    h2 id="scopes" { "Scopes (frozen at authorization)" }
                    ul class="chips" { @for action in &a.actions { li { code { (action) } } } }
                    p class="muted small" {
                        "Policy " code { (a.policy_ref.policy_id) } " version " (a.policy_ref.policy_version)
                        ": later editions do not change what this authorization allows."
                    }
                }
                section aria-labelledby="latest" {
                    h2 id="latest" { "Latest receipts" }
                    ul class="plain" {
                        @for r in &receipts {
                            li {
                                span class={ "tag " (r.decision) } { (r.decision) } " "
                                (r.action.as_deref().or(r.event.as_deref()).unwrap_or("-")) " · "
                                a href={ "/console/receipts/" (r.receipt_id) } { code { (r.receipt_id) } }
                            }
                        }
                    }
                    a href={ "/console/receipts?authorization_id=" (a.authorization_id) } { "All receipts of this authorization" }
                }
                @if a.status == AuthorizationStatus::Active {
                    section aria-labelledby="revoke" {
                        h2 id="revoke" { "Revoke" }
                        p { "Every later check of this authorization is denied. This cannot be undone." }
                        a class="button danger" href={ "/console/authorizations/" (a.authorization_id) "/revoke" } { "Revoke…" }
                    }
                }
            };
            respond(StatusCode::OK, page("Authorization", "/console/authorizations", Some(&session), body))
        }
        Err(err) => respond(
            err.status,
            page("Authorization", "/console/authorizations", Some(&session), error_notice(&err.message)),
        ),
    }
}

fn details(a: &AuthorizationView) -> Markup {
    let spent_share = a
        .budget_limit_micros
        .filter(|limit| *limit > 0)
        .map(|limit| (a.budget_spent_micros as f64 / limit as f64).clamp(0.0, 1.0));
    html! {
        dl class="facts wide" {
            div { dt { "Authorization" } dd { code { (a.authorization_id) } } }
            div { dt { "Status" } dd { (status_tag(a.status)) } }
            div { dt { "User" } dd { (a.user_id) } }
            div { dt { "Agent" } dd { (a.agent_id) } }
            div { dt { "Created" } dd { (when(&a.created_at)) } }
            div { dt { "Expires" } dd { (when_relative(&a.expires_at)) } }
            @if let Some(revoked) = &a.revoked_at { div { dt { "Revoked" } dd { (when_relative(revoked)) } } }
            div { dt { "Budget" } dd {
                (budget_text(a))
                @if let Some(share) = spent_share {
                    meter min="0" max="1" value=(format!("{share:.3}")) aria-label="Budget spent" { (format!("{:.0}%", share * 100.0)) }
                }
            } }
        }
        @if !a.metadata.is_empty() {
            h2 { "Metadata" }
            pre class="json" { (serde_json::to_string_pretty(&a.metadata).unwrap_or_default()) }
        }
    }
}

/// The confirmation step before a revocation.
pub async fn confirm_revoke(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some((session, _)) = signed_in(&app, &headers).await else { return to_sign_in() };
    respond(
        StatusCode::OK,
        page("Revoke authorization", "/console/authorizations", Some(&session), revoke_form(&session, &id)),
    )
}

fn revoke_form(session: &Session, id: &str) -> Markup {
    html! {
        p { "Revoke " code { (id) } "? Every later check of it is denied, and pending confirmations of it end." }
        form method="post" action={ "/console/authorizations/" (id) "/revoke" } class="stack narrow" {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="notes" { "Notes" }
            input id="notes" name="notes" maxlength="2048";
            div class="actions" {
                button type="submit" class="danger" { "Revoke" }
                a href={ "/console/authorizations/" (id) } { "Cancel" }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    notes: String,
}

pub async fn revoke(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    if !same_token(&session.csrf, &form.csrf) {
        let message = "This form did not come from this console, or your session changed. Nothing was revoked.";
        return respond(
            StatusCode::FORBIDDEN,
            page("Revoke authorization", "/console/authorizations", Some(&session), error_notice(message)),
        );
    }
    let by = format!("console:{}", session.key_id);
    let notes = Some(form.notes.trim().to_string()).filter(|n| !n.is_empty());
    let target = id.clone();
    let revoked = blocking(&app, &session.workspace_id, move || {
        Ok(engine.revoke_authorization(&target, Some(&by), notes.as_deref())?)
    })
    .await;
    match revoked {
        Ok(_) => see_other(&format!("/console/authorizations/{id}"), &[]),
        Err(err) => respond(
            err.status,
            page("Revoke authorization", "/console/authorizations", Some(&session), error_notice(&err.message)),
        ),
    }
}
