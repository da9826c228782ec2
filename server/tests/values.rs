//! Values over HTTP: a timestamp, integer or string the stores or the wire cannot hold is a 422
//! naming its member and changes nothing, whatever the JSON number's size; the workspace keeps
//! listing, reading and checking afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestResult, TestServer};
use serde_json::{json, Value};

#[test]
fn values_outside_what_the_stores_and_the_wire_hold_are_422_and_change_nothing() -> TestResult {
    let s = TestServer::start()?;
    s.create_policy()?;
    let kept = s.create_authorization(None)?;
    let runtime = Some(s.runtime.as_str());
    let listed = |s: &TestServer| -> TestResult<Value> {
        let reply = s.request("GET", "/v1/authorizations", Some(&s.setup), None)?;
        assert_eq!(reply.status, 200, "{}", reply.text);
        Ok(reply.body)
    };
    let before = listed(&s)?;

    // Raw bodies, so numbers past what any integer type holds reach the server as sent.
    let base = r#""user_id": "user_1", "policy_id": "support""#;
    let refused = [
        ("expires_at", format!(r#"{{{base}, "expires_at": "9999-12-31T23:59:59.999-00:01"}}"#)),
        ("expires_at", format!(r#"{{{base}, "expires_at": "9999-12-31T12:00:00-23:59"}}"#)),
        ("expires_at", format!(r#"{{{base}, "expires_at": "0000-12-31T23:00:00Z"}}"#)),
        ("expires_at", format!(r#"{{{base}, "expires_at": "2030-01-01T24:00:00Z"}}"#)),
        ("expires_at", format!(r#"{{{base}, "expires_at": "2030-06-30T23:59:60Z"}}"#)),
        ("budget_limit_micros", format!(r#"{{{base}, "budget_limit_micros": 9007199254740992}}"#)),
        ("budget_limit_micros", format!(r#"{{{base}, "budget_limit_micros": 18446744073709551616}}"#)),
        ("budget_limit_micros", format!(r#"{{{base}, "budget_limit_micros": -9223372036854775809}}"#)),
        ("budget_limit_micros", format!(r#"{{{base}, "budget_limit_micros": 1e30}}"#)),
        ("budget_limit_micros", format!(r#"{{{base}, "budget_limit_micros": "12"}}"#)),
        ("policy_version", format!(r#"{{{base}, "policy_version": -9223372036854775808}}"#)),
        ("policy_version", format!(r#"{{{base}, "policy_version": 9007199254740992}}"#)),
        ("metadata", format!(r#"{{{base}, "metadata": {{"note": "a\u0000b"}}}}"#)),
        ("metadata", format!(r#"{{{base}, "metadata": {{"n": 9007199254740992}}}}"#)),
        ("user_id", r#"{"user_id": "user\u0000", "policy_id": "support"}"#.to_string()),
    ];
    for (member, body) in &refused {
        let reply = s.request("POST", "/v1/authorizations", runtime, Some(body.as_bytes()))?;
        assert_eq!((reply.status, reply.code()), (422, "invalid_request"), "{body}: {}", reply.text);
        let fields = reply.body["error"]["fields"].as_array().cloned().unwrap_or_default();
        assert!(
            fields.iter().any(|f| f["field"].as_str().is_some_and(|f| f.starts_with(member))),
            "{body}: the error names `{member}`: {}",
            reply.text
        );
    }
    // A number past what a double holds is refused by the JSON reader itself: a 400, never a 5xx.
    let huge = format!(r#"{{{base}, "budget_limit_micros": 1e400}}"#);
    let reply = s.request("POST", "/v1/authorizations", runtime, Some(huge.as_bytes()))?;
    assert_eq!((reply.status, reply.code()), (400, "invalid_json"), "{}", reply.text);
    let check = |extra: &str| -> TestResult<common::Reply> {
        let body = format!(r#"{{"authorization_id": "{kept}", "actions": ["email.read"]{extra}}}"#);
        s.request("POST", "/v1/check", runtime, Some(body.as_bytes()))
    };
    for (member, extra) in [
        ("estimated_cost_micros", r#", "estimated_cost_micros": 9007199254740992"#),
        ("estimated_cost_micros", r#", "estimated_cost_micros": 1e19"#),
        ("client_timestamp", r#", "client_timestamp": "9999-12-31T23:59:59.999-00:01""#),
    ] {
        let reply = check(extra)?;
        assert_eq!((reply.status, reply.code()), (422, "invalid_request"), "{extra}: {}", reply.text);
        assert!(reply.text.contains(member), "{extra}: {}", reply.text);
    }
    let revoke = s.request(
        "DELETE",
        &format!("/v1/authorizations/{kept}"),
        runtime,
        Some(br#"{"revoked_by": "ops", "notes": "closed\u0000"}"#),
    )?;
    assert_eq!((revoke.status, revoke.code()), (422, "invalid_request"), "{}", revoke.text);
    assert_eq!(listed(&s)?, before, "a refused request changed the authorizations");

    // The last instants the wire holds are kept, read back and listed; checks go on.
    let body = json!({"user_id": "user_1", "policy_id": "support", "expires_at": "9999-12-31T23:59:59.999+00:01",
                      "budget_limit_micros": 9_007_199_254_740_991_i64});
    let created = s.json("POST", "/v1/authorizations", runtime, &body)?;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["expires_at"], json!("9999-12-31T23:58:59.999Z"));
    let after = listed(&s)?;
    assert_eq!(after["items"].as_array().map(Vec::len), Some(2), "{after}");
    assert!(after.get("unreadable").is_none(), "no `unreadable` member when every row loads: {after}");
    let reply = check(r#", "client_timestamp": "9999-12-31T23:59:59.999+00:01""#)?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["results"]["email.read"]["decision"], json!("allow"), "{}", reply.text);
    Ok(())
}
