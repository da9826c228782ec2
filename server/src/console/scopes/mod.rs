//! Scopes: every policy ("bundle") by agent, with what each action yields; one bundle's editor
//! (decision toggles, approver, guards, conditions), which publishes a new edition and then says
//! what changed; its version history; and `New bundle`. Publishing is the engine's `create_policy`
//! with the edition the editor was opened on as `previous_policy_ref`, so a concurrent publish is
//! refused rather than overwritten, and authorizations keep the edition they were created with.

mod changes;
mod editor;
mod form;

use std::sync::Arc;

use allowly_core::model::PolicyView;
use allowly_core::policy::PolicyCreate;
use allowly_core::{Allowly, FieldError};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{error_notice, page, respond};
use super::session::{random_token, same_token, Session};
use super::{see_other, signed_in, to_sign_in};
use crate::api::{blocking, App};
use crate::error::ApiError;
use form::{ActionForm, BundleForm, Draft, FormErrors};

const SCREEN: &str = "/console/scopes";
/// Bundles listed at most (the engine pages them 100 at a time).
const MAX_LISTED: usize = 1_000;
const FORGED: &str = "This form did not come from this console, or your session changed. Nothing was published.";

pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let found = blocking(&app, &session.workspace_id, move || {
        let (mut bundles, mut unreadable, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let page = engine.list_policies(100, cursor.as_deref())?;
            bundles.extend(page.items);
            unreadable.extend(page.unreadable.into_iter().map(|item| item.id));
            match page.next_cursor {
                Some(next) if page.has_more && bundles.len() < MAX_LISTED => cursor = Some(next),
                _ => return Ok((bundles, unreadable)),
            }
        }
    })
    .await;
    let (status, body) = match found {
        Ok((bundles, unreadable)) => (
            StatusCode::OK,
            html! {
                @if !unreadable.is_empty() {
                    p class="notice error" { "These editions cannot be read from the store: " (unreadable.join(", ")) "." }
                }
                (editor::bundle_list(&bundles))
            },
        ),
        Err(err) => (err.status, error_notice(&err.message)),
    };
    respond(status, page("Scopes", SCREEN, Some(&session), body))
}

#[derive(Default, Deserialize)]
pub struct ShowQuery {
    /// An older edition to show, read-only.
    #[serde(default)]
    version: String,
    /// The version just published: say so, and what changed.
    #[serde(default)]
    published: String,
    /// A publish that changed nothing: say so.
    #[serde(default)]
    unchanged: String,
}

/// What the page of a bundle says above everything else.
enum Notice {
    None,
    Published(i64),
    Unchanged(i64),
    /// A form was refused: the outcome in words, and its errors.
    Refused(String, FormErrors),
    /// Someone else published while this form was being edited.
    Conflict {
        based_on: String,
        newest: i64,
    },
}

pub async fn show(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(policy_id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let lookup = policy_id.clone();
    let editions = match blocking(&app, &session.workspace_id, move || Ok(engine.policy_editions(&lookup)?)).await {
        Ok(editions) => editions,
        Err(err) => return failed(&session, &policy_id, &err),
    };
    let version = |text: &str| text.trim().parse::<i64>().ok();
    let notice = match (version(&query.published), version(&query.unchanged)) {
        (Some(n), _) => Notice::Published(n),
        (None, Some(n)) => Notice::Unchanged(n),
        _ => Notice::None,
    };
    let viewed = match version(&query.version) {
        None if query.version.trim().is_empty() => None,
        wanted => match editions.iter().find(|e| Some(e.policy_ref.policy_version) == wanted) {
            Some(edition) => Some(edition),
            None => {
                let err = ApiError::new(
                    StatusCode::NOT_FOUND,
                    "policy_not_found",
                    format!("Bundle {policy_id} has no version {}.", query.version.trim()),
                );
                return failed(&session, &policy_id, &err);
            }
        },
    };
    let form = editions.first().map(BundleForm::of_edition).map(|mut form| {
        form.idempotency_key = random_token().unwrap_or_default();
        form
    });
    let body = bundle_page(&session, &editions, viewed, form.as_ref(), &notice);
    respond(StatusCode::OK, page(&policy_id, SCREEN, Some(&session), body))
}

/// A bundle's page: the notice, its facts, the editor (or an older edition, read-only) and the
/// version history.
fn bundle_page(
    session: &Session,
    editions: &[PolicyView],
    viewed: Option<&PolicyView>,
    form: Option<&BundleForm>,
    notice: &Notice,
) -> Markup {
    let Some(newest) = editions.first() else { return error_notice("This bundle has no edition.") };
    let policy_id = &newest.policy_ref.policy_id;
    let shown = viewed.unwrap_or(newest);
    let editing = viewed.is_none_or(|v| v.policy_ref == newest.policy_ref);
    let no_errors = FormErrors::default();
    let errors = match notice {
        Notice::Refused(_, errors) => errors,
        _ => &no_errors,
    };
    html! {
        p class="small" { a href=(SCREEN) { "← All bundles" } }
        (notice_markup(notice, editions, form))
        (editor::bundle_facts(newest))
        @if let Some(description) = newest.description.as_deref().filter(|d| !d.is_empty()) {
            p class="scope-description" { (description) }
        }
        div class="scope-layout" {
            section class="scope-main" aria-labelledby="edit" {
                @if editing {
                    h2 id="edit" { "Edit" }
                    @if newest.deleted_at.is_some() {
                        p class="notice" { "This bundle is archived: no new authorization can use it. Publishing makes it active again." }
                    }
                    @if let Some(form) = form {
                        (editor::edit_form(form, errors, &session.csrf, Some(&newest.definition), newest.policy_ref.policy_version + 1))
                    }
                } @else {
                    h2 id="edit" { "Version " (shown.policy_ref.policy_version) " (read-only)" }
                    p class="notice" {
                        "An older edition, as it was published. Authorizations created under it keep it. "
                        a href={ "/console/scopes/" (policy_id) } { "Edit the newest, version " (newest.policy_ref.policy_version) }
                        "."
                    }
                    (editor::edition_view(shown))
                }
            }
            (editor::history(policy_id, editions, shown.policy_ref.policy_version))
        }
    }
}

fn notice_markup(notice: &Notice, editions: &[PolicyView], form: Option<&BundleForm>) -> Markup {
    let edition = |n: i64| editions.iter().find(|e| e.policy_ref.policy_version == n);
    match notice {
        Notice::None => html! {},
        Notice::Published(n) => {
            let Some(after) = edition(*n) else { return html! {} };
            let changes = match edition(n - 1) {
                Some(before) => changes::between(before, after),
                None => vec![format!("a new bundle with {}", action_count(&after.definition))],
            };
            html! {
                div class="notice success" role="status" {
                    p { strong { "Published version " (n) } ". Authorizations created before keep their frozen snapshot." }
                    @if !changes.is_empty() { ul class="changes" { @for change in &changes { li { (change) } } } }
                }
            }
        }
        Notice::Unchanged(n) => html! {
            div class="notice" role="status" {
                p { strong { "No change" } ": the form matched version " (n) ", so nothing was published." }
            }
        },
        Notice::Refused(outcome, errors) => match form {
            Some(form) => editor::error_summary(form, errors, outcome),
            None => error_notice(outcome),
        },
        Notice::Conflict { based_on, newest } => html! {
            (error_notice(&format!(
                "Version {newest} was published while you edited version {based_on}: nothing was published. \
                 Your edits are kept below; publishing them now replaces version {newest}."
            )))
            p { a href={ "#history" } { "Compare with version " (newest) " in the version history" } "." }
        },
    }
}

fn action_count(definition: &Value) -> String {
    match definition["actions"].as_array().map_or(0, Vec::len) {
        1 => "1 action".to_string(),
        n => format!("{n} actions"),
    }
}

/// What publishing a form came to.
enum Outcome {
    Published(PolicyView),
    Refused {
        error: ApiError,
        draft: Draft,
        editions: Vec<PolicyView>,
    },
    /// `Add an action`: nothing to publish yet.
    Adding {
        editions: Vec<PolicyView>,
    },
}

pub async fn publish(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(policy_id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let mut form = BundleForm::from_pairs(pairs);
    if !same_token(&session.csrf, &form.csrf) {
        return respond(StatusCode::FORBIDDEN, page(&policy_id, SCREEN, Some(&session), error_notice(FORGED)));
    }
    form.policy_id = policy_id.clone();
    let adding = form.add_action;
    let submitted = form.clone();
    let outcome = blocking(&app, &session.workspace_id, move || {
        if adding {
            return Ok(Outcome::Adding { editions: engine.policy_editions(&submitted.policy_id)? });
        }
        let base = submitted.previous_version.trim().parse::<i64>().ok().and_then(|version| {
            engine.get_policy_edition(&submitted.policy_id, version).ok().map(|edition| edition.definition)
        });
        let draft = submitted.draft(base.as_ref());
        match publish_draft(&engine, &draft, &submitted.idempotency_key) {
            Ok(edition) => Ok(Outcome::Published(edition)),
            Err(error) => {
                let editions = engine.policy_editions(&submitted.policy_id)?;
                Ok(Outcome::Refused { error, draft, editions })
            }
        }
    })
    .await;
    let (error, draft, editions) = match outcome {
        Ok(Outcome::Published(edition)) => {
            let version = edition.policy_ref.policy_version;
            let unchanged = form.previous_version.trim().parse::<i64>().ok() == Some(version);
            let query = if unchanged { "unchanged" } else { "published" };
            return see_other(&format!("/console/scopes/{}?{query}={version}", edition.policy_ref.policy_id), &[]);
        }
        Ok(Outcome::Adding { editions }) => {
            form.actions.push(ActionForm::blank());
            let body = bundle_page(&session, &editions, None, Some(&form), &Notice::None);
            return respond(StatusCode::OK, page(&policy_id, SCREEN, Some(&session), body));
        }
        Ok(Outcome::Refused { error, draft, editions }) => (error, draft, editions),
        Err(err) => return failed(&session, &policy_id, &err),
    };
    let Some(newest) = editions.first() else { return failed(&session, &policy_id, &error) };
    let (status, notice) = if error.code == "policy_version_conflict" {
        // Based on the newest now, so that publishing again is a choice made knowing it.
        let based_on = std::mem::replace(&mut form.previous_version, newest.policy_ref.policy_version.to_string());
        form.previous_sha256 = newest.policy_ref.definition_sha256.clone();
        (error.status, Notice::Conflict { based_on, newest: newest.policy_ref.policy_version })
    } else {
        refusal(&error, &draft, "nothing was published.")
    };
    let body = bundle_page(&session, &editions, None, Some(&form), &notice);
    respond(status, page(&policy_id, SCREEN, Some(&session), body))
}

/// Publishes a draft, unless the form already found it invalid: then the engine's parser names
/// every other problem, and nothing is written.
fn publish_draft(engine: &Allowly, draft: &Draft, idempotency_key: &str) -> Result<PolicyView, ApiError> {
    if !draft.form_errors.is_empty() {
        let fields = PolicyCreate::parse(&draft.body).err().map(|err| err.into_fields()).unwrap_or_default();
        let mut error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "invalid fields");
        error.fields = fields;
        return Err(error);
    }
    // The form's key with the body's digest: the same form sent twice publishes once, while the
    // form sent again with other values (after going back) is a request of its own.
    let digest = allowly_core::canonical::canonical_sha256_hex(&draft.body).unwrap_or_default();
    let key = format!("{idempotency_key}.{}", digest.get(..16).unwrap_or_default());
    let key = Some(key.as_str()).filter(|_| !idempotency_key.is_empty());
    Ok(engine.idempotent(key).create_policy(&draft.body)?)
}

/// The notice and status of a refused form: its field errors placed on the form, or the engine's
/// message when the refusal is not about fields.
fn refusal(error: &ApiError, draft: &Draft, outcome: &str) -> (StatusCode, Notice) {
    let errors = FormErrors::place(&error.fields, draft);
    if errors.is_empty() {
        return (error.status, Notice::Refused(format!("{} {outcome}", error.message), errors));
    }
    (error.status, Notice::Refused(outcome.to_string(), errors))
}

pub async fn new_form(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some((session, _)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let form = BundleForm {
        idempotency_key: random_token().unwrap_or_default(),
        default_expiry_days: "30".into(),
        actions: vec![ActionForm::blank()],
        ..BundleForm::default()
    };
    let body = editor::new_form(&form, &FormErrors::default(), &session.csrf);
    respond(StatusCode::OK, page("New bundle", SCREEN, Some(&session), body))
}

pub async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let Some((session, engine)) = signed_in(&app, &headers).await else { return to_sign_in() };
    let form = BundleForm::from_pairs(pairs);
    if !same_token(&session.csrf, &form.csrf) {
        let message = "This form did not come from this console, or your session changed. Nothing was created.";
        return respond(StatusCode::FORBIDDEN, page("New bundle", SCREEN, Some(&session), error_notice(message)));
    }
    let submitted = form.clone();
    let created = blocking(&app, &session.workspace_id, move || {
        let draft = submitted.draft(None);
        let policy_id = submitted.policy_id.trim();
        // A new bundle must not become a new edition of an existing one.
        let taken = match engine.get_policy_edition(policy_id, 1) {
            Ok(_) => true,
            Err(err) if err.code() == "policy_not_found" || err.code() == "invalid_request" => false,
            Err(err) => return Err(err.into()),
        };
        if taken {
            let mut error = ApiError::new(StatusCode::CONFLICT, "policy_exists", "");
            error.fields.push(FieldError {
                field: "policy_id".into(),
                message: format!("is taken: bundle {policy_id} exists already. Open it to publish a new edition."),
            });
            return Ok(Err((error, draft)));
        }
        Ok(publish_draft(&engine, &draft, &submitted.idempotency_key).map_err(|error| (error, draft)))
    })
    .await;
    match created {
        Ok(Ok(edition)) => see_other(&format!("/console/scopes/{}?published=1", edition.policy_ref.policy_id), &[]),
        Ok(Err((error, draft))) => {
            let (status, notice) = refusal(&error, &draft, "the bundle was not created.");
            let body = match notice {
                Notice::Refused(outcome, errors) => html! {
                    (editor::error_summary(&form, &errors, &outcome))
                    (editor::new_form(&form, &errors, &session.csrf))
                },
                _ => editor::new_form(&form, &FormErrors::default(), &session.csrf),
            };
            respond(status, page("New bundle", SCREEN, Some(&session), body))
        }
        Err(err) => respond(err.status, page("New bundle", SCREEN, Some(&session), error_notice(&err.message))),
    }
}

fn failed(session: &Session, policy_id: &str, err: &ApiError) -> Response {
    let body = html! {
        (error_notice(&err.message))
        p { a href=(SCREEN) { "All bundles" } }
    };
    respond(err.status, page(policy_id, SCREEN, Some(session), body))
}
