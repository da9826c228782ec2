//! Bad input gets a clear, typed error and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::Error;
use serde_json::{json, Value};

/// Everything an error must not have changed.
fn snapshot(f: &common::Fixture) -> (usize, usize, usize, Vec<i64>) {
    let receipts = f.engine.recent_receipts(usize::MAX).unwrap().len();
    let policies = f.engine.list_policies(100, None).unwrap().items.len();
    let authorizations = f.engine.list_authorizations(&Default::default()).unwrap().items;
    let spent = authorizations.iter().map(|a| a.budget_spent_micros).collect();
    (receipts, policies, authorizations.len(), spent)
}

fn assert_invalid(result: Result<impl std::fmt::Debug, Error>, field: &str) {
    let err = result.expect_err("bad input must be rejected");
    assert_eq!(err.code(), "invalid_request", "{err}");
    assert!(
        err.fields().iter().any(|f| f.field.starts_with(field)),
        "expected a `{field}` field error, got {:?}",
        err.fields()
    );
}

fn mutated(path: &[&str], value: Value) -> Value {
    let mut policy = common::support_policy();
    let mut target = &mut policy;
    for (i, key) in path.iter().enumerate() {
        if i + 1 == path.len() {
            break;
        }
        target = match key.parse::<usize>() {
            Ok(index) => &mut target[index],
            Err(_) => &mut target[*key],
        };
    }
    let last = path[path.len() - 1];
    match last.parse::<usize>() {
        Ok(index) => target[index] = value,
        Err(_) => target[last] = value,
    }
    policy
}

#[test]
fn malformed_policies_are_rejected_and_write_nothing() {
    for (store, f) in common::both() {
        let id = f.authorize(Some(100));
        let before = snapshot(&f);
        let bad = [
            (mutated(&["profile"], json!("allowly.policy.v2")), "profile"),
            (mutated(&["surprise"], json!(1)), "surprise"),
            (mutated(&["actions", "0", "policy", "extra"], json!(true)), "actions[0].policy"),
            (mutated(&["actions", "0", "guards", "max_per_day"], json!(1.5)), "actions[0].guards"),
            (
                mutated(&["actions", "0", "policy", "rules", "0", "conditions", "0", "value"], json!(7)),
                "actions[0].policy.rules[0].conditions[0].value",
            ),
            (mutated(&["actions", "1", "policy", "target"], json!("finance")), "actions[1].policy.target"),
            (mutated(&["default_expiry_days"], json!(9_007_199_254_740_993_u64)), "default_expiry_days"),
            (mutated(&["actions"], json!([])), "actions"),
            (mutated(&["policy_id"], json!("Bad Id!")), "policy_id"),
        ];
        for (policy, field) in bad {
            let err = f.engine.create_policy(&policy).expect_err(&format!("{store}: {field} must be rejected"));
            assert_eq!(err.code(), "invalid_request", "{store}: {field}: {err}");
            assert!(
                err.fields().iter().any(|e| e.field.starts_with(field.split('[').next().unwrap())),
                "{store}: {field}: {:?}",
                err.fields()
            );
        }
        let many_actions: Vec<Value> = (0..33)
            .map(|i| json!({"policy": {"profile": "allowly.basic.v1", "action": format!("a{i}"), "decision": "allow",
                                       "target": null, "fields": {}, "rules": []}, "guards": {}, "executable_operations": []}))
            .collect();
        assert_invalid(f.engine.create_policy(&mutated(&["actions"], Value::Array(many_actions))), "actions");
        assert_eq!(snapshot(&f), before, "{store}: rejected policies wrote something");
        let _ = id;
    }
}

#[test]
fn bad_checks_are_rejected_and_write_nothing() {
    for (store, f) in common::both() {
        let id = f.authorize(Some(100));
        let before = snapshot(&f);
        let base = CheckRequest {
            authorization_id: id.clone(),
            actions: vec!["email.send".into()],
            estimated_cost_micros: Some(1),
            ..Default::default()
        };
        let too_many: Vec<String> = (0..26).map(|i| format!("a{i}")).collect();
        let cases = [
            (CheckRequest { actions: too_many, ..base.clone() }, "actions"),
            (CheckRequest { actions: vec![], ..base.clone() }, "actions"),
            (CheckRequest { actions: vec!["a".into(), "a".into()], ..base.clone() }, "actions[1]"),
            (CheckRequest { context: Some(json!({"big": "x".repeat(4100)})), ..base.clone() }, "context"),
            (CheckRequest { context: Some(json!({"amount": 1.5})), ..base.clone() }, "context"),
            (CheckRequest { context: Some(json!({"nested": {"amount": 2.0}})), ..base.clone() }, "context"),
            (CheckRequest { context: Some(json!({"n": 9_007_199_254_740_992_u64})), ..base.clone() }, "context"),
            (CheckRequest { context: Some(json!(["not", "an", "object"])), ..base.clone() }, "context"),
            (CheckRequest { context: Some(json!({"budget": 1})), ..base.clone() }, "context.budget"),
            (CheckRequest { estimated_cost_micros: Some(-1), ..base.clone() }, "estimated_cost_micros"),
            (CheckRequest { authorization_id: String::new(), ..base.clone() }, "authorization_id"),
            (CheckRequest { client_timestamp: Some("yesterday".into()), ..base.clone() }, "client_timestamp"),
        ];
        for (request, field) in cases {
            assert_invalid(f.try_check(request), field);
        }
        assert_eq!(snapshot(&f), before, "{store}: rejected checks wrote something");
    }
}

#[test]
fn unknown_ids_are_typed_not_found_errors() {
    for (store, f) in common::both() {
        f.authorize(None);
        let before = snapshot(&f);
        assert_eq!(f.engine.get_authorization("auth_nope").unwrap_err().code(), "authorization_not_found", "{store}");
        assert_eq!(
            f.engine.revoke_authorization("auth_nope", None, None).unwrap_err().code(),
            "authorization_not_found"
        );
        assert_eq!(
            f.engine.resolve_confirmation("cnf_nonce_nope", true, None).unwrap_err().code(),
            "confirmation_not_found"
        );
        assert_eq!(f.engine.confirmation_status("cnf_nope").unwrap_err().code(), "confirmation_not_found");
        assert_eq!(
            f.engine
                .resolve_escalation("esc_nope", allowly_core::model::Resolution::Approved, "a", None)
                .unwrap_err()
                .code(),
            "escalation_not_found"
        );
        assert_eq!(f.engine.settle_budget("rcp_nope", 1, None).unwrap_err().code(), "reservation_not_found");
        assert_eq!(f.engine.receipt("rcp_nope").unwrap_err().code(), "receipt_not_found");
        assert_eq!(f.engine.get_policy("nope").unwrap_err().code(), "policy_not_found");
        let missing_policy =
            AuthorizationCreate { user_id: "u".into(), policy_id: "nope".into(), ..Default::default() };
        assert_eq!(f.engine.create_authorization(&missing_policy).unwrap_err().code(), "policy_not_found");
        assert_eq!(snapshot(&f), before, "{store}: failed lookups wrote something");
    }
}

#[test]
fn bad_authorization_requests_are_rejected() {
    for (store, f) in common::both() {
        f.authorize(None);
        let before = snapshot(&f);
        let base = AuthorizationCreate { user_id: "u".into(), policy_id: "support_agent".into(), ..Default::default() };
        assert_invalid(
            f.engine.create_authorization(&AuthorizationCreate { user_id: String::new(), ..base.clone() }),
            "user_id",
        );
        assert_invalid(
            f.engine.create_authorization(&AuthorizationCreate { actions: Some(vec!["nope".into()]), ..base.clone() }),
            "actions[0]",
        );
        assert_invalid(
            f.engine.create_authorization(&AuthorizationCreate {
                expires_at: Some("2020-01-01T00:00:00Z".into()),
                ..base.clone()
            }),
            "expires_at",
        );
        assert_invalid(
            f.engine.create_authorization(&AuthorizationCreate { metadata: Some(json!({"x": 0.5})), ..base.clone() }),
            "metadata",
        );
        assert_invalid(
            f.engine.create_authorization(&AuthorizationCreate { budget_limit_micros: Some(-5), ..base.clone() }),
            "budget_limit_micros",
        );
        assert_eq!(snapshot(&f), before, "{store}");
    }
}
