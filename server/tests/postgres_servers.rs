//! `allowly serve` on PostgreSQL when a COMMIT's answer is lost, and idempotency across servers.
//!
//! A loopback proxy between the server and PostgreSQL cuts the connection around a COMMIT: after
//! PostgreSQL committed (its answer never reaches the server), before the COMMIT reaches it, or
//! after it committed and with PostgreSQL unreachable for a while (so the outcome cannot be
//! learned). The client must get the true answer or `503 outcome_unknown`, and a retry under the
//! same idempotency key (the remote client sends one on every check) never spends twice. Lifecycle
//! calls under an `Idempotency-Key` replay their first answer on another server.
//!
//! Needs `eval "$(scripts/postgres.sh start)"` (ALLOWLY_TEST_DATABASE_URL); each test makes a fresh
//! database with `scripts/postgres.sh fresh-database`. Without it each test prints a
//! `SKIPPED (PostgreSQL)` line and passes ([`postgres_url`]); `scripts/test.sh` fails on that line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use allowly_core::model::CheckRequest;
use allowly_core::policy::Decision;
use allowly_core::{RemoteClient, RemoteOptions};
use common::{TestResult, TestServer};
use parking_lot::Mutex;
use serde_json::{json, Value};

/// The test cluster's URL (`ALLOWLY_TEST_DATABASE_URL`), or `None` when it is not set: the calling
/// test then returns at once, and this prints one `SKIPPED (PostgreSQL)` line naming the test
/// straight to stderr, past the test harness's capture, so a skip is never silent.
/// `scripts/test.sh` starts a cluster, fails if any test printed that line, and sets
/// `ALLOWLY_REQUIRE_POSTGRES=1`, with which a missing URL panics here instead of skipping.
fn postgres_url() -> Option<String> {
    if let Some(url) = std::env::var("ALLOWLY_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) {
        return Some(url);
    }
    if std::env::var("ALLOWLY_REQUIRE_POSTGRES").is_ok_and(|required| required == "1") {
        panic!(
            "ALLOWLY_REQUIRE_POSTGRES=1 but ALLOWLY_TEST_DATABASE_URL is not set: start a cluster with \
             `eval \"$(scripts/postgres.sh start)\"`"
        );
    }
    let thread = thread::current();
    let test = thread.name().unwrap_or("(unnamed test)");
    // One write, so the line is never split by the harness's output.
    let line =
        format!("SKIPPED (PostgreSQL): {test} — ALLOWLY_TEST_DATABASE_URL is not set; scripts/test.sh sets it\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

/// A fresh, empty database on the test cluster; its URL.
fn fresh_database(name: &str) -> String {
    let url = postgres_url().unwrap_or_default();
    assert!(
        url.starts_with("postgres"),
        "ALLOWLY_TEST_DATABASE_URL is not set: start a cluster with `eval \"$(scripts/postgres.sh start)\"`"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres.sh");
    let out = std::process::Command::new(script).args(["fresh-database", name]).output().unwrap();
    assert!(out.status.success(), "fresh-database failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

// -------------------------------------------------------------------------------------------------
// The proxy

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cut {
    /// Forward the COMMIT, drop PostgreSQL's answer, close: it committed, the server never hears.
    AfterCommit,
    /// Close instead of forwarding the COMMIT: PostgreSQL rolls back.
    BeforeCommit,
    /// As `AfterCommit`, then PostgreSQL is unreachable through the proxy for this long.
    AfterCommitThenUnreachable(Duration),
}

#[derive(Default)]
struct ProxyState {
    upstream: Option<SocketAddr>,
    /// The next COMMIT is cut this way.
    armed: Mutex<Option<Cut>>,
    cuts: AtomicUsize,
    unreachable_until: Mutex<Option<Instant>>,
    /// Both ends of every proxied connection, to cut them all at once.
    open: Mutex<Vec<(TcpStream, TcpStream)>>,
}

struct PgProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

impl PgProxy {
    fn start(database_url: &str) -> PgProxy {
        let rest = database_url.split_once('@').unwrap().1;
        let host_port = rest.split('/').next().unwrap();
        let upstream: SocketAddr = host_port.parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState { upstream: Some(upstream), ..ProxyState::default() });
        let shared = state.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = shared.clone();
                thread::spawn(move || serve_connection(state, client));
            }
        });
        PgProxy { addr, state }
    }

    /// The database URL with the proxy in place of the server.
    fn url(&self, database_url: &str) -> String {
        let (user, rest) = database_url.split_once('@').unwrap();
        let database = rest.split_once('/').unwrap().1;
        format!("{user}@{}/{database}", self.addr)
    }

    fn arm(&self, cut: Cut) {
        *self.state.armed.lock() = Some(cut);
    }

    fn cuts(&self) -> usize {
        self.state.cuts.load(Ordering::SeqCst)
    }
}

fn serve_connection(state: Arc<ProxyState>, client: TcpStream) {
    if state.unreachable_until.lock().is_some_and(|until| Instant::now() < until) {
        return; // dropped: the connection closes at once
    }
    let Ok(server) = TcpStream::connect(state.upstream.unwrap()) else { return };
    let (Ok(client_back), Ok(server_back)) = (client.try_clone(), server.try_clone()) else { return };
    if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
        state.open.lock().push((c, s));
    }
    // PostgreSQL -> client; once a cut swallows the answer, nothing more is relayed.
    let swallow = Arc::new(AtomicUsize::new(0));
    let swallowing = swallow.clone();
    let relay_state = state.clone();
    thread::spawn(move || {
        let (mut from, mut to) = (server_back, client_back);
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let read = match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            if swallowing.load(Ordering::SeqCst) == 1 {
                // The COMMIT's answer: PostgreSQL has committed. Lose it and cut.
                finish_cut(&relay_state, &from, &to);
                break;
            }
            if to.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
    relay_client(&state, client, server, &swallow);
}

/// Client -> PostgreSQL, message by message, watching for `COMMIT`.
fn relay_client(state: &Arc<ProxyState>, mut client: TcpStream, mut server: TcpStream, swallow: &AtomicUsize) {
    // Startup messages have no type byte; an SSL or GSS request is followed by the real one.
    while let Some(message) = read_exact_message(&mut client, false) {
        if server.write_all(&message).is_err() {
            return;
        }
        let code = u32::from_be_bytes([message[4], message[5], message[6], message[7]]);
        if code != 80_877_103 && code != 80_877_104 {
            break;
        }
    }
    while let Some(message) = read_exact_message(&mut client, true) {
        let is_commit = message[0] == b'Q' && String::from_utf8_lossy(&message[5..]).trim_end_matches('\0') == "COMMIT";
        let cut = if is_commit { state.armed.lock().take() } else { None };
        match cut {
            Some(Cut::BeforeCommit) => {
                state.cuts.fetch_add(1, Ordering::SeqCst);
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                return;
            }
            Some(cut) => {
                if let Cut::AfterCommitThenUnreachable(outage) = cut {
                    *state.unreachable_until.lock() = Some(Instant::now() + outage);
                }
                swallow.store(1, Ordering::SeqCst);
                let _ = server.write_all(&message);
                // The relay cuts once PostgreSQL answers; stop forwarding anything else meanwhile.
                let mut rest = [0u8; 1024];
                while matches!(client.read(&mut rest), Ok(n) if n > 0) {}
                return;
            }
            None => {
                if server.write_all(&message).is_err() {
                    return;
                }
            }
        }
    }
    let _ = server.shutdown(Shutdown::Both);
}

/// Called when PostgreSQL answered a cut COMMIT: close this connection, and during an outage
/// every other one too.
fn finish_cut(state: &ProxyState, server: &TcpStream, client: &TcpStream) {
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    if state.unreachable_until.lock().is_some() {
        for (c, s) in state.open.lock().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
            let _ = s.shutdown(Shutdown::Both);
        }
    }
    state.cuts.fetch_add(1, Ordering::SeqCst);
}

fn read_exact_message(stream: &mut TcpStream, typed: bool) -> Option<Vec<u8>> {
    let header = if typed { 5 } else { 4 };
    let mut message = vec![0u8; header];
    stream.read_exact(&mut message).ok()?;
    let at = header - 4;
    let length = u32::from_be_bytes([message[at], message[at + 1], message[at + 2], message[at + 3]]) as usize;
    if length < 4 {
        return None;
    }
    let start = message.len();
    message.resize(start + length - 4, 0);
    stream.read_exact(&mut message[start..]).ok()?;
    Some(message)
}

// -------------------------------------------------------------------------------------------------
// Fixtures

/// A server on `database` reached through a proxy, with the policy, and an authorization whose
/// budget (100) fits one check of cost 60 but not two.
struct Setup {
    proxy: PgProxy,
    server: TestServer,
    authorization_id: String,
}

fn setup(database: &str) -> TestResult<Setup> {
    let url = fresh_database(database);
    let proxy = PgProxy::start(&url);
    let server = TestServer::start_postgres(&proxy.url(&url), None)?;
    server.create_policy()?;
    let authorization_id = server.create_authorization(Some(100))?;
    Ok(Setup { proxy, server, authorization_id })
}

fn costly_check(authorization_id: &str) -> Value {
    json!({"authorization_id": authorization_id, "actions": ["email.read"], "resource": null,
           "session_id": null, "estimated_cost_micros": 60, "context": {}})
}

fn check_with_key(server: &TestServer, authorization_id: &str, key: &str) -> TestResult<common::Reply> {
    let body = serde_json::to_vec(&costly_check(authorization_id))?;
    server.request_with("POST", "/v1/check", Some(&server.runtime), Some(&body), &[("Idempotency-Key", key)])
}

fn decision(reply: &common::Reply) -> (&str, &str) {
    let result = &reply.body["results"]["email.read"];
    (result["decision"].as_str().unwrap_or("?"), result["reason"].as_str().unwrap_or("?"))
}

/// The budget was spent exactly once: a second check of 60 no longer fits (and a first did).
fn assert_spent_once(server: &TestServer, authorization_id: &str) -> TestResult {
    let again = server.json("POST", "/v1/check", Some(&server.runtime), &costly_check(authorization_id))?;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(decision(&again), ("deny", "budget_exceeded"), "{}", again.text);
    Ok(())
}

fn remote_client(server: &TestServer) -> RemoteClient {
    let options = RemoteOptions { check_timeout_ms: 15_000, ..RemoteOptions::default() };
    allowly_core::connect(&server.base, &server.runtime, options).unwrap()
}

fn remote_check(authorization_id: &str) -> CheckRequest {
    serde_json::from_value(costly_check(authorization_id)).unwrap()
}

// -------------------------------------------------------------------------------------------------
// In-doubt commits

#[test]
fn a_commit_whose_answer_is_lost_is_answered_as_committed() -> TestResult {
    if postgres_url().is_none() {
        return Ok(());
    }
    let s = setup("allowly_in_doubt_committed")?;
    // Through the SDK's remote client (automatic key) and as a plain HTTP call.
    s.proxy.arm(Cut::AfterCommit);
    let answer = remote_client(&s.server).check_or_fallback(&remote_check(&s.authorization_id))?;
    assert_eq!(s.proxy.cuts(), 1, "the proxy must have cut the check's COMMIT");
    let result = answer.results.get("email.read").expect("a result for email.read");
    assert_eq!((result.decision, result.is_fallback), (Decision::Allow, false), "{result:?}");
    let receipt_id = result.receipt_id.clone().expect("an allow has a receipt");
    let stored = s.server.request("GET", &format!("/v1/receipts/{receipt_id}"), Some(&s.server.runtime), None)?;
    assert_eq!(stored.status, 200, "the answered receipt is stored: {}", stored.text);
    assert_spent_once(&s.server, &s.authorization_id)?;

    let other = s.server.create_authorization(Some(100))?;
    s.proxy.arm(Cut::AfterCommit);
    let reply = check_with_key(&s.server, &other, "plain-http-1")?;
    assert_eq!(s.proxy.cuts(), 2);
    assert_eq!(
        (reply.status, decision(&reply)),
        (200, ("allow", "authorization_granted_action_active")),
        "{}",
        reply.text
    );
    assert_spent_once(&s.server, &other)
}

#[test]
fn a_commit_that_never_arrived_runs_again_once() -> TestResult {
    if postgres_url().is_none() {
        return Ok(());
    }
    let s = setup("allowly_in_doubt_rolled_back")?;
    s.proxy.arm(Cut::BeforeCommit);
    let reply = check_with_key(&s.server, &s.authorization_id, "before-commit-1")?;
    assert_eq!(s.proxy.cuts(), 1, "the proxy must have cut the check's COMMIT");
    assert_eq!(
        (reply.status, decision(&reply)),
        (200, ("allow", "authorization_granted_action_active")),
        "{}",
        reply.text
    );
    assert_spent_once(&s.server, &s.authorization_id)
}

#[test]
fn an_unknown_outcome_is_its_own_error_and_the_same_key_answers_it() -> TestResult {
    if postgres_url().is_none() {
        return Ok(());
    }
    let s = setup("allowly_in_doubt_unknown")?;
    // Plain HTTP: the distinct error, then the first answer under the same key.
    s.proxy.arm(Cut::AfterCommitThenUnreachable(Duration::from_secs(2)));
    let first = check_with_key(&s.server, &s.authorization_id, "unknown-1")?;
    assert_eq!(s.proxy.cuts(), 1);
    assert_eq!((first.status, first.body["error"]["code"].as_str()), (503, Some("outcome_unknown")), "{}", first.text);
    assert!(first.body["error"]["message"].as_str().unwrap_or("").contains("Idempotency-Key"), "{}", first.text);
    thread::sleep(Duration::from_millis(2200));
    let retried = check_with_key(&s.server, &s.authorization_id, "unknown-1")?;
    assert_eq!(
        (retried.status, decision(&retried)),
        (200, ("allow", "authorization_granted_action_active")),
        "{}",
        retried.text
    );
    assert_spent_once(&s.server, &s.authorization_id)?;

    // The SDK's remote client: it asks again under its automatic key until the store is back.
    let other = s.server.create_authorization(Some(100))?;
    s.proxy.arm(Cut::AfterCommitThenUnreachable(Duration::from_secs(2)));
    let answer = remote_client(&s.server).check_or_fallback(&remote_check(&other))?;
    assert_eq!(s.proxy.cuts(), 2);
    let result = answer.results.get("email.read").expect("a result for email.read");
    assert_eq!((result.decision, result.is_fallback), (Decision::Allow, false), "{result:?}");
    assert_spent_once(&s.server, &other)
}

#[test]
fn a_lifecycle_call_in_doubt_replays_under_its_key() -> TestResult {
    if postgres_url().is_none() {
        return Ok(());
    }
    let s = setup("allowly_in_doubt_revoke")?;
    let path = format!("/v1/authorizations/{}", s.authorization_id);
    let revoke = |server: &TestServer| {
        server.request_with("DELETE", &path, Some(&server.runtime), Some(b"{}"), &[("Idempotency-Key", "revoke-1")])
    };
    s.proxy.arm(Cut::AfterCommitThenUnreachable(Duration::from_secs(2)));
    let first = revoke(&s.server)?;
    assert_eq!((first.status, first.body["error"]["code"].as_str()), (503, Some("outcome_unknown")), "{}", first.text);
    thread::sleep(Duration::from_millis(2200));
    let retried = revoke(&s.server)?;
    assert_eq!(retried.status, 200, "the revocation landed; its retry answers it: {}", retried.text);
    let check = s.server.check(&s.authorization_id, &["email.read"], json!({}))?;
    assert_eq!(check.body["results"]["email.read"]["reason"], "authorization_revoked", "{}", check.text);
    Ok(())
}

// -------------------------------------------------------------------------------------------------
// Idempotency across servers

#[test]
fn lifecycle_calls_replay_their_first_answer_on_another_server() -> TestResult {
    if postgres_url().is_none() {
        return Ok(());
    }
    let url = fresh_database("allowly_idempotency_two_servers");
    let a = TestServer::start_postgres(&url, None)?;
    let b = TestServer::start_postgres(&url, Some(&a))?;
    // The call on server a, again on server b (the same answer), and `other` (a different valid
    // request) under the same key on server b (409).
    let twice =
        |method: &str, path: &str, key: &str, credential: &str, body: &Value, other: &Value| -> TestResult<Value> {
            let headers = [("Idempotency-Key", key)];
            let first = a.request_with(method, path, Some(credential), Some(&serde_json::to_vec(body)?), &headers)?;
            assert!(first.status < 300, "{method} {path}: {}", first.text);
            let again = b.request_with(method, path, Some(credential), Some(&serde_json::to_vec(body)?), &headers)?;
            assert_eq!((again.status, &again.text), (first.status, &first.text), "{method} {path} replays on server b");
            let reused = b.request_with(method, path, Some(credential), Some(&serde_json::to_vec(other)?), &headers)?;
            assert_eq!(
                (reused.status, reused.body["error"]["code"].as_str()),
                (409, Some("idempotency_key_reused")),
                "{method} {path}: another request under the key: {}",
                reused.text
            );
            Ok(first.body)
        };
    let (setup, runtime) = (a.setup.clone(), a.runtime.clone());

    let policy = common::policy_body("support");
    let mut edited = policy.clone();
    edited["default_expiry_days"] = json!(10);
    twice("POST", "/v1/policies", "create-1", &setup, &policy, &edited)?;
    let published = twice("POST", "/v1/setup/policies/publish", "publish-1", &setup, &edited, &policy)?;
    assert_eq!(published["policy_ref"]["policy_version"], 2, "published once: {published}");

    let authorization_id = a.create_authorization(None)?;
    let confirm = a.check(&authorization_id, &["email.send"], json!({}))?;
    let nonce = confirm.body["results"]["email.send"]["confirm_nonce"].as_str().unwrap().to_string();
    let path = format!("/v1/confirmations/{nonce}");
    twice("POST", &path, "confirm-1", &runtime, &json!({"approved": true}), &json!({"approved": false}))?;
    let escalate = a.check(&authorization_id, &["refund.issue"], json!({}))?;
    let escalation_id = escalate.body["results"]["refund.issue"]["escalation_id"].as_str().unwrap().to_string();
    let path = format!("/v1/escalations/{escalation_id}/resolve");
    let approve = json!({"resolution": "approved", "resolved_by": "member:finance"});
    let reject = json!({"resolution": "rejected", "resolved_by": "member:finance"});
    twice("POST", &path, "resolve-1", &runtime, &approve, &reject)?;
    let path = format!("/v1/authorizations/{authorization_id}");
    let revoked = twice("DELETE", &path, "revoke-1", &runtime, &json!({}), &json!({"notes": "other"}))?;
    assert!(revoked["receipt"]["receipt_id"].is_string(), "{revoked}");

    // Archive has no body: the key replays the 204 on the other server instead of a 404.
    let archive = |server: &TestServer| {
        server.request_with("DELETE", "/v1/policies/support", Some(&setup), None, &[("Idempotency-Key", "archive-1")])
    };
    assert_eq!(archive(&a)?.status, 204);
    let again = archive(&b)?;
    assert_eq!(again.status, 204, "{}", again.text);
    Ok(())
}

// -------------------------------------------------------------------------------------------------
// Revocation across servers

#[test]
fn a_key_revoked_on_one_server_is_refused_by_every_server_within_a_second() -> TestResult {
    if postgres_url().is_none() {
        return Ok(());
    }
    let url = fresh_database("allowly_revocation_two_servers");
    let a = TestServer::start_postgres(&url, None)?;
    let b = TestServer::start_postgres(&url, Some(&a))?;
    let created =
        a.json("POST", "/v1/setup/api-keys", Some(&a.setup), &json!({"kind": "runtime", "label": "doomed"}))?;
    assert_eq!(created.status, 201, "{}", created.text);
    let (key, key_id) = (created.body["key"].as_str().unwrap(), created.body["key_id"].as_str().unwrap());
    let list = |server: &TestServer| -> TestResult<u16> {
        Ok(server.request("GET", "/v1/authorizations?limit=1", Some(key), None)?.status)
    };
    assert_eq!((list(&a)?, list(&b)?), (200, 200), "both servers know (and remember) the key");

    let revoked = a.request("DELETE", &format!("/v1/setup/api-keys/{key_id}"), Some(&a.setup), None)?;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    let revoked_at = std::time::Instant::now();
    assert_eq!(list(&a)?, 401, "the server that revoked it refuses it at once");
    let refused_after = loop {
        match list(&b)? {
            401 => break revoked_at.elapsed(),
            status => assert_eq!(status, 200),
        }
        assert!(revoked_at.elapsed() < std::time::Duration::from_secs(3), "server b accepts it 3 s after revocation");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(refused_after <= std::time::Duration::from_millis(1_100), "server b refused it after {refused_after:?}");
    assert_eq!((list(&a)?, list(&b)?), (401, 401));
    Ok(())
}
