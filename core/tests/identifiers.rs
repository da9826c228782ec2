//! What a request may hold (issue 12): identifiers refuse control, separator and invisible format
//! characters (class 3); a check's context may not set a key the issuer writes into receipts
//! (class 5); an idempotent replay must be the same request, `client_timestamp` included (class 6).
//! Every refusal is a typed 422 naming the field, and writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use allowly_core::model::{AuthorizationCreate, CheckRequest, Resolution};
use allowly_core::policy::Decision::{Allow, Confirm};
use allowly_core::Error;
use common::{outcome, signed, Fixture};
use serde_json::{json, Value};

/// Every character that separates, controls or hides: all of C0, DEL, all of C1 (NEL among them),
/// the line and paragraph separators, and a sample of the invisible format characters.
fn refused() -> Vec<char> {
    let mut chars: Vec<char> = (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32).collect();
    chars.extend([
        '\u{2028}',
        '\u{2029}',
        '\u{200b}',
        '\u{200e}',
        '\u{200f}',
        '\u{202a}',
        '\u{202e}',
        '\u{2066}',
        '\u{2069}',
        '\u{2060}',
        '\u{feff}',
        '\u{ad}',
        '\u{61c}',
        '\u{e0001}',
        '\u{e0041}',
    ]);
    chars
}

/// Everything an error must not have changed: the receipts and the authorizations.
fn snapshot(f: &Fixture) -> (usize, Vec<(String, i64, Option<String>)>) {
    let receipts = f.engine.recent_receipts(usize::MAX).unwrap().len();
    let authorizations = f.engine.list_authorizations(&Default::default()).unwrap().items;
    (receipts, authorizations.into_iter().map(|a| (a.authorization_id, a.budget_spent_micros, a.revoked_at)).collect())
}

fn assert_refused<T: std::fmt::Debug>(result: Result<T, Error>, field: &str, what: &str) {
    let err = result.expect_err(what);
    assert_eq!((err.code(), err.http_status()), ("invalid_request", Some(422)), "{what}: {err}");
    assert!(err.fields().iter().any(|f| f.field == field), "{what}: expected `{field}` in {:?}", err.fields());
}

#[test]
fn check_identifiers_refuse_every_separator_like_character() {
    for (store, f) in common::both() {
        let id = f.authorize(Some(100));
        let before = snapshot(&f);
        let base = CheckRequest {
            authorization_id: id.clone(),
            actions: vec!["crm.read".into()],
            resource: Some("crm/acct1".into()),
            estimated_cost_micros: Some(1),
            context: Some(json!({"initiated_by": "user"})),
            ..Default::default()
        };
        for c in refused() {
            let what = format!("{store}: U+{:04X}", u32::from(c));
            let cases = [
                (CheckRequest { authorization_id: format!("{id}{c}"), ..base.clone() }, "authorization_id"),
                (CheckRequest { actions: vec![format!("crm.read{c}")], ..base.clone() }, "actions[0]"),
                (
                    CheckRequest { actions: vec!["crm.read".into(), format!("pay{c}r:acct1")], ..base.clone() },
                    "actions[1]",
                ),
                (CheckRequest { resource: Some(format!("crm/acct1{c}-")), ..base.clone() }, "resource"),
                (CheckRequest { resource: Some(c.to_string()), ..base.clone() }, "resource"),
                (CheckRequest { session_id: Some(format!("sess{c}1")), ..base.clone() }, "session_id"),
                (CheckRequest { idempotency_key: Some(format!("key{c}1")), ..base.clone() }, "idempotency_key"),
            ];
            for (request, field) in cases {
                assert_refused(f.try_check(request.clone()), field, &format!("{what} in `{field}`"));
                let many = f.engine.check_many(&[request]);
                assert_refused(many.into_iter().next().unwrap(), field, &format!("{what} in `{field}`, check_many"));
            }
        }
        assert_eq!(snapshot(&f), before, "{store}: a refused check wrote something");
        assert_eq!(outcome(&f.try_check(base).unwrap(), "crm.read").0, Allow, "{store}: the valid request");
    }
}

#[test]
fn identifiers_may_hold_any_other_text() {
    for (store, f) in common::both() {
        let id = f.authorize(None);
        // Persian words keep their ZWNJ, emoji sequences their ZWJ; spaces, colons and non-ASCII stay.
        for resource in
            ["crm/\u{646}\u{627}\u{645}\u{647}\u{200c}\u{647}\u{627}", "crm/\u{1f469}\u{200d}\u{1f4bb}", "crm/a b:c-é"]
        {
            let response = f
                .try_check(CheckRequest {
                    authorization_id: id.clone(),
                    actions: vec!["crm.read".into()],
                    resource: Some(resource.into()),
                    session_id: Some("séance 1".into()),
                    context: Some(json!({"initiated_by": "user"})),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(outcome(&response, "crm.read").0, Allow, "{store}: {resource}");
            let payload = f.verify(&signed(&response, "crm.read"));
            assert_eq!(payload["resource"], resource);
        }
    }
}

#[test]
fn lifecycle_identifiers_refuse_separator_like_characters() {
    for (store, f) in common::both() {
        let id = f.authorize(None);
        let confirm = f.check(&id, &["calendar.invite"], json!({}));
        let nonce = confirm.results.get("calendar.invite").unwrap().confirm_nonce.clone().unwrap();
        let escalate = f.check(&id, &["refund.issue"], json!({}));
        let escalation_id = escalate.results.get("refund.issue").unwrap().escalation_id.clone().unwrap();
        let receipt_id = confirm.results.get("calendar.invite").unwrap().receipt_id.clone().unwrap();
        let before = snapshot(&f);
        let base =
            AuthorizationCreate { user_id: "user_42".into(), policy_id: "support_agent".into(), ..Default::default() };
        for c in refused() {
            let what = format!("{store}: U+{:04X}", u32::from(c));
            let create = |request: AuthorizationCreate| f.engine.create_authorization(&request);
            assert_refused(
                create(AuthorizationCreate { user_id: format!("user{c}42"), ..base.clone() }),
                "user_id",
                &what,
            );
            assert_refused(
                create(AuthorizationCreate { policy_id: format!("support_agent{c}"), ..base.clone() }),
                "policy_id",
                &what,
            );
            let actions = Some(vec!["email.send".into(), format!("refund.issue{c}")]);
            assert_refused(create(AuthorizationCreate { actions, ..base.clone() }), "actions[1]", &what);
            assert_refused(
                create(AuthorizationCreate { replaces: Some(format!("{id}{c}")), ..base.clone() }),
                "replaces",
                &what,
            );
            let keyed = AuthorizationCreate { idempotency_key: Some(format!("k{c}")), ..base.clone() };
            assert_refused(create(keyed), "idempotency_key", &what);

            let bad_id = format!("{id}{c}");
            assert_refused(f.engine.get_authorization(&bad_id), "authorization_id", &what);
            assert_refused(f.engine.revoke_authorization(&bad_id, None, None), "authorization_id", &what);
            assert_refused(f.engine.revoke_authorization(&id, Some(&format!("admin{c}")), None), "revoked_by", &what);
            assert_refused(f.engine.resolve_confirmation(&format!("{nonce}{c}"), true, None), "nonce", &what);
            assert_refused(f.engine.confirmation_status(&format!("{nonce}{c}")), "confirmation_id", &what);
            let bad_escalation = format!("{escalation_id}{c}");
            assert_refused(
                f.engine.resolve_escalation(&bad_escalation, Resolution::Approved, "finance_lead", None),
                "escalation_id",
                &what,
            );
            assert_refused(
                f.engine.resolve_escalation(&escalation_id, Resolution::Approved, &format!("finance{c}lead"), None),
                "resolved_by",
                &what,
            );
            assert_refused(f.engine.escalation_status(&bad_escalation), "escalation_id", &what);
            assert_refused(f.engine.receipt(&format!("{receipt_id}{c}")), "receipt_id", &what);
            assert_refused(f.engine.settle_budget(&format!("{receipt_id}{c}"), 1, None), "check_receipt_id", &what);
            assert_refused(f.engine.settle_budget(&receipt_id, 1, Some(&format!("k{c}"))), "idempotency_key", &what);
            assert_refused(f.engine.get_policy(&format!("support_agent{c}")), "policy_id", &what);
            assert_refused(f.engine.archive_policy(&format!("support_agent{c}")), "policy_id", &what);
        }
        assert_eq!(snapshot(&f), before, "{store}: refused lifecycle calls wrote something");
        // The prompts are untouched and still resolve.
        f.engine.resolve_confirmation(&nonce, true, None).unwrap();
        f.engine
            .resolve_escalation(&escalation_id, Resolution::Approved, "finance_lead", Some("line 1\nline 2"))
            .unwrap();
    }
}

#[test]
fn policy_names_refuse_separator_like_characters() {
    let mut policy = common::support_policy();
    policy["actions"][3]["policy"]["rules"] = json!([{"id": "always", "decision": "confirm", "target": "agent_owner",
        "conditions": [{"field": "n", "op": "gte", "value": 0}]}]);
    policy["actions"][3]["policy"]["fields"] = json!({"n": "integer"});
    let f = common::memory();
    f.engine.create_policy(&policy).unwrap();
    let definition = |body: &Value| {
        let mut definition = body.clone();
        let map = definition.as_object_mut().unwrap();
        map.remove("policy_id");
        map.remove("description");
        definition
    };
    f.engine.preview_policy(&definition(&policy), "email.send", &json!({"recipient_domain": "a.b"})).unwrap();
    for c in refused() {
        let what = format!("U+{:04X}", u32::from(c));
        let cases: [(&[&str], Value, &str); 5] = [
            (&["agent_id"], json!(format!("support{c}bot")), "agent_id"),
            (&["actions", "0", "policy", "action"], json!(format!("pay{c}r:acct1")), "actions[0].policy.action"),
            (&["actions", "0", "policy", "action"], json!(format!("{c}")), "actions[0].policy.action"),
            (
                &["actions", "3", "policy", "rules", "0", "id"],
                json!(format!("always{c}")),
                "actions[3].policy.rules[0].id",
            ),
            (
                &["actions", "1", "policy", "target"],
                json!(format!("member:finance{c}lead")),
                "actions[1].policy.target",
            ),
        ];
        for (path, value, field) in cases {
            let mut bad = policy.clone();
            let mut target = &mut bad;
            for key in path {
                target = match key.parse::<usize>() {
                    Ok(index) => &mut target[index],
                    Err(_) => &mut target[*key],
                };
            }
            *target = value;
            let err = f.engine.create_policy(&bad).expect_err(&what);
            assert_eq!(err.code(), "invalid_request", "{what}: {err}");
            assert!(err.fields().iter().any(|e| e.field == field), "{what}: `{field}` in {:?}", err.fields());
            let preview = f.engine.preview_policy(&definition(&bad), "email.send", &json!({"recipient_domain": "a.b"}));
            assert_eq!(preview.map(|_| ()).unwrap_err().code(), "invalid_request", "{what}: preview");
        }
    }
    assert_eq!(f.engine.list_policies(100, None).unwrap().items.len(), 1);
}

// ---- engine-owned context keys -----------------------------------------------------------------------

/// Every key the issuer writes into a receipt's context: this engine's five, and the hosted service's
/// `execution` and `identity_verification`.
const ENGINE_OWNED: [&str; 7] = [
    "budget",
    "escalation",
    "session_id",
    "client_timestamp",
    "client_timestamp_source",
    "execution",
    "identity_verification",
];

#[test]
fn a_check_context_may_not_set_any_engine_owned_key() {
    for (store, f) in common::both() {
        let id = f.authorize(Some(100));
        let before = snapshot(&f);
        for key in ENGINE_OWNED {
            for value in [json!(1), json!({"approval_sha256": "x"}), json!(null), json!("engine")] {
                let mut context = json!({"recipient_domain": "example.com"});
                context[key] = value.clone();
                let request = CheckRequest {
                    authorization_id: id.clone(),
                    actions: vec!["email.send".into()],
                    estimated_cost_micros: Some(1),
                    context: Some(context),
                    ..Default::default()
                };
                assert_refused(f.try_check(request), &format!("context.{key}"), &format!("{store}: {key}={value}"));
            }
        }
        let all: serde_json::Map<String, Value> = ENGINE_OWNED.iter().map(|k| (k.to_string(), json!(1))).collect();
        let err = f
            .try_check(CheckRequest {
                authorization_id: id.clone(),
                actions: vec!["email.send".into()],
                context: Some(Value::Object(all)),
                ..Default::default()
            })
            .unwrap_err();
        let named: Vec<&str> = err.fields().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named.len(), ENGINE_OWNED.len(), "{store}: every engine-owned key is named: {named:?}");
        assert_eq!(snapshot(&f), before, "{store}: refused checks wrote something");

        // Nested under a key of the caller's, the same names are the caller's own data.
        let response = f
            .try_check(CheckRequest {
                authorization_id: id.clone(),
                actions: vec!["email.send".into()],
                session_id: Some("sess_1".into()),
                client_timestamp: Some("2026-03-02T10:00:00+01:00".into()),
                estimated_cost_micros: Some(1),
                context: Some(json!({"recipient_domain": "example.com", "app": {"execution": 1, "budget": 2}})),
                ..Default::default()
            })
            .unwrap();
        let context = &f.verify(&signed(&response, "email.send"))["context"];
        assert_eq!(context["app"], json!({"execution": 1, "budget": 2}), "{store}");
        assert_eq!(
            (&context["session_id"], &context["client_timestamp"], &context["client_timestamp_source"]),
            (&json!("sess_1"), &json!("2026-03-02T09:00:00.000Z"), &json!("client")),
            "{store}: what the engine writes"
        );
        assert_eq!(context["budget"]["estimated_cost_micros"], 1, "{store}");
        assert!(context.get("execution").is_none() && context.get("identity_verification").is_none());
    }
}

// ---- the idempotency digest ------------------------------------------------------------------------

#[test]
fn a_replay_must_send_the_same_client_timestamp() {
    for (store, f) in common::both() {
        let id = f.authorize(Some(100));
        let request = |key: &str, client_timestamp: Option<&str>| CheckRequest {
            authorization_id: id.clone(),
            actions: vec!["calendar.invite".into()],
            estimated_cost_micros: Some(10),
            client_timestamp: client_timestamp.map(str::to_string),
            idempotency_key: Some(key.into()),
            ..Default::default()
        };
        let first = f.try_check(request("k1", Some("2026-03-02T09:00:00.000Z"))).unwrap();
        assert_eq!(outcome(&first, "calendar.invite").0, Confirm, "{store}");
        let before = snapshot(&f);
        // The same instant, however it is written, is the same request: the first answer again.
        for same in ["2026-03-02T09:00:00.000Z", "2026-03-02T09:00:00Z", "2026-03-02T10:00:00+01:00"] {
            let again = f.try_check(request("k1", Some(same))).unwrap();
            assert_eq!(again, first, "{store}: {same} replays");
        }
        // Another instant, or none, is another request: 409, nothing decided or signed.
        for other in [Some("2026-03-02T09:00:01.000Z"), Some("2026-03-02T09:00:00.001Z"), None] {
            let err = f.try_check(request("k1", other)).unwrap_err();
            assert_eq!((err.code(), err.http_status()), ("idempotency_key_reused", Some(409)), "{store}: {other:?}");
        }
        assert_eq!(snapshot(&f), before, "{store}: a replay or a conflict wrote something");
        // Without a timestamp, retries replay as they always did.
        let plain = f.try_check(request("k2", None)).unwrap();
        assert_eq!(f.try_check(request("k2", None)).unwrap(), plain, "{store}");
        let err = f.try_check(request("k2", Some("2026-03-02T09:00:00.000Z"))).unwrap_err();
        assert_eq!(err.code(), "idempotency_key_reused", "{store}");
    }
}
