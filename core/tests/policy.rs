//! Policy definitions (`allowly.policy.v1`) and `allowly.basic.v1` evaluation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use allowly_core::canonical;
use allowly_core::policy::{
    glob_match, ActionEntry, Decision, Definition, EvalError, EvidenceMode, PolicyCreate, PolicyError, PolicyRef,
    RateLimit, MAX_REPORTED_ERRORS,
};
use allowly_core::{Allowly, FieldError};
use serde_json::{json, Map, Value};

/// The 0.8.0 README example (wire reference §4.4).
fn readme() -> Value {
    json!({
        "profile": "allowly.policy.v1",
        "agent_id": "research_agent",
        "actions": [{
            "policy": {
                "profile": "allowly.basic.v1",
                "action": "web.search",
                "decision": "allow",
                "target": null,
                "fields": {"risk": "integer"},
                "rules": [{
                    "id": "review-high-risk",
                    "decision": "confirm",
                    "target": "agent_owner",
                    "conditions": [{"field": "risk", "op": "gte", "value": 2}]
                }]
            },
            "guards": {},
            "executable_operations": []
        }],
        "default_expiry_days": 30
    })
}

/// Computed once with the reference `allowly_receipt_format.canonicalize` (5.0.0).
const README_SHA256: &str = "5ccef10e06720c4c302e4e5ccdf0f475c3c54ef44e3c625b33efc5b00cffba97";
const README_INPUT_RISK_2: &str = "f8a3cb4bc0d4809084a12b5c8ccc72b2eead8b00ae03f7c0204faf0e66fe085a";
const README_INPUT_RISK_1: &str = "ea72e3c081fad0eba4673d7f177eb7b06cacded2a827806d6b9059b50f76f4ad";

fn ctx(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("context must be an object, got {other}"),
    }
}

/// A one-action definition around `policy`.
fn definition_of(policy: Value) -> Value {
    json!({
        "profile": "allowly.policy.v1",
        "agent_id": "agent",
        "actions": [{"policy": policy, "guards": {}, "executable_operations": []}],
        "default_expiry_days": null
    })
}

/// The single action of a definition built from a basic policy's parts.
fn action(decision: &str, target: Value, fields: Value, rules: Value) -> ActionEntry {
    let policy = json!({
        "profile": "allowly.basic.v1", "action": "act", "decision": decision, "target": target,
        "fields": fields, "rules": rules
    });
    let definition = Definition::parse(&definition_of(policy)).unwrap();
    definition.action("act").unwrap().clone()
}

fn rule(id: &str, decision: &str, target: Value, conditions: Value) -> Value {
    json!({"id": id, "decision": decision, "target": target, "conditions": conditions})
}

/// A rule that matches when the boolean field `hit_<id>` is true.
fn flag_rule(id: &str, decision: &str, target: Value) -> Value {
    rule(id, decision, target, json!([{"field": format!("hit_{id}"), "op": "eq", "value": true}]))
}

fn flags(ids: &[&str]) -> Value {
    Value::Object(ids.iter().map(|id| (format!("hit_{id}"), json!("boolean"))).collect())
}

fn reject(value: &Value) -> PolicyError {
    match Definition::parse(value) {
        Ok(_) => panic!("definition should be rejected: {value}"),
        Err(err) => err,
    }
}

/// The paths of every reported error, in order.
fn paths(err: &PolicyError) -> Vec<&str> {
    err.fields().iter().map(|f| f.field.as_str()).collect()
}

/// The one error of a rejection that must have exactly one.
fn only(err: PolicyError) -> FieldError {
    assert_eq!(err.fields().len(), 1, "expected exactly one error: {err}");
    err.fields()[0].clone()
}

/// Applies `edit` to the README example and expects a rejection with exactly one error, at `field`.
fn rejected_at(field: &str, edit: impl FnOnce(&mut Value)) -> FieldError {
    let mut value = readme();
    edit(&mut value);
    let err = reject(&value);
    assert_eq!(paths(&err), [field], "wrong errors for {value}: {err}");
    assert_eq!(err.to_string(), format!("invalid `{field}`: {}", err.fields()[0].message));
    only(err)
}

fn at<'a>(value: &'a mut Value, pointer: &str) -> &'a mut Value {
    value.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}"))
}

fn obj<'a>(value: &'a mut Value, pointer: &str) -> &'a mut Map<String, Value> {
    at(value, pointer).as_object_mut().unwrap()
}

const POLICY: &str = "/actions/0/policy";
const RULE: &str = "/actions/0/policy/rules/0";
const CONDITION: &str = "/actions/0/policy/rules/0/conditions/0";

// ---- the README example ----

#[test]
fn readme_example_parses_and_digests_like_the_reference() {
    let definition = Definition::parse(&readme()).unwrap();
    assert_eq!(definition.sha256, README_SHA256);
    assert_eq!(definition.sha256, canonical::canonical_sha256_hex(&readme()).unwrap());
    assert_eq!(definition.json, readme());
    assert_eq!(definition.agent_id, "research_agent");
    assert_eq!(definition.default_expiry_days, Some(30));
    assert_eq!(definition.action_names().collect::<Vec<_>>(), ["web.search"]);
    assert!(definition.action("web.read").is_none());
    let entry = definition.action("web.search").unwrap();
    assert_eq!(entry.policy.decision, Decision::Allow);
    assert_eq!(entry.guards, Default::default());
}

#[test]
fn readme_example_preview() {
    let definition = Definition::parse(&readme()).unwrap();
    let entry = definition.action("web.search").unwrap();

    let high = entry.evaluate(&ctx(json!({"risk": 2}))).unwrap();
    assert_eq!(high.decision, Decision::Confirm);
    assert_eq!(high.target.as_deref(), Some("agent_owner"));
    assert_eq!(high.matched_rule_id.as_deref(), Some("review-high-risk"));
    assert_eq!(Value::Object(high.evaluated_fields.clone()), json!({"risk": 2}));

    let low = entry.evaluate(&ctx(json!({"risk": 1}))).unwrap();
    assert_eq!(low.decision, Decision::Allow);
    assert_eq!(low.target, None);
    assert_eq!(low.matched_rule_id, None);
    assert!(low.evaluated_fields.is_empty());

    let input = entry.input_sha256(&json!({"risk": 2})).unwrap();
    assert_eq!(input, README_INPUT_RISK_2);
    assert_eq!(
        high.to_policy_eval(&input),
        json!({
            "input_sha256": README_INPUT_RISK_2,
            "result": {
                "profile": "allowly.basic.v1", "status": "ok", "decision": "confirm", "target": "agent_owner",
                "matched_rule_id": "review-high-risk", "evaluated_fields": {"risk": 2}
            }
        })
    );
    assert_eq!(entry.input_sha256(&json!({"risk": 1})).unwrap(), README_INPUT_RISK_1);
    assert_eq!(
        low.to_policy_eval("00"),
        json!({"input_sha256": "00", "result": {"profile": "allowly.basic.v1", "status": "ok", "decision": "allow",
               "target": null, "matched_rule_id": null, "evaluated_fields": {}}})
    );
}

#[test]
fn input_sha256_equals_the_slow_way() {
    let mut value = readme();
    // Keys that sort differently by UTF-16 and by code point, escapes, and a second action.
    let mut second = at(&mut value, "/actions/0").clone();
    *at(&mut second, "/policy/action") = json!("😀.x");
    *at(&mut second, "/policy/fields") = json!({"｡": "string", "😀": "list", "risk": "integer"});
    *at(&mut second, "/policy/rules/0/conditions") = json!([
        {"field": "😀", "op": "contains_any", "value": ["a\"\\\n", 1, true, null]},
        {"field": "｡", "op": "in", "value": ["x", "y/z"]}
    ]);
    value["actions"].as_array_mut().unwrap().push(second);
    let definition = Definition::parse(&value).unwrap();
    assert_eq!(definition.sha256, canonical::canonical_sha256_hex(&value).unwrap());

    let contexts = [
        json!({}),
        json!({"risk": 3, "｡": "x", "😀": ["a"], "nested": {"b": [1, {"a": null}], "a": "line\n\t"}}),
        json!({"initiated_by": "user", "session_id": "sess_7f2"}),
    ];
    for (i, entry) in definition.actions.iter().enumerate() {
        for context in &contexts {
            let slow =
                json!({"policy": value["actions"][i]["policy"], "action": entry.policy.action, "context": context});
            assert_eq!(entry.input_sha256(context).unwrap(), canonical::canonical_sha256_hex(&slow).unwrap());
        }
    }
    // A context the canonicalizer refuses is an error, not a digest.
    assert!(definition.actions[0].input_sha256(&json!({"x": 1.5})).is_err());
    assert!(definition.actions[0].input_sha256(&json!({"x": 9007199254740992_i64})).is_err());
}

/// The context is spliced into the input, but the input's own depth and node limits still apply.
#[test]
fn input_sha256_fails_exactly_when_the_slow_way_does() {
    let definition = Definition::parse(&readme()).unwrap();
    let entry = definition.action("web.search").unwrap();
    let policy = &readme()["actions"][0]["policy"];
    let agree = |context: &Value| {
        let slow =
            canonical::canonical_sha256_hex(&json!({"policy": policy, "action": "web.search", "context": context}));
        assert_eq!(entry.input_sha256(context).ok(), slow.ok(), "context of {} values", count(context));
        entry.input_sha256(context).is_ok()
    };
    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(map) => map.values().map(count).sum(),
            _ => 0,
        }
    }
    fn nested(depth: usize) -> Value {
        (1..depth).fold(json!({}), |inner, _| json!({ "a": inner }))
    }
    // Depth 32 is fine on its own but one level too deep inside the input document.
    assert!(canonical::to_canonical_vec(&nested(32)).is_ok());
    assert!(agree(&nested(31)));
    assert!(!agree(&nested(32)));

    // The node limit counts the root, the action and the policy too.
    let room = canonical::MAX_NODES - 2 - count(policy);
    let wide = |values: usize| json!({ "a": vec![0; values - 2] });
    assert!(agree(&wide(room)));
    assert!(!agree(&wide(room + 1)));
}

// ---- decision semantics ----

#[test]
fn action_deny_always_wins() {
    let entry = action("deny", Value::Null, flags(&["a"]), json!([flag_rule("a", "deny", Value::Null)]));
    let result = entry.evaluate(&ctx(json!({"hit_a": true}))).unwrap();
    assert_eq!((result.decision, result.matched_rule_id, result.target), (Decision::Deny, None, None));
    assert!(result.evaluated_fields.is_empty());
    // Nothing is read, so an ill-typed field cannot turn it into an error either.
    assert_eq!(entry.evaluate(&ctx(json!({"hit_a": 1}))).unwrap().decision, Decision::Deny);
}

#[test]
fn rules_cannot_weaken() {
    let entry = action(
        "escalate",
        json!("member:usr_1"),
        flags(&["c", "a"]),
        json!([flag_rule("c", "confirm", json!("agent_owner")), flag_rule("a", "allow", Value::Null)]),
    );
    let result = entry.evaluate(&ctx(json!({"hit_c": true, "hit_a": true}))).unwrap();
    assert_eq!(result.decision, Decision::Escalate);
    assert_eq!(result.target.as_deref(), Some("member:usr_1"));
    assert_eq!(result.matched_rule_id, None);
    assert!(result.evaluated_fields.is_empty());
}

#[test]
fn a_tie_with_the_action_goes_to_the_rule() {
    let entry = action(
        "escalate",
        json!("member:usr_1"),
        flags(&["e"]),
        json!([flag_rule("e", "escalate", json!("member:usr_2"))]),
    );
    let result = entry.evaluate(&ctx(json!({"hit_e": true}))).unwrap();
    assert_eq!(result.decision, Decision::Escalate);
    assert_eq!(result.target.as_deref(), Some("member:usr_2"));
    assert_eq!(result.matched_rule_id.as_deref(), Some("e"));
    assert_eq!(Value::Object(result.evaluated_fields), json!({"hit_e": true}));

    let allow = action("allow", Value::Null, flags(&["a"]), json!([flag_rule("a", "allow", Value::Null)]));
    let result = allow.evaluate(&ctx(json!({"hit_a": true}))).unwrap();
    assert_eq!((result.decision, result.matched_rule_id.as_deref()), (Decision::Allow, Some("a")));
}

#[test]
fn the_strongest_matching_rule_wins_and_the_first_breaks_ties() {
    let entry = action(
        "allow",
        Value::Null,
        flags(&["c", "e1", "e2", "d1", "d2"]),
        json!([
            flag_rule("c", "confirm", json!("agent_owner")),
            flag_rule("e1", "escalate", json!("member:one")),
            flag_rule("e2", "escalate", json!("member:two")),
            flag_rule("d1", "deny", Value::Null),
            flag_rule("d2", "deny", Value::Null),
        ]),
    );
    // Every flag is sent, false unless set: a missing one would apply its rule (context_field_missing).
    let eval = |context: Value| {
        let mut full = ctx(json!({"hit_c": false, "hit_e1": false, "hit_e2": false, "hit_d1": false, "hit_d2": false}));
        full.extend(ctx(context));
        entry.evaluate(&full).unwrap()
    };

    let all = eval(json!({"hit_c": true, "hit_e1": true, "hit_e2": true, "hit_d1": true, "hit_d2": true}));
    assert_eq!((all.decision, all.matched_rule_id.as_deref()), (Decision::Deny, Some("d1")));
    assert_eq!(Value::Object(all.evaluated_fields), json!({"hit_d1": true}));

    let d2 = eval(json!({"hit_c": true, "hit_d2": true}));
    assert_eq!(d2.matched_rule_id.as_deref(), Some("d2"));

    let escalations = eval(json!({"hit_c": true, "hit_e2": true, "hit_e1": true, "hit_d1": false}));
    assert_eq!(escalations.decision, Decision::Escalate);
    assert_eq!(escalations.matched_rule_id.as_deref(), Some("e1"));
    assert_eq!(escalations.target.as_deref(), Some("member:one"));

    let none = eval(json!({"hit_c": false}));
    assert_eq!((none.decision, none.matched_rule_id), (Decision::Allow, None));
}

#[test]
fn a_rule_matches_if_any_condition_matches() {
    let entry = action(
        "allow",
        Value::Null,
        json!({"risk": "integer", "country": "string", "vip": "boolean"}),
        json!([rule(
            "r",
            "confirm",
            json!("agent_owner"),
            json!([
                {"field": "risk", "op": "gt", "value": 5},
                {"field": "country", "op": "in", "value": ["KP", "IR"]}
            ])
        )]),
    );
    let eval = |context: Value| entry.evaluate(&ctx(context)).unwrap();
    assert_eq!(eval(json!({"risk": 1, "country": "FR"})).decision, Decision::Allow);
    assert_eq!(eval(json!({"risk": 9, "country": "FR"})).decision, Decision::Confirm);
    let by_country = eval(json!({"risk": 1, "country": "IR", "vip": true, "other": [1.5]}));
    assert_eq!(by_country.decision, Decision::Confirm);
    // Every field the rule names that is present, not just the one that matched.
    assert_eq!(Value::Object(by_country.evaluated_fields), json!({"risk": 1, "country": "IR"}));
    let partial = eval(json!({"country": "KP"}));
    assert_eq!(Value::Object(partial.evaluated_fields), json!({"country": "KP"}));
}

/// Does a single condition `{field, op, value}` on a field of type `declared` match `context`?
fn matches(declared: &str, op: &str, value: Value, context: Value) -> bool {
    let entry = action(
        "allow",
        Value::Null,
        json!({"f": declared}),
        json!([rule("r", "confirm", json!("agent_owner"), json!([{"field": "f", "op": op, "value": value}]))]),
    );
    let result = entry.evaluate(&ctx(context)).unwrap();
    result.decision == Decision::Confirm
}

#[test]
fn scalar_operators() {
    let f = |v: Value| json!({ "f": v });
    assert!(matches("integer", "eq", json!(3), f(json!(3))));
    assert!(!matches("integer", "eq", json!(3), f(json!(4))));
    assert!(matches("integer", "ne", json!(3), f(json!(4))));
    assert!(!matches("integer", "ne", json!(3), f(json!(3))));
    assert!(matches("integer", "gt", json!(3), f(json!(4))));
    assert!(!matches("integer", "gt", json!(3), f(json!(3))));
    assert!(matches("integer", "gte", json!(3), f(json!(3))));
    assert!(!matches("integer", "gte", json!(3), f(json!(2))));
    assert!(matches("integer", "lt", json!(-3), f(json!(-4))));
    assert!(!matches("integer", "lt", json!(3), f(json!(3))));
    assert!(matches("integer", "lte", json!(3), f(json!(3))));
    assert!(!matches("integer", "lte", json!(3), f(json!(4))));
    assert!(matches("integer", "gte", json!(9007199254740991_i64), f(json!(9007199254740991_i64))));
    assert!(matches("string", "eq", json!("a"), f(json!("a"))));
    assert!(!matches("string", "eq", json!("a"), f(json!("A"))));
    assert!(matches("string", "in", json!(["a", "b"]), f(json!("b"))));
    assert!(!matches("string", "in", json!(["a", "b"]), f(json!("c"))));
    assert!(!matches("string", "in", json!([]), f(json!("c"))));
    assert!(matches("string", "not_in", json!(["a", "b"]), f(json!("c"))));
    assert!(!matches("string", "not_in", json!(["a", "b"]), f(json!("a"))));
    assert!(matches("string", "not_in", json!([]), f(json!("c"))));
    assert!(matches("boolean", "eq", json!(false), f(json!(false))));
    assert!(matches("boolean", "ne", json!(false), f(json!(true))));
    assert!(matches("null", "eq", Value::Null, f(Value::Null)));
    assert!(!matches("null", "ne", Value::Null, f(Value::Null)));
    assert!(matches("null", "in", json!([null]), f(Value::Null)));
}

#[test]
fn list_operators() {
    let f = |v: Value| json!({ "f": v });
    assert!(matches("list", "contains_any", json!(["a", 1]), f(json!(["x", 1]))));
    assert!(!matches("list", "contains_any", json!(["a", 1]), f(json!(["x", 2]))));
    assert!(!matches("list", "contains_any", json!(["a"]), f(json!([]))));
    assert!(matches("list", "contains_none", json!(["a", 1]), f(json!(["x", 2]))));
    assert!(matches("list", "contains_none", json!(["a"]), f(json!([]))));
    assert!(!matches("list", "contains_none", json!(["a", 1]), f(json!([1]))));
    assert!(matches("list", "contains_any", json!([null, false]), f(json!([false]))));
    assert!(matches("list", "empty", json!(true), f(json!([]))));
    assert!(!matches("list", "empty", json!(true), f(json!([null]))));
    assert!(matches("list", "empty", json!(false), f(json!([null]))));
    assert!(!matches("list", "empty", json!(false), f(json!([]))));
    // Strict types inside lists too.
    assert!(!matches("list", "contains_any", json!([1]), f(json!(["1", true]))));
    assert!(!matches("list", "contains_any", json!([true]), f(json!([1]))));
    assert!(matches("list", "contains_none", json!([true]), f(json!([1]))));
}

#[test]
fn exists_and_missing_fields() {
    let none = json!({});
    assert!(matches("string", "exists", json!(true), json!({"f": "x"})));
    assert!(!matches("string", "exists", json!(true), none.clone()));
    assert!(matches("string", "exists", json!(false), none.clone()));
    assert!(!matches("string", "exists", json!(false), json!({"f": "x"})));
    assert!(matches("list", "exists", json!(true), json!({"f": []})));
    // Present null is present.
    assert!(matches("null", "exists", json!(true), json!({"f": null})));
    // Every other operator applies on an absent field, negative ones included: the field could have
    // held a matching value (context_field_missing; tests/missing_fields.rs has the details).
    for (declared, op, value) in [
        ("integer", "eq", json!(1)),
        ("integer", "ne", json!(1)),
        ("integer", "gt", json!(1)),
        ("integer", "gte", json!(1)),
        ("integer", "lt", json!(1)),
        ("integer", "lte", json!(1)),
        ("string", "in", json!(["a"])),
        ("string", "not_in", json!(["a"])),
        ("null", "eq", Value::Null),
        ("list", "contains_any", json!(["a"])),
        ("list", "contains_none", json!(["a"])),
        ("list", "empty", json!(true)),
        ("list", "empty", json!(false)),
    ] {
        assert!(matches(declared, op, value, none.clone()), "{declared} {op} on a missing field");
    }
}

#[test]
fn context_types_are_strict() {
    let entry = action(
        "allow",
        Value::Null,
        json!({"n": "integer", "b": "boolean", "s": "string", "z": "null", "l": "list", "unused": "integer"}),
        json!([rule(
            "r",
            "confirm",
            json!("agent_owner"),
            json!([
                {"field": "n", "op": "eq", "value": 1},
                {"field": "b", "op": "eq", "value": true},
                {"field": "s", "op": "exists", "value": true},
                {"field": "z", "op": "ne", "value": null},
                {"field": "l", "op": "empty", "value": false}
            ])
        )]),
    );
    let type_error = |context: Value| entry.evaluate(&ctx(context)).unwrap_err();
    let expect = |field: &str, expected: &str, context: Value| {
        let EvalError::FieldType { field: got, expected: wanted } = type_error(context);
        assert_eq!((got.as_str(), wanted), (field, expected));
    };
    expect("n", "a safe integer", json!({"n": true}));
    expect("n", "a safe integer", json!({"n": 1.0}));
    expect("n", "a safe integer", json!({"n": 9007199254740992_i64}));
    expect("n", "a safe integer", json!({"n": "1"}));
    expect("b", "a boolean", json!({"b": 1}));
    expect("s", "a string", json!({"s": null}));
    expect("z", "null", json!({"z": 0}));
    expect("l", "an array of strings, integers, booleans or nulls", json!({"l": "a"}));
    expect("l", "an array of strings, integers, booleans or nulls", json!({"l": [[1]]}));
    expect("l", "an array of strings, integers, booleans or nulls", json!({"l": [{"a": 1}]}));
    expect("l", "an array of strings, integers, booleans or nulls", json!({"l": [0.5]}));
    assert_eq!(type_error(json!({"b": 1})).to_string(), "context field `b` must be a boolean");

    // Declared fields no rule reads, and undeclared keys, are not checked. (Every tested field but
    // `s`, whose `exists` reads absence as an answer, is sent: a missing one would apply the rule.)
    let ok = entry.evaluate(&ctx(json!({"unused": "x", "other": 1.5, "n": 2, "b": false, "z": null, "l": []})));
    assert_eq!(ok.unwrap().decision, Decision::Allow);
    // `true` is not `1`: a rule on `n == 1` does not fire for a boolean that is never compared.
    let boolean = entry.evaluate(&ctx(json!({"b": false, "n": 2, "z": null, "l": []}))).unwrap();
    assert_eq!(boolean.decision, Decision::Allow);
}

#[test]
fn booleans_and_integers_never_compare_equal() {
    let f = |v: Value| json!({ "f": v });
    assert!(!matches("list", "contains_any", json!([1]), f(json!([true]))));
    assert!(!matches("list", "contains_any", json!([0]), f(json!([false, null, "0"]))));
    assert!(!matches("list", "contains_any", json!([null]), f(json!([false, 0, ""]))));
    let entry = action(
        "allow",
        Value::Null,
        json!({"f": "integer"}),
        json!([rule("r", "confirm", json!("agent_owner"), json!([{"field": "f", "op": "eq", "value": 1}]))]),
    );
    assert!(entry.evaluate(&ctx(json!({"f": true}))).is_err());
}

// ---- guards ----

#[test]
fn guards_parse_and_apply() {
    let mut value = readme();
    *at(&mut value, "/actions/0/guards") = json!({
        "resource_pattern": "docs/*.md",
        "allowed_initiators": ["user", "scheduler"],
        "max_per_day": 100,
        "rate_limit": {"max_calls": 5, "window_seconds": 60}
    });
    let definition = Definition::parse(&value).unwrap();
    let guards = &definition.actions[0].guards;
    assert_eq!(guards.max_per_day, Some(100));
    assert_eq!(guards.rate_limit, Some(RateLimit { max_calls: 5, window_seconds: 60 }));

    assert!(guards.resource_allowed(Some("docs/a/b.md")));
    assert!(!guards.resource_allowed(Some("src/a.md")));
    assert!(!guards.resource_allowed(None));
    assert!(guards.initiator_allowed(&ctx(json!({"initiated_by": "user"}))));
    assert!(!guards.initiator_allowed(&ctx(json!({"initiated_by": "agent"}))));
    assert!(!guards.initiator_allowed(&ctx(json!({"initiated_by": ["user"]}))));
    assert!(!guards.initiator_allowed(&ctx(json!({}))));

    let open = &Definition::parse(&readme()).unwrap().actions[0].guards;
    assert!(open.resource_allowed(None));
    assert!(open.resource_allowed(Some("anything")));
    assert!(open.initiator_allowed(&ctx(json!({}))));
}

#[test]
fn executable_operations_parse() {
    let mut value = readme();
    *at(&mut value, "/actions/0/executable_operations") = json!([{
        "enabled_executable_id": "ex_1", "provider_id": "prov", "operation_id": "op", "catalog_revision": "r1",
        "definition_fingerprint": format!("sha256:{}", "a".repeat(64)), "minimum_evidence_mode": "witnessed"
    }]);
    let definition = Definition::parse(&value).unwrap();
    let grant = &definition.actions[0].executable_operations[0];
    assert_eq!(grant.operation_id, "op");
    assert_eq!(grant.minimum_evidence_mode, EvidenceMode::Witnessed);
}

// ---- validation: one rejection per rule, with the offending field's path ----

#[test]
fn definition_shape() {
    assert_eq!(only(reject(&json!([]))).field, "definition");
    rejected_at("extra", |v| {
        obj(v, "").insert("extra".into(), json!(1));
    });
    rejected_at("agent_id", |v| {
        obj(v, "").remove("agent_id");
    });
    rejected_at("actions", |v| {
        obj(v, "").remove("actions");
    });
    rejected_at("profile", |v| v["profile"] = json!("allowly.policy.v2"));
    rejected_at("agent_id", |v| v["agent_id"] = json!(""));
    rejected_at("agent_id", |v| v["agent_id"] = json!("a".repeat(129)));
    rejected_at("agent_id", |v| v["agent_id"] = json!(7));
    // Lengths count characters, not bytes.
    let mut long = readme();
    long["agent_id"] = json!("é".repeat(128));
    assert!(Definition::parse(&long).is_ok());
    for bad in [json!(0), json!(3651), json!(true), json!(30.0), json!(1.5), json!("30")] {
        rejected_at("default_expiry_days", |v| v["default_expiry_days"] = bad);
    }
    let mut ok = readme();
    ok["default_expiry_days"] = json!(3650);
    assert_eq!(Definition::parse(&ok).unwrap().default_expiry_days, Some(3650));
    ok["default_expiry_days"] = Value::Null;
    assert_eq!(Definition::parse(&ok).unwrap().default_expiry_days, None);
}

#[test]
fn action_limits() {
    rejected_at("actions", |v| v["actions"] = json!([]));
    rejected_at("actions", |v| v["actions"] = json!({}));
    let entry = readme()["actions"][0].clone();
    let numbered = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| {
                let mut e = entry.clone();
                e["policy"]["action"] = json!(format!("act.{i}"));
                e
            })
            .collect()
    };
    let mut ok = readme();
    ok["actions"] = Value::Array(numbered(32));
    assert_eq!(Definition::parse(&ok).unwrap().actions.len(), 32);
    rejected_at("actions", |v| v["actions"] = Value::Array(numbered(33)));
}

#[test]
fn action_entry_and_policy_keys() {
    rejected_at("actions[0].extra", |v| {
        obj(v, "/actions/0").insert("extra".into(), json!(null));
    });
    rejected_at("actions[0].policy", |v| {
        obj(v, "/actions/0").remove("policy");
    });
    rejected_at("actions[0]", |v| *at(v, "/actions/0") = json!("web.search"));
    rejected_at("actions[0].policy.extra", |v| {
        obj(v, POLICY).insert("extra".into(), json!(null));
    });
    for key in ["action", "decision"] {
        rejected_at(&format!("actions[0].policy.{key}"), |v| {
            obj(v, POLICY).remove(key);
        });
    }
    rejected_at("actions[0].policy.profile", |v| *at(v, "/actions/0/policy/profile") = json!("allowly.basic.v2"));
}

#[test]
fn action_names() {
    rejected_at("actions[0].policy.action", |v| *at(v, "/actions/0/policy/action") = json!(""));
    rejected_at("actions[0].policy.action", |v| *at(v, "/actions/0/policy/action") = json!("a".repeat(65)));
    for reserved in ["allow", "deny", "confirm", "escalate"] {
        rejected_at("actions[0].policy.action", |v| *at(v, "/actions/0/policy/action") = json!(reserved));
    }
    let err = rejected_at("actions[1].policy.action", |v| {
        let copy = v["actions"][0].clone();
        v["actions"].as_array_mut().unwrap().push(copy);
    });
    assert!(err.message.contains("`web.search`"), "{err:?}");
    let mut ok = readme();
    *at(&mut ok, "/actions/0/policy/action") = json!("a".repeat(64));
    assert!(Definition::parse(&ok).is_ok());
}

#[test]
fn decisions_and_targets() {
    let decision = "actions[0].policy.decision";
    let target = "actions[0].policy.target";
    let set = |d: Value, t: Value| {
        move |v: &mut Value| {
            *at(v, "/actions/0/policy/decision") = d;
            *at(v, "/actions/0/policy/target") = t;
        }
    };
    rejected_at(decision, set(json!("Allow"), Value::Null));
    rejected_at(decision, set(json!(null), Value::Null));
    rejected_at(target, set(json!("allow"), json!("agent_owner")));
    rejected_at(target, set(json!("deny"), json!("")));
    rejected_at(target, set(json!("confirm"), Value::Null));
    rejected_at(target, set(json!("confirm"), json!("member:x")));
    rejected_at(target, set(json!("escalate"), json!("agent_owner")));
    rejected_at(target, set(json!("escalate"), json!("member:")));
    rejected_at(target, set(json!("escalate"), json!("member: \t\u{3000}")));
    // Python's `strip()` also removes the information separators U+001C..U+001F.
    rejected_at(target, set(json!("escalate"), json!("member:\u{1c}\u{1f}")));
    rejected_at(target, set(json!("escalate"), json!(format!("member:{}", "u".repeat(129)))));
    rejected_at(target, set(json!("escalate"), json!("Member:usr_1")));
    rejected_at(target, set(json!("escalate"), json!("member:usr\u{0}1")));
    rejected_at(target, set(json!("escalate"), Value::Null));

    let mut ok = readme();
    set(json!("escalate"), json!(format!("member: {}", "u".repeat(127))))(&mut ok);
    let definition = Definition::parse(&ok).unwrap();
    assert_eq!(definition.actions[0].policy.decision, Decision::Escalate);
    set(json!("deny"), Value::Null)(&mut ok);
    assert!(Definition::parse(&ok).is_ok());

    // The same rules apply to rules.
    rejected_at("actions[0].policy.rules[0].target", |v| *at(v, "/actions/0/policy/rules/0/target") = json!(null));
    rejected_at("actions[0].policy.rules[0].decision", |v| {
        *at(v, "/actions/0/policy/rules/0/decision") = json!("block")
    });
}

#[test]
fn fields() {
    let many: Map<String, Value> = (0..65).map(|i| (format!("f{i}"), json!("string"))).collect();
    let mut at_limit = many.clone();
    at_limit.remove("f64");
    at_limit.insert("risk".into(), json!("integer"));
    at_limit.remove("f0");
    let mut ok = readme();
    *at(&mut ok, "/actions/0/policy/fields") = Value::Object(at_limit);
    assert!(Definition::parse(&ok).is_ok());

    rejected_at("actions[0].policy.fields", |v| {
        let mut over = many;
        over.insert("risk".into(), json!("integer"));
        *at(v, "/actions/0/policy/fields") = Value::Object(over);
    });
    rejected_at("actions[0].policy.fields", |v| *at(v, "/actions/0/policy/fields") = json!([]));
    rejected_at("actions[0].policy.fields.risk", |v| *at(v, "/actions/0/policy/fields/risk") = json!("number"));
    rejected_at("actions[0].policy.fields.risk", |v| *at(v, "/actions/0/policy/fields/risk") = json!("Integer"));
    rejected_at("actions[0].policy.fields", |v| {
        obj(v, "/actions/0/policy/fields").insert(String::new(), json!("string"));
    });
    rejected_at("actions[0].policy.fields", |v| {
        obj(v, "/actions/0/policy/fields").insert("f".repeat(129), json!("string"));
    });
}

#[test]
fn rules() {
    let rules = |n: usize| -> Value {
        (0..n)
            .map(|i| {
                rule(
                    &format!("r{i}"),
                    "confirm",
                    json!("agent_owner"),
                    json!([{"field": "risk", "op": "gte", "value": 2}]),
                )
            })
            .collect()
    };
    let mut ok = readme();
    *at(&mut ok, "/actions/0/policy/rules") = rules(32);
    assert!(Definition::parse(&ok).is_ok());
    *at(&mut ok, "/actions/0/policy/rules") = json!([]);
    assert!(Definition::parse(&ok).is_ok());
    rejected_at("actions[0].policy.rules", |v| *at(v, "/actions/0/policy/rules") = rules(33));
    rejected_at("actions[0].policy.rules", |v| *at(v, "/actions/0/policy/rules") = json!({}));

    rejected_at("actions[0].policy.rules[0].extra", |v| {
        obj(v, RULE).insert("extra".into(), json!(1));
    });
    for key in ["id", "decision", "conditions"] {
        rejected_at(&format!("actions[0].policy.rules[0].{key}"), |v| {
            obj(v, RULE).remove(key);
        });
    }
    rejected_at("actions[0].policy.rules[0].id", |v| *at(v, "/actions/0/policy/rules/0/id") = json!(""));
    rejected_at("actions[0].policy.rules[0].id", |v| *at(v, "/actions/0/policy/rules/0/id") = json!("i".repeat(129)));
    let err = rejected_at("actions[0].policy.rules[1].id", |v| {
        let copy = at(v, RULE).clone();
        at(v, "/actions/0/policy/rules").as_array_mut().unwrap().push(copy);
    });
    assert!(err.message.contains("`review-high-risk`"), "{err:?}");

    let conditions = |n: usize| Value::Array(vec![json!({"field": "risk", "op": "gte", "value": 2}); n]);
    *at(&mut ok, "/actions/0/policy/rules") = rules(1);
    *at(&mut ok, "/actions/0/policy/rules/0/conditions") = conditions(10);
    assert!(Definition::parse(&ok).is_ok());
    let path = "actions[0].policy.rules[0].conditions";
    rejected_at(path, |v| *at(v, "/actions/0/policy/rules/0/conditions") = conditions(11));
    rejected_at(path, |v| *at(v, "/actions/0/policy/rules/0/conditions") = conditions(0));
}

/// Replaces the README's condition and expects a rejection at `conditions[0].<leaf>`.
fn bad_condition(leaf: &str, fields: Value, condition: Value) -> FieldError {
    let path = format!("actions[0].policy.rules[0].conditions[0]{leaf}");
    rejected_at(&path, |v| {
        *at(v, "/actions/0/policy/fields") = fields;
        *at(v, CONDITION) = condition;
    })
}

fn good_condition(fields: Value, condition: Value) {
    let mut value = readme();
    *at(&mut value, "/actions/0/policy/fields") = fields;
    *at(&mut value, CONDITION) = condition.clone();
    if let Err(err) = Definition::parse(&value) {
        panic!("{condition} should be accepted: {err}");
    }
}

#[test]
fn condition_shape_and_fields() {
    let risk = json!({"risk": "integer"});
    bad_condition(".extra", risk.clone(), json!({"field": "risk", "op": "eq", "value": 1, "extra": 1}));
    bad_condition(".value", risk.clone(), json!({"field": "risk", "op": "eq"}));
    bad_condition(".op", risk.clone(), json!({"field": "risk", "value": 1}));
    bad_condition(".field", risk.clone(), json!({"op": "eq", "value": 1}));
    bad_condition("", risk.clone(), json!(["risk", "eq", 1]));
    let err = bad_condition(".field", risk.clone(), json!({"field": "score", "op": "eq", "value": 1}));
    assert!(err.message.contains("`score`"), "{err:?}");
    bad_condition(".field", risk.clone(), json!({"field": "", "op": "eq", "value": 1}));
    bad_condition(".op", risk.clone(), json!({"field": "risk", "op": "neq", "value": 1}));
    bad_condition(".op", risk.clone(), json!({"field": "risk", "op": "EQ", "value": 1}));
    bad_condition(".op", risk, json!({"field": "risk", "op": null, "value": 1}));
}

#[test]
fn condition_value_typing() {
    let typed = |t: &str| json!({ "f": t });
    let c = |op: &str, value: Value| json!({"field": "f", "op": op, "value": value});

    // exists: any field type, a boolean value.
    for t in ["string", "integer", "boolean", "null", "list"] {
        good_condition(typed(t), c("exists", json!(false)));
    }
    bad_condition(".value", typed("string"), c("exists", json!(1)));
    bad_condition(".value", typed("string"), c("exists", json!("true")));

    // Single scalars of the declared type.
    good_condition(typed("string"), c("eq", json!("x")));
    good_condition(typed("string"), c("ne", json!("")));
    good_condition(typed("integer"), c("ne", json!(-9007199254740991_i64)));
    good_condition(typed("boolean"), c("eq", json!(true)));
    good_condition(typed("null"), c("ne", Value::Null));
    bad_condition(".value", typed("integer"), c("eq", json!(true)));
    bad_condition(".value", typed("boolean"), c("eq", json!(1)));
    bad_condition(".value", typed("string"), c("eq", json!(1)));
    bad_condition(".value", typed("null"), c("eq", json!("null")));
    bad_condition(".value", typed("integer"), c("eq", json!(1.0)));
    bad_condition(".value", typed("integer"), c("eq", json!(2.5)));
    bad_condition(".value", typed("integer"), c("gte", json!(9007199254740992_i64)));
    bad_condition(".value", typed("integer"), c("gte", json!(-9007199254740992_i64)));
    bad_condition(".value", typed("integer"), c("eq", json!(u64::MAX)));
    bad_condition(".value", typed("integer"), c("eq", json!([1])));
    bad_condition(".value", typed("integer"), c("eq", json!({"a": 1})));
    bad_condition(".value", typed("string"), c("eq", json!("a\u{0}b")));

    // Ordered comparisons only on integers.
    good_condition(typed("integer"), c("lt", json!(0)));
    bad_condition(".op", typed("string"), c("gt", json!("a")));
    bad_condition(".op", typed("boolean"), c("lte", json!(true)));

    // in / not_in: up to 64 values of the declared type.
    good_condition(typed("string"), c("in", json!([])));
    good_condition(typed("integer"), c("not_in", Value::Array((0..64).map(|i| json!(i)).collect())));
    bad_condition(".value", typed("integer"), c("in", Value::Array((0..65).map(|i| json!(i)).collect())));
    bad_condition(".value", typed("integer"), c("in", json!(1)));
    bad_condition(".value[1]", typed("integer"), c("in", json!([1, true])));
    bad_condition(".value[1]", typed("integer"), c("in", json!([1, 2.5])));
    bad_condition(".value[0]", typed("string"), c("not_in", json!([null])));
    bad_condition(".value[0]", typed("string"), c("in", json!([["a"]])));
}

#[test]
fn list_field_misuse() {
    let list = json!({"tags": "list"});
    let c = |op: &str, value: Value| json!({"field": "tags", "op": op, "value": value});
    good_condition(list.clone(), c("contains_any", json!(["a", 1, true, null])));
    good_condition(list.clone(), c("contains_none", Value::Array((0..64).map(|i| json!(i)).collect())));
    good_condition(list.clone(), c("empty", json!(true)));
    good_condition(list.clone(), c("exists", json!(true)));

    for op in ["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in"] {
        bad_condition(".op", list.clone(), c(op, json!(["a"])));
    }
    bad_condition(".value", list.clone(), c("contains_any", json!([])));
    bad_condition(".value", list.clone(), c("contains_any", json!("a")));
    bad_condition(".value", list.clone(), c("contains_none", Value::Array((0..65).map(|i| json!(i)).collect())));
    bad_condition(".value[1]", list.clone(), c("contains_any", json!(["a", ["b"]])));
    bad_condition(".value[0]", list.clone(), c("contains_any", json!([{"a": 1}])));
    bad_condition(".value[0]", list.clone(), c("contains_none", json!([0.5])));
    bad_condition(".value[0]", list.clone(), c("contains_none", json!([9007199254740992_i64])));
    bad_condition(".value", list.clone(), c("empty", json!(1)));
    bad_condition(".value", list, c("empty", json!([])));

    // List operators need a list field.
    let string = json!({"tags": "string"});
    bad_condition(".op", string.clone(), c("empty", json!(true)));
    bad_condition(".op", string.clone(), c("contains_any", json!(["a"])));
    bad_condition(".op", string, c("contains_none", json!(["a"])));
}

#[test]
fn guards_validation() {
    let guards = |g: Value| move |v: &mut Value| *at(v, "/actions/0/guards") = g;
    rejected_at("actions[0].guards", guards(json!(null)));
    rejected_at("actions[0].guards.max_calls", guards(json!({"max_calls": 1})));
    rejected_at("actions[0].guards.resource_pattern", guards(json!({"resource_pattern": ""})));
    rejected_at("actions[0].guards.resource_pattern", guards(json!({"resource_pattern": "p".repeat(257)})));
    rejected_at("actions[0].guards.resource_pattern", guards(json!({"resource_pattern": null})));
    rejected_at("actions[0].guards.resource_pattern", guards(json!({"resource_pattern": "a\u{0}"})));
    rejected_at("actions[0].guards.allowed_initiators", guards(json!({"allowed_initiators": []})));
    rejected_at("actions[0].guards.allowed_initiators", guards(json!({"allowed_initiators": "user"})));
    let many: Vec<String> = (0..129).map(|i| format!("u{i}")).collect();
    rejected_at("actions[0].guards.allowed_initiators", guards(json!({ "allowed_initiators": many })));
    rejected_at("actions[0].guards.allowed_initiators[1]", guards(json!({"allowed_initiators": ["user", "user"]})));
    rejected_at("actions[0].guards.allowed_initiators[0]", guards(json!({"allowed_initiators": [""]})));
    rejected_at("actions[0].guards.allowed_initiators[0]", guards(json!({"allowed_initiators": [1]})));
    rejected_at("actions[0].guards.max_per_day", guards(json!({"max_per_day": 0})));
    rejected_at("actions[0].guards.max_per_day", guards(json!({"max_per_day": 1.0})));
    rejected_at("actions[0].guards.max_per_day", guards(json!({"max_per_day": true})));
    rejected_at("actions[0].guards.max_per_day", guards(json!({"max_per_day": 9007199254740992_i64})));
    rejected_at("actions[0].guards.rate_limit", guards(json!({"rate_limit": 5})));
    rejected_at(
        "actions[0].guards.rate_limit.burst",
        guards(json!({"rate_limit": {"max_calls": 1, "window_seconds": 1, "burst": 1}})),
    );
    rejected_at("actions[0].guards.rate_limit.window_seconds", guards(json!({"rate_limit": {"max_calls": 1}})));
    rejected_at(
        "actions[0].guards.rate_limit.max_calls",
        guards(json!({"rate_limit": {"max_calls": 0, "window_seconds": 1}})),
    );
    rejected_at(
        "actions[0].guards.rate_limit.window_seconds",
        guards(json!({"rate_limit": {"max_calls": 1, "window_seconds": 86401}})),
    );
    rejected_at(
        "actions[0].guards.rate_limit.window_seconds",
        guards(json!({"rate_limit": {"max_calls": 1, "window_seconds": 0}})),
    );

    let mut ok = readme();
    let initiators: Vec<String> = (0..128).map(|i| format!("u{i}")).collect();
    guards(json!({
        "resource_pattern": "p".repeat(256), "allowed_initiators": initiators, "max_per_day": 9007199254740991_i64,
        "rate_limit": {"max_calls": 1, "window_seconds": 86400}
    }))(&mut ok);
    assert!(Definition::parse(&ok).is_ok());
}

fn grant(executable: &str, operation: &str) -> Value {
    json!({
        "enabled_executable_id": executable, "provider_id": "prov", "operation_id": operation,
        "catalog_revision": "rev", "definition_fingerprint": format!("sha256:{}", "0".repeat(64)),
        "minimum_evidence_mode": "receipt"
    })
}

#[test]
fn executable_operations_validation() {
    let ops = "/actions/0/executable_operations";
    let with = |grants: Value| move |v: &mut Value| *at(v, ops) = grants;
    rejected_at("actions[0].executable_operations", with(json!({})));
    let many: Vec<Value> = (0..101).map(|i| grant("ex", &format!("op{i}"))).collect();
    rejected_at("actions[0].executable_operations", with(Value::Array(many.clone())));
    let mut ok = readme();
    with(Value::Array(many[..100].to_vec()))(&mut ok);
    assert!(Definition::parse(&ok).is_ok());

    let field = |key: &str, value: Value| {
        let mut g = grant("ex", "op");
        g[key] = value;
        json!([g])
    };
    let path = |key: &str| format!("actions[0].executable_operations[0].{key}");
    for key in ["enabled_executable_id", "provider_id", "operation_id", "catalog_revision"] {
        rejected_at(&path(key), with(field(key, json!(""))));
        rejected_at(&path(key), with(field(key, json!("x".repeat(129)))));
    }
    let fingerprint = "definition_fingerprint";
    rejected_at(&path(fingerprint), with(field(fingerprint, json!("0".repeat(64)))));
    rejected_at(&path(fingerprint), with(field(fingerprint, json!(format!("sha256:{}", "A".repeat(64))))));
    rejected_at(&path(fingerprint), with(field(fingerprint, json!(format!("sha256:{}", "0".repeat(63))))));
    rejected_at(&path(fingerprint), with(field(fingerprint, json!(format!("sha256:{}\n", "0".repeat(64))))));
    rejected_at(&path("minimum_evidence_mode"), with(field("minimum_evidence_mode", json!("none"))));
    rejected_at(&path("extra"), with(field("extra", json!(1))));
    rejected_at("actions[0].executable_operations[0].provider_id", |v| {
        let mut g = grant("ex", "op");
        g.as_object_mut().unwrap().remove("provider_id");
        *at(v, ops) = json!([g]);
    });

    // An (executable, operation) pair belongs to one action only, and appears once.
    rejected_at("actions[0].executable_operations[1]", with(json!([grant("ex", "op"), grant("ex", "op")])));
    rejected_at("actions[1].executable_operations[0]", |v| {
        *at(v, ops) = json!([grant("ex", "op")]);
        let mut second = v["actions"][0].clone();
        second["policy"]["action"] = json!("web.read");
        v["actions"].as_array_mut().unwrap().push(second);
    });
    with(json!([grant("ex", "op"), grant("ex", "op2"), grant("ex2", "op")]))(&mut ok);
    assert!(Definition::parse(&ok).is_ok());
}

#[test]
fn nul_is_rejected_everywhere() {
    rejected_at("agent_id", |v| v["agent_id"] = json!("agent\u{0}"));
    rejected_at("actions[0].policy.action", |v| *at(v, "/actions/0/policy/action") = json!("web\u{0}search"));
    rejected_at("actions[0].policy.rules[0].id", |v| *at(v, "/actions/0/policy/rules/0/id") = json!("\u{0}"));
    let err = rejected_at("actions[0].policy.fields", |v| {
        obj(v, "/actions/0/policy/fields").insert("r\u{0}".into(), json!("integer"));
    });
    assert!(err.message.contains("nul"), "{err:?}");
    rejected_at("actions[0].policy.rules[0].conditions[0].value[0]", |v| {
        *at(v, "/actions/0/policy/fields") = json!({"risk": "list"});
        *at(v, CONDITION) = json!({"field": "risk", "op": "contains_any", "value": ["\u{0}"]});
    });
    rejected_at("actions[0].guards.allowed_initiators[0]", |v| {
        *at(v, "/actions/0/guards") = json!({"allowed_initiators": ["u\u{0}"]});
    });
    rejected_at("actions[0].executable_operations[0].operation_id", |v| {
        *at(v, "/actions/0/executable_operations") = json!([grant("ex", "o\u{0}")]);
    });
    // An unknown key with a NUL is still just an unknown key.
    rejected_at("actions[0].guards.\u{0}", |v| *at(v, "/actions/0/guards") = json!({"\u{0}": 1}));
}

#[test]
fn canonical_size_limit() {
    // 31 more actions, each with long strings, push the definition past 64 KiB.
    let mut big = readme();
    let entry = big["actions"][0].clone();
    let actions = big["actions"].as_array_mut().unwrap();
    for i in 1..32 {
        let mut e = entry.clone();
        e["policy"]["action"] = json!(format!("act.{i}"));
        e["guards"] = json!({"allowed_initiators": (0..20).map(|j| format!("{j:0>120}")).collect::<Vec<_>>()});
        actions.push(e);
    }
    let size = canonical::to_canonical_vec(&big).unwrap().len();
    assert!(size > 65_536, "{size}");
    let err = only(reject(&big));
    assert_eq!(err.field, "definition");
    assert!(err.message.contains("65536"), "{err:?}");

    // Just under the limit is fine.
    let actions = big["actions"].as_array_mut().unwrap();
    actions.truncate(20);
    assert!(canonical::to_canonical_vec(&big).unwrap().len() <= 65_536);
    assert!(Definition::parse(&big).is_ok());
}

#[test]
fn errors_render_with_field_and_convert() {
    let err = rejected_at("actions[0].policy.rules[0].conditions[0].value", |v| {
        *at(v, "/actions/0/policy/rules/0/conditions/0/value") = json!(2.5)
    });
    let mut value = readme();
    *at(&mut value, "/actions/0/policy/rules/0/conditions/0/value") = json!(2.5);
    let whole = reject(&value);
    assert!(whole.to_string().starts_with("invalid `actions[0].policy.rules[0].conditions[0].value`: "), "{whole}");
    assert_eq!(whole.count(), 1);
    let engine: allowly_core::Error = whole.clone().into();
    assert_eq!(engine.code(), "invalid_request");
    assert_eq!(engine.http_status(), Some(422));
    assert_eq!(engine.fields(), [err]);
    assert_eq!(engine.to_string(), whole.to_string());
}

// ---- defaults ----

/// The README example with every key that has a default left out.
fn readme_minimal() -> Value {
    json!({
        "agent_id": "research_agent",
        "actions": [{
            "policy": {
                "action": "web.search",
                "decision": "allow",
                "fields": {"risk": "integer"},
                "rules": [{
                    "id": "review-high-risk",
                    "decision": "confirm",
                    "conditions": [{"field": "risk", "op": "gte", "value": 2}]
                }]
            }
        }],
        "default_expiry_days": 30
    })
}

/// Removes the member at a JSON pointer.
fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    assert!(obj(value, parent).remove(key).is_some(), "no {pointer}");
}

#[test]
fn a_minimal_definition_is_the_full_one() {
    let minimal = Definition::parse(&readme_minimal()).unwrap();
    let full = Definition::parse(&readme()).unwrap();
    assert_eq!(minimal.json, readme());
    assert_eq!(minimal.sha256, README_SHA256);
    assert_eq!(minimal.sha256, full.sha256);
    // What receipts commit to is the full policy too: the reference digests of the full form.
    let entry = minimal.action("web.search").unwrap();
    assert_eq!(entry.input_sha256(&json!({"risk": 2})).unwrap(), README_INPUT_RISK_2);
    assert_eq!(entry.input_sha256(&json!({"risk": 1})).unwrap(), README_INPUT_RISK_1);
    let high = entry.evaluate(&ctx(json!({"risk": 2}))).unwrap();
    assert_eq!((high.decision, high.target.as_deref()), (Decision::Confirm, Some("agent_owner")));
    assert_eq!(
        high.to_policy_eval("00"),
        full.actions[0].evaluate(&ctx(json!({"risk": 2}))).unwrap().to_policy_eval("00")
    );
    // The input's node limit counts the full policy, as for the full form.
    let room = canonical::MAX_NODES - 2 - count_nodes(&readme()["actions"][0]["policy"]);
    let wide = |values: usize| json!({ "a": vec![0; values - 2] });
    assert!(entry.input_sha256(&wide(room)).is_ok());
    assert!(entry.input_sha256(&wide(room + 1)).is_err());
    // The stored form parses to itself.
    let again = Definition::parse(&minimal.json).unwrap();
    assert_eq!((&again.json, &again.sha256), (&minimal.json, &minimal.sha256));
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

#[test]
fn every_default() {
    let smallest = json!({"agent_id": "a", "actions": [{"policy": {"action": "act", "decision": "allow"}}]});
    let definition = Definition::parse(&smallest).unwrap();
    let full = json!({
        "profile": "allowly.policy.v1",
        "agent_id": "a",
        "actions": [{
            "policy": {"profile": "allowly.basic.v1", "action": "act", "decision": "allow", "target": null,
                       "fields": {}, "rules": []},
            "guards": {},
            "executable_operations": []
        }],
        "default_expiry_days": null
    });
    assert_eq!(definition.json, full);
    assert_eq!(definition.sha256, canonical::canonical_sha256_hex(&full).unwrap());
    assert_eq!(definition.default_expiry_days, None);
    let entry = &definition.actions[0];
    assert_eq!(entry.guards, Default::default());
    assert!(entry.executable_operations.is_empty());
    assert!(entry.policy.fields.is_empty() && entry.policy.rules.is_empty());
    assert_eq!((entry.policy.decision, entry.policy.target.as_deref()), (Decision::Allow, None));
    assert_eq!(
        entry.input_sha256(&json!({})).unwrap(),
        Definition::parse(&full).unwrap().actions[0].input_sha256(&json!({})).unwrap()
    );

    // Leaving out any one key is writing its default.
    for pointer in [
        "/profile",
        "/default_expiry_days",
        "/actions/0/guards",
        "/actions/0/executable_operations",
        "/actions/0/policy/profile",
        "/actions/0/policy/target",
        "/actions/0/policy/fields",
        "/actions/0/policy/rules",
    ] {
        let mut without = full.clone();
        remove(&mut without, pointer);
        let parsed = Definition::parse(&without).unwrap_or_else(|err| panic!("without {pointer}: {err}"));
        assert_eq!((&parsed.json, &parsed.sha256), (&full, &definition.sha256), "without {pointer}");
    }
    // And in a create body.
    let created = PolicyCreate::parse(&json!({"policy_id": "p", "agent_id": "a",
                                              "actions": [{"policy": {"action": "act", "decision": "allow"}}]}))
    .unwrap();
    assert_eq!((created.definition.json, created.definition.sha256), (full, definition.sha256));
}

#[test]
fn a_left_out_target_follows_the_decision() {
    for (decision, target) in [("allow", Value::Null), ("deny", Value::Null), ("confirm", json!("agent_owner"))] {
        let policy = json!({"agent_id": "a", "actions": [{"policy": {"action": "act", "decision": decision}}]});
        let definition = Definition::parse(&policy).unwrap();
        assert_eq!(definition.json["actions"][0]["policy"]["target"], target, "{decision}");
        assert_eq!(definition.actions[0].policy.target.as_deref(), target.as_str(), "{decision}");

        let rule =
            json!({"id": "r", "decision": decision, "conditions": [{"field": "f", "op": "exists", "value": true}]});
        let policy = json!({"agent_id": "a", "actions": [{"policy": {
            "action": "act", "decision": "allow", "fields": {"f": "string"}, "rules": [rule]
        }}]});
        let definition = Definition::parse(&policy).unwrap();
        let full_rule = &definition.json["actions"][0]["policy"]["rules"][0];
        assert_eq!(
            full_rule,
            &json!({"id": "r", "decision": decision, "target": target,
                                       "conditions": [{"field": "f", "op": "exists", "value": true}]})
        );
        let entry = &definition.actions[0];
        assert_eq!(entry.policy.rules[0].target.as_deref(), target.as_str(), "{decision}");
        let matched = entry.evaluate(&ctx(json!({"f": "x"}))).unwrap();
        assert_eq!((matched.decision.as_str(), matched.target.as_deref()), (decision, target.as_str()));
    }

    // `escalate` has no default: its approver must be named, on a policy and on a rule.
    let err = reject(&json!({"agent_id": "a", "actions": [{"policy": {
        "action": "act", "decision": "escalate", "fields": {"f": "string"},
        "rules": [{"id": "r", "decision": "escalate", "conditions": [{"field": "f", "op": "exists", "value": true}]}]
    }}]}));
    assert_eq!(paths(&err), ["actions[0].policy.target", "actions[0].policy.rules[0].target"]);
    assert!(err.fields().iter().all(|f| f.message.contains("member:<account_user_id>")), "{err}");
}

#[test]
fn defaults_do_not_excuse_wrong_values() {
    rejected_at("profile", |v| v["profile"] = Value::Null);
    rejected_at("profile", |v| v["profile"] = json!("allowly.basic.v1"));
    rejected_at("actions[0].guards", |v| *at(v, "/actions/0/guards") = json!([]));
    rejected_at("actions[0].executable_operations", |v| *at(v, "/actions/0/executable_operations") = Value::Null);
    rejected_at("actions[0].policy.profile", |v| *at(v, "/actions/0/policy/profile") = Value::Null);
    rejected_at("actions[0].policy.fields", |v| *at(v, "/actions/0/policy/fields") = Value::Null);
    rejected_at("actions[0].policy.rules", |v| *at(v, "/actions/0/policy/rules") = Value::Null);
    rejected_at("default_expiry_days", |v| v["default_expiry_days"] = json!("30"));
    // A present target must be the one its decision takes.
    let err = rejected_at("actions[0].policy.target", |v| *at(v, "/actions/0/policy/target") = json!("agent_owner"));
    assert!(err.message.contains("must be null for `allow`"), "{err:?}");
    let err =
        rejected_at("actions[0].policy.rules[0].target", |v| *at(v, "/actions/0/policy/rules/0/target") = Value::Null);
    assert!(err.message.contains("must be `agent_owner` for `confirm`"), "{err:?}");
    // Unknown keys stay unknown, defaults or not.
    let err = reject(
        &json!({"agent_id": "a", "actions": [{"policy": {"action": "act", "decision": "allow", "targets": null}}]}),
    );
    assert_eq!(paths(&err), ["actions[0].policy.targets"]);
}

// ---- every error at once ----

#[test]
fn three_mistakes_in_three_places_are_three_errors() {
    let mut value = readme();
    value["agent_id"] = json!("");
    *at(&mut value, "/actions/0/policy/decision") = json!("block");
    *at(&mut value, "/actions/0/policy/rules/0/conditions/0/value") = json!("2");
    let err = reject(&value);
    assert_eq!(
        paths(&err),
        ["agent_id", "actions[0].policy.decision", "actions[0].policy.rules[0].conditions[0].value"]
    );
    assert_eq!(err.count(), 3);
    assert_eq!(
        err.to_string(),
        "the policy has 3 errors: `agent_id`: must be 1 to 128 characters long; \
         `actions[0].policy.decision`: must be one of allow, deny, confirm, escalate; \
         `actions[0].policy.rules[0].conditions[0].value`: must be a safe integer, the declared type of `risk`"
    );
    let engine: allowly_core::Error = err.clone().into();
    assert_eq!(engine.code(), "invalid_request");
    assert_eq!(engine.fields(), err.fields());
    assert_eq!(engine.to_string(), err.to_string());
}

#[test]
fn every_action_rule_and_condition_is_checked() {
    let mut value = readme();
    *at(&mut value, "/actions/0/guards") = json!({"max_per_day": 0});
    let mut second = value["actions"][0].clone();
    second["guards"] = json!({});
    second["policy"]["action"] = json!("web.read");
    second["policy"]["rules"] = json!([
        rule("a", "deny", json!("agent_owner"), json!([{"field": "risk", "op": "gte", "value": 1}])),
        rule(
            "b",
            "confirm",
            json!("agent_owner"),
            json!([
                {"field": "score", "op": "gte", "value": 1},
                {"field": "risk", "op": "lt", "value": true}
            ])
        ),
    ]);
    let actions = value["actions"].as_array_mut().unwrap();
    actions.push(second);
    actions.push(json!("web.write"));
    let err = reject(&value);
    assert_eq!(
        paths(&err),
        [
            "actions[0].guards.max_per_day",
            "actions[1].policy.rules[0].target",
            "actions[1].policy.rules[1].conditions[0].field",
            "actions[1].policy.rules[1].conditions[1].value",
            "actions[2]",
        ]
    );
}

#[test]
fn siblings_are_all_reported() {
    // Every unknown key of an object.
    let err = reject(&{
        let mut v = readme();
        obj(&mut v, "").insert("size".into(), json!(1));
        obj(&mut v, "").insert("color".into(), json!(1));
        obj(&mut v, POLICY).insert("name".into(), json!(1));
        v
    });
    assert_eq!(paths(&err), ["color", "size", "actions[0].policy.name"]);
    // Every bad item of a list.
    let err = reject(&{
        let mut v = readme();
        *at(&mut v, CONDITION) = json!({"field": "risk", "op": "in", "value": [1, true, "x", 2, 2.5]});
        *at(&mut v, "/actions/0/guards") = json!({"allowed_initiators": ["u", "", "u"], "rate_limit": {"burst": 1}});
        v
    });
    assert_eq!(
        paths(&err),
        [
            "actions[0].policy.rules[0].conditions[0].value[1]",
            "actions[0].policy.rules[0].conditions[0].value[2]",
            "actions[0].policy.rules[0].conditions[0].value[4]",
            "actions[0].guards.allowed_initiators[1]",
            "actions[0].guards.allowed_initiators[2]",
            "actions[0].guards.rate_limit.burst",
            "actions[0].guards.rate_limit.max_calls",
            "actions[0].guards.rate_limit.window_seconds",
        ]
    );
    // Every missing key, and each grant's every bad key.
    let err = reject(&json!({"actions": [{"policy": {}, "executable_operations": [{"provider_id": ""}]}]}));
    assert_eq!(
        paths(&err),
        [
            "agent_id",
            "actions[0].policy.action",
            "actions[0].policy.decision",
            "actions[0].executable_operations[0].enabled_executable_id",
            "actions[0].executable_operations[0].provider_id",
            "actions[0].executable_operations[0].operation_id",
            "actions[0].executable_operations[0].catalog_revision",
            "actions[0].executable_operations[0].definition_fingerprint",
            "actions[0].executable_operations[0].minimum_evidence_mode",
        ]
    );
    // Duplicates across the document, next to other errors.
    let err = reject(&{
        let mut v = readme();
        *at(&mut v, "/actions/0/executable_operations") = json!([grant("ex", "op"), grant("ex", "op")]);
        let copy = v["actions"][0]["policy"].clone();
        v["actions"].as_array_mut().unwrap().push(json!({"policy": copy, "guards": 5}));
        v
    });
    assert_eq!(paths(&err), ["actions[0].executable_operations[1]", "actions[1].policy.action", "actions[1].guards"]);
}

#[test]
fn a_value_of_the_wrong_type_hides_only_its_own_children() {
    // The children of a wrong container are not looked at.
    rejected_at("actions[0].policy.rules", |v| {
        *at(v, "/actions/0/policy/rules") = json!({"id": "", "decision": "no", "conditions": 1})
    });
    rejected_at("actions", |v| v["actions"] = json!({"policy": {}}));
    // No operand check without a known operator, no target check without a decision.
    rejected_at("actions[0].policy.rules[0].conditions[0].op", |v| {
        *at(v, CONDITION) = json!({"field": "risk", "op": "between", "value": [1, 2.5]})
    });
    rejected_at("actions[0].policy.decision", |v| {
        *at(v, "/actions/0/policy/decision") = json!("block");
        *at(v, "/actions/0/policy/target") = json!(7);
    });
    // A bad declaration is reported once, not again on each condition that uses the field.
    rejected_at("actions[0].policy.fields.risk", |v| *at(v, "/actions/0/policy/fields/risk") = json!("number"));
    // Unusable `fields`: conditions are still checked for what their operator needs.
    let err = reject(&{
        let mut v = readme();
        *at(&mut v, "/actions/0/policy/fields") = json!([]);
        *at(&mut v, "/actions/0/policy/rules/0/conditions/0/value") = json!(2.5);
        v
    });
    assert_eq!(paths(&err), ["actions[0].policy.fields", "actions[0].policy.rules[0].conditions[0].value"]);
    // The size limit is checked on a definition that is otherwise valid.
    assert!(reject(&json!({"agent_id": "", "actions": []})).fields().iter().all(|f| f.field != "definition"));
}

#[test]
fn a_long_list_of_errors_is_capped_but_counted() {
    let mut value = readme();
    for i in 0..150 {
        obj(&mut value, "").insert(format!("extra_{i:03}"), json!(i));
    }
    let err = reject(&value);
    assert_eq!((err.fields().len(), err.count()), (MAX_REPORTED_ERRORS, 150));
    assert_eq!(err.fields()[0].field, "extra_000");
    assert!(
        err.to_string().starts_with("the policy has 150 errors (the first 100 are listed): `extra_000`: "),
        "{err}"
    );
}

#[test]
fn a_create_body_reports_every_error() {
    let err = PolicyCreate::parse(&json!({
        "policy_id": "Research",
        "description": 5,
        "definition": {"agent_id": "a"},
        "actions": [{"policy": {"action": "act", "decision": "allow", "target": "agent_owner"}}],
        "previous_policy_ref": {"policy_id": "p", "policy_version": 0, "definition_sha256": README_SHA256}
    }))
    .unwrap_err();
    assert_eq!(
        paths(&err),
        [
            "definition",
            "policy_id",
            "description",
            "agent_id",
            "actions[0].policy.target",
            "previous_policy_ref.policy_version"
        ]
    );
    assert!(err.fields()[0].message.contains("top level"), "{err}");
}

#[test]
fn a_nested_definition_names_its_fields_from_the_request() {
    let err = Definition::parse_member(&json!({"agent_id": 1, "actions": [], "x": 0}), "definition").unwrap_err();
    assert_eq!(paths(&err), ["definition.x", "definition.agent_id", "definition.actions"]);
    assert_eq!(paths(&Definition::parse_member(&json!([]), "definition").unwrap_err()), ["definition"]);
    let parsed = Definition::parse_member(&readme_minimal(), "definition").unwrap();
    assert_eq!(parsed.sha256, README_SHA256);
}

#[test]
fn the_engine_stores_reads_back_and_checks_the_full_form() {
    use allowly_core::model::{AuthorizationCreate, CheckRequest};
    let engine = Allowly::in_memory().unwrap();
    let mut minimal = readme_minimal();
    minimal["policy_id"] = json!("minimal");
    let created = engine.create_policy(&minimal).unwrap();
    assert_eq!((&created.definition, created.policy_ref.definition_sha256.as_str()), (&readme(), README_SHA256));
    let got = engine.get_policy("minimal").unwrap();
    assert_eq!((&got.definition, &got.policy_ref), (&readme(), &created.policy_ref));
    // The same definition written out in full is the same edition.
    let mut full = readme();
    full["policy_id"] = json!("minimal");
    assert_eq!(engine.create_policy(&full).unwrap().policy_ref, created.policy_ref);
    let listed = engine.list_policies(10, None).unwrap();
    assert_eq!(listed.items.len(), 1);

    // A check on it commits to the full policy (the reference digest of the README example).
    let auth = engine
        .create_authorization(&AuthorizationCreate {
            user_id: "u".into(),
            policy_id: "minimal".into(),
            ..Default::default()
        })
        .unwrap();
    let response = engine
        .check(&CheckRequest {
            authorization_id: auth.authorization_id,
            actions: vec!["web.search".into()],
            context: Some(json!({"risk": 2})),
            ..Default::default()
        })
        .unwrap();
    let result = response.results.get("web.search").unwrap();
    assert_eq!(result.decision, Decision::Confirm);
    assert_eq!(result.policy_eval.as_ref().unwrap()["input_sha256"], README_INPUT_RISK_2);
    let preview = engine.preview_policy(&readme_minimal(), "web.search", &json!({"risk": 2})).unwrap();
    assert_eq!(preview["definition_sha256"], README_SHA256);
    assert_eq!(preview["policy_eval"]["input_sha256"], README_INPUT_RISK_2);

    // Every error in one answer.
    let err =
        engine.create_policy(&json!({"policy_id": "p", "actions": [{"policy": {"action": "allow"}}]})).unwrap_err();
    assert_eq!(err.code(), "invalid_request");
    let fields: Vec<&str> = err.fields().iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["agent_id", "actions[0].policy.action", "actions[0].policy.decision"]);
    assert!(err.to_string().starts_with("the policy has 3 errors: `agent_id`: is required; "), "{err}");
    let err = engine.preview_policy(&json!({"actions": 1}), "web.search", &json!({})).unwrap_err();
    let fields: Vec<&str> = err.fields().iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["definition.agent_id", "definition.actions"]);
    assert!(engine.get_policy("p").is_err(), "nothing was written");
}

#[test]
fn the_version_history_lists_every_edition_newest_first() {
    let engine = Allowly::in_memory().unwrap();
    let mut body = readme_minimal();
    body["policy_id"] = json!("history");
    let first = engine.create_policy(&body).unwrap();
    body["default_expiry_days"] = json!(7);
    let second = engine.create_policy(&body).unwrap();
    engine.archive_policy("history").unwrap();
    let versions: Vec<i64> =
        engine.policy_editions("history").unwrap().iter().map(|e| e.policy_ref.policy_version).collect();
    assert_eq!(versions, [2, 1], "archived editions stay in the history");
    let editions = engine.policy_editions("history").unwrap();
    assert_eq!((&editions[0].policy_ref, &editions[1].policy_ref), (&second.policy_ref, &first.policy_ref));
    assert_eq!(engine.policy_editions("nothing").unwrap_err().code(), "policy_not_found");
}

// ---- create bodies and references ----

fn create_body() -> Value {
    let mut body = readme();
    obj(&mut body, "").insert("policy_id".into(), json!("research-policy_1"));
    body
}

/// The one error of a create body that must have exactly one.
fn reject_create(body: &Value) -> FieldError {
    match PolicyCreate::parse(body) {
        Ok(_) => panic!("body should be rejected: {body}"),
        Err(err) => only(err),
    }
}

#[test]
fn create_body_parses() {
    let created = PolicyCreate::parse(&create_body()).unwrap();
    assert_eq!(created.policy_id, "research-policy_1");
    assert_eq!(created.description, None);
    assert_eq!(created.previous_policy_ref, None);
    assert_eq!(created.definition.json, readme());
    assert_eq!(created.definition.sha256, README_SHA256);

    let mut body = create_body();
    let previous = json!({"policy_id": "research-policy_1", "policy_version": 3, "definition_sha256": README_SHA256});
    obj(&mut body, "").insert("description".into(), json!("d".repeat(2048)));
    obj(&mut body, "").insert("previous_policy_ref".into(), previous.clone());
    let created = PolicyCreate::parse(&body).unwrap();
    assert_eq!(created.description.as_deref().map(str::len), Some(2048));
    let reference = created.previous_policy_ref.unwrap();
    assert_eq!(reference.policy_version, 3);
    assert_eq!(serde_json::to_value(&reference).unwrap(), previous);
    assert_eq!(serde_json::from_value::<PolicyRef>(previous).unwrap(), reference);

    // Explicit nulls mean "none".
    obj(&mut body, "").insert("description".into(), Value::Null);
    obj(&mut body, "").insert("previous_policy_ref".into(), Value::Null);
    let created = PolicyCreate::parse(&body).unwrap();
    assert_eq!((created.description, created.previous_policy_ref), (None, None));
}

#[test]
fn create_body_rejections() {
    let edit = |f: &dyn Fn(&mut Map<String, Value>)| {
        let mut body = create_body();
        f(body.as_object_mut().unwrap());
        reject_create(&body)
    };
    assert_eq!(reject_create(&json!("x")).field, "body");
    assert_eq!(
        edit(&|b| {
            b.insert("definition".into(), json!({}));
        })
        .field,
        "definition"
    );
    assert_eq!(
        edit(&|b| {
            b.remove("policy_id");
        })
        .field,
        "policy_id"
    );
    assert_eq!(
        edit(&|b| {
            b.remove("agent_id");
        })
        .field,
        "agent_id"
    );
    assert_eq!(
        edit(&|b| {
            b.insert("default_expiry_days".into(), json!("30"));
        })
        .field,
        "default_expiry_days"
    );
    for bad in [json!(""), json!("Research"), json!("a b"), json!("a.b"), json!("p".repeat(129)), json!(1)] {
        assert_eq!(
            edit(&|b| {
                b.insert("policy_id".into(), bad.clone());
            })
            .field,
            "policy_id"
        );
    }
    assert_eq!(
        edit(&|b| {
            b.insert("description".into(), json!("d".repeat(2049)));
        })
        .field,
        "description"
    );
    assert_eq!(
        edit(&|b| {
            b.insert("description".into(), json!(5));
        })
        .field,
        "description"
    );
    assert_eq!(
        edit(&|b| {
            b["agent_id"] = json!("");
        })
        .field,
        "agent_id"
    );
    assert_eq!(
        edit(&|b| {
            b["actions"][0]["policy"]["rules"][0]["conditions"][0]["op"] = json!("is");
        })
        .field,
        "actions[0].policy.rules[0].conditions[0].op"
    );
    let previous = |r: Value| {
        move |b: &mut Map<String, Value>| {
            b.insert("previous_policy_ref".into(), r.clone());
        }
    };
    let ok_ref = json!({"policy_id": "p", "policy_version": 1, "definition_sha256": README_SHA256});
    let mut r = ok_ref.clone();
    r["policy_version"] = json!(0);
    assert_eq!(edit(&previous(r)).field, "previous_policy_ref.policy_version");
    let mut r = ok_ref.clone();
    r["definition_sha256"] = json!(README_SHA256.to_uppercase());
    assert_eq!(edit(&previous(r)).field, "previous_policy_ref.definition_sha256");
    let mut r = ok_ref.clone();
    r["extra"] = json!(1);
    assert_eq!(edit(&previous(r)).field, "previous_policy_ref.extra");
    assert_eq!(edit(&previous(json!("p@1"))).field, "previous_policy_ref");
}

#[test]
fn policy_ref_parse() {
    let good = json!({"policy_id": "p", "policy_version": 9007199254740991_i64, "definition_sha256": README_SHA256});
    assert_eq!(PolicyRef::parse(&good).unwrap().policy_version, 9007199254740991);
    let with = |key: &str, value: Value| {
        let mut r = good.clone();
        r[key] = value;
        only(PolicyRef::parse(&r).unwrap_err()).field
    };
    assert_eq!(with("policy_id", json!("")), "policy_id");
    assert_eq!(with("policy_version", json!(true)), "policy_version");
    assert_eq!(with("policy_version", json!(1.0)), "policy_version");
    assert_eq!(with("policy_version", json!(9007199254740992_i64)), "policy_version");
    assert_eq!(with("definition_sha256", json!("abc")), "definition_sha256");
    assert_eq!(with("other", json!(1)), "other");
    assert_eq!(only(PolicyRef::parse(&json!(null)).unwrap_err()).field, "policy_ref");
    let err = PolicyRef::parse(&json!({"policy_version": 0, "definition_sha256": "x", "extra": 1})).unwrap_err();
    assert_eq!(paths(&err), ["extra", "policy_id", "policy_version", "definition_sha256"]);
}

// ---- decisions ----

#[test]
fn decision_basics() {
    use Decision::*;
    assert!(Deny.strength() > Escalate.strength());
    assert!(Escalate.strength() > Confirm.strength());
    assert!(Confirm.strength() > Allow.strength());
    for d in [Allow, Deny, Confirm, Escalate] {
        assert_eq!(Decision::parse(d.as_str()), Some(d));
        assert_eq!(serde_json::to_value(d).unwrap(), json!(d.as_str()));
    }
    assert_eq!(Decision::parse("Allow"), None);
}

// ---- glob ----

#[test]
fn glob_cases() {
    let cases = [
        ("*", "", true),
        ("*", "a/b/c", true),
        ("", "", true),
        ("", "x", false),
        ("abc", "abc", true),
        ("abc", "abcd", false),
        ("ab?", "abc", true),
        ("ab?", "ab", false),
        ("?", "ü", true),
        ("??", "ü", false),
        ("gs://bucket/*", "gs://bucket/a/b.txt", true),
        ("gs://bucket/*", "gs://bucket", false),
        ("*/reports/*.pdf", "org/reports/q1.pdf", true),
        ("*/reports/*.pdf", "org/reports/q1.pdf.exe", false),
        ("*a", "baaa", true),
        ("a*", "b", false),
        ("*x*", "axb", true),
        ("*x*", "ab", false),
        ("a*b?d", "aXXbcd", true),
        ("a*b?d", "aXXbd", false),
        ("[ab]", "a", false),
        ("[ab]", "[ab]", true),
        ("\\*", "\\anything", true),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(glob_match(pattern, text), expected, "{pattern:?} on {text:?}");
    }
}

#[test]
fn glob_pathological_patterns_are_fast() {
    let text = "a".repeat(100_000);
    let start = Instant::now();
    assert!(!glob_match("a*a*a*a*a*a*a*a*b", &text));
    assert!(!glob_match(&format!("*{}b", "a".repeat(200)), &text));
    assert!(!glob_match(&"*a".repeat(100).replace("*a*a", "*a?*a"), &format!("{text}b")));
    assert!(glob_match("a*a*a*a*a*a*a*a*a", &text));
    assert!(glob_match(&"*?".repeat(128), &text));
    // The longest pattern a definition allows, built to make backtracking matchers retry everywhere.
    let longest = format!("*{}b", "a?".repeat(127));
    assert_eq!(longest.chars().count(), 256);
    assert!(!glob_match(&longest, &text));
    assert!(glob_match(&longest, &format!("{text}b")));
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
}

// ---- speed ----

#[test]
fn evaluation_is_fast() {
    let definition = Definition::parse(&readme()).unwrap();
    let entry = definition.action("web.search").unwrap();
    let hit = ctx(json!({"risk": 2, "initiated_by": "user", "session_id": "sess_1"}));
    let miss = ctx(json!({"risk": 1, "initiated_by": "user", "session_id": "sess_1"}));
    let n = 20_000u32;
    let start = Instant::now();
    for i in 0..n {
        let context = if i % 2 == 0 { &hit } else { &miss };
        std::hint::black_box(entry.evaluate(std::hint::black_box(context)).unwrap());
    }
    let per_call = start.elapsed() / n;
    // Generous for unoptimized test builds; release builds run in well under a microsecond.
    assert!(per_call < Duration::from_micros(20), "{per_call:?} per evaluation");
}
