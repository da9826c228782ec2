//! Malformed JSON on every endpoint gets a 4xx with the error body, never a 5xx or a crash:
//! truncations and byte flips of valid bodies, wrong types, odd numbers and strings, deep nesting,
//! duplicate members and random bytes, with valid setup and runtime keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestResult, TestServer};
use serde_json::json;

/// xorshift64*: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: [&str; 32] = [
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e999",
    "1.5",
    "9007199254740993",
    "-0",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "\"a\"",
    "\"authorization_id\"",
    "\"actions\"",
    "\"context\"",
    "\\",
    "\u{feff}",
    "NaN",
    "\"\u{1F600}\"",
    "   ",
    "\n",
    "{}",
    "[]",
    "\"\\x\"",
    "\u{0}",
];

#[test]
fn malformed_json_never_gets_a_5xx() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    let aid = s.create_authorization(Some(1_000))?;
    let checked = s.check(&aid, &["email.send", "refund.issue"], json!({}))?;
    let nonce = checked.body["results"]["email.send"]["confirm_nonce"].as_str().unwrap_or("n").to_string();
    let esc = checked.body["results"]["refund.issue"]["escalation_id"].as_str().unwrap_or("e").to_string();
    let rid = checked.body["results"]["email.send"]["receipt_id"].as_str().unwrap_or("r").to_string();

    // Each JSON route with a valid body to mutate.
    let routes: Vec<(&str, String, serde_json::Value)> = vec![
        (
            "POST",
            "/v1/check".into(),
            json!({"authorization_id": aid, "actions": ["email.read", "email.send"],
            "resource": "r", "session_id": "s", "estimated_cost_micros": 5, "context": {"a": [1, "b", {"c": null}]},
            "client_timestamp": "2026-01-01T00:00:00+02:00"}),
        ),
        (
            "POST",
            "/v1/authorizations".into(),
            json!({"user_id": "u", "policy_id": "support", "policy_version": 1,
            "actions": ["email.read"], "expires_at": "2999-01-01T00:00:00Z", "budget_limit_micros": 10,
            "metadata": {"k": "v"}, "replaces": null}),
        ),
        ("DELETE", format!("/v1/authorizations/{aid}"), json!({"revoked_by": "admin", "notes": "n"})),
        ("POST", format!("/v1/confirmations/{nonce}"), json!({"approved": false, "ttl_seconds": 60})),
        (
            "POST",
            format!("/v1/escalations/{esc}/resolve"),
            json!({"resolution": "rejected", "resolved_by": "x", "note": "n"}),
        ),
        ("POST", "/v1/budget-settlements".into(), json!({"check_receipt_id": rid, "actual_cost_micros": 3})),
        ("POST", "/v1/policies".into(), common::policy_body("fuzz")),
        (
            "POST",
            "/v1/setup/policies/preview".into(),
            json!({"definition": common::definition(), "action": "email.send", "context": {"x": 1}}),
        ),
        ("POST", "/v1/setup/policies/publish".into(), common::policy_body("fuzz-pub")),
        ("POST", "/v1/setup/api-keys".into(), json!({"kind": "runtime", "label": "fuzz"})),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut sent = 0usize;
    let mut statuses = std::collections::BTreeMap::new();
    for (method, path, valid) in &routes {
        let valid = serde_json::to_vec(valid)?;
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        // Every truncation of the first 40 bytes, then a spread of longer ones.
        for cut in (0..valid.len()).filter(|n| *n < 40 || n % 17 == 0) {
            bodies.push(valid[..cut].to_vec());
        }
        for _ in 0..40 {
            let mut flipped = valid.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(flipped.len());
                flipped[at] = (rng.next() & 0xFF) as u8;
            }
            bodies.push(flipped);
        }
        for _ in 0..40 {
            let mut spliced = valid.clone();
            let at = rng.below(spliced.len());
            let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
            spliced.splice(at..at, token.iter().copied());
            bodies.push(spliced);
        }
        for _ in 0..20 {
            let garbage: Vec<u8> =
                (0..rng.below(64)).map(|_| TOKENS[rng.below(TOKENS.len())]).collect::<String>().into_bytes();
            bodies.push(garbage);
            bodies.push((0..rng.below(200)).map(|_| (rng.next() & 0xFF) as u8).collect());
        }
        // Shapes that are JSON but wrong.
        for shaped in [
            "null",
            "[]",
            "\"text\"",
            "42",
            "{}",
            "[{}]",
            "{\"actions\":\"email.read\"}",
            "{\"authorization_id\":1,\"actions\":[1,2]}",
            "{\"approved\":null}",
            "{\"a\":1,\"a\":2}",
            "{\"authorization_id\":\"a\",\"authorization_id\":\"b\",\"actions\":[\"x\"]}",
            "{\"context\":{\"k\":1,\"k\":2},\"authorization_id\":\"a\",\"actions\":[\"x\"]}",
            "{\"actual_cost_micros\":1e3,\"check_receipt_id\":\"r\"}",
            "{\"estimated_cost_micros\":-1}",
            "{\"ttl_seconds\":99999999999999999999,\"approved\":true}",
            "{\"kind\":\"root\"}",
            "{\"definition\":null,\"action\":null}",
            "{\"profile\":\"allowly.policy.v1\",\"policy_id\":\"../x\"}",
        ] {
            bodies.push(shaped.as_bytes().to_vec());
        }
        bodies.push(format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes());
        bodies.push(format!("{{\"context\":{}1{}}}", "{\"a\":".repeat(200), "}".repeat(200)).into_bytes());
        bodies.push(b"{\"authorization_id\":\"\xff\xfe\",\"actions\":[\"a\"]}".to_vec());

        let keys = [s.runtime.as_str(), s.setup.as_str()];
        for (i, body) in bodies.iter().enumerate() {
            let key = keys[i % 2];
            let reply =
                s.request_with(method, path, Some(key), Some(body), &[("Idempotency-Key", &format!("fz{i}"))])?;
            sent += 1;
            *statuses.entry(reply.status).or_insert(0usize) += 1;
            assert!(
                reply.status < 500,
                "{method} {path} answered {} to {:?}: {}",
                reply.status,
                String::from_utf8_lossy(body),
                reply.text
            );
            if reply.status >= 400 {
                assert!(reply.is_error_body(), "{method} {path}: not an error body: {}", reply.text);
            }
        }
    }
    // A request that is not even HTTP, and the server is still up.
    let reply = s.raw(b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
    assert!(reply.map(|r| r.status < 500).unwrap_or(true));
    let health = s.request("GET", "/readyz", None, None)?;
    assert_eq!(health.status, 200, "the server survived {sent} malformed requests ({statuses:?})");
    assert!(sent > 1000, "{sent}");
    assert!(statuses.keys().any(|s| *s == 400) && statuses.keys().any(|s| *s == 422), "{statuses:?}");
    Ok(())
}
