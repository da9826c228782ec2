//! The bundle form: what its fields hold (text as typed, so that a value the engine refuses comes
//! back as it was entered), the create body they make (docs/policy-format.md), and which field each
//! of the engine's field errors belongs to.
//!
//! Field names: `policy_id`, `agent_id`, `default_expiry_days`, `description`, and per action
//! `a{place}-{part}` (`a0-decision`, `a2-daily-cap`), `place` being the action's place on the form.
//! Guards map to the format as: `Resource pattern` → `guards.resource_pattern`, `Initiators` (comma
//! separated) → `guards.allowed_initiators`, `Daily cap` → `guards.max_per_day`, `Rate limit` →
//! `guards.rate_limit`; `Context fields` is the policy's `fields` and `Conditions` its `rules`, as JSON.

use std::collections::BTreeMap;

use allowly_core::model::PolicyView;
use allowly_core::FieldError;
use serde_json::{json, Map, Value};

/// Actions beyond this place are ignored (the format allows 32; the form may add one).
const MAX_PLACES: usize = 64;

/// The parts of an action on the form: name part, label, hint.
const ACTION_PARTS: [(&str, &str, &str); 11] = [
    ("name", "Action", "As checks name it, e.g. email.send."),
    ("decision", "Decision", ""),
    ("approver", "Approver", "With escalate: who decides, as member:<id>."),
    ("resource", "Resource pattern", "Glob, e.g. ticket:*. Empty: any."),
    ("initiators", "Initiators", "Comma-separated. Empty: anyone."),
    ("daily-cap", "Daily cap", "Allowed per day. Empty: no cap."),
    ("rate-calls", "Rate limit (calls)", "Allowed per window. Empty: none."),
    ("rate-window", "Rate window (seconds)", "1 to 86400."),
    (
        "fields",
        "Context fields",
        "JSON object: the context fields conditions test, with their types, e.g. {\"amount\": \"integer\"}.",
    ),
    (
        "conditions",
        "Conditions",
        "JSON array of rules that make the decision stricter: {\"id\", \"decision\", \"target\", \"conditions\": \
         [{\"field\", \"op\", \"value\"}]}. Empty: none.",
    ),
    ("remove", "Remove from bundle", ""),
];

/// The bundle's own fields: name, label, hint.
const BUNDLE_FIELDS: [(&str, &str, &str); 4] = [
    ("policy_id", "Policy id", "Lowercase letters, digits, _ and -: how apps name it when they create authorizations."),
    ("agent_id", "Agent", "The agent every authorization of this bundle is for."),
    (
        "default_expiry_days",
        "Default expiry days",
        "How long an authorization lasts when the app sets no expiry. Empty: the app must set one.",
    ),
    ("description", "Description", ""),
];

/// Where each engine path (under `actions[i]`) goes on the form, most specific first.
const PATHS: [(&str, &str); 11] = [
    (".policy.action", "name"),
    (".policy.decision", "decision"),
    (".policy.target", "approver"),
    (".policy.fields", "fields"),
    (".policy.rules", "conditions"),
    (".guards.resource_pattern", "resource"),
    (".guards.allowed_initiators", "initiators"),
    (".guards.max_per_day", "daily-cap"),
    (".guards.rate_limit.window_seconds", "rate-window"),
    (".guards.rate_limit.max_calls", "rate-calls"),
    (".guards.rate_limit", "rate-calls"),
];

#[derive(Clone, Debug, Default)]
pub struct BundleForm {
    pub csrf: String,
    /// The engine's idempotency key for this form: sent twice, it publishes once.
    pub idempotency_key: String,
    pub policy_id: String,
    pub agent_id: String,
    pub default_expiry_days: String,
    pub description: String,
    /// The edition the editor was opened on (`previous_policy_ref`): its version and digest.
    pub previous_version: String,
    pub previous_sha256: String,
    pub actions: Vec<ActionForm>,
    /// `Add an action` was pressed: show the form again with one more action, publish nothing.
    pub add_action: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ActionForm {
    pub name: String,
    /// Added on this form: its name is typed in rather than fixed.
    pub is_new: bool,
    pub decision: String,
    pub approver: String,
    pub resource_pattern: String,
    pub initiators: String,
    pub daily_cap: String,
    pub rate_calls: String,
    pub rate_window: String,
    pub fields: String,
    pub conditions: String,
    pub remove: bool,
}

/// A create body made from a form, with what the form knows of its errors.
pub struct Draft {
    pub body: Value,
    /// Problems found before the engine saw the body (JSON that does not parse), by engine path.
    pub form_errors: Vec<FieldError>,
    /// The form place of each action of the body (removed actions are not in it).
    pub places: Vec<usize>,
}

impl BundleForm {
    /// The form's fields as a browser sent them.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> BundleForm {
        let mut form = BundleForm::default();
        let mut actions: BTreeMap<usize, ActionForm> = BTreeMap::new();
        for (key, value) in pairs {
            let value = value.replace("\r\n", "\n");
            match key.as_str() {
                "csrf" => form.csrf = value,
                "idempotency_key" => form.idempotency_key = value,
                "policy_id" => form.policy_id = value,
                "agent_id" => form.agent_id = value,
                "default_expiry_days" => form.default_expiry_days = value,
                "description" => form.description = value,
                "previous_version" => form.previous_version = value,
                "previous_sha256" => form.previous_sha256 = value,
                "add" => form.add_action = true,
                _ => {
                    let Some((place, part)) = action_key(&key) else { continue };
                    let action = actions.entry(place).or_default();
                    match part {
                        "name" => action.name = value,
                        "new" => action.is_new = true,
                        "decision" => action.decision = value,
                        "approver" => action.approver = value,
                        "resource" => action.resource_pattern = value,
                        "initiators" => action.initiators = value,
                        "daily-cap" => action.daily_cap = value,
                        "rate-calls" => action.rate_calls = value,
                        "rate-window" => action.rate_window = value,
                        "fields" => action.fields = value,
                        "conditions" => action.conditions = value,
                        "remove" => action.remove = true,
                        _ => {}
                    }
                }
            }
        }
        form.actions = actions.into_values().collect();
        form
    }

    /// The editor's fields for an edition, every part of its definition shown.
    pub fn of_edition(edition: &PolicyView) -> BundleForm {
        let definition = &edition.definition;
        BundleForm {
            policy_id: edition.policy_ref.policy_id.clone(),
            agent_id: definition["agent_id"].as_str().unwrap_or_default().to_string(),
            default_expiry_days: shown_integer(&definition["default_expiry_days"]),
            description: edition.description.clone().unwrap_or_default(),
            previous_version: edition.policy_ref.policy_version.to_string(),
            previous_sha256: edition.policy_ref.definition_sha256.clone(),
            actions: definition["actions"]
                .as_array()
                .map(|a| a.iter().map(ActionForm::of_entry).collect())
                .unwrap_or_default(),
            ..BundleForm::default()
        }
    }

    /// The create body of this form. Actions keep the executable operations they have in `base`
    /// (the definition the editor was opened on), which the form does not show as fields.
    pub fn draft(&self, base: Option<&Value>) -> Draft {
        let mut form_errors = Vec::new();
        let mut body = Map::new();
        body.insert("policy_id".into(), json!(self.policy_id.trim()));
        body.insert("agent_id".into(), json!(self.agent_id.trim()));
        insert_some(&mut body, "default_expiry_days", integer_or_text(&self.default_expiry_days));
        if !self.description.trim().is_empty() {
            body.insert("description".into(), json!(self.description));
        }
        if !self.previous_version.is_empty() || !self.previous_sha256.is_empty() {
            body.insert(
                "previous_policy_ref".into(),
                json!({
                    "policy_id": self.policy_id.trim(),
                    "policy_version": integer_or_text(&self.previous_version),
                    "definition_sha256": self.previous_sha256,
                }),
            );
        }
        let mut places = Vec::new();
        let mut actions = Vec::new();
        for (place, action) in self.actions.iter().enumerate().filter(|(_, a)| !a.remove) {
            let path = format!("actions[{}]", actions.len());
            let granted = if action.is_new { None } else { granted_operations(base, &action.name) };
            actions.push(action.entry(&path, granted, &mut form_errors));
            places.push(place);
        }
        body.insert("actions".into(), Value::Array(actions));
        Draft { body: Value::Object(body), form_errors, places }
    }
}

impl ActionForm {
    fn of_entry(entry: &Value) -> ActionForm {
        let (policy, guards) = (&entry["policy"], &entry["guards"]);
        let decision = policy["decision"].as_str().unwrap_or_default().to_string();
        let initiators = guards["allowed_initiators"]
            .as_array()
            .map(|list| list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "));
        ActionForm {
            name: policy["action"].as_str().unwrap_or_default().to_string(),
            is_new: false,
            approver: if decision == "escalate" {
                policy["target"].as_str().unwrap_or_default().to_string()
            } else {
                String::new()
            },
            decision,
            resource_pattern: guards["resource_pattern"].as_str().unwrap_or_default().to_string(),
            initiators: initiators.unwrap_or_default(),
            daily_cap: shown_integer(&guards["max_per_day"]),
            rate_calls: shown_integer(&guards["rate_limit"]["max_calls"]),
            rate_window: shown_integer(&guards["rate_limit"]["window_seconds"]),
            fields: shown_json(&policy["fields"]),
            conditions: shown_rules(&policy["rules"]),
            remove: false,
        }
    }

    /// A blank action to add, asking the user by default: the safe choice until someone decides.
    pub fn blank() -> ActionForm {
        ActionForm { is_new: true, decision: "confirm".into(), ..ActionForm::default() }
    }

    /// This action's entry in the create body. A value that is not of the right type is passed on
    /// as typed, so that the engine names what is wrong with it.
    fn entry(&self, path: &str, granted: Option<Value>, form_errors: &mut Vec<FieldError>) -> Value {
        let mut policy = Map::new();
        let name = if self.is_new { self.name.trim() } else { self.name.as_str() };
        policy.insert("action".into(), json!(name));
        if !self.decision.is_empty() {
            policy.insert("decision".into(), json!(self.decision));
        }
        // The approver names who decides an escalation; other decisions have their fixed target.
        if self.decision == "escalate" && !self.approver.trim().is_empty() {
            policy.insert("target".into(), json!(self.approver.trim()));
        }
        insert_some(&mut policy, "fields", json_text(&self.fields, &format!("{path}.policy.fields"), form_errors));
        insert_some(&mut policy, "rules", json_text(&self.conditions, &format!("{path}.policy.rules"), form_errors));

        let mut guards = Map::new();
        if !self.resource_pattern.trim().is_empty() {
            guards.insert("resource_pattern".into(), json!(self.resource_pattern));
        }
        let initiators: Vec<&str> = self.initiators.split(',').map(str::trim).filter(|i| !i.is_empty()).collect();
        if !initiators.is_empty() {
            guards.insert("allowed_initiators".into(), json!(initiators));
        }
        insert_some(&mut guards, "max_per_day", integer_or_text(&self.daily_cap));
        let mut rate_limit = Map::new();
        insert_some(&mut rate_limit, "max_calls", integer_or_text(&self.rate_calls));
        insert_some(&mut rate_limit, "window_seconds", integer_or_text(&self.rate_window));
        if !rate_limit.is_empty() {
            guards.insert("rate_limit".into(), Value::Object(rate_limit));
        }

        let mut entry = Map::new();
        entry.insert("policy".into(), Value::Object(policy));
        entry.insert("guards".into(), Value::Object(guards));
        insert_some(&mut entry, "executable_operations", granted);
        Value::Object(entry)
    }
}

/// The errors of a submitted form: by field (its name on the form), and those of no one field.
#[derive(Debug, Default)]
pub struct FormErrors {
    by_field: BTreeMap<String, Vec<String>>,
    pub general: Vec<String>,
}

impl FormErrors {
    /// The engine's field errors placed on the form. An error the form found itself replaces the
    /// engine's errors for the same field (they would only restate it).
    pub fn place(engine: &[FieldError], draft: &Draft) -> FormErrors {
        let mut errors = FormErrors::default();
        for error in &draft.form_errors {
            errors.add(error, &draft.places);
        }
        let found_by_form: Vec<String> = errors.by_field.keys().cloned().collect();
        for error in engine {
            match field_of(&error.field, &draft.places) {
                Some((key, _)) if found_by_form.contains(&key) => {}
                _ => errors.add(error, &draft.places),
            }
        }
        errors
    }

    fn add(&mut self, error: &FieldError, places: &[usize]) {
        match field_of(&error.field, places) {
            Some((key, within)) => {
                let within = within.trim_start_matches('.');
                let message = if within.is_empty() {
                    format!("{} {}", label(&key), error.message)
                } else {
                    format!("{} {within}: {}", label(&key), error.message)
                };
                self.by_field.entry(key).or_default().push(message);
            }
            None if error.field == "actions" => self.general.push(format!("Actions {}", error.message)),
            None => self.general.push(format!("`{}`: {}", error.field, error.message)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_field.is_empty() && self.general.is_empty()
    }

    pub fn count(&self) -> usize {
        self.by_field.values().map(Vec::len).sum::<usize>() + self.general.len()
    }

    /// The messages of field `key`, as one text.
    pub fn of(&self, key: &str) -> Option<String> {
        self.by_field.get(key).map(|messages| messages.join(" "))
    }

    /// Every field with errors, and its messages, in the order of the form.
    pub fn fields(&self) -> Vec<(&str, &[String])> {
        let mut fields: Vec<(&str, &[String])> =
            self.by_field.iter().map(|(key, messages)| (key.as_str(), messages.as_slice())).collect();
        fields.sort_by_key(|(key, _)| position(key));
        fields
    }
}

/// The label of field `key` (`a0-daily-cap` → `Daily cap`).
pub fn label(key: &str) -> &'static str {
    described(key).map_or("", |(label, _)| label)
}

/// The hint under field `key`, if it has one.
pub fn hint(key: &str) -> Option<&'static str> {
    described(key).map(|(_, hint)| hint).filter(|hint| !hint.is_empty())
}

fn described(key: &str) -> Option<(&'static str, &'static str)> {
    let part = action_key(key).map_or(key, |(_, part)| part);
    BUNDLE_FIELDS.iter().chain(&ACTION_PARTS).find(|(name, ..)| *name == part).map(|(_, label, hint)| (*label, *hint))
}

/// Where field `key` is on the form: the bundle's fields first, then each action's, part by part.
fn position(key: &str) -> (usize, usize, usize) {
    let index = |table: &[(&str, &str, &str)], name: &str| table.iter().position(|(n, ..)| *n == name);
    match action_key(key) {
        Some((place, part)) => (1, place, index(&ACTION_PARTS, part).unwrap_or(usize::MAX)),
        None => (0, 0, index(&BUNDLE_FIELDS, key).unwrap_or(usize::MAX)),
    }
}

/// The place and part of an action's field name (`a2-daily-cap` → `(2, "daily-cap")`).
pub fn action_key(key: &str) -> Option<(usize, &str)> {
    let (place, part) = key.strip_prefix('a')?.split_once('-')?;
    let place: usize = place.parse().ok()?;
    (place < MAX_PLACES).then_some((place, part))
}

/// The form field an engine path names, and the rest of the path within that field's value
/// (`actions[1].policy.rules[0].id` → `("a1-conditions", "[0].id")`), through `places`.
pub fn field_of(path: &str, places: &[usize]) -> Option<(String, String)> {
    if BUNDLE_FIELDS.iter().any(|(name, ..)| *name == path) {
        return Some((path.to_string(), String::new()));
    }
    let (index, rest) = path.strip_prefix("actions[")?.split_once(']')?;
    let place = *places.get(index.parse::<usize>().ok()?)?;
    PATHS.iter().find_map(|(prefix, part)| {
        let within = rest.strip_prefix(prefix)?;
        // `.policy.fields` names `.policy.fields.x`, not a key that only starts the same.
        (within.is_empty() || within.starts_with(['.', '['])).then(|| (format!("a{place}-{part}"), within.to_string()))
    })
}

/// The executable operations action `name` has in `base`, if any.
fn granted_operations(base: Option<&Value>, name: &str) -> Option<Value> {
    base?["actions"]
        .as_array()?
        .iter()
        .find(|entry| entry["policy"]["action"].as_str() == Some(name))
        .map(|entry| entry["executable_operations"].clone())
        .filter(|grants| grants.as_array().is_some_and(|g| !g.is_empty()))
}

fn insert_some(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.into(), value);
    }
}

/// An integer field: empty is absent, an integer is a number, anything else goes as typed.
fn integer_or_text(text: &str) -> Option<Value> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(text.parse::<i64>().map_or_else(|_| json!(text), |n| json!(n)))
}

/// A JSON field: empty is absent; JSON that does not parse is an error of the form, and goes on
/// as text so that the engine still checks the rest of the body.
fn json_text(text: &str, path: &str, form_errors: &mut Vec<FieldError>) -> Option<Value> {
    if text.trim().is_empty() {
        return None;
    }
    match serde_json::from_str(text) {
        Ok(value) => Some(value),
        Err(err) => {
            form_errors.push(FieldError { field: path.to_string(), message: format!("is not valid JSON: {err}") });
            Some(json!(text))
        }
    }
}

fn shown_integer(value: &Value) -> String {
    value.as_i64().map(|n| n.to_string()).unwrap_or_default()
}

/// JSON for a textarea; empty when it is the default (`{}` or `[]`).
fn shown_json(value: &Value) -> String {
    let empty = match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    };
    if empty {
        String::new()
    } else {
        serde_json::to_string_pretty(value).unwrap_or_default()
    }
}

/// Rules for a textarea, one line each, their keys in reading order (`id`, `decision`, `target`,
/// `conditions`; a condition's `field`, `op`, `value`); empty when there is none.
fn shown_rules(rules: &Value) -> String {
    let Some(rules) = rules.as_array().filter(|rules| !rules.is_empty()) else { return String::new() };
    let lines: Vec<String> = rules
        .iter()
        .map(|rule| {
            let conditions = rule["conditions"].as_array().map(|conditions| {
                let shown: Vec<String> =
                    conditions.iter().map(|c| ordered(c, &["field", "op", "value"], &BTreeMap::new())).collect();
                format!("[{}]", shown.join(", "))
            });
            let nested: BTreeMap<&str, String> = conditions.into_iter().map(|text| ("conditions", text)).collect();
            format!("  {}", ordered(rule, &["id", "decision", "target", "conditions"], &nested))
        })
        .collect();
    format!("[\n{}\n]", lines.join(",\n"))
}

/// An object on one line with the keys of `order` first; `nested` gives some values' text.
fn ordered(value: &Value, order: &[&str], nested: &BTreeMap<&str, String>) -> String {
    let Some(map) = value.as_object() else { return value.to_string() };
    let mut keys: Vec<&str> = order.iter().copied().filter(|key| map.contains_key(*key)).collect();
    keys.extend(map.keys().map(String::as_str).filter(|key| !order.contains(key)));
    let members: Vec<String> = keys
        .iter()
        .map(|key| {
            let text =
                nested.get(key).cloned().unwrap_or_else(|| map.get(*key).map(Value::to_string).unwrap_or_default());
            format!("{}: {text}", Value::from(*key))
        })
        .collect();
    format!("{{{}}}", members.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn engine_paths_land_on_their_fields_through_removed_actions() {
        let places = [0, 2];
        assert_eq!(field_of("actions[1].policy.target", &places), Some(("a2-approver".into(), String::new())));
        assert_eq!(
            field_of("actions[0].policy.rules[0].conditions[1].op", &places),
            Some(("a0-conditions".into(), "[0].conditions[1].op".into()))
        );
        assert_eq!(field_of("actions[0].guards.rate_limit.window_seconds", &places).unwrap().0, "a0-rate-window");
        assert_eq!(field_of("actions[0].guards.max_per_day", &places).unwrap().0, "a0-daily-cap");
        assert_eq!(field_of("agent_id", &places).unwrap().0, "agent_id");
        assert_eq!(field_of("actions[2].policy.target", &places), None, "no such action");
        assert_eq!(field_of("actions[0].policy.profile", &places), None);
        assert_eq!(field_of("previous_policy_ref.policy_version", &places), None);
    }

    #[test]
    fn a_form_makes_the_body_the_format_describes() {
        let form = BundleForm::from_pairs(pairs(&[
            ("policy_id", "support"),
            ("agent_id", " bot "),
            ("default_expiry_days", "30"),
            ("a0-name", "email.send"),
            ("a0-decision", "escalate"),
            ("a0-approver", "member:cfo"),
            ("a0-initiators", "user, scheduler,"),
            ("a0-daily-cap", "ten"),
            ("a0-conditions", "[not json"),
            ("a1-name", "gone"),
            ("a1-remove", "on"),
        ]));
        let draft = form.draft(None);
        assert_eq!(draft.places, [0]);
        let entry = &draft.body["actions"][0];
        assert_eq!(entry["policy"]["target"], "member:cfo");
        assert_eq!(entry["guards"]["allowed_initiators"], json!(["user", "scheduler"]));
        assert_eq!(entry["guards"]["max_per_day"], "ten", "passed on for the engine to name");
        assert_eq!(draft.body["agent_id"], "bot");
        assert_eq!(draft.body["default_expiry_days"], 30);
        assert_eq!(draft.form_errors.len(), 1);
        assert_eq!(draft.form_errors[0].field, "actions[0].policy.rules");
    }

    #[test]
    fn an_edition_shown_on_the_form_makes_the_same_definition() {
        let definition = json!({
            "profile": "allowly.policy.v1", "agent_id": "payments_bot", "default_expiry_days": 90,
            "actions": [{
                "policy": {"profile": "allowly.basic.v1", "action": "invoice.pay", "decision": "escalate",
                           "target": "member:cfo", "fields": {"amount": "integer"},
                           "rules": [{"id": "big", "decision": "deny", "target": null,
                                      "conditions": [{"field": "amount", "op": "gt", "value": 5}]}]},
                "guards": {"resource_pattern": "invoice:*", "allowed_initiators": ["user", "scheduler"],
                           "max_per_day": 50, "rate_limit": {"max_calls": 5, "window_seconds": 60}},
                "executable_operations": [{
                    "enabled_executable_id": "exe_bank", "provider_id": "bank", "operation_id": "payments.create",
                    "catalog_revision": "2026-01", "minimum_evidence_mode": "receipt",
                    "definition_fingerprint": "sha256:9b74c9897bac770ffc029102a200c5de4f2a5bd2b0da7de3a7b1e6bcb8e9c1f0"
                }]
            }]
        });
        let edition = PolicyView {
            policy_ref: allowly_core::policy::PolicyRef {
                policy_id: "payments".into(),
                policy_version: 3,
                definition_sha256: "ab".into(),
            },
            definition: definition.clone(),
            description: Some("d".into()),
            created_by: None,
            created_at: None,
            deleted_at: None,
        };
        let draft = BundleForm::of_edition(&edition).draft(Some(&definition));
        let resent = allowly_core::policy::Definition::parse(&json!({
            "agent_id": draft.body["agent_id"], "actions": draft.body["actions"],
            "default_expiry_days": draft.body["default_expiry_days"],
        }))
        .unwrap();
        assert_eq!(resent.sha256, allowly_core::policy::Definition::parse(&definition).unwrap().sha256);
        assert_eq!(
            BundleForm::of_edition(&edition).actions[0].conditions,
            "[\n  {\"id\": \"big\", \"decision\": \"deny\", \"target\": null, \"conditions\": [{\"field\": \"amount\", \"op\": \"gt\", \"value\": 5}]}\n]"
        );
        assert_eq!(draft.body["previous_policy_ref"]["policy_version"], 3);
        assert_eq!(draft.body["description"], "d");
    }
}
