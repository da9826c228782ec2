//! The Scopes screen's markup: the list of bundles, one bundle's editor and read-only edition, the
//! version history, the New bundle form, and field errors shown next to their fields.

use std::collections::BTreeMap;

use allowly_core::model::PolicyView;
use maud::{html, Markup};
use serde_json::Value;

use super::changes::verb;
use super::form::{action_key, hint, label, ActionForm, BundleForm, FormErrors};
use crate::console::layout::error_notice;

const VERBS: [&str; 4] = ["allow", "confirm", "escalate", "deny"];

/// Every bundle, grouped by agent; each with its newest version and what its actions yield.
pub fn bundle_list(bundles: &[PolicyView]) -> Markup {
    let mut by_agent: BTreeMap<&str, Vec<&PolicyView>> = BTreeMap::new();
    for bundle in bundles {
        by_agent.entry(bundle.definition["agent_id"].as_str().unwrap_or("?")).or_default().push(bundle);
    }
    html! {
        div class="bar" {
            p class="muted" {
                "A bundle is a policy: what one agent may do, action by action. Every edit publishes a new "
                "edition; authorizations keep the edition they were created with."
            }
            a class="button" href="/console/scopes/new" { "New bundle" }
        }
        @if bundles.is_empty() {
            div class="card empty-state" {
                h2 { "No bundle yet" }
                p {
                    "Start with a bundle for one agent: name its actions and choose what each yields: "
                    "allowed, confirmed by the user, escalated to an approver, or denied. "
                    "Guards and conditions can be added once it exists."
                }
                p class="muted small" { "A bundle can also be published from a file: " code { "allowly policies apply FILE" } "." }
            }
        }
        @for (n, (agent, bundles)) in by_agent.iter().enumerate() {
            section class="agent" aria-labelledby={ "agent-" (n) } {
                h2 id={ "agent-" (n) } { (agent) }
                ul class="bundles" {
                    @for bundle in bundles {
                        li class="card" {
                            h3 { a href={ "/console/scopes/" (bundle.policy_ref.policy_id) } { (bundle.policy_ref.policy_id) } }
                            p class="muted small" {
                                "Version " (bundle.policy_ref.policy_version)
                                @if let Some(at) = &bundle.created_at { " · published " time datetime=(at) { (when(at)) } }
                                @if let Some(description) = bundle.description.as_deref().filter(|d| !d.is_empty()) { " · " (description) }
                            }
                            (action_chips(&bundle.definition))
                        }
                    }
                }
            }
        }
    }
}

/// Each action with the decision it yields.
fn action_chips(definition: &Value) -> Markup {
    let actions = definition["actions"].as_array().map(Vec::as_slice).unwrap_or_default();
    html! {
        ul class="chips scope-chips" aria-label="Actions" {
            @for entry in actions {
                @let decision = entry["policy"]["decision"].as_str().unwrap_or("?");
                li { code { (entry["policy"]["action"].as_str().unwrap_or("?")) } " " span class={ "tag " (decision) } { (verb(entry)) } }
            }
        }
    }
}

/// The facts of a bundle's newest edition.
pub fn bundle_facts(newest: &PolicyView) -> Markup {
    let definition = &newest.definition;
    html! {
        dl class="facts wide" {
            div { dt { "Agent" } dd { (definition["agent_id"].as_str().unwrap_or("?")) } }
            div { dt { "Newest version" } dd {
                (newest.policy_ref.policy_version)
                @if newest.deleted_at.is_some() { " " span class="tag bad" { "archived" } }
            } }
            @if let Some(at) = &newest.created_at { div { dt { "Published" } dd { time datetime=(at) { (when(at)) } } } }
            div { dt { "Digest" } dd { code title=(newest.policy_ref.definition_sha256) { (short(&newest.policy_ref.definition_sha256)) } } }
            div { dt { "Default expiry" } dd {
                @match definition["default_expiry_days"].as_i64() {
                    Some(days) => { (days) " days" },
                    None => "none: the app sets one",
                }
            } }
        }
    }
}

/// Every edition, newest first, each a link to view it.
pub fn history(policy_id: &str, editions: &[PolicyView], viewed: i64) -> Markup {
    html! {
        section class="scope-side" aria-labelledby="history" {
            h2 id="history" { "Version history" }
            ol class="history" {
                @for (n, edition) in editions.iter().enumerate() {
                    @let version = edition.policy_ref.policy_version;
                    li aria-current=[(version == viewed).then_some("true")] {
                        @if n == 0 {
                            a href={ "/console/scopes/" (policy_id) } { "Version " (version) }
                            " " span class="tag good" { "newest" }
                        } @else {
                            a href={ "/console/scopes/" (policy_id) "?version=" (version) } { "Version " (version) }
                        }
                        @if edition.deleted_at.is_some() { " " span class="tag bad" { "archived" } }
                        span class="muted small" {
                            @if let Some(at) = &edition.created_at { time datetime=(at) { (when(at)) } " · " }
                            code title=(edition.policy_ref.definition_sha256) { (short(&edition.policy_ref.definition_sha256)) }
                        }
                    }
                }
            }
        }
    }
}

/// An edition shown as it is, without a form.
pub fn edition_view(edition: &PolicyView) -> Markup {
    let actions = edition.definition["actions"].as_array().map(Vec::as_slice).unwrap_or_default();
    html! {
        @for entry in actions {
            @let (policy, guards) = (&entry["policy"], &entry["guards"]);
            @let decision = policy["decision"].as_str().unwrap_or("?");
            @let rules = policy["rules"].as_array().map_or(0, Vec::len);
            article class="card scope-action" {
                h3 { code { (policy["action"].as_str().unwrap_or("?")) } " " span class={ "tag " (decision) } { (verb(entry)) } }
                dl class="facts" {
                    div { dt { "Resource pattern" } dd { (text_or(&guards["resource_pattern"], "any")) } }
                    div { dt { "Initiators" } dd { (list_or(&guards["allowed_initiators"], "anyone")) } }
                    div { dt { "Daily cap" } dd { (text_or(&guards["max_per_day"], "none")) } }
                    div { dt { "Rate limit" } dd {
                        @match (guards["rate_limit"]["max_calls"].as_i64(), guards["rate_limit"]["window_seconds"].as_i64()) {
                            (Some(calls), Some(window)) => { (calls) " per " (window) " s" },
                            _ => "none",
                        }
                    } }
                    div { dt { "Conditions" } dd { (rules) @if rules == 1 { " rule" } @else { " rules" } } }
                }
                @if rules > 0 {
                    details {
                        summary { "Context fields and conditions" }
                        pre class="json" tabindex="0" { (pretty(&serde_json::json!({"fields": policy["fields"], "rules": policy["rules"]}))) }
                    }
                }
            }
        }
        details {
            summary { "Definition (JSON)" }
            pre class="json" tabindex="0" { (pretty(&edition.definition)) }
        }
    }
}

/// The editor of a bundle's newest edition: publishing it makes version `next_version`.
pub fn edit_form(
    form: &BundleForm,
    errors: &FormErrors,
    csrf: &str,
    base: Option<&Value>,
    next_version: i64,
) -> Markup {
    html! {
        form method="post" action={ "/console/scopes/" (form.policy_id) } class="editor" aria-labelledby="edit" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="idempotency_key" value=(form.idempotency_key);
            input type="hidden" name="previous_version" value=(form.previous_version);
            input type="hidden" name="previous_sha256" value=(form.previous_sha256);
            div class="bundle-fields" {
                (field("agent_id", &form.agent_id, Input::Text, errors))
                (field("default_expiry_days", &form.default_expiry_days, Input::Integer, errors))
                (field("description", &form.description, Input::Prose, errors))
            }
            @for (place, action) in form.actions.iter().enumerate() {
                (action_fieldset(place, action, errors, granted_count(base, action)))
            }
            p class="notice frozen" {
                "Publishing makes version " (next_version) ". Authorizations created before keep their frozen "
                "snapshot of the edition they were created with; only authorizations created afterwards follow it."
            }
            div class="actions publish-bar" {
                button type="submit" { "Publish" }
                button type="submit" name="add" value="1" class="secondary" { "Add an action" }
                a href={ "/console/scopes/" (form.policy_id) } { "Discard changes" }
            }
        }
    }
}

/// The New bundle form: the bundle and its first action.
pub fn new_form(form: &BundleForm, errors: &FormErrors, csrf: &str) -> Markup {
    let first = form.actions.first().cloned().unwrap_or_else(ActionForm::blank);
    html! {
        form method="post" action="/console/scopes/new" class="editor new-bundle" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="idempotency_key" value=(form.idempotency_key);
            div class="bundle-fields" {
                (field("policy_id", &form.policy_id, Input::Text, errors))
                (field("agent_id", &form.agent_id, Input::Text, errors))
                (field("default_expiry_days", &form.default_expiry_days, Input::Integer, errors))
                (field("description", &form.description, Input::Prose, errors))
            }
            fieldset class="scope-action" {
                legend { "First action" }
                input type="hidden" name="a0-new" value="1";
                (field("a0-name", &first.name, Input::Text, errors))
                (decision_radios(0, &first.decision, errors))
                (field("a0-approver", &first.approver, Input::Text, errors))
            }
            p class="hint" { "Guards, conditions and more actions can be added once the bundle exists." }
            div class="actions" {
                button type="submit" { "Create bundle" }
                a href="/console/scopes" { "Cancel" }
            }
        }
    }
}

/// One action of the editor: its decision as toggles, approver, guards and conditions.
fn action_fieldset(place: usize, action: &ActionForm, errors: &FormErrors, granted: usize) -> Markup {
    let key = |part: &str| format!("a{place}-{part}");
    html! {
        fieldset class="scope-action" {
            @if action.is_new {
                legend { "New action" }
                input type="hidden" name=(key("new")) value="1";
                (field(&key("name"), &action.name, Input::Text, errors))
            } @else {
                legend { (action.name) }
                input type="hidden" name=(key("name")) value=(action.name);
                @if let Some(message) = errors.of(&key("name")) { p class="field-error" id=(key("name")) { (said(&message)) } }
            }
            div class="verb-row" {
                (decision_radios(place, &action.decision, errors))
                (field(&key("approver"), &action.approver, Input::Text, errors))
            }
            div class="guards" {
                (field(&key("resource"), &action.resource_pattern, Input::Text, errors))
                (field(&key("initiators"), &action.initiators, Input::Text, errors))
                (field(&key("daily-cap"), &action.daily_cap, Input::Integer, errors))
                (field(&key("rate-calls"), &action.rate_calls, Input::Integer, errors))
                (field(&key("rate-window"), &action.rate_window, Input::Integer, errors))
            }
            div class="conditions" {
                (field(&key("fields"), &action.fields, Input::Json, errors))
                (field(&key("conditions"), &action.conditions, Input::Json, errors))
            }
            @if granted > 0 {
                p class="hint" { (granted) " executable operation" @if granted > 1 { "s" } " granted: kept as published." }
            }
            div class="remove" {
                input type="checkbox" id=(key("remove")) name=(key("remove")) value="on" checked[action.remove];
                label for=(key("remove")) { (label(&key("remove"))) }
            }
        }
    }
}

/// The decision of action `place` as four toggles, the current one checked.
fn decision_radios(place: usize, decision: &str, errors: &FormErrors) -> Markup {
    let key = format!("a{place}-decision");
    let error = errors.of(&key);
    let error_id = format!("{key}-error");
    let described = error.as_ref().map(|_| error_id.as_str());
    let invalid = error.as_ref().map(|_| "true");
    html! {
        fieldset class="verbs" id=(key) {
            legend { "Decision" }
            @if let Some(message) = &error { p class="field-error" id=(error_id) { (said(message)) } }
            div class="toggle" {
                @for verb in VERBS {
                    @let id = format!("{key}-{verb}");
                    label for=(id) class=(verb) {
                        input type="radio" id=(id) name=(key) value=(verb) checked[decision == verb]
                            aria-invalid=[invalid] aria-describedby=[described];
                        (verb)
                    }
                }
            }
        }
    }
}

/// How a field is typed in.
#[derive(Clone, Copy)]
enum Input {
    Text,
    Integer,
    Json,
    Prose,
}

/// A labelled field with its hint and, when it was refused, its error, both tied to the input.
fn field(key: &str, value: &str, input: Input, errors: &FormErrors) -> Markup {
    let (error, hint) = (errors.of(key), hint(key));
    let (error_id, hint_id) = (format!("{key}-error"), format!("{key}-hint"));
    let described: Vec<&str> =
        [error.as_ref().map(|_| error_id.as_str()), hint.map(|_| hint_id.as_str())].into_iter().flatten().collect();
    let described = Some(described.join(" ")).filter(|ids| !ids.is_empty());
    let invalid = error.as_ref().map(|_| "true");
    let rows = value.lines().count().clamp(2, 14);
    html! {
        div class={ "field" @if error.is_some() { " invalid" } } {
            label for=(key) { (label(key)) }
            @if let Some(message) = &error { p class="field-error" id=(error_id) { (said(message)) } }
            @match input {
                Input::Text => input id=(key) name=(key) value=(value) autocomplete="off" spellcheck="false"
                    aria-invalid=[invalid] aria-describedby=[described.as_deref()];,
                Input::Integer => input id=(key) name=(key) value=(value) inputmode="numeric" autocomplete="off"
                    aria-invalid=[invalid] aria-describedby=[described.as_deref()];,
                Input::Json => textarea id=(key) name=(key) rows=(rows) spellcheck="false"
                    aria-invalid=[invalid] aria-describedby=[described.as_deref()] { (value) },
                Input::Prose => textarea id=(key) name=(key) rows="2" maxlength="2048"
                    aria-invalid=[invalid] aria-describedby=[described.as_deref()] { (value) },
            }
            @if let Some(hint) = hint { p class="hint" id=(hint_id) { (hint) } }
        }
    }
}

/// The errors above a form that was refused: how many, then each, linked to its field.
pub fn error_summary(form: &BundleForm, errors: &FormErrors, outcome: &str) -> Markup {
    let count = errors.count();
    let headline = if count == 1 {
        format!("1 problem: {outcome} Fix it below and try again.")
    } else {
        format!("{count} problems: {outcome} Fix them below and try again.")
    };
    html! {
        div class="error-summary" {
        (error_notice(&headline))
        ul class="error-list" {
            @for message in &errors.general { li { (said(message)) } }
            @for (key, messages) in errors.fields() {
                @let owner = action_key(key).and_then(|(place, _)| form.actions.get(place)).map(|a| a.name.trim()).filter(|n| !n.is_empty());
                @for message in messages {
                    li { a href={ "#" (key) } { @if let Some(owner) = owner { code { (owner) } ": " } (said(message)) } }
                }
            }
        }
        }
    }
}

fn granted_count(base: Option<&Value>, action: &ActionForm) -> usize {
    if action.is_new {
        return 0;
    }
    base.and_then(|b| b["actions"].as_array())
        .and_then(|actions| actions.iter().find(|e| e["policy"]["action"].as_str() == Some(action.name.as_str())))
        .and_then(|entry| entry["executable_operations"].as_array())
        .map_or(0, Vec::len)
}

/// An engine message with its `quoted` values as code.
fn said(message: &str) -> Markup {
    html! {
        @for (n, piece) in message.split('`').enumerate() {
            @if n % 2 == 1 { code { (piece) } } @else { (piece) }
        }
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A digest's first 12 characters.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// A timestamp to the minute (`2026-05-01 12:34 UTC`), or as it is if it is not RFC 3339.
fn when(at: &str) -> String {
    match (at.get(..10), at.get(11..16)) {
        (Some(day), Some(minute)) if at.ends_with('Z') => format!("{day} {minute} UTC"),
        _ => at.to_string(),
    }
}

fn text_or(value: &Value, absent: &str) -> String {
    match value {
        Value::Null => absent.to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn list_or(value: &Value, absent: &str) -> String {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| absent.to_string())
}
