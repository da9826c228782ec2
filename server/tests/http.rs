//! `allowly serve` on 127.0.0.1:0: every route's statuses and shapes, credentials, isolation
//! between workspaces, body limits and probes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use allowly_core::model::ApiKeyKind;
use allowly_core::Options;
use allowly_server::{Home, Rate};
use common::{keys, policy_body, sorted, TestResult, TestServer};
use serde_json::{json, Value};

fn receipt_id(result: &Value) -> String {
    result["receipt_id"].as_str().unwrap_or_default().to_string()
}

#[test]
fn every_route_answers_with_its_status_and_shape() -> TestResult {
    let s = TestServer::start()?;
    let (setup, runtime) = (Some(s.setup.as_str()), Some(s.runtime.as_str()));

    // Policies (setup key).
    let created = s.create_policy()?;
    assert_eq!(
        keys(&created),
        sorted(&["policy_ref", "definition", "description", "created_by", "created_at", "deleted_at"])
    );
    assert_eq!(created["policy_ref"]["policy_version"], 1);
    let got = s.request("GET", "/v1/policies/support", setup, None)?;
    assert_eq!((got.status, got.body["policy_ref"].clone()), (200, created["policy_ref"].clone()));
    let got = s.request("GET", "/v1/policies/support?version=1", setup, None)?;
    assert_eq!(got.status, 200);
    let listed = s.request("GET", "/v1/policies?limit=10", setup, None)?;
    assert_eq!(listed.status, 200);
    assert_eq!(keys(&listed.body), sorted(&["items", "has_more", "next_cursor"]));
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    let preview = s.json(
        "POST",
        "/v1/setup/policies/preview",
        setup,
        &json!({"definition": common::definition(), "action": "email.send", "context": {}}),
    )?;
    assert_eq!(preview.status, 200, "{}", preview.text);
    assert_eq!(keys(&preview.body), sorted(&["provisional", "definition_sha256", "action", "policy_eval"]));
    let publish_body = serde_json::to_vec(&policy_body("ops"))?;
    let missing_key = s.request("POST", "/v1/setup/policies/publish", setup, Some(&publish_body))?;
    assert_eq!((missing_key.status, missing_key.code()), (422, "invalid_request"));
    let published =
        s.request_with("POST", "/v1/setup/policies/publish", setup, Some(&publish_body), &[("Idempotency-Key", "p1")])?;
    assert_eq!(published.status, 201, "{}", published.text);
    assert_eq!(
        keys(&published.body),
        sorted(&[
            "policy_ref",
            "agent_id",
            "created_by",
            "created_at",
            "authorization_migrations",
            "archived_policy_ids",
            "revoked_confirmation_count"
        ])
    );
    let replayed =
        s.request_with("POST", "/v1/setup/policies/publish", setup, Some(&publish_body), &[("Idempotency-Key", "p1")])?;
    assert_eq!((replayed.status, &replayed.body), (201, &published.body));
    let other = serde_json::to_vec(&policy_body("ops2"))?;
    let reused =
        s.request_with("POST", "/v1/setup/policies/publish", setup, Some(&other), &[("Idempotency-Key", "p1")])?;
    assert_eq!((reused.status, reused.code()), (409, "idempotency_key_reused"));
    let archived = s.request("DELETE", "/v1/policies/ops", setup, None)?;
    assert_eq!((archived.status, archived.text.as_str()), (204, ""));
    let gone = s.request("GET", "/v1/policies/ops", setup, None)?;
    assert_eq!((gone.status, gone.code()), (404, "policy_not_found"));

    // Authorizations (runtime key).
    let body = json!({"user_id": "user_1", "policy_id": "support", "policy_version": 1, "metadata": {},
                      "budget_limit_micros": 100});
    let created = s.json("POST", "/v1/authorizations", runtime, &body)?;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        keys(&created.body),
        sorted(&[
            "authorization_id",
            "policy_ref",
            "actions",
            "created_at",
            "expires_at",
            "receipt",
            "authorization_provenance",
            "budget_limit_micros",
            "budget_spent_micros",
            "replaced_authorization_id",
            "revocation_receipt"
        ])
    );
    let pending = &created.body["receipt"];
    assert_eq!(keys(pending), sorted(&["status", "receipt_id", "ready_at_estimate", "url"]));
    assert_eq!(pending["status"], "pending");
    let url = pending["url"].as_str().unwrap_or_default();
    assert_eq!(url, format!("{}/v1/receipts/{}", s.base, pending["receipt_id"].as_str().unwrap_or_default()));
    let aid = created.body["authorization_id"].as_str().unwrap_or_default().to_string();
    let listed = s.request("GET", "/v1/authorizations?limit=5", runtime, None)?;
    assert_eq!((listed.status, listed.body["items"][0]["authorization_id"].as_str()), (200, Some(aid.as_str())));
    assert_eq!(keys(&listed.body), sorted(&["items", "has_more", "next_cursor"]));
    let bad_limit = s.request("GET", "/v1/authorizations?limit=0", runtime, None)?;
    assert_eq!((bad_limit.status, bad_limit.code()), (422, "invalid_request"));
    let one = s.request("GET", &format!("/v1/authorizations/{aid}"), runtime, None)?;
    assert_eq!(one.status, 200);

    // Checks: the Python shape (nulls, client_timestamp) and the TS shape (omitted members).
    let checked =
        s.check(&aid, &["email.read", "account.delete"], json!({"client_timestamp": "2026-01-01T00:00:00Z"}))?;
    assert_eq!(checked.status, 200, "{}", checked.text);
    assert!(checked.body["engine_version"].as_str().is_some_and(|v| v.starts_with("sha256:") && v.len() == 71));
    assert_eq!(keys(&checked.body["results"]), sorted(&["email.read", "account.delete"]));
    assert_eq!(checked.body["results"]["email.read"]["decision"], "allow");
    assert_eq!(checked.body["results"]["account.delete"]["decision"], "deny");
    assert_eq!(checked.body["results"]["email.read"]["receipt"]["status"], "signed");
    let minimal = s.json("POST", "/v1/check", runtime, &json!({"authorization_id": aid, "actions": ["email.read"]}))?;
    assert_eq!(minimal.status, 200, "{}", minimal.text);
    let unknown_member =
        s.json("POST", "/v1/check", runtime, &json!({"authorization_id": aid, "actions": ["a"], "x": 1}))?;
    assert_eq!((unknown_member.status, unknown_member.code()), (422, "invalid_request"));
    assert_eq!(unknown_member.body["error"]["fields"][0]["field"], "x");
    let reserved = s.check(&aid, &["email.read"], json!({"context": {"budget": 1}}))?;
    assert_eq!((reserved.status, reserved.code()), (422, "invalid_request"));

    // Idempotent checks.
    let body = serde_json::to_vec(&json!({"authorization_id": aid, "actions": ["email.read"]}))?;
    let first = s.request_with("POST", "/v1/check", runtime, Some(&body), &[("Idempotency-Key", "k1")])?;
    let again = s.request_with("POST", "/v1/check", runtime, Some(&body), &[("Idempotency-Key", "k1")])?;
    assert_eq!(first.body, again.body);
    let other = serde_json::to_vec(&json!({"authorization_id": aid, "actions": ["email.send"]}))?;
    let reused = s.request_with("POST", "/v1/check", runtime, Some(&other), &[("Idempotency-Key", "k1")])?;
    assert_eq!((reused.status, reused.code()), (409, "idempotency_key_reused"));

    // Confirmations.
    let confirm = s.check(&aid, &["email.send"], json!({}))?;
    let result = &confirm.body["results"]["email.send"];
    assert_eq!(result["decision"], "confirm");
    let nonce = result["confirm_nonce"].as_str().unwrap_or_default().to_string();
    let cnf = result["confirmation_id"].as_str().unwrap_or_default().to_string();
    let status = s.request("GET", &format!("/v1/confirmations/{cnf}/status"), runtime, None)?;
    assert_eq!((status.status, status.body["status"].as_str()), (200, Some("pending")));
    // The status route takes what approval takes, the nonce, as well as the id.
    let by_nonce = s.request("GET", &format!("/v1/confirmations/{nonce}/status"), runtime, None)?;
    assert_eq!((by_nonce.status, &by_nonce.body), (200, &status.body));
    let bad = s.json("POST", &format!("/v1/confirmations/{nonce}"), runtime, &json!({"approved": "yes"}))?;
    assert_eq!((bad.status, bad.code()), (422, "invalid_request"));
    let approved =
        s.json("POST", &format!("/v1/confirmations/{nonce}"), runtime, &json!({"approved": true, "ttl_seconds": 60}))?;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(keys(&approved.body), sorted(&["decision", "authorization_id", "expires_at", "receipt"]));
    assert_eq!(approved.body["decision"], "approved");
    let twice = s.json("POST", &format!("/v1/confirmations/{nonce}"), runtime, &json!({"approved": true}))?;
    assert_eq!(twice.status, 409);
    let unknown = s.json("POST", "/v1/confirmations/cnf_nonce_nope", runtime, &json!({"approved": true}))?;
    assert_eq!((unknown.status, unknown.code()), (404, "confirmation_not_found"));
    let allowed = s.check(&aid, &["email.send"], json!({}))?;
    assert_eq!(allowed.body["results"]["email.send"]["reason"], "user_confirmed");

    // Escalations.
    let escalated = s.check(&aid, &["refund.issue"], json!({}))?;
    let esc = escalated.body["results"]["refund.issue"]["escalation_id"].as_str().unwrap_or_default().to_string();
    let status = s.request("GET", &format!("/v1/escalations/{esc}"), runtime, None)?;
    assert_eq!((status.status, status.body["status"].as_str()), (200, Some("pending")));
    let bad = s.json(
        "POST",
        &format!("/v1/escalations/{esc}/resolve"),
        runtime,
        &json!({"resolution": "maybe", "resolved_by": "x"}),
    )?;
    assert_eq!((bad.status, bad.code()), (422, "invalid_request"));
    let resolved = s.json(
        "POST",
        &format!("/v1/escalations/{esc}/resolve"),
        runtime,
        &json!({"resolution": "approved", "resolved_by": "finance", "note": null}),
    )?;
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    assert_eq!(keys(&resolved.body), sorted(&["escalation_id", "status", "resolved_by", "resolved_at", "receipt"]));
    let allowed = s.check(&aid, &["refund.issue"], json!({}))?;
    assert_eq!(allowed.body["results"]["refund.issue"]["reason"], "escalation_approved");
    let missing = s.request("GET", "/v1/escalations/esc_nope", runtime, None)?;
    assert_eq!((missing.status, missing.code()), (404, "escalation_not_found"));

    // Receipts.
    let rid = receipt_id(&checked.body["results"]["email.read"]);
    let got = s.request("GET", &format!("/v1/receipts/{rid}"), runtime, None)?;
    assert_eq!(got.status, 200);
    assert_eq!(keys(&got.body), sorted(&["status", "receipt"]));
    assert_eq!(got.body["receipt"], checked.body["results"]["email.read"]["receipt"]["receipt"]);
    let missing = s.request("GET", "/v1/receipts/rcp_nope", runtime, None)?;
    assert_eq!((missing.status, missing.code()), (404, "receipt_not_found"));

    // Budgets.
    let budgeted = s.check(&aid, &["email.read"], json!({"estimated_cost_micros": 60}))?;
    let rid = receipt_id(&budgeted.body["results"]["email.read"]);
    let settled =
        s.json("POST", "/v1/budget-settlements", runtime, &json!({"check_receipt_id": rid, "actual_cost_micros": 50}))?;
    assert_eq!(settled.status, 200, "{}", settled.text);
    assert_eq!(settled.body["spent_after_micros"], 50);
    let conflict =
        s.json("POST", "/v1/budget-settlements", runtime, &json!({"check_receipt_id": rid, "actual_cost_micros": 7}))?;
    assert_eq!((conflict.status, conflict.code()), (409, "budget_already_settled"));
    let none = s.json(
        "POST",
        "/v1/budget-settlements",
        runtime,
        &json!({"check_receipt_id": "rcp_x", "actual_cost_micros": 1}),
    )?;
    assert_eq!(none.status, 404);
    let over = s.check(&aid, &["email.read"], json!({"estimated_cost_micros": 51}))?;
    assert_eq!(over.body["results"]["email.read"]["reason"], "budget_exceeded");

    // Revocation: without a body, with one, twice.
    let revoked =
        s.json("DELETE", &format!("/v1/authorizations/{aid}"), runtime, &json!({"revoked_by": "admin", "notes": "n"}))?;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(keys(&revoked.body), sorted(&["authorization_id", "revoked_at", "receipt", "revoked_confirmations"]));
    let twice = s.request("DELETE", &format!("/v1/authorizations/{aid}"), runtime, None)?;
    assert_eq!((twice.status, twice.code()), (409, "authorization_revoked"));
    let second = s.create_authorization(None)?;
    let plain = s.request("DELETE", &format!("/v1/authorizations/{second}"), runtime, None)?;
    assert_eq!(plain.status, 200, "{}", plain.text);
    let missing = s.request("DELETE", "/v1/authorizations/auth_nope", runtime, None)?;
    assert_eq!((missing.status, missing.code()), (404, "authorization_not_found"));

    // The audit lookup (setup key) and verification (no key).
    let denies =
        s.request("GET", "/v1/receipts?decision=deny&action=account.delete&user_id=user_1&limit=5", setup, None)?;
    assert_eq!(denies.status, 200, "{}", denies.text);
    assert_eq!(keys(&denies.body), sorted(&["items", "has_more", "next_cursor"]));
    let first = &denies.body["items"][0];
    assert_eq!((first["decision"].as_str(), first["action"].as_str()), (Some("deny"), Some("account.delete")));
    let bad_since = s.request("GET", "/v1/receipts?since=soon", setup, None)?;
    assert_eq!((bad_since.status, bad_since.body["error"]["fields"][0]["field"].as_str()), (422, Some("since")));
    let verified = s.json("POST", "/v1/verify", None, &json!({"input": first["receipt"]}))?;
    assert_eq!((verified.status, verified.body["valid"].as_bool()), (200, Some(true)), "{}", verified.text);
    assert_eq!(verified.body["receipts"][0]["receipt_id"], first["receipt_id"]);
    let mut receipt = first["receipt"].clone();
    let signature = receipt["signature"].as_str().unwrap_or_default().to_string();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    receipt["signature"] = json!(format!("{flipped}{}", signature.get(1..).unwrap_or_default()));
    let altered = s.json("POST", "/v1/verify", None, &json!({"input": serde_json::to_string(&receipt)?}))?;
    assert_eq!(altered.body["valid"].as_bool(), Some(false), "{}", altered.text);
    assert_eq!(altered.body["receipts"][0]["error"]["class"], "SignatureMismatchError", "{}", altered.text);
    let empty = s.json("POST", "/v1/verify", None, &json!({"input": ""}))?;
    assert_eq!((empty.status, empty.code()), (422, "invalid_request"));

    // Keys document, probes, metrics, unknown routes.
    let document = s.request("GET", &format!("/v1/workspaces/{}/keys", s.workspace_id), None, None)?;
    assert_eq!(document.status, 200);
    assert_eq!(document.body["workspace_id"], s.workspace_id.as_str());
    assert_eq!(document.header("cache-control"), Some("no-store"));
    assert_eq!(
        keys(&document.body["keys"][0]),
        sorted(&["key_id", "alg", "public_key", "public_key_fingerprint", "active_from", "active_until"])
    );
    let ready = s.request("GET", "/readyz", None, None)?;
    assert_eq!((ready.status, &ready.body), (200, &json!({"status": "ready"})));
    let healthy = s.request("GET", "/healthz", None, None)?;
    assert_eq!(healthy.status, 200);
    let anonymous = s.request("GET", "/metrics", None, None)?;
    assert_eq!(anonymous.status, 401, "/metrics takes a setup key on the API's address");
    let with_runtime_key = s.request("GET", "/metrics", Some(&s.runtime), None)?;
    assert_eq!(with_runtime_key.status, 403, "{}", with_runtime_key.text);
    let metrics = s.request("GET", "/metrics", Some(&s.setup), None)?;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").is_some_and(|t| t.starts_with("text/plain")));
    for needle in [
        "allowly_check_decisions_total{decision=\"allow\"}",
        "allowly_check_decisions_total{decision=\"confirm\"} 1",
        "allowly_http_request_duration_seconds_bucket{route=\"/v1/check\",le=\"+Inf\"}",
        // The label is the route the router matched (it once said `{nonce}` for `{id}`).
        "allowly_http_requests_total{route=\"/v1/confirmations/{id}\",method=\"POST\",status=\"200\"} 1",
        "allowly_store_errors_total 0",
    ] {
        assert!(metrics.text.contains(needle), "metrics lack {needle}:\n{}", metrics.text);
    }
    assert!(!metrics.text.contains(&nonce), "a nonce must never reach the metrics");
    let nothing = s.request("GET", "/v1/nothing", runtime, None)?;
    assert_eq!((nothing.status, nothing.code()), (404, "not_found"));
    let wrong_method = s.request("PUT", "/v1/check", runtime, Some(b"{}"))?;
    assert_eq!((wrong_method.status, wrong_method.code()), (405, "method_not_allowed"));
    assert!(wrong_method.is_error_body());
    Ok(())
}

#[test]
fn authorizations_are_listed_by_user_agent_and_status() -> TestResult {
    let s = TestServer::start()?;
    let runtime = Some(s.runtime.as_str());
    s.create_policy()?;
    let first = s.create_authorization(None)?;
    let second = s.create_authorization(None)?;
    let body = json!({"user_id": "user_2", "policy_id": "support"});
    let other = s.json("POST", "/v1/authorizations", runtime, &body)?.body["authorization_id"].clone();
    let other = other.as_str().unwrap_or_default().to_string();
    let revoked = s.request("DELETE", &format!("/v1/authorizations/{second}"), runtime, None)?;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let ids = |reply: &common::Reply| -> Vec<String> {
        let items = reply.body["items"].as_array().cloned().unwrap_or_default();
        items.iter().map(|a| a["authorization_id"].as_str().unwrap_or_default().to_string()).collect()
    };

    // Listed by id: ids made in one millisecond are not in creation order.
    let by_id = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    let mine = s.request("GET", "/v1/authorizations?user_id=user_1&agent_id=support_agent", runtime, None)?;
    assert_eq!((mine.status, ids(&mine)), (200, by_id(vec![first.clone(), second.clone()])), "{}", mine.text);
    let active = s.request("GET", "/v1/authorizations?status=active", runtime, None)?;
    let active_ids = by_id(vec![first, other]);
    assert_eq!(ids(&active), active_ids, "{}", active.text);
    let gone = s.request("GET", "/v1/authorizations?user_id=user_1&status=revoked", runtime, None)?;
    assert_eq!(ids(&gone), [second.as_str()]);
    assert_eq!(gone.body["items"][0]["status"], "revoked");
    // The cursor goes on under the same filters.
    let page = s.request("GET", "/v1/authorizations?status=active&limit=1", runtime, None)?;
    assert_eq!((ids(&page), &page.body["has_more"]), (vec![active_ids[0].clone()], &json!(true)));
    // A status is decided on the rows read: a page may say `has_more` when the rows after it hold
    // no other match (here when the revoked one sorts last), and the next page is then empty.
    let (mut rest, mut cursor) = (Vec::new(), page.body["next_cursor"].as_str().unwrap_or_default().to_string());
    while !cursor.is_empty() {
        let query = format!("/v1/authorizations?status=active&limit=1&cursor={cursor}");
        let next = s.request("GET", &query, runtime, None)?;
        rest.extend(ids(&next));
        cursor = match next.body["has_more"].as_bool() {
            Some(true) => next.body["next_cursor"].as_str().unwrap_or_default().to_string(),
            _ => String::new(),
        };
    }
    assert_eq!(rest, [active_ids[1].clone()]);
    let nobody = s.request("GET", "/v1/authorizations?agent_id=billing_bot", runtime, None)?;
    assert_eq!((nobody.status, ids(&nobody).len()), (200, 0));

    for (query, field) in [("status=frozen", "status"), ("status=", "status"), ("user_id=a%07b", "user_id")] {
        let bad = s.request("GET", &format!("/v1/authorizations?{query}"), runtime, None)?;
        assert_eq!((bad.status, bad.code()), (422, "invalid_request"), "{query}: {}", bad.text);
        assert_eq!(bad.body["error"]["fields"][0]["field"], field, "{query}: {}", bad.text);
    }
    Ok(())
}

/// Every route with the credentials it needs: (method, path, setup only).
fn authenticated_routes() -> Vec<(&'static str, &'static str, bool)> {
    vec![
        ("POST", "/v1/check", false),
        ("POST", "/v1/authorizations", false),
        ("GET", "/v1/authorizations", false),
        ("GET", "/v1/authorizations/auth_x", false),
        ("DELETE", "/v1/authorizations/auth_x", false),
        ("POST", "/v1/confirmations/cnf_nonce_x", false),
        ("GET", "/v1/confirmations/cnf_x/status", false),
        ("GET", "/v1/escalations/esc_x", false),
        ("POST", "/v1/escalations/esc_x/resolve", false),
        ("GET", "/v1/receipts/rcp_x", false),
        ("GET", "/v1/receipts", true),
        ("GET", "/v1/confirmations", true),
        ("GET", "/v1/escalations", true),
        ("POST", "/v1/budget-settlements", false),
        ("GET", "/v1/policies", true),
        ("POST", "/v1/policies", true),
        ("GET", "/v1/policies/p", true),
        ("DELETE", "/v1/policies/p", true),
        ("POST", "/v1/setup/policies/preview", true),
        ("POST", "/v1/setup/policies/publish", true),
        ("GET", "/v1/setup/api-keys", true),
        ("POST", "/v1/setup/api-keys", true),
        ("DELETE", "/v1/setup/api-keys/ak_x", true),
    ]
}

/// A counter of `/metrics` (setup key).
fn metric(s: &TestServer, name: &str) -> TestResult<u64> {
    let reply = s.request("GET", "/metrics", Some(&s.setup), None)?;
    let line = reply.text.lines().find(|line| line.starts_with(&format!("{name} "))).ok_or("no such metric")?;
    Ok(line.rsplit(' ').next().unwrap_or_default().parse()?)
}

#[test]
fn concurrent_budgeted_checks_spend_the_budget_exactly_and_share_commits() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    // 1,000 micros at 7 a check: exactly 142 of the 400 fit.
    let authorization_id = s.create_authorization(Some(1_000))?;
    let decisions: Vec<(u16, String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..40)
            .map(|_| {
                scope.spawn(|| {
                    (0..10)
                        .map(|_| {
                            let reply =
                                s.check(&authorization_id, &["email.read"], json!({"estimated_cost_micros": 7}));
                            reply.map_or((0, "transport error".to_string()), |reply| {
                                let result = &reply.body["results"]["email.read"];
                                (reply.status, format!("{}/{}", result["decision"], result["reason"]))
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().unwrap_or_default()).collect()
    });
    assert_eq!(decisions.len(), 400);
    assert!(
        decisions.iter().all(|(status, _)| *status == 200),
        "{:?}",
        decisions.iter().find(|(status, _)| *status != 200)
    );
    let allowed = decisions.iter().filter(|(_, d)| d.starts_with("\"allow\"")).count();
    let over_budget = decisions.iter().filter(|(_, d)| d.as_str() == "\"deny\"/\"budget_exceeded\"").count();
    assert_eq!((allowed, over_budget), (142, 258));
    // Checks that waited together were decided together: fewer commits than checks.
    let (groups, checks) = (metric(&s, "allowly_check_groups_total")?, metric(&s, "allowly_checks_decided_total")?);
    assert_eq!(checks, 400);
    assert!(groups < checks, "{groups} groups for {checks} checks: none was decided with another");
    Ok(())
}

#[test]
fn a_revoked_key_is_refused_within_a_second_and_at_once_when_revoked_here() -> TestResult {
    let s = TestServer::start()?;
    let engine = Home::new(&s.home).open_primary(Options::default())?;
    let policy = s.request("GET", "/v1/policies", Some(&s.setup), None)?;
    assert_eq!(policy.status, 200);

    // Revoked elsewhere (the CLI on the same home): the server's cached authentication stands at
    // most one second.
    let elsewhere = engine.create_api_key(ApiKeyKind::Setup, Some("revoked by the CLI"))?;
    let list = |key: &str| s.request("GET", "/v1/policies", Some(key), None).map(|reply| reply.status);
    assert_eq!(list(&elsewhere.key)?, 200, "authenticated, and now remembered");
    engine.revoke_api_key(&elsewhere.key_id)?;
    let revoked_at = std::time::Instant::now();
    let refused_after = loop {
        let status = list(&elsewhere.key)?;
        if status == 401 {
            break revoked_at.elapsed();
        }
        assert_eq!(status, 200);
        assert!(revoked_at.elapsed() < std::time::Duration::from_secs(3), "still accepted 3 s after revocation");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(refused_after <= std::time::Duration::from_millis(1_100), "refused {refused_after:?} after revocation");
    for _ in 0..5 {
        assert_eq!(list(&elsewhere.key)?, 401, "and refused ever after");
    }

    // Revoked through this server: refused by the very next request.
    let here = engine.create_api_key(ApiKeyKind::Setup, Some("revoked through the API"))?;
    assert_eq!(list(&here.key)?, 200);
    let revoke = s.request("DELETE", &format!("/v1/setup/api-keys/{}", here.key_id), Some(&s.setup), None)?;
    assert_eq!(revoke.status, 204);
    assert_eq!(list(&here.key)?, 401);
    Ok(())
}

#[test]
fn wrong_revoked_and_wrong_kind_keys_are_refused() -> TestResult {
    // Hundreds of refusals from one address: the failed-authentication limit (tests/server/hostile.py)
    // would answer 429 long before the last.
    let s = TestServer::start_with(|config| config.auth_failures_per_address = Rate::UNLIMITED)?;
    let home = Home::new(&s.home);
    let engine = home.open_primary(Options::default())?;
    let revoked = engine.create_api_key(ApiKeyKind::Runtime, Some("to revoke"))?;
    let revoked_setup = engine.create_api_key(ApiKeyKind::Setup, None)?;
    // Revoked through the API (setup key) and through the engine (another process, like the CLI).
    let r = s.request("DELETE", &format!("/v1/setup/api-keys/{}", revoked_setup.key_id), Some(&s.setup), None)?;
    assert_eq!(r.status, 204);
    engine.revoke_api_key(&revoked.key_id)?;

    let mut tampered = s.runtime.clone();
    tampered.pop();
    tampered.push(if s.runtime.ends_with('A') { 'B' } else { 'A' });
    let promoted = s.runtime.replacen(".runtime.", ".setup.", 1);
    let foreign = format!("allowly.runtime.ws_OTHER.{}", s.runtime.splitn(4, '.').nth(3).unwrap_or_default());
    let bad_keys: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("garbage", Some("nonsense".into())),
        ("empty", Some(String::new())),
        ("tampered", Some(tampered)),
        ("kind swapped", Some(promoted)),
        ("other workspace", Some(foreign)),
        ("revoked runtime", Some(revoked.key.clone())),
        ("revoked setup", Some(revoked_setup.key.clone())),
    ];
    for (method, path, setup_only) in authenticated_routes() {
        for (label, key) in &bad_keys {
            let reply = s.request(method, path, key.as_deref(), Some(b"{}"))?;
            assert_eq!(
                (reply.status, reply.code()),
                (401, "invalid_or_revoked_api_key"),
                "{label} key on {method} {path}: {}",
                reply.text
            );
            assert!(reply.is_error_body() && reply.header("www-authenticate") == Some("Bearer"));
        }
        let reply = s.request_with(method, path, None, Some(b"{}"), &[("Authorization", "Basic dXNlcjpwYXNz")])?;
        assert_eq!(reply.status, 401, "basic auth on {method} {path}");
        let reply = s.request(method, path, Some(&s.runtime), Some(b"{}"))?;
        if setup_only {
            assert_eq!((reply.status, reply.code()), (403, "forbidden"), "runtime key on {method} {path}");
        } else {
            assert!(reply.status != 401 && reply.status != 403, "runtime key on {method} {path}: {}", reply.text);
        }
        let reply = s.request(method, path, Some(&s.setup), Some(b"{}"))?;
        assert!(reply.status != 401 && reply.status != 403, "setup key on {method} {path}: {}", reply.text);
    }
    // The setup key manages keys over HTTP; new keys work at once.
    let created = s.json("POST", "/v1/setup/api-keys", Some(&s.setup), &json!({"kind": "runtime", "label": "ci"}))?;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = created.body["key"].as_str().unwrap_or_default().to_string();
    assert_eq!(s.request("GET", "/v1/authorizations", Some(&key), None)?.status, 200);
    let listed = s.request("GET", "/v1/setup/api-keys", Some(&s.setup), None)?;
    assert!(!listed.text.contains(key.rsplit('.').next().unwrap_or("-")), "listing never shows secrets");
    assert!(listed.body["items"].as_array().is_some_and(|items| items.len() == 5));
    Ok(())
}

#[test]
fn workspaces_never_see_each_other() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    let aid = s.create_authorization(None)?;
    let checked = s.check(&aid, &["email.send", "refund.issue"], json!({}))?;
    let rid = receipt_id(&checked.body["results"]["email.send"]);
    let cnf = checked.body["results"]["email.send"]["confirmation_id"].as_str().unwrap_or_default().to_string();
    let nonce = checked.body["results"]["email.send"]["confirm_nonce"].as_str().unwrap_or_default().to_string();
    let esc = checked.body["results"]["refund.issue"]["escalation_id"].as_str().unwrap_or_default().to_string();

    // A second workspace, created while the server runs (like `allowly workspaces create`).
    let (entry, other) = Home::new(&s.home).create_workspace(Options::default())?;
    assert!(!entry.primary);
    let (b_setup, b_runtime) = (Some(other.setup.key.as_str()), Some(other.runtime.key.as_str()));
    let policy = s.request("GET", "/v1/policies/support", b_setup, None)?;
    assert_eq!(policy.status, 404);
    for path in [
        format!("/v1/receipts/{rid}"),
        format!("/v1/authorizations/{aid}"),
        format!("/v1/confirmations/{cnf}/status"),
        format!("/v1/escalations/{esc}"),
    ] {
        let reply = s.request("GET", &path, b_runtime, None)?;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text);
    }
    let approve = s.json("POST", &format!("/v1/confirmations/{nonce}"), b_runtime, &json!({"approved": true}))?;
    assert_eq!(approve.status, 404);
    let resolve = s.json(
        "POST",
        &format!("/v1/escalations/{esc}/resolve"),
        b_runtime,
        &json!({"resolution": "approved", "resolved_by": "x"}),
    )?;
    assert_eq!(resolve.status, 404);
    let revoke = s.request("DELETE", &format!("/v1/authorizations/{aid}"), b_runtime, None)?;
    assert_eq!(revoke.status, 404);
    let settle = s.json(
        "POST",
        "/v1/budget-settlements",
        b_runtime,
        &json!({"check_receipt_id": rid, "actual_cost_micros": 1}),
    )?;
    assert_eq!(settle.status, 404);
    let check = s.json("POST", "/v1/check", b_runtime, &json!({"authorization_id": aid, "actions": ["email.read"]}))?;
    assert_eq!(check.body["results"]["email.read"]["reason"], "authorization_not_found");
    let listed = s.request("GET", "/v1/authorizations", b_runtime, None)?;
    assert_eq!(listed.body["items"], json!([]));
    // A's nonce is still pending in A: B touched nothing.
    let status = s.request("GET", &format!("/v1/confirmations/{cnf}/status"), Some(&s.runtime), None)?;
    assert_eq!(status.body["status"], "pending");

    // Each key document is its own; unknown and malicious ids are 404s.
    let doc = s.request("GET", &format!("/v1/workspaces/{}/keys", entry.workspace_id), None, None)?;
    assert_eq!((doc.status, doc.body["workspace_id"].as_str()), (200, Some(entry.workspace_id.as_str())));
    let mine = s.request("GET", &format!("/v1/workspaces/{}/keys", s.workspace_id), None, None)?;
    assert_ne!(doc.body["keys"], mine.body["keys"]);
    for id in ["ws_nope", "nope", "ws_..%2F..%2Fallowly", "ws_%2E%2E"] {
        let reply = s.request("GET", &format!("/v1/workspaces/{id}/keys"), None, None)?;
        assert_eq!((reply.status, reply.code()), (404, "workspace_not_found"), "{id}");
    }
    Ok(())
}

#[test]
fn bodies_over_the_limit_get_413() -> TestResult {
    let s = TestServer::start()?;
    let limit = allowly_server::DEFAULT_MAX_BODY_BYTES;
    let mut big = br#"{"authorization_id":"auth_x","actions":["a"],"context":{"pad":""#.to_vec();
    big.resize(limit + 1 - 3, b'x');
    big.extend_from_slice(br#""}}"#);
    assert_eq!(big.len(), limit + 1);
    for (method, path, _) in authenticated_routes() {
        let reply = s.request(method, path, Some(&s.setup), Some(&big))?;
        if method == "GET" || path == "/v1/policies/p" && method == "DELETE" || path.contains("/api-keys/") {
            continue; // no body is read
        }
        let policy_route = path.contains("polic");
        if policy_route {
            assert_ne!(reply.status, 413, "{method} {path} takes larger bodies");
        } else {
            assert_eq!((reply.status, reply.code()), (413, "request_too_large"), "{method} {path}");
            assert!(reply.is_error_body());
        }
    }
    // The answer always arrives: the server reads the rest of the body before it answers, so the
    // connection is not reset under the client's feet (which clients would take for an outage).
    for _ in 0..20 {
        let reply = s.request("POST", "/v1/check", Some(&s.runtime), Some(&big))?;
        assert_eq!((reply.status, reply.code()), (413, "request_too_large"));
    }
    let mut huge = big.clone();
    huge.resize(allowly_server::DEFAULT_MAX_POLICY_BODY_BYTES + 1, b' ');
    let reply = s.request("POST", "/v1/policies", Some(&s.setup), Some(&huge))?;
    assert_eq!(reply.status, 413);
    // Exactly at the limit is read (and then judged on its content).
    let mut at_limit = br#"{"authorization_id":"auth_x","actions":["a"]}"#.to_vec();
    at_limit.resize(limit, b' ');
    let reply = s.request("POST", "/v1/check", Some(&s.runtime), Some(&at_limit))?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    // A chunked body with no length is cut off at the limit too.
    let mut raw = format!(
        "POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        s.runtime
    )
    .into_bytes();
    for _ in 0..70 {
        raw.extend_from_slice(format!("{:x}\r\n", 1024).as_bytes());
        raw.extend(std::iter::repeat_n(b' ', 1024));
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let reply = s.raw(&raw)?;
    assert_eq!((reply.status, reply.code()), (413, "request_too_large"));
    // The context limit (4 KiB) is the engine's: a 422 naming the context.
    let pad = "y".repeat(5000);
    let reply = s.json(
        "POST",
        "/v1/check",
        Some(&s.runtime),
        &json!({"authorization_id": "a", "actions": ["a"], "context": {"pad": pad}}),
    )?;
    assert_eq!((reply.status, reply.body["error"]["fields"][0]["field"].as_str()), (422, Some("context")));
    Ok(())
}

#[test]
fn graceful_shutdown_finishes_requests_in_flight_then_stops_accepting() -> TestResult {
    use std::io::{Read, Write};
    let mut s = TestServer::start()?;
    s.create_policy()?;
    let aid = s.create_authorization(None)?;
    // A check whose body is still arriving when the shutdown signal comes.
    let body = serde_json::to_vec(&json!({"authorization_id": aid, "actions": ["email.read"]}))?;
    let mut stream = std::net::TcpStream::connect(s.addr)?;
    write!(
        stream,
        "POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.runtime,
        body.len()
    )?;
    stream.write_all(&body[..10])?;
    std::thread::sleep(std::time::Duration::from_millis(200));
    s.signal_stop();
    std::thread::sleep(std::time::Duration::from_millis(200));
    stream.write_all(&body[10..])?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    assert!(answer.starts_with("HTTP/1.1 200"), "the request in flight was answered: {answer}");
    assert!(answer.contains("\"decision\":\"allow\""), "{answer}");
    s.stop()?;
    assert!(std::net::TcpStream::connect(s.addr).is_err(), "the listener is closed after shutdown");
    Ok(())
}

#[test]
fn first_start_creates_keys_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("home");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let first = rt.block_on(allowly_server::Server::bind(allowly_server::Config::new(
        "127.0.0.1:0".parse()?,
        allowly_server::Storage::Sqlite { home: home.clone() },
    )))?;
    let keys = first.starter_keys().cloned().ok_or("first start makes keys")?;
    assert!(keys.banner().contains(&keys.setup.key) && keys.banner().contains(&keys.runtime.key));
    drop(first);
    let second = rt.block_on(allowly_server::Server::bind(allowly_server::Config::new(
        "127.0.0.1:0".parse()?,
        allowly_server::Storage::Sqlite { home },
    )))?;
    assert!(second.starter_keys().is_none(), "keys are printed once, never again");
    // A PostgreSQL server that is not there: a clear error at start.
    let postgres = allowly_server::Storage::from_flags("h".into(), Some("postgres://u@127.0.0.1:1/db"))?;
    let err = rt
        .block_on(allowly_server::Server::bind(allowly_server::Config::new("127.0.0.1:0".parse()?, postgres)))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(allowly_server::Storage::from_flags("h".into(), Some("mysql://x")).is_err());
    Ok(())
}
