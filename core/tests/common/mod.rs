//! Shared fixtures: a policy that yields every decision, engines on each store, and a verifier.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use allowly_core::canonical::to_canonical_vec;
use allowly_core::model::{AuthorizationCreate, CheckRequest, CheckResponse};
use allowly_core::policy::Decision;
use allowly_core::receipt::{KeySet, SignedReceipt, Verifier};
use allowly_core::store::{Durability, MemoryStore, SqliteStore};
use allowly_core::{Allowly, Clock, ManualClock, Options, Timestamp};
use serde_json::{json, Value};

pub const START: &str = "2026-03-02T09:00:00.000Z";

pub fn start() -> Timestamp {
    Timestamp::parse(START).unwrap()
}

/// One policy edition with an action for each decision and guard.
pub fn support_policy() -> Value {
    let basic = |action: &str, decision: &str, target: Value, fields: Value, rules: Value| {
        json!({"profile": "allowly.basic.v1", "action": action, "decision": decision, "target": target,
               "fields": fields, "rules": rules})
    };
    json!({
        "policy_id": "support_agent",
        "description": "support bot",
        "profile": "allowly.policy.v1",
        "agent_id": "support_bot",
        "default_expiry_days": 30,
        "actions": [
            // Both rules test the one field every email check sends: a rule on a field left out
            // would apply as if it matched (`context_field_missing`).
            {"policy": basic("email.send", "allow", Value::Null, json!({"recipient_domain": "string"}), json!([
                {"id": "external-recipient", "decision": "confirm", "target": "agent_owner",
                 "conditions": [{"field": "recipient_domain", "op": "ne", "value": "example.com"}]},
                {"id": "blocked-recipient", "decision": "deny", "target": null,
                 "conditions": [{"field": "recipient_domain", "op": "in", "value": ["blocked.example"]}]}
             ])), "guards": {}, "executable_operations": []},
            {"policy": basic("refund.issue", "escalate", json!("member:finance_lead"), json!({}), json!([])),
             "guards": {}, "executable_operations": []},
            {"policy": basic("account.delete", "deny", Value::Null, json!({}), json!([])),
             "guards": {}, "executable_operations": []},
            {"policy": basic("calendar.invite", "confirm", json!("agent_owner"), json!({}), json!([])),
             "guards": {}, "executable_operations": []},
            {"policy": basic("crm.read", "allow", Value::Null, json!({}), json!([])),
             "guards": {"resource_pattern": "crm/*", "allowed_initiators": ["user"], "max_per_day": 3},
             "executable_operations": []},
            {"policy": basic("search.web", "allow", Value::Null, json!({}), json!([])),
             "guards": {"rate_limit": {"max_calls": 2, "window_seconds": 60}}, "executable_operations": []}
        ]
    })
}

pub struct Fixture {
    pub engine: Arc<Allowly>,
    pub clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
}

pub fn memory() -> Fixture {
    let clock = Arc::new(ManualClock::new(start()));
    let engine =
        Allowly::with_store(Box::new(MemoryStore::new()), Box::new(clock.clone()), Options::default()).unwrap();
    Fixture { engine: Arc::new(engine), clock, _dir: None }
}

pub fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let store = SqliteStore::open(&dir.path().join("allowly.db"), Durability::Process).unwrap();
    let engine = Allowly::with_store(Box::new(store), Box::new(clock.clone()), Options::default()).unwrap();
    Fixture { engine: Arc::new(engine), clock, _dir: Some(dir) }
}

/// An engine on the SQLite file at `path` (created if missing), on `clock`.
pub fn sqlite_at(path: &std::path::Path, clock: &Arc<ManualClock>) -> Fixture {
    let store = SqliteStore::open(path, Durability::Process).unwrap();
    let engine = Allowly::with_store(Box::new(store), Box::new(clock.clone()), Options::default()).unwrap();
    Fixture { engine: Arc::new(engine), clock: clock.clone(), _dir: None }
}

/// Both stores, so each decision test runs on each (and PostgreSQL with the `postgres` feature,
/// when [`postgres_url`] finds a server: without one the PostgreSQL part is skipped, loudly).
pub fn both() -> Vec<(&'static str, Fixture)> {
    #[allow(unused_mut)]
    let mut stores = vec![("memory", memory()), ("sqlite", sqlite())];
    #[cfg(feature = "postgres")]
    if postgres_url().is_some() {
        stores.push(("postgres", postgres()));
    }
    stores
}

/// The test server's URL (`ALLOWLY_TEST_DATABASE_URL`), or `None` when it is not set: the calling
/// test then skips its PostgreSQL part, and this prints one `SKIPPED (PostgreSQL)` line naming the
/// test (once per test) straight to stderr, past the test harness's capture, so a skip is never
/// silent. `scripts/test.sh` starts a server, fails if any test printed that line, and sets
/// `ALLOWLY_REQUIRE_POSTGRES=1`, with which a missing URL panics here instead of skipping.
#[cfg(feature = "postgres")]
pub fn postgres_url() -> Option<String> {
    use std::io::Write;
    if let Some(url) = std::env::var("ALLOWLY_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) {
        return Some(url);
    }
    if std::env::var("ALLOWLY_REQUIRE_POSTGRES").is_ok_and(|required| required == "1") {
        panic!(
            "ALLOWLY_REQUIRE_POSTGRES=1 but ALLOWLY_TEST_DATABASE_URL is not set: start a throwaway server with \
             `eval \"$(scripts/postgres.sh start)\"`"
        );
    }
    thread_local!(static REPORTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    if !REPORTED.replace(true) {
        let thread = std::thread::current();
        let test = thread.name().unwrap_or("(unnamed test)");
        // One write, so the line is never split by the harness's output.
        let line =
            format!("SKIPPED (PostgreSQL): {test} — ALLOWLY_TEST_DATABASE_URL is not set; scripts/test.sh sets it\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    None
}

/// One pool per test binary, shared by its fixtures (each on a workspace of its own). Only for a
/// test that found a server with [`postgres_url`].
#[cfg(feature = "postgres")]
pub fn postgres_pool() -> allowly_core::store::PostgresPool {
    use allowly_core::store::{PostgresOptions, PostgresPool};
    static POOL: std::sync::OnceLock<PostgresPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let url = postgres_url().expect("ALLOWLY_TEST_DATABASE_URL is not set: check postgres_url() first");
        PostgresPool::connect(&url, PostgresOptions { pool_size: 16, ..PostgresOptions::default() })
            .unwrap_or_else(|err| panic!("cannot connect to ALLOWLY_TEST_DATABASE_URL: {err}"))
    })
    .clone()
}

/// A workspace id no other test (or earlier run) uses.
#[cfg(feature = "postgres")]
pub fn fresh_workspace_id() -> String {
    allowly_core::ids::new_id("ws_test_", Timestamp::now()).unwrap()
}

/// An engine on a fresh workspace of the test database.
#[cfg(feature = "postgres")]
pub fn postgres() -> Fixture {
    let workspace_id = fresh_workspace_id();
    let store = allowly_core::store::PostgresStore::for_workspace(&postgres_pool(), &workspace_id).unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let options = Options { workspace_id: Some(workspace_id), ..Options::default() };
    let engine = Allowly::with_store(Box::new(store), Box::new(clock.clone()), options).unwrap();
    Fixture { engine: Arc::new(engine), clock, _dir: None }
}

impl Fixture {
    pub fn authorize(&self, budget_limit_micros: Option<i64>) -> String {
        self.engine.create_policy(&support_policy()).unwrap();
        let created = self
            .engine
            .create_authorization(&AuthorizationCreate {
                user_id: "user_42".into(),
                policy_id: "support_agent".into(),
                budget_limit_micros,
                ..Default::default()
            })
            .unwrap();
        created.authorization_id
    }

    pub fn check(&self, authorization_id: &str, actions: &[&str], context: Value) -> CheckResponse {
        self.try_check(CheckRequest {
            authorization_id: authorization_id.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            context: Some(context),
            ..Default::default()
        })
        .unwrap()
    }

    pub fn try_check(&self, request: CheckRequest) -> allowly_core::Result<CheckResponse> {
        self.engine.check(&request)
    }

    pub fn verifier(&self) -> Verifier {
        let document = self.engine.key_document().unwrap();
        let fingerprints: Vec<String> = document.keys.iter().map(|k| k.public_key_fingerprint.clone()).collect();
        let (workspace_id, keys) = KeySet::from_document(&document.to_value()).unwrap();
        Verifier::new(keys, &workspace_id, fingerprints)
    }

    /// Verifies a signed receipt and returns its payload, checking that the issuer sent the
    /// payload's canonical bytes (the reference verifier would accept non-canonical ones).
    pub fn verify(&self, receipt: &SignedReceipt) -> Value {
        use base64::Engine as _;
        let payload = self.verifier().verify(&receipt.to_value(), self.clock.now()).unwrap();
        let sent = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&receipt.payload).unwrap();
        assert_eq!(String::from_utf8(to_canonical_vec(&payload).unwrap()).unwrap(), String::from_utf8(sent).unwrap());
        payload
    }
}

/// The single action's decision and reason.
pub fn outcome(response: &CheckResponse, action: &str) -> (Decision, String) {
    let result = response.results.get(action).unwrap();
    (result.decision, result.reason.clone())
}

pub fn signed(response: &CheckResponse, action: &str) -> SignedReceipt {
    match &response.results.get(action).unwrap().receipt {
        Some(allowly_core::model::ReceiptEnvelope::Signed { receipt }) => receipt.clone(),
        other => panic!("expected a signed receipt, got {other:?}"),
    }
}
