//! Writing a policy over HTTP: the keys with defaults may be left out (the server keeps and answers
//! the full definition), and a definition with several mistakes gets all of them in one answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestResult, TestServer};
use serde_json::{json, Value};

/// Only the keys that have no default.
fn minimal(policy_id: &str) -> Value {
    json!({
        "policy_id": policy_id,
        "agent_id": "support_agent",
        "actions": [
            {"policy": {"action": "email.read", "decision": "allow"}},
            {"policy": {"action": "email.send", "decision": "confirm"}},
            {"policy": {"action": "refund.issue", "decision": "escalate", "target": "member:finance"}},
            {"policy": {
                "action": "web.search", "decision": "allow", "fields": {"risk": "integer"},
                "rules": [{"id": "risky", "decision": "confirm",
                           "conditions": [{"field": "risk", "op": "gte", "value": 2}]}]
            }}
        ]
    })
}

/// The same definition with every key written out.
fn full() -> Value {
    let basic = |action: &str, decision: &str, target: Value, fields: Value, rules: Value| {
        json!({"policy": {"profile": "allowly.basic.v1", "action": action, "decision": decision, "target": target,
                          "fields": fields, "rules": rules},
               "guards": {}, "executable_operations": []})
    };
    json!({
        "profile": "allowly.policy.v1",
        "agent_id": "support_agent",
        "actions": [
            basic("email.read", "allow", Value::Null, json!({}), json!([])),
            basic("email.send", "confirm", json!("agent_owner"), json!({}), json!([])),
            basic("refund.issue", "escalate", json!("member:finance"), json!({}), json!([])),
            basic("web.search", "allow", Value::Null, json!({"risk": "integer"}), json!([
                {"id": "risky", "decision": "confirm", "target": "agent_owner",
                 "conditions": [{"field": "risk", "op": "gte", "value": 2}]}
            ])),
        ],
        "default_expiry_days": null
    })
}

#[test]
fn a_minimal_policy_is_created_and_read_back_in_full() -> TestResult {
    let s = TestServer::start()?;
    let setup = Some(s.setup.as_str());

    let created = s.json("POST", "/v1/policies", setup, &minimal("minimal"))?;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["definition"], full());
    let digest = created.body["policy_ref"]["definition_sha256"].as_str().unwrap_or_default().to_string();
    assert_eq!(digest, allowly_core::canonical::canonical_sha256_hex(&full())?);

    let got = s.request("GET", "/v1/policies/minimal", setup, None)?;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body["definition"], full());
    assert_eq!(got.body["policy_ref"], created.body["policy_ref"]);
    let listed = s.request("GET", "/v1/policies", setup, None)?;
    assert_eq!(listed.body["items"][0]["definition"], full());

    // The full form is the same definition: the same digest, and no new edition of the policy.
    let mut written_out = full();
    written_out["policy_id"] = json!("minimal");
    let again = s.json("POST", "/v1/policies", setup, &written_out)?;
    assert_eq!((again.status, &again.body["policy_ref"]), (201, &created.body["policy_ref"]));
    let mut other = full();
    other["policy_id"] = json!("written-out");
    let other = s.json("POST", "/v1/policies", setup, &other)?;
    assert_eq!(other.body["policy_ref"]["definition_sha256"], json!(digest));

    // Preview and publish take the minimal form too.
    let mut definition = minimal("unused");
    definition.as_object_mut().unwrap().remove("policy_id");
    let preview = s.json(
        "POST",
        "/v1/setup/policies/preview",
        setup,
        &json!({"definition": definition, "action": "web.search", "context": {"risk": 3}}),
    )?;
    assert_eq!(preview.status, 200, "{}", preview.text);
    assert_eq!(preview.body["definition_sha256"], json!(digest));
    assert_eq!(preview.body["policy_eval"]["result"]["target"], "agent_owner");
    let body = serde_json::to_vec(&minimal("published"))?;
    let published =
        s.request_with("POST", "/v1/setup/policies/publish", setup, Some(&body), &[("Idempotency-Key", "pub-1")])?;
    assert_eq!(published.status, 201, "{}", published.text);
    assert_eq!(published.body["policy_ref"]["definition_sha256"], json!(digest));

    // Checks on it decide with the defaults: `confirm` asks the agent's owner.
    let authorization = s.json(
        "POST",
        "/v1/authorizations",
        Some(&s.runtime),
        &json!({"user_id": "u", "policy_id": "minimal", "policy_version": 1, "metadata": {},
                "expires_at": "2099-01-01T00:00:00.000Z"}),
    )?;
    assert_eq!(authorization.status, 201, "{}", authorization.text);
    let aid = authorization.body["authorization_id"].as_str().unwrap_or_default();
    let checked = s.check(aid, &["email.send", "web.search"], json!({"context": {"risk": 2}}))?;
    assert_eq!(checked.status, 200, "{}", checked.text);
    for action in ["email.send", "web.search"] {
        assert_eq!(checked.body["results"][action]["decision"], "confirm", "{action}: {}", checked.text);
    }
    Ok(())
}

#[test]
fn a_policy_with_three_mistakes_gets_three_errors_in_one_answer() -> TestResult {
    let s = TestServer::start()?;
    let setup = Some(s.setup.as_str());
    let mut body = minimal("mistakes");
    body["agent_id"] = json!("");
    body["actions"][1]["policy"]["target"] = json!("member:bob");
    body["actions"][3]["policy"]["rules"][0]["conditions"][0]["value"] = json!("2");

    let reply = s.json("POST", "/v1/policies", setup, &body)?;
    assert_eq!((reply.status, reply.code()), (422, "invalid_request"), "{}", reply.text);
    assert!(reply.is_error_body(), "{}", reply.text);
    let fields: Vec<&str> =
        reply.body["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        ["agent_id", "actions[1].policy.target", "actions[3].policy.rules[0].conditions[0].value"],
        "{}",
        reply.text
    );
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("the policy has 3 errors: `agent_id`: "), "{message}");
    for field in &fields {
        assert!(message.contains(&format!("`{field}`")), "{message}");
    }
    assert_eq!(s.request("GET", "/v1/policies/mistakes", setup, None)?.status, 404, "nothing was written");

    // The preview names the fields inside its `definition`.
    let mut definition = body.clone();
    definition.as_object_mut().unwrap().remove("policy_id");
    let preview = s.json(
        "POST",
        "/v1/setup/policies/preview",
        setup,
        &json!({"definition": definition, "action": "email.read", "context": {}}),
    )?;
    assert_eq!((preview.status, preview.code()), (422, "invalid_request"), "{}", preview.text);
    let fields: Vec<&str> =
        preview.body["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "definition.agent_id",
            "definition.actions[1].policy.target",
            "definition.actions[3].policy.rules[0].conditions[0].value"
        ]
    );

    // One mistake reads as before.
    let mut one = minimal("one");
    one["actions"][0]["policy"]["decision"] = json!("maybe");
    let reply = s.json("POST", "/v1/policies", setup, &one)?;
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.body["error"],
        json!({"code": "invalid_request",
               "message": "invalid `actions[0].policy.decision`: must be one of allow, deny, confirm, escalate",
               "fields": [{"field": "actions[0].policy.decision",
                           "message": "must be one of allow, deny, confirm, escalate"}]})
    );
    Ok(())
}
