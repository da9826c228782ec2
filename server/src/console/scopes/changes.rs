//! What changed from one edition of a bundle to the next, in words (`email.send: allow → confirm`),
//! for the notice after a publish.

use allowly_core::model::PolicyView;
use serde_json::Value;

/// The guards, with the words the console uses for them.
const GUARDS: [(&str, &str); 4] = [
    ("resource_pattern", "resource pattern"),
    ("allowed_initiators", "initiators"),
    ("max_per_day", "daily cap"),
    ("rate_limit", "rate limit"),
];

/// Each change from `before` to `after`, one line each.
pub fn between(before: &PolicyView, after: &PolicyView) -> Vec<String> {
    let (old, new) = (&before.definition, &after.definition);
    let mut changes = Vec::new();
    if old["agent_id"] != new["agent_id"] {
        changes.push(format!("agent: {} → {}", shown(&old["agent_id"]), shown(&new["agent_id"])));
    }
    if old["default_expiry_days"] != new["default_expiry_days"] {
        changes.push(format!(
            "default expiry days: {} → {}",
            shown(&old["default_expiry_days"]),
            shown(&new["default_expiry_days"])
        ));
    }
    if before.description != after.description {
        changes.push("description changed".to_string());
    }
    let (old_actions, new_actions) = (entries(old), entries(new));
    for (name, entry) in &new_actions {
        match old_actions.iter().find(|(old_name, _)| old_name == name) {
            None => changes.push(format!("{name}: added ({})", verb(entry))),
            Some((_, old_entry)) => action_changes(name, old_entry, entry, &mut changes),
        }
    }
    for (name, _) in old_actions.iter().filter(|(name, _)| !new_actions.iter().any(|(n, _)| n == name)) {
        changes.push(format!("{name}: removed"));
    }
    changes
}

fn action_changes(name: &str, old: &Value, new: &Value, changes: &mut Vec<String>) {
    let (old_verb, new_verb) = (verb(old), verb(new));
    if old_verb != new_verb {
        changes.push(format!("{name}: {old_verb} → {new_verb}"));
    }
    for (key, words) in GUARDS {
        let (before, after) = (&old["guards"][key], &new["guards"][key]);
        if before != after {
            changes.push(format!("{name}: {words} {} → {}", shown(before), shown(after)));
        }
    }
    if old["policy"]["fields"] != new["policy"]["fields"] {
        changes.push(format!("{name}: context fields changed"));
    }
    let (old_rules, new_rules) = (&old["policy"]["rules"], &new["policy"]["rules"]);
    if old_rules != new_rules {
        let count = |rules: &Value| rules.as_array().map_or(0, Vec::len);
        changes.push(format!("{name}: conditions changed ({} → {} rules)", count(old_rules), count(new_rules)));
    }
    if old["executable_operations"] != new["executable_operations"] {
        changes.push(format!("{name}: executable operations changed"));
    }
}

/// The actions of a definition by name.
fn entries(definition: &Value) -> Vec<(String, &Value)> {
    definition["actions"]
        .as_array()
        .map(|actions| {
            actions
                .iter()
                .map(|entry| (entry["policy"]["action"].as_str().unwrap_or_default().to_string(), entry))
                .collect()
        })
        .unwrap_or_default()
}

/// An action's decision, with the approver of an escalation (`escalate (member:cfo)`).
pub fn verb(entry: &Value) -> String {
    let decision = entry["policy"]["decision"].as_str().unwrap_or("?");
    match entry["policy"]["target"].as_str() {
        Some(approver) if decision == "escalate" => format!("{decision} ({approver})"),
        _ => decision.to_string(),
    }
}

/// A definition value in a sentence: `none` for null, lists joined, a rate limit in words.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "none".to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(", "),
        Value::Object(map) if map.contains_key("max_calls") => {
            format!("{} per {} s", shown(&value["max_calls"]), shown(&value["window_seconds"]))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use allowly_core::policy::PolicyRef;
    use serde_json::json;

    fn edition(actions: Value, description: Option<&str>) -> PolicyView {
        PolicyView {
            policy_ref: PolicyRef { policy_id: "p".into(), policy_version: 1, definition_sha256: String::new() },
            definition: json!({"agent_id": "bot", "default_expiry_days": 30, "actions": actions}),
            description: description.map(str::to_string),
            created_by: None,
            created_at: None,
            deleted_at: None,
        }
    }

    fn action(name: &str, decision: &str, target: Value, guards: Value) -> Value {
        json!({"policy": {"action": name, "decision": decision, "target": target, "fields": {}, "rules": []},
               "guards": guards, "executable_operations": []})
    }

    #[test]
    fn changes_read_as_sentences() {
        let before = edition(
            json!([
                action("email.send", "allow", Value::Null, json!({})),
                action("refund.issue", "escalate", json!("member:a"), json!({"max_per_day": 5})),
                action("gone", "deny", Value::Null, json!({}))
            ]),
            None,
        );
        let after = edition(
            json!([
                action("email.send", "confirm", json!("agent_owner"), json!({"allowed_initiators": ["user", "cron"]})),
                action(
                    "refund.issue",
                    "escalate",
                    json!("member:b"),
                    json!({"rate_limit": {"max_calls": 5, "window_seconds": 60}})
                ),
                action("new.one", "allow", Value::Null, json!({}))
            ]),
            Some("now described"),
        );
        assert_eq!(
            between(&before, &after),
            [
                "description changed",
                "email.send: allow → confirm",
                "email.send: initiators none → user, cron",
                "refund.issue: escalate (member:a) → escalate (member:b)",
                "refund.issue: daily cap 5 → none",
                "refund.issue: rate limit none → 5 per 60 s",
                "new.one: added (allow)",
                "gone: removed",
            ]
        );
        assert!(between(&before, &before).is_empty());
    }
}
