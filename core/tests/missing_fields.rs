//! Absence never makes an answer more permissive than presence could: a rule stricter than `allow`
//! with a condition on a field the context leaves out applies as if it matched, with reason
//! `context_field_missing` (docs/policy-format.md, "How conditions read the context"). `exists`
//! tests presence itself and is the one operator that does not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use allowly_core::model::{AuthorizationCreate, Resolution};
use allowly_core::policy::Decision::{self, Allow, Confirm, Deny, Escalate};
use allowly_core::policy::{ActionEntry, Definition, Evaluation};
use common::{both, outcome, signed, Fixture};
use serde_json::{json, Map, Value};

fn entry(decision: &str, target: Value, fields: Value, rules: Value) -> ActionEntry {
    let definition = json!({
        "agent_id": "agent", "default_expiry_days": 30,
        "actions": [{"policy": {"action": "act", "decision": decision, "target": target, "fields": fields,
                                "rules": rules}}]
    });
    Definition::parse(&definition).unwrap().action("act").unwrap().clone()
}

fn rule(id: &str, decision: &str, conditions: Value) -> Value {
    let target = match decision {
        "confirm" => json!("agent_owner"),
        "escalate" => json!(format!("member:{id}")),
        _ => Value::Null,
    };
    json!({"id": id, "decision": decision, "target": target, "conditions": conditions})
}

fn eval(entry: &ActionEntry, context: Value) -> Evaluation {
    let Value::Object(map) = context else { panic!("a context is an object") };
    entry.evaluate(&map).unwrap()
}

/// `(decision, matched rule, context_field_missing)` of a one-condition `confirm` rule on field
/// `f` of type `declared`, in an `allow` action.
fn one(declared: &str, op: &str, value: Value, context: Value) -> (Decision, Option<String>, bool) {
    let e = entry(
        "allow",
        Value::Null,
        json!({"f": declared}),
        json!([rule("r", "confirm", json!([{"field": "f", "op": op, "value": value}]))]),
    );
    let result = eval(&e, context);
    (result.decision, result.matched_rule_id, result.context_field_missing)
}

#[test]
fn every_operator_but_exists_applies_when_its_field_is_missing() {
    let cases = [
        ("string", "eq", json!("a"), json!("b")),
        ("string", "ne", json!("a"), json!("a")),
        ("integer", "gt", json!(10), json!(1)),
        ("integer", "gte", json!(10), json!(1)),
        ("integer", "lt", json!(10), json!(11)),
        ("integer", "lte", json!(10), json!(11)),
        ("string", "in", json!(["a", "b"]), json!("c")),
        ("string", "not_in", json!(["a", "b"]), json!("a")),
        ("list", "contains_any", json!(["x"]), json!(["y"])),
        ("list", "contains_none", json!(["x"]), json!(["x"])),
        ("list", "empty", json!(true), json!(["x"])),
        ("list", "empty", json!(false), json!([])),
        ("boolean", "eq", json!(true), json!(false)),
        ("null", "ne", Value::Null, Value::Null),
    ];
    for (declared, op, operand, non_matching) in cases {
        let missing = one(declared, op, operand.clone(), json!({"other": 1}));
        assert_eq!(missing, (Confirm, Some("r".into()), true), "{op} {operand} on a missing {declared}");
        // The same condition on a value that is there and does not match: nothing applies.
        let present = one(declared, op, operand.clone(), json!({"f": non_matching}));
        assert_eq!(present, (Allow, None, false), "{op} {operand} on {non_matching}");
    }
}

#[test]
fn exists_tests_presence_itself() {
    assert_eq!(one("string", "exists", json!(true), json!({})), (Allow, None, false));
    assert_eq!(one("string", "exists", json!(false), json!({})), (Confirm, Some("r".into()), false));
    assert_eq!(one("string", "exists", json!(true), json!({"f": "x"})), (Confirm, Some("r".into()), false));
    assert_eq!(one("string", "exists", json!(false), json!({"f": "x"})), (Allow, None, false));
    // A rule whose other condition is `exists` still applies by the missing field of the first.
    let e = entry(
        "allow",
        Value::Null,
        json!({"f": "string", "g": "string"}),
        json!([rule(
            "r",
            "deny",
            json!([{"field": "f", "op": "eq", "value": "x"}, {"field": "g", "op": "exists", "value": true}])
        )]),
    );
    let result = eval(&e, json!({}));
    assert_eq!((result.decision, result.context_field_missing), (Deny, true));
    // `exists: true` alone on a missing field is simply false.
    let e = entry(
        "allow",
        Value::Null,
        json!({"g": "string"}),
        json!([rule("r", "deny", json!([{"field": "g", "op": "exists", "value": true}]))]),
    );
    assert_eq!(eval(&e, json!({})).decision, Allow);
}

#[test]
fn null_is_a_value_and_absence_is_not() {
    // A `null` field sent as null is there: its conditions are evaluated as usual.
    assert_eq!(one("null", "eq", Value::Null, json!({"f": null})), (Confirm, Some("r".into()), false));
    assert_eq!(one("null", "ne", Value::Null, json!({"f": null})), (Allow, None, false));
    assert_eq!(one("null", "exists", json!(true), json!({"f": null})), (Confirm, Some("r".into()), false));
    assert_eq!(one("null", "in", json!([null]), json!({})), (Confirm, Some("r".into()), true));
    // Null for a field of another type is a type error (deny at check time), not an absence.
    let e = entry(
        "allow",
        Value::Null,
        json!({"f": "string"}),
        json!([rule("r", "confirm", json!([{"field": "f", "op": "eq", "value": "a"}]))]),
    );
    let Value::Object(context) = json!({"f": null}) else { unreachable!() };
    assert!(e.evaluate(&context).is_err());
}

#[test]
fn a_missing_field_makes_deny_confirm_and_escalate_rules_apply_but_never_an_allow_rule() {
    let conditions = json!([{"field": "amount", "op": "gt", "value": 100}]);
    for (decision, expected) in [("deny", Deny), ("escalate", Escalate), ("confirm", Confirm)] {
        let e =
            entry("allow", Value::Null, json!({"amount": "integer"}), json!([rule("r", decision, conditions.clone())]));
        let result = eval(&e, json!({}));
        assert_eq!((result.decision, result.context_field_missing), (expected, true), "{decision}");
        assert_eq!(result.target, e.policy.rules[0].target, "{decision}: the rule's own target");
        // The missing field has no value to report: `evaluated_fields` lists only present ones.
        assert_eq!(result.evaluated_fields, Map::new());
    }
    // An allow rule applying by absence could only name itself: it never does.
    let e = entry("allow", Value::Null, json!({"amount": "integer"}), json!([rule("r", "allow", conditions.clone())]));
    let result = eval(&e, json!({}));
    assert_eq!((result.decision, result.matched_rule_id, result.context_field_missing), (Allow, None, false));
    // A rule weaker than the action's decision is ignored, missing field or not.
    let e = entry(
        "escalate",
        json!("member:boss"),
        json!({"amount": "integer"}),
        json!([rule("r", "confirm", conditions)]),
    );
    let result = eval(&e, json!({}));
    assert_eq!((result.decision, result.matched_rule_id, result.context_field_missing), (Escalate, None, false));
}

#[test]
fn several_rules_with_one_field_missing() {
    // Rules in order: escalate on a large amount, escalate on the EU region, deny on a blocked
    // vendor, confirm on an urgent tag.
    let e = entry(
        "allow",
        Value::Null,
        json!({"amount": "integer", "region": "string", "vendor": "string", "tags": "list"}),
        json!([
            rule("large", "escalate", json!([{"field": "amount", "op": "gt", "value": 10000}])),
            rule("eu", "escalate", json!([{"field": "region", "op": "eq", "value": "eu"}])),
            rule("blocked", "deny", json!([{"field": "vendor", "op": "in", "value": ["v_bad"]}])),
            rule("urgent", "confirm", json!([{"field": "tags", "op": "contains_any", "value": ["urgent"]}])),
        ]),
    );
    let full = json!({"amount": 5, "region": "us", "vendor": "v_ok", "tags": []});
    let with = |key: &str, value: Value| {
        let mut context = full.clone();
        context[key] = value;
        context
    };
    let without = |key: &str| {
        let mut context = full.clone();
        context.as_object_mut().unwrap().remove(key);
        context
    };
    let summary = |r: Evaluation| (r.decision, r.matched_rule_id.unwrap_or_default(), r.context_field_missing);
    assert_eq!(summary(eval(&e, full.clone())), (Allow, String::new(), false));

    // The stronger decision wins, whether its rule matched or applies by absence.
    assert_eq!(summary(eval(&e, without("vendor"))), (Deny, "blocked".into(), true));
    assert_eq!(summary(eval(&e, with("tags", json!(["urgent"])))), (Confirm, "urgent".into(), false));
    let urgent_without_amount = {
        let mut context = with("tags", json!(["urgent"]));
        context.as_object_mut().unwrap().remove("amount");
        context
    };
    assert_eq!(summary(eval(&e, urgent_without_amount)), (Escalate, "large".into(), true));
    // At equal strength the first rule wins, whether it matched or lacks its field: `large`
    // comes before `eu`, so, as if it had matched, it routes to its own approver.
    let eu_without_amount = {
        let mut context = with("region", json!("eu"));
        context.as_object_mut().unwrap().remove("amount");
        context
    };
    let result = eval(&e, eu_without_amount);
    assert_eq!((result.matched_rule_id.as_deref(), result.target.as_deref()), (Some("large"), Some("member:large")));
    assert!(result.context_field_missing);
    let eu_without_vendor = {
        let mut context = with("region", json!("eu"));
        context.as_object_mut().unwrap().remove("vendor");
        context
    };
    assert_eq!(summary(eval(&e, eu_without_vendor)), (Deny, "blocked".into(), true));
    // Several rules at the same strength: the first one that matches or lacks its field.
    let region_missing = without("region");
    assert_eq!(summary(eval(&e, region_missing)), (Escalate, "eu".into(), true));
    let large_and_region_missing = {
        let mut context = with("amount", json!(20000));
        context.as_object_mut().unwrap().remove("region");
        context
    };
    assert_eq!(summary(eval(&e, large_and_region_missing)), (Escalate, "large".into(), false));

    // A rule with a condition that matched applies as matched, even if another lacks its field;
    // one whose present conditions failed still applies by the missing one.
    let e = entry(
        "allow",
        Value::Null,
        json!({"a": "integer", "b": "integer"}),
        json!([rule(
            "r",
            "confirm",
            json!([{"field": "a", "op": "gt", "value": 1}, {"field": "b", "op": "gt", "value": 1}])
        )]),
    );
    let result = eval(&e, json!({"a": 5}));
    assert_eq!((result.decision, result.context_field_missing), (Confirm, false));
    assert_eq!(Value::Object(result.evaluated_fields), json!({"a": 5}));
    let result = eval(&e, json!({"a": 0}));
    assert_eq!((result.decision, result.context_field_missing), (Confirm, true));
    assert_eq!(Value::Object(result.evaluated_fields), json!({"a": 0}));
    assert_eq!(eval(&e, json!({"a": 0, "b": 0})).decision, Allow);
}

#[test]
fn an_action_denied_by_itself_reads_no_context() {
    let e = entry(
        "deny",
        Value::Null,
        json!({"a": "integer"}),
        json!([rule("r", "deny", json!([{"field": "a", "op": "gt", "value": 1}]))]),
    );
    let result = eval(&e, json!({}));
    assert_eq!((result.decision, result.matched_rule_id, result.context_field_missing), (Deny, None, false));
}

/// The example policy of the README (examples/policies/support-agent.json).
fn example_policy() -> Value {
    serde_json::from_str(include_str!("../../examples/policies/support-agent.json")).unwrap()
}

fn authorize(f: &Fixture, policy: &Value) -> String {
    f.engine.create_policy(policy).unwrap();
    f.engine
        .create_authorization(&AuthorizationCreate {
            user_id: "user_42".into(),
            policy_id: policy["policy_id"].as_str().unwrap().into(),
            ..Default::default()
        })
        .unwrap()
        .authorization_id
}

#[test]
fn leaving_the_recipient_out_does_not_skip_the_users_confirmation() {
    for (store, f) in both() {
        let id = authorize(&f, &example_policy());
        let response = f.check(&id, &["email.send"], json!({}));
        assert_eq!(outcome(&response, "email.send"), (Confirm, "context_field_missing".into()), "{store}");
        let result = response.results.get("email.send").unwrap();
        assert!(result.confirm_nonce.is_some());
        let eval = result.policy_eval.as_ref().unwrap();
        assert_eq!(
            eval["result"],
            json!({"profile": "allowly.basic.v1", "status": "ok", "decision": "confirm", "target": "agent_owner",
                   "matched_rule_id": "external-recipient", "evaluated_fields": {}})
        );
        // The receipt signs the same answer and verifies.
        let payload = f.verify(&signed(&response, "email.send"));
        assert_eq!(
            (payload["decision"].as_str(), payload["reason"].as_str()),
            (Some("confirm"), Some("context_field_missing"))
        );
        assert_eq!(payload["policy_eval"], *eval);
        assert_eq!(payload["context"], json!({}));

        // Keys nobody tests do not stand in for the missing one.
        let response = f.check(&id, &["email.send"], json!({"recipient": "x@evil.org"}));
        assert_eq!(outcome(&response, "email.send"), (Confirm, "context_field_missing".into()), "{store}");
        // The user's yes to an email of unstated recipient covers that request, not a stated one.
        let nonce = response.results.get("email.send").unwrap().confirm_nonce.clone().unwrap();
        f.engine.resolve_confirmation(&nonce, true, Some(60)).unwrap();
        assert_eq!(outcome(&f.check(&id, &["email.send"], json!({})), "email.send"), (Allow, "user_confirmed".into()));
        let external = f.check(&id, &["email.send"], json!({"recipient_domain": "evil.org"}));
        assert_eq!(outcome(&external, "email.send"), (Confirm, "condition_requires_user_confirmation".into()));
        // Stated and internal: allowed, as before.
        let internal = f.check(&id, &["email.send"], json!({"recipient_domain": "example.com"}));
        assert_eq!(outcome(&internal, "email.send"), (Allow, "authorization_granted_action_active".into()), "{store}");
    }
}

#[test]
fn a_check_reports_context_field_missing_for_deny_confirm_and_escalate() {
    let policy = json!({
        "policy_id": "payments", "agent_id": "payments_bot", "default_expiry_days": 30,
        "actions": [
            {"policy": {"action": "invoice.pay", "decision": "allow", "fields": {"amount": "integer", "verified": "boolean"},
                        "rules": [
                            rule("unverified", "deny", json!([{"field": "verified", "op": "eq", "value": false}])),
                            rule("cfo", "escalate", json!([{"field": "amount", "op": "gt", "value": 10000}])),
                        ]}},
            {"policy": {"action": "invoice.read", "decision": "allow", "fields": {"tags": "list"},
                        "rules": [rule("review", "confirm", json!([{"field": "tags", "op": "contains_none", "value": ["ok"]}]))]}},
        ]
    });
    for (store, f) in both() {
        let id = authorize(&f, &policy);
        let reason = |action: &str, context: Value| outcome(&f.check(&id, &[action], context), action);
        assert_eq!(reason("invoice.pay", json!({"amount": 5})), (Deny, "context_field_missing".into()), "{store}");
        assert_eq!(
            reason("invoice.pay", json!({"amount": 5, "verified": false})),
            (Deny, "deny_condition_matched".into())
        );
        assert_eq!(reason("invoice.pay", json!({"verified": true})), (Escalate, "context_field_missing".into()));
        assert_eq!(reason("invoice.pay", json!({"amount": 5, "verified": true})).0, Allow);
        assert_eq!(reason("invoice.read", json!({})), (Confirm, "context_field_missing".into()));
        assert_eq!(reason("invoice.read", json!({"tags": ["ok"]})).0, Allow);

        // An escalation opened for a missing field is approved and used like any other.
        let response = f.check(&id, &["invoice.pay"], json!({"verified": true}));
        let result = response.results.get("invoice.pay").unwrap();
        assert_eq!(result.escalation_to.as_deref(), Some("member:cfo"));
        f.verify(&signed(&response, "invoice.pay"));
        let escalation_id = result.escalation_id.clone().unwrap();
        f.engine.resolve_escalation(&escalation_id, Resolution::Approved, "cfo", None).unwrap();
        assert_eq!(reason("invoice.pay", json!({"verified": true})), (Allow, "escalation_approved".into()), "{store}");
    }
}

#[test]
fn a_preview_shows_the_rule_a_missing_field_applies() {
    let f = common::memory();
    let mut definition = example_policy();
    for key in ["policy_id", "description"] {
        definition.as_object_mut().unwrap().remove(key);
    }
    let preview = f.engine.preview_policy(&definition, "email.send", &json!({})).unwrap();
    assert_eq!(preview["policy_eval"]["result"]["decision"], "confirm");
    assert_eq!(preview["policy_eval"]["result"]["matched_rule_id"], "external-recipient");
    assert_eq!(preview["policy_eval"]["result"]["evaluated_fields"], json!({}));
}
