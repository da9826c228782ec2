//! The remote client against real sockets on 127.0.0.1: a tiny HTTP/1.1 server thread that hangs,
//! refuses, fails, answers canned bodies, or routes to an in-memory engine. Nothing of the client
//! is mocked.
#![cfg(feature = "remote")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use allowly_core::api::Api;
use allowly_core::model::{AuthorizationCreate, CheckRequest, CheckResponse, Resolution};
use allowly_core::policy::Decision;
use allowly_core::remote::{FallbackMode, RemoteClient, RemoteOptions};
use allowly_core::{ops, Allowly, Error};
use serde_json::{json, Value};

const KEY: &str = "allowly_rt_test_secret";

// ---------------------------------------------------------------------------------------------
// The test server

/// One request as the server read it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap()
    }
}

enum Reply {
    /// Read the request, then hold the connection open without a byte of answer.
    Hang,
    /// Send the status line, headers and half the announced body, then hold the connection.
    StallBody,
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// A full answer, then the server closes the connection without announcing it.
    FullThenClose {
        body: String,
    },
}

fn json_reply(status: u16, body: &Value) -> Reply {
    Reply::Full { status, headers: vec![], body: body.to_string() }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

struct TestServer {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl TestServer {
    fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen_in, connections_in) = (seen.clone(), connections.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                connections_in.fetch_add(1, Ordering::SeqCst);
                let (handler, seen) = (handler.clone(), seen_in.clone());
                thread::spawn(move || serve_connection(stream, &*handler, &seen));
            }
        });
        TestServer { base_url, seen, connections }
    }

    fn client(&self, options: RemoteOptions) -> RemoteClient {
        RemoteClient::connect(&self.base_url, KEY, options).unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn last(&self) -> Seen {
        self.seen().pop().unwrap()
    }
}

/// Keep-alive HTTP/1.1: requests on one connection until the client closes it.
fn serve_connection(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Seen>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let request = Seen { method, target, headers, body };
        seen.lock().unwrap().push(request.clone());
        match handler(&request) {
            Reply::Hang => {
                thread::sleep(Duration::from_secs(30));
                return;
            }
            Reply::StallBody => {
                let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"authorization_id\":");
                let _ = writer.flush();
                thread::sleep(Duration::from_secs(30));
                return;
            }
            Reply::FullThenClose { body } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(body.as_bytes()));
                return;
            }
            Reply::Full { status, headers, body } => {
                let mut head = format!("HTTP/1.1 {status} Status\r\nContent-Length: {}\r\n", body.len());
                if !body.is_empty() {
                    head.push_str("Content-Type: application/json\r\n");
                }
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                if writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(body.as_bytes())).is_err() {
                    return;
                }
            }
        }
    }
}

fn decode(text: &str) -> String {
    let mut out = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' && tail.len() >= 2 {
            out.push(u8::from_str_radix(std::str::from_utf8(&tail[..2]).unwrap(), 16).unwrap());
            rest = &tail[2..];
        } else {
            out.push(first);
            rest = tail;
        }
    }
    String::from_utf8(out).unwrap()
}

fn options(check_timeout_ms: u64) -> RemoteOptions {
    RemoteOptions { check_timeout_ms, ..RemoteOptions::default() }
}

fn request(actions: &[&str]) -> CheckRequest {
    CheckRequest {
        authorization_id: "auth_remote_1".into(),
        actions: actions.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    }
}

/// Every result is a local fallback with this decision and reason, without a receipt.
fn assert_fallback(response: &CheckResponse, expected: &[(&str, Decision, &str)]) {
    assert_eq!(response.engine_version, "sdk_fallback");
    assert_eq!(response.authorization_id, "auth_remote_1");
    assert_eq!(response.user_id, None);
    assert_eq!(response.results.len(), expected.len());
    for (action, decision, reason) in expected {
        let result = response.results.get(action).unwrap_or_else(|| panic!("no result for {action}"));
        assert_eq!(result.decision, *decision, "{action}");
        assert_eq!(result.reason, *reason, "{action}");
        assert!(result.is_fallback, "{action}");
        assert!(result.receipt.is_none(), "{action}");
        let mode = if *decision == Decision::Allow { "fail_open" } else { "fail_closed" };
        assert_eq!(result.fallback_mode.as_deref(), Some(mode));
    }
    // The fallback serializes with the members the official SDK exposes.
    let wire = serde_json::to_value(response).unwrap();
    let first = &wire["results"][expected[0].0];
    assert_eq!(first["is_fallback"], json!(true));
    assert_eq!(first["receipt"], Value::Null);
}

// ---------------------------------------------------------------------------------------------
// (a) a runtime that accepts and never answers

#[test]
fn a_silent_runtime_is_cut_off_at_the_check_deadline_and_fails_closed() {
    let server = TestServer::start(|_| Reply::Hang);
    let client = server.client(options(300));
    let started = Instant::now();
    let response = client.check_or_fallback(&request(&["email.send", "refund.issue"])).unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(400), "took {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(250), "gave up early: {elapsed:?}");
    assert_fallback(
        &response,
        &[
            ("email.send", Decision::Deny, "fallback_closed_timeout"),
            ("refund.issue", Decision::Deny, "fallback_closed_timeout"),
        ],
    );
    assert_eq!(server.seen().len(), 1, "the request reached the server");
}

#[test]
fn fail_open_actions_are_allowed_and_the_others_stay_denied() {
    let server = TestServer::start(|_| Reply::Hang);
    let mut options = options(300);
    options.fallback_by_action.insert("search.web".into(), FallbackMode::FailOpen);
    options.fallback_by_action.insert("email.send".into(), FallbackMode::FailClosed);
    let client = server.client(options);
    let started = Instant::now();
    let response = client.check_or_fallback(&request(&["search.web", "email.send", "crm.read"])).unwrap();
    assert!(started.elapsed() < Duration::from_millis(400), "took {:?}", started.elapsed());
    assert_fallback(
        &response,
        &[
            ("search.web", Decision::Allow, "fallback_open_timeout"),
            ("email.send", Decision::Deny, "fallback_closed_timeout"),
            ("crm.read", Decision::Deny, "fallback_closed_timeout"),
        ],
    );
    // Results keep the request's order.
    let order: Vec<&str> = response.results.iter().map(|(action, _)| action).collect();
    assert_eq!(order, ["search.web", "email.send", "crm.read"]);
}

#[test]
fn a_body_that_stalls_is_cut_off_at_the_same_deadline() {
    let server = TestServer::start(|_| Reply::StallBody);
    let client = server.client(options(300));
    let started = Instant::now();
    let response = client.check_or_fallback(&request(&["email.send"])).unwrap();
    assert!(started.elapsed() < Duration::from_millis(400), "took {:?}", started.elapsed());
    assert_fallback(&response, &[("email.send", Decision::Deny, "fallback_closed_timeout")]);
}

#[test]
fn other_calls_are_bounded_by_the_request_timeout_and_raise() {
    let server = TestServer::start(|_| Reply::Hang);
    let client = server.client(RemoteOptions { request_timeout_ms: 300, ..RemoteOptions::default() });
    let started = Instant::now();
    let err = client.list_authorizations(&Default::default()).unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(400), "took {:?}", started.elapsed());
    assert!(matches!(err, Error::Timeout { timeout_ms: 300 }), "{err:?}");
    assert_eq!(err.code(), "timeout");
}

// ---------------------------------------------------------------------------------------------
// (b) nothing listening

#[test]
fn a_refused_connection_fails_closed_as_unreachable() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = RemoteClient::connect(&format!("http://127.0.0.1:{port}"), KEY, options(1000)).unwrap();
    let mut with_open = options(1000);
    with_open.fallback_by_action.insert("search.web".into(), FallbackMode::FailOpen);
    let open_client = RemoteClient::connect(&format!("http://127.0.0.1:{port}/"), KEY, with_open).unwrap();

    let response = client.check_or_fallback(&request(&["email.send"])).unwrap();
    assert_fallback(&response, &[("email.send", Decision::Deny, "fallback_closed_unreachable")]);
    let response = open_client.check_or_fallback(&request(&["search.web", "email.send"])).unwrap();
    assert_fallback(
        &response,
        &[
            ("search.web", Decision::Allow, "fallback_open_unreachable"),
            ("email.send", Decision::Deny, "fallback_closed_unreachable"),
        ],
    );
    // Other calls raise a typed error instead.
    assert_eq!(client.readiness().unwrap_err().code(), "unreachable");
}

// ---------------------------------------------------------------------------------------------
// (c) 5xx and 408

#[test]
fn server_errors_fail_closed_as_unreachable_and_408_as_timeout() {
    let cases: Vec<(Reply, &str)> = vec![
        (json_reply(503, &json!({"error": {"code": "unavailable", "message": "down"}})), "fallback_closed_unreachable"),
        (Reply::Full { status: 500, headers: vec![], body: "<html>oops</html>".into() }, "fallback_closed_unreachable"),
        (Reply::Full { status: 502, headers: vec![], body: String::new() }, "fallback_closed_unreachable"),
        (json_reply(408, &json!({"error": {"code": "request_timeout", "message": "slow"}})), "fallback_closed_timeout"),
    ];
    for (reply, reason) in cases {
        let Reply::Full { status, headers, body } = reply else { unreachable!() };
        let server = TestServer::start(move |_| Reply::Full { status, headers: headers.clone(), body: body.clone() });
        let response = server.client(options(1000)).check_or_fallback(&request(&["email.send"])).unwrap();
        assert_fallback(&response, &[("email.send", Decision::Deny, reason)]);
    }
}

#[test]
fn identity_verification_unavailable_never_falls_back() {
    let server = TestServer::start(|_| {
        json_reply(503, &json!({"error": {"code": "identity_verification_unavailable", "message": "try later"}}))
    });
    let err = server.client(options(1000)).check_or_fallback(&request(&["email.send"])).unwrap_err();
    assert_eq!(err.code(), "identity_verification_unavailable");
    assert_eq!(err.http_status(), Some(503));
}

// ---------------------------------------------------------------------------------------------
// (d) other 4xx raise typed errors

#[test]
fn a_429_is_a_typed_error_with_retry_after_not_a_fallback() {
    let server = TestServer::start(|_| Reply::Full {
        status: 429,
        headers: vec![("Retry-After", "7".into())],
        body: json!({"error": {"code": "rate_limited", "message": "slow down"}}).to_string(),
    });
    let client = server.client(options(1000));
    let err = client.check_or_fallback(&request(&["email.send"])).unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 429, code, message, fields, retry_after_seconds: Some(7.0) }
            if code == "rate_limited" && message == "slow down" && fields.is_empty()),
        "{err:?}"
    );
    assert_eq!(err.retry_after_seconds(), Some(7.0));
    // Through the shared facade: still an error, with the server's code.
    let api: &dyn Api = &client;
    let err = api.check_or_fallback(&request(&["email.send"])).unwrap_err();
    assert_eq!(err.code(), "rate_limited");
    assert!(matches!(err, Error::Api { status: 429, retry_after_seconds: Some(7.0), .. }), "{err:?}");
}

#[test]
fn a_422_is_a_typed_error_with_its_code_and_fields() {
    let server = TestServer::start(|_| {
        json_reply(
            422,
            &json!({"error": {"code": "invalid_request", "message": format!("invalid `context`: key {KEY} is reserved"),
                    "fields": [{"field": "context.budget", "message": "is reserved"}, {"field": 3}, "junk"]}}),
        )
    });
    let client = server.client(options(1000));
    let err = client.check_or_fallback(&request(&["email.send"])).unwrap_err();
    let Error::Api { status, code, message, fields, retry_after_seconds } = &err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!((*status, code.as_str(), *retry_after_seconds), (422, "invalid_request", None));
    assert_eq!(message, "invalid `context`: key [REDACTED] is reserved", "the API key is never echoed");
    assert_eq!(fields.len(), 2);
    assert_eq!((fields[0].field.as_str(), fields[0].message.as_str()), ("context.budget", "is reserved"));
    assert_eq!((fields[1].field.as_str(), fields[1].message.as_str()), ("", ""));
    // As the engine's error: an invalid request with the same fields.
    assert_eq!(err.code(), "invalid_request");
    assert_eq!(err.fields().len(), 2);
}

#[test]
fn error_bodies_of_other_shapes_are_tolerated() {
    let server = TestServer::start(|seen| match seen.path() {
        "/v1/policies/lb" => json_reply(403, &json!({"error": "blocked by the load balancer"})),
        "/v1/policies/html" => Reply::Full { status: 404, headers: vec![], body: "<h1>not here</h1>".into() },
        _ => Reply::Full {
            status: 401,
            headers: vec![("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT".into())],
            body: json!({"error": {"code": "invalid_or_revoked_api_key", "message": "no"}}).to_string(),
        },
    });
    let client = server.client(options(1000));
    let err = client.get_policy("lb").unwrap_err();
    assert_eq!(
        (err.http_status(), err.code(), err.to_string().as_str()),
        (Some(403), "error", "blocked by the load balancer")
    );
    let err = client.get_policy("html").unwrap_err();
    assert_eq!((err.http_status(), err.code()), (Some(404), "error"));
    assert_eq!(err.code(), "error", "the server's code is kept as sent");
    let err = client.check_or_fallback(&request(&["email.send"])).unwrap_err();
    assert_eq!(
        (err.http_status(), err.code(), err.retry_after_seconds()),
        (Some(401), "invalid_or_revoked_api_key", None)
    );
    assert!(matches!(err, Error::Api { status: 401, ref code, .. } if code == "invalid_or_revoked_api_key"));
}

// ---------------------------------------------------------------------------------------------
// (e) real answers, and answers that break the contract

/// An engine with the shared policy and one authorization, and a check answer of every decision.
fn engine_answer() -> (common::Fixture, CheckRequest, CheckResponse) {
    let fixture = common::memory();
    let authorization_id = fixture.authorize(None);
    let request = CheckRequest {
        authorization_id,
        actions: vec!["email.send".into(), "refund.issue".into(), "account.delete".into(), "calendar.invite".into()],
        context: Some(json!({"recipient_domain": "example.com"})),
        ..Default::default()
    };
    let response = fixture.engine.check(&request).unwrap();
    let decisions: Vec<Decision> = response.results.iter().map(|(_, r)| r.decision).collect();
    assert_eq!(decisions, [Decision::Allow, Decision::Escalate, Decision::Deny, Decision::Confirm]);
    (fixture, request, response)
}

#[test]
fn a_real_check_answer_parses_equal_to_the_engines() {
    let (_fixture, request, original) = engine_answer();
    let body = serde_json::to_string(&original).unwrap();
    let server = TestServer::start(move |_| Reply::Full { status: 200, headers: vec![], body: body.clone() });
    let client = server.client(options(1000));
    let mut sent = request.clone();
    sent.idempotency_key = Some("idem-1".into());
    sent.client_timestamp = Some("2026-03-02T09:00:00Z".into());
    let parsed = client.check_or_fallback(&sent).unwrap();
    assert_eq!(parsed, original);
    assert_eq!(client.engine_version().as_deref(), Some(original.engine_version.as_str()));

    // The request as the official client sends it.
    let seen = server.last();
    assert_eq!((seen.method.as_str(), seen.target.as_str()), ("POST", "/v1/check"));
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(seen.header("idempotency-key"), Some("idem-1"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.json(),
        json!({
            "authorization_id": request.authorization_id, "actions": request.actions, "resource": null,
            "session_id": null, "estimated_cost_micros": null, "context": {"recipient_domain": "example.com"},
            "client_timestamp": "2026-03-02T09:00:00Z",
        })
    );
}

#[test]
fn results_are_returned_in_request_order() {
    let (_fixture, request, original) = engine_answer();
    let mut wire = serde_json::to_value(&original).unwrap();
    // Reverse the order of `results` on the wire.
    let results: Vec<(String, Value)> =
        wire["results"].as_object().unwrap().iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
    let reversed: String =
        format!("{{{}}}", results.iter().map(|(k, v)| format!("{}:{}", json!(k), v)).collect::<Vec<_>>().join(","));
    wire["results"] = json!({});
    let body = wire.to_string().replace("\"results\":{}", &format!("\"results\":{reversed}"));
    let server = TestServer::start(move |_| Reply::Full { status: 200, headers: vec![], body: body.clone() });
    assert_eq!(server.client(options(1000)).check_or_fallback(&request).unwrap(), original);
}

#[test]
fn answers_that_break_the_contract_are_protocol_errors() {
    let (_fixture, request, original) = engine_answer();
    let wire = serde_json::to_value(&original).unwrap();
    let mutate = |change: &dyn Fn(&mut Value)| {
        let mut body = wire.clone();
        change(&mut body);
        body.to_string()
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "a different action",
            mutate(&|b| {
                let result = b["results"].as_object_mut().unwrap().remove("email.send").unwrap();
                b["results"]["email.sent"] = result;
            }),
        ),
        (
            "a missing action",
            mutate(&|b| {
                b["results"].as_object_mut().unwrap().remove("account.delete");
            }),
        ),
        (
            "an extra action",
            mutate(&|b| {
                let extra = b["results"]["account.delete"].clone();
                b["results"]["crm.read"] = extra;
            }),
        ),
        ("another authorization", mutate(&|b| b["authorization_id"] = json!("auth_other"))),
        ("a wire-4 engine version", mutate(&|b| b["engine_version"] = json!("2026-04-19.1"))),
        ("no receipt", mutate(&|b| b["results"]["email.send"]["receipt"] = Value::Null)),
        ("an unknown decision", mutate(&|b| b["results"]["email.send"]["decision"] = json!("maybe"))),
        (
            "a confirm without its nonce",
            mutate(&|b| {
                b["results"]["calendar.invite"].as_object_mut().unwrap().remove("confirm_nonce");
            }),
        ),
        ("a fallback from the runtime", mutate(&|b| b["results"]["email.send"]["is_fallback"] = json!(true))),
        ("not JSON", "<html>welcome</html>".to_string()),
    ];
    for (case, body) in cases {
        let server = TestServer::start(move |_| Reply::Full { status: 200, headers: vec![], body: body.clone() });
        let err = server.client(options(1000)).check_or_fallback(&request).unwrap_err();
        assert!(matches!(err, Error::Protocol(_)), "{case}: {err:?}");
        assert_eq!(err.code(), "protocol_error", "{case}");
    }
    // A success status other than 200 is a protocol error too; a redirect is an error, not followed.
    let body = wire.to_string();
    let server = TestServer::start(move |_| Reply::Full { status: 201, headers: vec![], body: body.clone() });
    assert!(matches!(server.client(options(1000)).check_or_fallback(&request).unwrap_err(), Error::Protocol(_)));
    let server = TestServer::start(|_| Reply::Full {
        status: 307,
        headers: vec![("Location", "http://127.0.0.1:1/v1/check".into())],
        body: String::new(),
    });
    assert_eq!(server.client(options(1000)).check_or_fallback(&request).unwrap_err().http_status(), Some(307));
}

#[test]
fn connections_are_reused() {
    let (_fixture, request, original) = engine_answer();
    let body = serde_json::to_string(&original).unwrap();
    let server = TestServer::start(move |_| Reply::Full { status: 200, headers: vec![], body: body.clone() });
    let client = server.client(options(1000));
    for _ in 0..3 {
        client.check_or_fallback(&request).unwrap();
    }
    assert_eq!(server.seen().len(), 3);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "one keep-alive connection");
}

#[test]
fn a_connection_the_runtime_closed_is_not_reused() {
    let (_fixture, request, original) = engine_answer();
    let body = serde_json::to_string(&original).unwrap();
    let server = TestServer::start(move |_| Reply::FullThenClose { body: body.clone() });
    let client = server.client(options(1000));
    for _ in 0..20 {
        assert_eq!(client.check_or_fallback(&request).unwrap(), original);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 20);
}

#[test]
fn connect_validates_its_arguments() {
    let invalid = |url: &str, key: &str, options: RemoteOptions| RemoteClient::connect(url, key, options).unwrap_err();
    assert_eq!(invalid("not a url", KEY, options(1000)).code(), "invalid_request");
    assert_eq!(invalid("http://allowly.example.com", KEY, options(1000)).code(), "invalid_request");
    assert_eq!(invalid("http://127.0.0.1:8787", "", options(1000)).code(), "invalid_request");
    assert_eq!(invalid("http://127.0.0.1:8787", "two words", options(1000)).code(), "invalid_request");
    assert_eq!(invalid("http://127.0.0.1:8787", KEY, options(0)).code(), "invalid_request");
    let insecure = RemoteOptions { allow_insecure_http: true, ..RemoteOptions::default() };
    assert!(RemoteClient::connect("http://allowly.example.com", KEY, insecure).is_ok());
    let client = allowly_core::connect("http://127.0.0.1:8787", KEY, RemoteOptions::default()).unwrap();
    assert!(!format!("{client:?}").contains(KEY), "Debug never shows the key");
}

// ---------------------------------------------------------------------------------------------
// Every call against a router on a real engine

/// A minimal HTTP front for an engine, built from the operation catalog: enough of
/// docs/http-api.md to exercise every client call (the real server is tested in server/tests).
fn route(engine: &Allowly, seen: &Seen) -> Reply {
    let path: Vec<String> = seen.path().trim_start_matches('/').split('/').map(decode).collect();
    let error = |err: Error| {
        json_reply(
            err.http_status().unwrap_or(503),
            &json!({"error": {"code": err.code(), "message": err.to_string(), "fields": err.fields()}}),
        )
    };
    if seen.header("authorization") != Some(format!("Bearer {KEY}").as_str())
        && !(path.len() == 4 && path[1] == "workspaces")
    {
        return error(Error::Unauthorized { code: "invalid_or_revoked_api_key", message: "no".into() });
    }
    if seen.path() == "/readyz" {
        return json_reply(200, &json!({"status": "ready"}));
    }
    // The catalog route whose template matches the path; `{id}` takes any one segment.
    let matched = ops::CATALOG.iter().find_map(|route| {
        let template: Vec<&str> = route.path.trim_start_matches('/').split('/').collect();
        let fits = route.method.as_str() == seen.method
            && template.len() == path.len()
            && template.iter().zip(&path).all(|(t, p)| *t == "{id}" || t == p);
        let id = || template.iter().position(|t| *t == "{id}").map(|n| path[n].clone());
        fits.then(|| (route, id()))
    });
    let Some((route, id)) = matched else {
        return json_reply(404, &json!({"error": {"code": "route_not_found", "message": "no such route"}}));
    };
    let mut fields = match route.body {
        ops::Body::Query => {
            let query = seen.target.split_once('?').map_or("", |(_, q)| q);
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(name, value)| (name.to_string(), Value::String(decode(value))))
                .collect()
        }
        _ if seen.body.is_empty() => serde_json::Map::new(),
        _ => seen.json().as_object().cloned().unwrap(),
    };
    if let (Some(field), Some(id)) = (route.path_field, id) {
        fields.insert(field.into(), Value::String(id));
    }
    if let Some(key) = seen.header("idempotency-key") {
        fields.insert("idempotency_key".into(), Value::String(key.into()));
    }
    let answer = ops::Request::from_value(route.operation, Value::Object(fields))
        .and_then(|request| engine.execute(request, "embedded"))
        .and_then(|answer| answer.to_value());
    match answer {
        Ok(_) if route.status == 204 => Reply::Full { status: 204, headers: vec![], body: String::new() },
        Ok(value) => json_reply(route.status, &value),
        Err(err) => error(err),
    }
}

fn engine_server() -> (common::Fixture, TestServer) {
    let fixture = common::memory();
    let engine = fixture.engine.clone();
    let server = TestServer::start(move |seen| route(&engine, seen));
    (fixture, server)
}

#[test]
fn every_call_round_trips_through_a_real_engine() {
    let (fixture, server) = engine_server();
    let engine = &fixture.engine;
    let options = RemoteOptions { workspace_id: Some(engine.workspace_id().to_string()), ..options(2000) };
    let client = server.client(options);
    let api: &dyn Api = &client;

    assert!(api.readiness().unwrap());
    assert_eq!(api.workspace_id().as_deref(), Some(engine.workspace_id()));
    assert_eq!(api.engine_version(), None, "unknown before the first check");

    // Policies.
    let created = api.create_policy(&common::support_policy()).unwrap();
    assert_eq!(created, engine.get_policy("support_agent").unwrap());
    assert_eq!(api.get_policy("support_agent").unwrap(), created);
    let page = api.list_policies(10, None).unwrap();
    assert_eq!((page.items.len(), page.has_more), (1, false));
    let preview =
        api.preview_policy(&created.definition, "email.send", &json!({"recipient_domain": "elsewhere.org"})).unwrap();
    assert_eq!(preview["policy_eval"]["result"]["decision"], json!("confirm"));
    let err = api.get_policy("nope").unwrap_err();
    assert!(matches!(err, Error::Api { status: 404, ref code, .. } if code == "policy_not_found"), "{err:?}");

    // Authorizations, with an idempotency key.
    let create = AuthorizationCreate {
        user_id: "user_7".into(),
        policy_id: "support_agent".into(),
        policy_version: Some(1),
        budget_limit_micros: Some(10_000_000),
        idempotency_key: Some("create-1".into()),
        ..Default::default()
    };
    let authorization = api.create_authorization(&create).unwrap();
    assert_eq!(api.create_authorization(&create).unwrap(), authorization, "replayed by its key");
    let seen = server.last();
    assert_eq!((seen.header("idempotency-key"), seen.json()["metadata"].clone()), (Some("create-1"), json!({})));
    let id = authorization.authorization_id.clone();
    assert_eq!(api.get_authorization(&id).unwrap(), engine.get_authorization(&id).unwrap());
    let err = api.get_authorization("auth_missing").unwrap_err();
    assert!(matches!(err, Error::Api { status: 404, ref code, .. } if code == "authorization_not_found"), "{err:?}");

    // Check, confirmation, escalation.
    let check = |actions: &[&str], estimate: Option<i64>| {
        api.check_or_fallback(&CheckRequest {
            authorization_id: id.clone(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            estimated_cost_micros: estimate,
            context: Some(json!({"recipient_domain": "example.com"})),
            ..Default::default()
        })
        .unwrap()
    };
    let first = check(&["calendar.invite", "refund.issue"], None);
    assert_eq!(api.engine_version().as_deref(), Some(engine.engine_version()));
    let confirm = first.results.get("calendar.invite").unwrap();
    assert_eq!(confirm.decision, Decision::Confirm);
    let resolved = api.resolve_confirmation(confirm.confirm_nonce.as_deref().unwrap(), true, None, None).unwrap();
    assert_eq!(resolved.decision, "approved");
    assert_eq!(server.last().json(), json!({"approved": true, "ttl_seconds": 60}));
    let status = api.confirmation_status(confirm.confirmation_id.as_deref().unwrap()).unwrap();
    assert_eq!(status.authority_status, "available");
    let by_nonce = api.confirmation_status(confirm.confirm_nonce.as_deref().unwrap()).unwrap();
    assert_eq!(by_nonce.confirmation_id, status.confirmation_id, "the nonce names the same confirmation");
    let escalation_id = first.results.get("refund.issue").unwrap().escalation_id.clone().unwrap();
    let resolved = api.resolve_escalation(&escalation_id, Resolution::Approved, "finance_lead", None, None).unwrap();
    assert_eq!(resolved.status, "approved");
    assert_eq!(server.last().json(), json!({"resolution": "approved", "resolved_by": "finance_lead", "note": null}));
    assert_eq!(api.escalation_status(&escalation_id).unwrap().authority_status, "available");
    let second = check(&["calendar.invite", "refund.issue"], None);
    assert_eq!(common::outcome(&second, "calendar.invite"), (Decision::Allow, "user_confirmed".into()));
    assert_eq!(common::outcome(&second, "refund.issue"), (Decision::Allow, "escalation_approved".into()));

    // Budget settlement and receipts.
    let budgeted = check(&["email.send"], Some(2_000_000));
    let receipt = common::signed(&budgeted, "email.send");
    let receipt_id = fixture.verify(&receipt)["receipt_id"].as_str().unwrap().to_string();
    assert_eq!(api.receipt(&receipt_id).unwrap(), receipt);
    let settled = api.settle_budget(&receipt_id, 1_500_000, Some("settle-1")).unwrap();
    assert_eq!((settled.delta_micros, settled.spent_after_micros), (-500_000, 1_500_000));
    assert_eq!(server.last().header("idempotency-key"), Some("settle-1"));
    let err = api.settle_budget(&receipt_id, 9, None).unwrap_err();
    assert!(matches!(err, Error::Api { status: 409, ref code, .. } if code == "budget_already_settled"), "{err:?}");
    assert_eq!(api.key_document().unwrap(), engine.key_document().unwrap());
    assert_eq!(server.last().header("authorization"), None, "the key document is public");

    // Revocation with notes, then a denied check.
    let revoked = api.revoke_authorization(&id, Some("admin"), Some("left the team"), None).unwrap();
    assert_eq!(revoked.authorization_id, id);
    let seen = server.last();
    assert_eq!(
        (seen.method.as_str(), seen.json()),
        ("DELETE", json!({"revoked_by": "admin", "notes": "left the team"}))
    );
    assert_eq!(common::outcome(&check(&["crm.read"], None), "crm.read").1, "authorization_revoked");

    // Archive (204), then the policy is gone.
    api.archive_policy("support_agent", None).unwrap();
    assert!(matches!(api.get_policy("support_agent").unwrap_err(), Error::Api { status: 404, .. }));
}

#[test]
fn get_authorization_reads_one_authorization() {
    let (fixture, server) = engine_server();
    fixture.engine.create_policy(&common::support_policy()).unwrap();
    let mut ids = Vec::new();
    for n in 0..130 {
        let create = AuthorizationCreate {
            user_id: format!("user_{n}"),
            policy_id: "support_agent".into(),
            ..Default::default()
        };
        ids.push(fixture.engine.create_authorization(&create).unwrap().authorization_id);
    }
    ids.sort();
    let client = server.client(options(1000));
    let last = ids.last().unwrap();
    assert_eq!(&client.get_authorization(last).unwrap().authorization_id, last);
    let targets: Vec<String> = server.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(targets, [format!("/v1/authorizations/{last}")], "one request, not a walk through the list");
}

#[test]
fn the_embedded_engine_serves_the_same_facade() {
    let fixture = common::memory();
    let authorization_id = fixture.authorize(None);
    let engines: Vec<Box<dyn Api>> = vec![Box::new(Allowly::in_memory().unwrap())];
    assert!(engines[0].readiness().unwrap());
    let api: &dyn Api = &*fixture.engine;
    let answer = api
        .check_or_fallback(&CheckRequest {
            authorization_id,
            actions: vec!["account.delete".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(common::outcome(&answer, "account.delete").0, Decision::Deny);
    assert_eq!(api.workspace_id().as_deref(), Some(fixture.engine.workspace_id()));
    assert!(api.engine_version().unwrap().starts_with("sha256:"));
}
