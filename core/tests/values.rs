//! Values the engine is given: whatever it accepts, it can read back, list, revoke and check; a
//! value the stores or the wire cannot represent (a timestamp past year 9999 in UTC, an integer past
//! 2^53-1, a NUL) is a 422 naming its field, and nothing is written; a stored row that does not
//! load never takes the others down, and a check that needs it denies, signed. Every test runs on
//! the memory, SQLite and (with the `postgres` feature) PostgreSQL stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use allowly_core::canonical::MAX_SAFE_INTEGER;
use allowly_core::model::{
    ApiKeyKind, AuthorizationCreate, AuthorizationStatus, CheckRequest, CheckResponse, ReceiptEnvelope, Resolution,
};
use allowly_core::policy::Decision;
use allowly_core::receipt::{KeySet, Verifier};
use allowly_core::store::{Durability, MemoryStore, SqliteStore, Store};
use allowly_core::{Allowly, Clock, Error, ManualClock, Options, Timestamp};
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// Engines on each store, with a way to damage a stored row behind the engine's back

enum Backend {
    Memory,
    Sqlite(PathBuf),
    #[cfg(feature = "postgres")]
    Postgres(String),
}

struct Env {
    name: &'static str,
    engine: Arc<Allowly>,
    clock: Arc<ManualClock>,
    backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

fn envs() -> Vec<Env> {
    #[allow(unused_mut)]
    let mut all = vec![memory(), sqlite()];
    #[cfg(feature = "postgres")]
    if common::postgres_url().is_some() {
        all.push(postgres());
    }
    all
}

/// The stores that can hold a row the engine cannot read (the memory store holds typed values).
fn persistent_envs() -> Vec<Env> {
    envs().into_iter().filter(|env| !matches!(env.backend, Backend::Memory)).collect()
}

fn engine(store: Box<dyn Store>, clock: &Arc<ManualClock>, workspace_id: Option<String>) -> Arc<Allowly> {
    let options = Options { workspace_id, ..Options::default() };
    Arc::new(Allowly::with_store(store, Box::new(clock.clone()), options).unwrap())
}

fn memory() -> Env {
    let clock = Arc::new(ManualClock::new(common::start()));
    let engine = engine(Box::new(MemoryStore::new()), &clock, None);
    Env { name: "memory", engine, clock, backend: Backend::Memory, _dir: None }
}

fn sqlite() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowly.db");
    let clock = Arc::new(ManualClock::new(common::start()));
    let engine = engine(Box::new(SqliteStore::open(&path, Durability::Process).unwrap()), &clock, None);
    Env { name: "sqlite", engine, clock, backend: Backend::Sqlite(path), _dir: Some(dir) }
}

#[cfg(feature = "postgres")]
fn postgres() -> Env {
    let workspace_id = common::fresh_workspace_id();
    let clock = Arc::new(ManualClock::new(common::start()));
    let store = allowly_core::store::PostgresStore::for_workspace(&common::postgres_pool(), &workspace_id).unwrap();
    let engine = engine(Box::new(store), &clock, Some(workspace_id.clone()));
    Env { name: "postgres", engine, clock, backend: Backend::Postgres(workspace_id), _dir: None }
}

impl Env {
    /// A second engine on the same store (nothing cached), as another process would open it.
    fn reopen(&self) -> Arc<Allowly> {
        match &self.backend {
            Backend::Memory => panic!("a memory store cannot be opened twice"),
            Backend::Sqlite(path) => {
                engine(Box::new(SqliteStore::open(path, Durability::Process).unwrap()), &self.clock, None)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(workspace_id) => {
                let store =
                    allowly_core::store::PostgresStore::for_workspace(&common::postgres_pool(), workspace_id).unwrap();
                engine(Box::new(store), &self.clock, Some(workspace_id.clone()))
            }
        }
    }

    /// Overwrites the `body` of the rows of `table` whose `key` column is `id`, as a damaged file,
    /// a hand edit or an older engine would have left it.
    fn damage(&self, table: &str, key: &str, id: &str, body: &str) {
        let changed = match &self.backend {
            Backend::Memory => panic!("a memory store holds no rows to damage"),
            Backend::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
                conn.execute(&format!("UPDATE {table} SET body = ?1 WHERE {key} = ?2"), rusqlite::params![body, id])
                    .unwrap() as u64
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(workspace_id) => {
                let url = common::postgres_url().expect("a PostgreSQL env exists only with a server");
                let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let sql = format!("UPDATE allowly.{table} SET body = $1 WHERE workspace_id = $2 AND {key} = $3");
                client.execute(sql.as_str(), &[&body, workspace_id, &id]).unwrap()
            }
        };
        assert!(changed > 0, "{}: no `{table}` row `{id}` to damage", self.name);
    }

    /// The stored body of one row (to damage one field of it).
    fn body(&self, table: &str, key: &str, id: &str) -> String {
        match &self.backend {
            Backend::Memory => panic!("a memory store holds no rows"),
            Backend::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .query_row(&format!("SELECT body FROM {table} WHERE {key} = ?1"), [id], |row| row.get(0))
                .unwrap(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(workspace_id) => {
                let url = common::postgres_url().expect("a PostgreSQL env exists only with a server");
                let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let sql = format!("SELECT body FROM allowly.{table} WHERE workspace_id = $1 AND {key} = $2");
                client.query_one(sql.as_str(), &[workspace_id, &id]).unwrap().get(0)
            }
        }
    }

    fn publish(&self) {
        self.engine.create_policy(&common::support_policy()).unwrap();
    }

    fn authorize(&self, request: AuthorizationCreate) -> Result<String, Error> {
        self.engine.create_authorization(&request).map(|created| created.authorization_id)
    }

    fn grant(&self, budget_limit_micros: Option<i64>) -> String {
        self.authorize(AuthorizationCreate { budget_limit_micros, ..create("user_42") }).unwrap()
    }

    fn check(&self, request: CheckRequest) -> Result<CheckResponse, Error> {
        self.engine.check(&request)
    }

    /// Every result of `response` carries a signed receipt that verifies; the payloads.
    fn verified(&self, response: &CheckResponse) -> Vec<Value> {
        let document = self.engine.key_document().unwrap();
        let fingerprints: Vec<String> = document.keys.iter().map(|k| k.public_key_fingerprint.clone()).collect();
        let (workspace_id, keys) = KeySet::from_document(&document.to_value()).unwrap();
        let verifier = Verifier::new(keys, &workspace_id, fingerprints);
        response
            .results
            .iter()
            .map(|(action, result)| match &result.receipt {
                Some(ReceiptEnvelope::Signed { receipt }) => verifier
                    .verify(&receipt.to_value(), self.clock.now())
                    .unwrap_or_else(|err| panic!("{}: the receipt of `{action}` does not verify: {err}", self.name)),
                other => panic!("{}: `{action}` has no signed receipt: {other:?}", self.name),
            })
            .collect()
    }

    /// Every authorization, page by page, and the ids of the rows reported unreadable.
    fn all_authorizations(&self) -> (Vec<allowly_core::model::AuthorizationView>, Vec<String>) {
        let (mut items, mut unreadable, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let page = self.engine.list_authorizations(&listing(7, cursor.as_deref())).unwrap();
            items.extend(page.items);
            unreadable.extend(page.unreadable.into_iter().map(|row| row.id));
            match page.next_cursor {
                Some(next) if page.has_more => cursor = Some(next),
                _ => return (items, unreadable),
            }
        }
    }

    /// What a refused request must not have changed: receipts, authorizations and their budgets, policies.
    fn snapshot(&self) -> Snapshot {
        let receipts = self.engine.recent_receipts(usize::MAX).unwrap().len();
        let authorizations = self
            .all_authorizations()
            .0
            .into_iter()
            .map(|a| (a.authorization_id, a.budget_spent_micros, a.revoked_at))
            .collect();
        let policies = self.engine.list_policies(100, None).unwrap().items.len();
        (receipts, authorizations, policies)
    }
}

/// Receipts, then each authorization's id, budget spent and revocation, then policies.
type Snapshot = (usize, Vec<(String, i64, Option<String>)>, usize);

/// A page of every authorization.
fn listing(limit: usize, cursor: Option<&str>) -> allowly_core::ops::ListAuthorizations {
    allowly_core::ops::ListAuthorizations {
        page: allowly_core::ops::PageArgs::new(limit, cursor),
        ..Default::default()
    }
}

fn create(user_id: &str) -> AuthorizationCreate {
    AuthorizationCreate { user_id: user_id.into(), policy_id: "support_agent".into(), ..Default::default() }
}

fn email(authorization_id: &str) -> CheckRequest {
    CheckRequest {
        authorization_id: authorization_id.into(),
        actions: vec!["email.send".into()],
        context: Some(json!({"recipient_domain": "example.com"})),
        ..Default::default()
    }
}

fn outcome(response: &CheckResponse, action: &str) -> (Decision, String) {
    let result = response.results.get(action).unwrap();
    (result.decision, result.reason.clone())
}

/// A 422 `invalid_request` naming `field` (or a path below it).
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Error>, field: &str, what: &str) {
    let err = result.expect_err(&format!("{what}: must be refused"));
    assert_eq!((err.code(), err.http_status()), ("invalid_request", Some(422)), "{what}: {err}");
    assert!(
        err.fields().iter().any(|f| f.field == field
            || f.field.starts_with(&format!("{field}."))
            || f.field.starts_with(&format!("{field}["))),
        "{what}: expected a `{field}` field error, got {:?}",
        err.fields()
    );
}

// ---------------------------------------------------------------------------------------------
// Timestamps

/// The issue's `expires_at` (year 10000 once in UTC) and the rest of its class are refused before
/// anything is written; the last instants the wire can hold are kept exactly and stay readable,
/// listable, checkable and revocable.
#[test]
fn timestamps_past_either_end_of_the_wire_range_are_refused_and_the_ends_are_kept() {
    for env in envs() {
        env.publish();
        let existing = env.grant(None);
        let before = env.snapshot();
        for text in [
            "9999-12-31T23:59:59.999-00:01",
            "9999-12-31T23:30:00-01:00",
            "9999-12-31T12:00:00.000000001-23:59",
            "9999-12-31T23:59:59.9999999-00:01",
            "10000-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2026-12-31T24:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-12-31T23:59:59.1234567891Z",
            "2026-12-31T23:59:59",
            "2026-12-31T23:59:59+24:00",
            "2026-02-29",
            "\u{e9}abcde",
            "9999-12-31T23:59:59\u{e9}00:00",
            "",
        ] {
            let request = AuthorizationCreate { expires_at: Some(text.into()), ..create("user_42") };
            assert_invalid(env.authorize(request), "expires_at", &format!("{}: expires_at {text:?}", env.name));
            let request = CheckRequest { client_timestamp: Some(text.into()), ..email(&existing) };
            assert_invalid(env.check(request), "client_timestamp", &format!("{}: client_timestamp {text:?}", env.name));
        }
        let message = env
            .authorize(AuthorizationCreate { expires_at: Some("9999-12-31T23:59:59.999-00:01".into()), ..create("u") })
            .unwrap_err()
            .to_string();
        assert!(message.contains("9999-12-31T23:59:59.999Z"), "{}: the message names the range: {message}", env.name);
        assert_eq!(env.snapshot(), before, "{}: a refused timestamp changed something", env.name);

        for (text, stored) in [
            ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
            ("9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999Z"),
            ("9999-12-31T23:59:59.999+00:01", "9999-12-31T23:58:59.999Z"),
            ("9999-12-31T23:00:00-00:59", "9999-12-31T23:59:00.000Z"),
            ("9999-12-31", "9999-12-31T00:00:00.000Z"),
            ("2030-06-30T23:59:59.5+14:00", "2030-06-30T09:59:59.500Z"),
        ] {
            let id = env
                .authorize(AuthorizationCreate { expires_at: Some(text.into()), ..create("user_42") })
                .unwrap_or_else(|err| panic!("{}: expires_at {text}: {err}", env.name));
            assert_eq!(env.engine.get_authorization(&id).unwrap().expires_at, stored, "{}: {text}", env.name);
            let request = CheckRequest { client_timestamp: Some(text.into()), ..email(&id) };
            let response = env.check(request).unwrap();
            assert_eq!(
                outcome(&response, "email.send"),
                (Decision::Allow, "authorization_granted_action_active".into())
            );
            let payload = &env.verified(&response)[0];
            assert_eq!(payload["context"]["client_timestamp"], json!(stored), "{}: {text}", env.name);
            assert_eq!(response.authorization_expires_at.as_deref(), Some(stored));
            env.engine.revoke_authorization(&id, None, None).unwrap();
        }
        let (listed, unreadable) = env.all_authorizations();
        assert_eq!((listed.len(), unreadable.len()), (7, 0), "{}", env.name);
    }
}

/// A policy's default expiry that would end past year 9999 is refused, not stored (only a clock
/// near the end of the range can get there).
#[test]
fn a_default_expiry_past_year_9999_is_refused() {
    for env in envs() {
        env.publish();
        env.clock.set(Timestamp::parse("9999-12-15T00:00:00.000Z").unwrap());
        let before = env.snapshot();
        assert_invalid(env.authorize(create("user_42")), "expires_at", env.name);
        assert_eq!(env.snapshot(), before, "{}", env.name);
        let id = env.authorize(AuthorizationCreate { expires_at: Some("9999-12-31".into()), ..create("u") }).unwrap();
        assert_eq!(outcome(&env.check(email(&id)).unwrap(), "email.send").0, Decision::Allow, "{}", env.name);
    }
}

// ---------------------------------------------------------------------------------------------
// Integers

/// Integers that go on the wire as JSON numbers stay within ±(2^53-1): the bound itself is
/// accepted where it is meaningful, one past it and the i64 extremes are refused with their field.
#[test]
fn integers_at_and_past_the_safe_range() {
    let past = [MAX_SAFE_INTEGER + 1, i64::MAX, i64::MIN, -1];
    for env in envs() {
        env.publish();
        let id = env.grant(Some(MAX_SAFE_INTEGER));
        let confirm = env
            .check(CheckRequest { actions: vec!["calendar.invite".into()], ..email(&id) })
            .unwrap()
            .results
            .get("calendar.invite")
            .unwrap()
            .confirm_nonce
            .clone()
            .unwrap();
        let before = env.snapshot();
        for value in past {
            let what = format!("{}: {value}", env.name);
            let request = AuthorizationCreate { budget_limit_micros: Some(value), ..create("user_42") };
            assert_invalid(env.authorize(request), "budget_limit_micros", &what);
            let request = AuthorizationCreate { policy_version: Some(value), ..create("user_42") };
            assert_invalid(env.authorize(request), "policy_version", &what);
            let request = CheckRequest { estimated_cost_micros: Some(value), ..email(&id) };
            assert_invalid(env.check(request), "estimated_cost_micros", &what);
            assert_invalid(env.engine.settle_budget("rcp_x", value, None), "actual_cost_micros", &what);
            assert_invalid(env.engine.resolve_confirmation(&confirm, true, Some(value)), "ttl_seconds", &what);
        }
        let request = AuthorizationCreate { policy_version: Some(0), ..create("user_42") };
        assert_invalid(env.authorize(request), "policy_version", env.name);
        for ttl in [0, 86_401] {
            assert_invalid(env.engine.resolve_confirmation(&confirm, true, Some(ttl)), "ttl_seconds", env.name);
        }
        assert_eq!(env.snapshot(), before, "{}: a refused integer changed something", env.name);

        // The bounds themselves.
        let request = AuthorizationCreate { policy_version: Some(MAX_SAFE_INTEGER), ..create("user_42") };
        assert_eq!(env.authorize(request).unwrap_err().code(), "policy_not_found", "{}", env.name);
        let edition = env.engine.get_policy_edition("support_agent", i64::MAX).unwrap_err();
        assert_eq!(edition.code(), "policy_not_found", "{}", env.name);
        assert_eq!(env.engine.get_policy_edition("support_agent", i64::MIN).unwrap_err().code(), "policy_not_found");
        let resolved = env.engine.resolve_confirmation(&confirm, true, Some(86_400)).unwrap();
        assert!(resolved.expires_at.is_some(), "{}", env.name);
        let limit = env.engine.get_authorization(&id).unwrap().budget_limit_micros;
        assert_eq!(limit, Some(MAX_SAFE_INTEGER), "{}", env.name);
        // Page sizes are 1 to 100; any other is refused, naming `limit`.
        assert_eq!(env.engine.list_authorizations(&listing(1, None)).unwrap().items.len(), 1, "{}", env.name);
        for asked in [0, usize::MAX] {
            let err = env.engine.list_authorizations(&listing(asked, None)).unwrap_err();
            assert_eq!(err.fields()[0].field, "limit", "{}: limit {asked}", env.name);
        }
    }
}

/// Budget totals past 2^53-1 were signed as `invalid context`, blaming the caller. A reservation
/// that would take the spent total past it is now a signed `deny budget_exceeded` (with or without
/// a limit), and a settlement that would is a 422 on `actual_cost_micros`; nothing is written.
#[test]
fn budget_totals_never_pass_the_safe_range() {
    for env in envs() {
        env.publish();
        for limit in [None, Some(MAX_SAFE_INTEGER)] {
            let id = env.grant(limit);
            let costly = |cost: i64| CheckRequest { estimated_cost_micros: Some(cost), ..email(&id) };
            let first = env.check(costly(MAX_SAFE_INTEGER - 10)).unwrap();
            assert_eq!(outcome(&first, "email.send").0, Decision::Allow, "{}", env.name);
            let first_receipt = first.results.get("email.send").unwrap().receipt_id.clone().unwrap();
            for cost in [11, 12, MAX_SAFE_INTEGER] {
                let response = env.check(costly(cost)).unwrap();
                assert_eq!(
                    outcome(&response, "email.send"),
                    (Decision::Deny, "budget_exceeded".into()),
                    "{}: limit {limit:?}, cost {cost}",
                    env.name
                );
                let payload = &env.verified(&response)[0];
                assert_eq!(payload["context"]["budget"]["spent_micros"], json!(MAX_SAFE_INTEGER - 10));
                assert_eq!(payload["context"]["budget"]["spent_after_micros"], Value::Null);
            }
            // Up to the bound exactly is a reservation like any other.
            let last = env.check(costly(10)).unwrap();
            assert_eq!(outcome(&last, "email.send").0, Decision::Allow, "{}: limit {limit:?}", env.name);
            assert_eq!(env.verified(&last)[0]["context"]["budget"]["spent_after_micros"], json!(MAX_SAFE_INTEGER));
            let last_receipt = last.results.get("email.send").unwrap().receipt_id.clone().unwrap();

            let before = env.snapshot();
            let err = env.engine.settle_budget(&last_receipt, 11, None).unwrap_err();
            assert_invalid::<()>(Err(err), "actual_cost_micros", env.name);
            assert_eq!(env.snapshot(), before, "{}: a refused settlement changed something", env.name);
            // Settling below the estimate brings the total down; settling back up to the bound is fine.
            let settled = env.engine.settle_budget(&first_receipt, 0, None).unwrap();
            assert_eq!(settled.spent_after_micros, 10, "{}", env.name);
            let settled = env.engine.settle_budget(&last_receipt, MAX_SAFE_INTEGER, None).unwrap();
            assert_eq!(settled.spent_after_micros, MAX_SAFE_INTEGER, "{}", env.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strings and metadata

/// NUL and other control characters: refused in names (user ids, approvers, who revoked), refused
/// in free text but for tab and line breaks (notes, metadata, key labels), with the field named.
#[test]
fn strings_with_nul_and_control_characters() {
    for env in envs() {
        env.publish();
        let id = env.grant(None);
        let escalation = env
            .check(CheckRequest { actions: vec!["refund.issue".into()], ..email(&id) })
            .unwrap()
            .results
            .get("refund.issue")
            .unwrap()
            .escalation_id
            .clone()
            .unwrap();
        let before = env.snapshot();
        for bad in ["\0", "a\0b", "\u{1b}[31m", "\u{7f}", "\u{85}", "\u{9b}"] {
            let what = format!("{}: {bad:?}", env.name);
            assert_invalid(env.authorize(create(&format!("user{bad}"))), "user_id", &what);
            let metadata = Some(json!({"note": format!("x{bad}y")}));
            assert_invalid(env.authorize(AuthorizationCreate { metadata, ..create("u") }), "metadata.note", &what);
            let metadata = Some(json!({format!("k{bad}"): 1}));
            assert_invalid(env.authorize(AuthorizationCreate { metadata, ..create("u") }), "metadata", &what);
            let metadata = Some(json!({"deep": [{"list": ["ok", format!("{bad}")]}]}));
            let request = AuthorizationCreate { metadata, ..create("u") };
            assert_invalid(env.authorize(request), "metadata.deep[0].list[1]", &what);
            assert_invalid(env.engine.revoke_authorization(&id, Some(&format!("ops{bad}")), None), "revoked_by", &what);
            assert_invalid(env.engine.revoke_authorization(&id, None, Some(&format!("n{bad}"))), "notes", &what);
            let resolved =
                env.engine.resolve_escalation(&escalation, Resolution::Approved, &format!("lead{bad}"), None);
            assert_invalid(resolved, "resolved_by", &what);
            let resolved = env.engine.resolve_escalation(&escalation, Resolution::Approved, "lead", Some(bad));
            assert_invalid(resolved, "note", &what);
            assert_invalid(env.engine.create_api_key(ApiKeyKind::Runtime, Some(bad)), "label", &what);
        }
        for (user_id, field) in [(String::new(), "user_id"), ("u".repeat(129), "user_id")] {
            assert_invalid(env.authorize(create(&user_id)), field, env.name);
        }
        assert_invalid(env.engine.revoke_authorization(&id, Some(""), None), "revoked_by", env.name);
        assert_invalid(env.engine.revoke_authorization(&id, Some(&"r".repeat(257)), None), "revoked_by", env.name);
        assert_invalid(env.engine.revoke_authorization(&id, None, Some(&"n".repeat(2049))), "notes", env.name);
        // Ids that no row can have are refused before any store is asked (PostgreSQL cannot even
        // compare a NUL: it would have answered 503, and a check with it its fallback).
        assert_invalid(env.engine.revoke_api_key("ak_\0"), "key_id", env.name);
        let forged = format!("allowly.runtime.{}.ak_\0x.secret", env.engine.workspace_id());
        assert_eq!(env.engine.authenticate(&forged).unwrap_err().code(), "invalid_or_revoked_api_key");
        let check = env.check(CheckRequest { authorization_id: "auth_\0".into(), ..email(&id) });
        assert_invalid(check, "authorization_id", env.name);
        assert_eq!(env.snapshot(), before, "{}: a refused string changed something", env.name);

        // What is allowed comes back exactly: any script at the limits, and free text with tabs
        // and line breaks.
        let user_id = "\u{e9}\u{4e2d}\u{1f642}".repeat(42) + "\u{e9}\u{4e2d}";
        let metadata = json!({"note": "line one\nline two\r\n\tindented", "\u{1f642}": ["\u{4e2d}", "", 0]});
        let request = AuthorizationCreate { metadata: Some(metadata.clone()), ..create(&user_id) };
        let kept = env.authorize(request).unwrap();
        let view = env.engine.get_authorization(&kept).unwrap();
        assert_eq!((view.user_id.as_str(), Value::Object(view.metadata)), (user_id.as_str(), metadata));
        let response = env.check(email(&kept)).unwrap();
        assert_eq!(env.verified(&response)[0]["user_id"], json!(user_id), "{}", env.name);
        let resolved = env.engine.resolve_escalation(&escalation, Resolution::Approved, "lead", Some("ok\n\tthanks"));
        assert!(resolved.is_ok(), "{}: {resolved:?}", env.name);
        let notes = "revoked:\n\t- by policy\r\n".to_string() + &"n".repeat(2020);
        env.engine.revoke_authorization(&kept, Some(&"r".repeat(256)), Some(&notes)).unwrap();
        env.engine.create_api_key(ApiKeyKind::Runtime, Some("ci\tkey \u{1f511}")).unwrap();
    }
}

/// Metadata shapes at and past their limits: 4096 bytes of canonical JSON, nesting within the
/// canonical depth, integers only (safe ones).
#[test]
fn metadata_shapes_at_and_past_their_limits() {
    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!("leaf"), |inner, _| json!({"n": inner}))
    }
    for env in envs() {
        env.publish();
        let before = env.snapshot();
        let refused = [
            json!({"big": "x".repeat(4090)}),
            nested(32),
            json!({"f": 1.5}),
            json!({"n": MAX_SAFE_INTEGER as u64 + 1}),
            json!({"n": i64::MIN}),
            json!([1, 2]),
            json!("text"),
        ];
        for metadata in refused {
            let request = AuthorizationCreate { metadata: Some(metadata.clone()), ..create("u") };
            assert_invalid(env.authorize(request), "metadata", &format!("{}: {metadata:.60}", env.name));
        }
        assert_eq!(env.snapshot(), before, "{}", env.name);
        let kept = [
            json!({"big": "x".repeat(4084)}),
            nested(31),
            json!({"n": MAX_SAFE_INTEGER, "m": -MAX_SAFE_INTEGER, "z": null, "b": false, "e": {}, "a": []}),
            Value::Null,
        ];
        for metadata in kept {
            let request = AuthorizationCreate { metadata: Some(metadata.clone()), ..create("u") };
            let id = env.authorize(request).unwrap_or_else(|err| panic!("{}: {metadata:.60}: {err}", env.name));
            let view = env.engine.get_authorization(&id).unwrap();
            let expected = if metadata.is_null() { json!({}) } else { metadata };
            assert_eq!(Value::Object(view.metadata), expected, "{}", env.name);
            assert_eq!(outcome(&env.check(email(&id)).unwrap(), "email.send").0, Decision::Allow);
        }
        assert_eq!(env.all_authorizations().0.len(), 4, "{}", env.name);
    }
}

// ---------------------------------------------------------------------------------------------
// Rows that do not load

/// An authorization row that does not load (the issue's year-10000 `expires_at`, written by an
/// older engine, or a damaged body): the list shows the others and names it; reading, revoking,
/// replacing and settling it are `409 authorization_unreadable`; its checks are signed denials,
/// never a store error a client would answer with its fallback; every other authorization works.
#[test]
fn an_authorization_row_that_does_not_load_takes_nothing_else_down() {
    for env in persistent_envs() {
        env.publish();
        let mut ids: Vec<String> = (0..5).map(|_| env.grant(Some(1_000))).collect();
        ids.sort();
        let reserved = env.check(CheckRequest { estimated_cost_micros: Some(5), ..email(&ids[3]) }).unwrap();
        let reserved = reserved.results.get("email.send").unwrap().receipt_id.clone().unwrap();
        let year_10000 = env
            .body("authorizations", "authorization_id", &ids[1])
            .replace(&env.engine.get_authorization(&ids[1]).unwrap().expires_at, "10000-01-01T00:00:59.999Z");
        env.damage("authorizations", "authorization_id", &ids[1], &year_10000);
        env.damage("authorizations", "authorization_id", &ids[3], "{not json");

        for engine in [env.engine.clone(), env.reopen()] {
            let (listed, unreadable) = env.all_authorizations();
            let listed: Vec<String> = listed.into_iter().map(|a| a.authorization_id).collect();
            assert_eq!(listed, vec![ids[0].clone(), ids[2].clone(), ids[4].clone()], "{}", env.name);
            assert_eq!(unreadable, vec![ids[1].clone(), ids[3].clone()], "{}", env.name);
            // Pages of one still step over each row, readable or not.
            let page = engine.list_authorizations(&listing(1, Some(&ids[0]))).unwrap();
            assert_eq!((page.items.len(), page.unreadable.len()), (0, 1), "{}", env.name);
            assert_eq!(page.unreadable[0].code, "authorization_unreadable");
            assert_eq!(page.next_cursor.as_deref(), Some(ids[1].as_str()), "{}", env.name);

            for bad in [&ids[1], &ids[3]] {
                let expect_409 = |err: Error| {
                    assert_eq!((err.code(), err.http_status()), ("authorization_unreadable", Some(409)), "{err}");
                    assert!(err.to_string().contains(bad.as_str()), "{err}");
                };
                expect_409(engine.get_authorization(bad).unwrap_err());
                expect_409(engine.revoke_authorization(bad, None, None).unwrap_err());
                let replace = AuthorizationCreate { replaces: Some(bad.to_string()), ..create("user_42") };
                expect_409(engine.create_authorization(&replace).unwrap_err());
                for response in [
                    engine.check(&email(bad)).unwrap(),
                    engine.check_or_fallback(&email(bad)).unwrap(),
                    engine.check_many(&[email(&ids[0]), email(bad)]).pop().unwrap().unwrap(),
                ] {
                    assert_eq!(outcome(&response, "email.send"), (Decision::Deny, "authorization_unreadable".into()));
                    let result = response.results.get("email.send").unwrap();
                    assert!(!result.is_fallback, "{}", env.name);
                    let payload = &env.verified(&response)[0];
                    assert_eq!((&payload["decision"], &payload["authorization_id"]), (&json!("deny"), &Value::Null));
                }
                // A retry under one idempotency key gets the same denial back.
                let keyed = CheckRequest { idempotency_key: Some(format!("k-{bad}")), ..email(bad) };
                let (first, again) = (engine.check(&keyed).unwrap(), engine.check(&keyed).unwrap());
                assert_eq!(first, again, "{}", env.name);
            }
            let settle = engine.settle_budget(&reserved, 1, None).unwrap_err();
            assert_eq!(settle.code(), "authorization_unreadable", "{}", env.name);
            let fine = engine.check(&email(&ids[0])).unwrap();
            assert_eq!(outcome(&fine, "email.send").0, Decision::Allow, "{}", env.name);
        }
        env.engine.revoke_authorization(&ids[4], None, None).unwrap();
        let replaced = AuthorizationCreate { replaces: Some(ids[2].clone()), ..create("user_42") };
        env.engine.create_authorization(&replaced).unwrap();
        assert_eq!(env.engine.get_authorization(&ids[2]).unwrap().status, AuthorizationStatus::Revoked);
    }
}

/// A policy edition, a pending confirmation or an API key row that does not load: checks under
/// that edition deny, signed (`stored_row_unreadable`), and name their authorization; the policy
/// list names the edition; revoking the authorization still works; the key list shows the other
/// keys and the damaged key authenticates nothing.
#[test]
fn other_rows_that_do_not_load_deny_or_are_named() {
    for env in persistent_envs() {
        env.publish();
        let id = env.grant(None);
        let other = env.grant(None);
        let nonce = env.check(CheckRequest { actions: vec!["calendar.invite".into()], ..email(&other) }).unwrap();
        let confirmation = nonce.results.get("calendar.invite").unwrap().confirmation_id.clone().unwrap();
        let (kept_key, lost_key) = (
            env.engine.create_api_key(ApiKeyKind::Runtime, Some("kept")).unwrap(),
            env.engine.create_api_key(ApiKeyKind::Runtime, Some("lost")).unwrap(),
        );
        env.damage("confirmations", "confirmation_id", &confirmation, "[]");
        env.damage("api_keys", "key_id", &lost_key.key_id, "null");
        env.damage("policy_editions", "policy_id", "support_agent", "{\"policy_ref\": 7}");
        let engine = env.reopen();

        let response = engine.check(&email(&id)).unwrap();
        assert_eq!(outcome(&response, "email.send"), (Decision::Deny, "stored_row_unreadable".into()), "{}", env.name);
        let payload = &env.verified(&response)[0];
        assert_eq!(payload["authorization_id"], json!(id), "{}", env.name);
        assert_eq!(response.user_id.as_deref(), Some("user_42"));
        let page = engine.list_policies(100, None).unwrap();
        assert_eq!(page.items.len(), 0, "{}", env.name);
        assert_eq!(page.unreadable.len(), 1, "{}", env.name);
        assert_eq!(
            (page.unreadable[0].id.as_str(), page.unreadable[0].code.as_str()),
            ("support_agent@1", "stored_row_unreadable")
        );
        assert_eq!(engine.get_policy("support_agent").unwrap_err().code(), "stored_row_unreadable");
        assert_eq!(engine.archive_policy("support_agent").unwrap_err().code(), "stored_row_unreadable");

        let revoked = engine.revoke_authorization(&other, None, None).unwrap();
        assert!(revoked.revoked_confirmations.is_empty(), "{}", env.name);
        assert_eq!(engine.confirmation_status(&confirmation).unwrap_err().code(), "stored_row_unreadable");

        let keys: Vec<String> = engine.list_api_keys().unwrap().into_iter().map(|k| k.key_id).collect();
        assert!(keys.contains(&kept_key.key_id) && !keys.contains(&lost_key.key_id), "{}: {keys:?}", env.name);
        assert_eq!(engine.authenticate(&kept_key.key).unwrap(), ApiKeyKind::Runtime);
        assert_eq!(engine.authenticate(&lost_key.key).unwrap_err().code(), "invalid_or_revoked_api_key");
    }
}

// ---------------------------------------------------------------------------------------------
// Property: whatever is accepted can be listed, read, checked and revoked

/// A fixed-seed generator (xorshift64*), so a failure names its iteration and replays.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Text of 0 to `max` characters from several scripts, sometimes with a character the engine
    /// refuses somewhere (controls, NUL, bidi overrides).
    fn text(&mut self, max: usize) -> String {
        const PLAIN: [&str; 14] =
            ["a", "Z", "7", "_", "-", ".", " ", "\u{e9}", "\u{4e2d}", "\u{1f642}", "\u{200d}", "\u{5d0}", "'", "\""];
        const ODD: [&str; 7] = ["\0", "\n", "\t", "\u{1b}", "\u{85}", "\u{202e}", "\u{feff}"];
        let len = self.below(max + 1);
        (0..len).map(|_| if self.chance(2) { *self.pick(&ODD) } else { *self.pick(&PLAIN) }).collect()
    }

    fn integer(&mut self) -> i64 {
        let random = self.next() as i64 >> self.below(64);
        let edges = [0, 1, 2, 59, 60, 86_400, MAX_SAFE_INTEGER - 1, MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1, i64::MAX];
        *self.pick(&[&edges[..], &[i64::MIN, -1, random]].concat())
    }

    /// RFC 3339 text around both ends of the range and in between, with offsets and fractions.
    fn timestamp(&mut self) -> String {
        let year = *self.pick(&[1, 2, 1969, 1970, 2026, 2027, 2100, 9998, 9999, 0, 10000]);
        let (mut month, mut day) = (1 + self.below(12), 1 + self.below(31));
        let (mut hour, minute, second) = (self.below(25), self.below(60), self.below(61));
        // Often the last or first hour of the range, where an offset carries the instant past it.
        if year == 9999 && self.chance(60) {
            (month, day, hour) = (12, 31, 23);
        } else if year == 1 && self.chance(60) {
            (month, day, hour) = (1, 1, 0);
        }
        if self.chance(10) {
            return format!("{year:04}-{month:02}-{day:02}");
        }
        let fraction = match self.below(5) {
            0 => String::new(),
            1 => ".5".into(),
            2 => format!(".{:03}", self.below(1000)),
            3 => format!(".{:09}", self.below(1_000_000_000)),
            _ => format!(".{}", "9".repeat(1 + self.below(12))),
        };
        let zone = match self.below(4) {
            0 => "Z".to_string(),
            1 => "z".to_string(),
            _ => format!("{}{:02}:{:02}", self.pick(&['+', '-']), self.below(25), self.below(61)),
        };
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{zone}")
    }

    /// A time in the last day of the range with a negative offset, or the first with a positive one,
    /// and whether it falls past that end in UTC (computed here, apart from the engine's parser).
    fn edge_timestamp(&mut self) -> (String, bool) {
        let (hour, minute, offset) = (self.below(24), self.below(60), self.below(24 * 60));
        let zone = |sign: char| format!("{sign}{:02}:{:02}", offset / 60, offset % 60);
        if self.chance(70) {
            let text = format!("9999-12-31T{hour:02}:{minute:02}:59.999{}", zone('-'));
            (text, hour * 60 + minute + offset >= 24 * 60)
        } else {
            let text = format!("0001-01-01T{hour:02}:{minute:02}:00{}", zone('+'));
            (text, hour * 60 + minute < offset)
        }
    }

    /// A JSON value of bounded depth: scalars, unicode strings, extreme integers, sometimes a float.
    fn json(&mut self, depth: usize) -> Value {
        match self.below(if depth == 0 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => json!(self.chance(50)),
            2 if self.chance(5) => json!(0.5),
            2 => json!(self.integer()),
            3 => json!(self.text(12)),
            4 => Value::Array((0..self.below(4)).map(|_| self.json(depth - 1)).collect()),
            _ => Value::Object((0..self.below(4)).map(|_| (self.text(6), self.json(depth - 1))).collect()),
        }
    }

    /// A policy from random fields, rules, conditions and guards; most validate, some do not.
    fn policy(&mut self, policy_id: &str) -> Value {
        let types = ["string", "integer", "boolean", "null", "list"];
        let actions: Vec<Value> = (0..1 + self.below(3))
            .map(|i| {
                let mut fields = Map::new();
                for f in 0..self.below(4) {
                    fields.insert(format!("f{f}"), json!(self.pick(&types)));
                }
                let names: Vec<(String, String)> =
                    fields.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect();
                let rules: Vec<Value> = (0..if names.is_empty() { 0 } else { self.below(3) })
                    .map(|r| {
                        let conditions: Vec<Value> = (0..1 + self.below(2))
                            .map(|_| {
                                let (field, kind) = self.pick(&names).clone();
                                let (op, value) = match kind.as_str() {
                                    "integer" => (
                                        *self.pick(&["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists"]),
                                        json!(self.integer()),
                                    ),
                                    "list" => (
                                        *self.pick(&["contains_any", "contains_none", "empty", "exists"]),
                                        json!(["a", 1]),
                                    ),
                                    "string" => {
                                        (*self.pick(&["eq", "ne", "in", "not_in", "exists"]), json!(self.text(5)))
                                    }
                                    "boolean" => (*self.pick(&["eq", "ne", "exists"]), json!(true)),
                                    _ => (*self.pick(&["eq", "exists"]), Value::Null),
                                };
                                let value = match op {
                                    "in" | "not_in" => json!([value]),
                                    "exists" | "empty" => json!(self.chance(50)),
                                    _ => value,
                                };
                                json!({"field": field, "op": op, "value": value})
                            })
                            .collect();
                        let decision = *self.pick(&["allow", "deny", "confirm", "escalate"]);
                        let mut rule = json!({"id": format!("r{r}"), "decision": decision, "conditions": conditions});
                        if decision == "escalate" {
                            rule["target"] = json!(format!("member:{}", self.text(8)));
                        }
                        rule
                    })
                    .collect();
                let decision = *self.pick(&["allow", "deny", "confirm", "escalate"]);
                let mut policy = json!({"action": format!("act{i}.{}", self.text(4)), "decision": decision,
                                        "fields": fields, "rules": rules});
                if decision == "escalate" {
                    policy["target"] = json!("member:lead");
                }
                let mut guards = Map::new();
                if self.chance(30) {
                    guards.insert("max_per_day".into(), json!(self.integer()));
                }
                if self.chance(30) {
                    guards.insert(
                        "rate_limit".into(),
                        json!({"max_calls": self.integer(), "window_seconds": self.integer()}),
                    );
                }
                if self.chance(20) {
                    guards.insert("resource_pattern".into(), json!(format!("{}*", self.text(4))));
                }
                json!({"policy": policy, "guards": guards})
            })
            .collect();
        let mut body = json!({"policy_id": policy_id, "agent_id": self.text(10), "actions": actions});
        if self.chance(70) {
            body["default_expiry_days"] = json!(*self.pick(&[1, 30, 3650, 3651, 0]));
        }
        if self.chance(30) {
            body["description"] = json!(self.text(20));
        }
        body
    }

    /// A context for `fields`: mostly of the declared types, sometimes not, sometimes missing.
    fn context(&mut self, fields: &Map<String, Value>) -> Value {
        let mut context = Map::new();
        for (name, kind) in fields {
            if self.chance(15) {
                continue;
            }
            let value = match (kind.as_str(), self.chance(85)) {
                (Some("integer"), true) => json!(self.integer().clamp(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)),
                (Some("string"), true) => json!(self.text(5).replace('\0', "")),
                (Some("boolean"), true) => json!(self.chance(50)),
                (Some("list"), true) => json!(["a", 1, true, null]),
                (Some("null"), true) => Value::Null,
                _ => json!("mismatch"),
            };
            context.insert(name.clone(), value);
        }
        Value::Object(context)
    }
}

/// Whatever `authorizations create` and `policies create` accept, on any store, is listed, read
/// back as it was accepted, checked (every result signed and verifying) and revoked; whatever they
/// refuse is a 422 or a named not-found, and writes nothing. Random requests around every limit.
#[test]
fn whatever_is_accepted_can_be_listed_read_checked_and_revoked() {
    for env in envs() {
        env.publish();
        let mut gen = Gen(0x5eed_0fa1_10f1 ^ env.name.len() as u64);
        let mut accepted: Vec<String> = Vec::new();
        let mut policies = 1;
        let mut refused_past = 0;
        for iteration in 0..200 {
            let what = format!("{} #{iteration}", env.name);
            // A random policy, published under a fresh id.
            let mut policy_id = "support_agent".to_string();
            if gen.chance(40) {
                let body = gen.policy(&format!("gen_{iteration}"));
                match env.engine.create_policy(&body) {
                    Ok(view) => {
                        policies += 1;
                        assert_eq!(view.policy_ref.policy_version, 1, "{what}");
                        let read = env.engine.get_policy(&view.policy_ref.policy_id).unwrap();
                        assert_eq!(read.definition, view.definition, "{what}");
                        policy_id = view.policy_ref.policy_id;
                    }
                    Err(err) => assert_eq!(err.code(), "invalid_request", "{what}: {err}"),
                }
            }
            let definition = env.engine.get_policy(&policy_id).unwrap().definition;
            let names: Vec<String> = definition["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["policy"]["action"].as_str().unwrap().to_string())
                .collect();

            let mut request = AuthorizationCreate {
                user_id: match gen.below(10) {
                    0 => gen.text(130),
                    1 => "user".into(),
                    _ => gen.text(12),
                },
                policy_id: policy_id.clone(),
                ..Default::default()
            };
            if gen.chance(30) {
                request.policy_version = Some(if gen.chance(50) { 1 } else { gen.integer() });
            }
            if gen.chance(30) {
                let mut subset: Vec<String> = names.iter().filter(|_| gen.chance(60)).cloned().collect();
                if gen.chance(10) {
                    subset.push(gen.text(8));
                }
                request.actions = Some(subset);
            }
            let mut past_the_range = false;
            if gen.chance(20) {
                let (text, past) = gen.edge_timestamp();
                (request.expires_at, past_the_range) = (Some(text), past);
            } else if gen.chance(40) || definition["default_expiry_days"].is_null() {
                request.expires_at = Some(gen.timestamp());
            }
            if gen.chance(40) {
                request.budget_limit_micros = Some(gen.integer());
            }
            if gen.chance(50) {
                request.metadata = Some(gen.json(3));
            }
            if gen.chance(10) {
                request.idempotency_key = Some(format!("{}{iteration}", gen.text(6)));
            }
            let created = match env.engine.create_authorization(&request) {
                Ok(created) if past_the_range => panic!("{what}: accepted {:?}: {created:?}", request.expires_at),
                Ok(created) => created,
                Err(err) if past_the_range => {
                    assert!(err.fields().iter().any(|f| f.field == "expires_at"), "{what}: {err}");
                    refused_past += 1;
                    continue;
                }
                Err(err) => {
                    assert!(matches!(err.code(), "invalid_request" | "policy_not_found"), "{what}: {err}");
                    continue;
                }
            };
            let id = created.authorization_id.clone();
            accepted.push(id.clone());

            // Read back exactly as accepted.
            let view = env.engine.get_authorization(&id).unwrap_or_else(|err| panic!("{what}: {err}"));
            assert_eq!(view.user_id, request.user_id, "{what}");
            assert_eq!(view.expires_at, created.expires_at, "{what}");
            assert_eq!(
                Timestamp::parse(&view.expires_at).map(|t| t.to_string()),
                Some(view.expires_at.clone()),
                "{what}"
            );
            assert_eq!(view.budget_limit_micros, request.budget_limit_micros, "{what}");
            let metadata = request.metadata.clone().filter(|m| !m.is_null()).unwrap_or(json!({}));
            assert_eq!(Value::Object(view.metadata.clone()), metadata, "{what}");

            // Checked: a few actions, some with a cost and a timestamp; every answer signed.
            for _ in 0..2 {
                let action = gen.pick(&names).clone();
                let entry = definition["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a["policy"]["action"] == json!(action))
                    .unwrap();
                let fields = entry["policy"]["fields"].as_object().cloned().unwrap_or_default();
                let check = CheckRequest {
                    authorization_id: id.clone(),
                    actions: vec![action.clone()],
                    context: Some(gen.context(&fields)),
                    estimated_cost_micros: gen.chance(40).then(|| gen.integer().clamp(0, MAX_SAFE_INTEGER)),
                    client_timestamp: gen.chance(20).then(|| gen.timestamp()),
                    resource: gen.chance(20).then(|| gen.text(6)),
                    ..Default::default()
                };
                match env.check(check) {
                    Ok(response) => {
                        env.verified(&response);
                    }
                    Err(err) => assert_eq!(err.code(), "invalid_request", "{what}: {err}"),
                }
            }
            // Revoked, sometimes with refused values first.
            if gen.chance(50) {
                let (by, notes) = (gen.text(8), gen.text(20));
                match env.engine.revoke_authorization(&id, Some(&by), Some(&notes)) {
                    Ok(_) => {}
                    Err(err) => {
                        assert_eq!(err.code(), "invalid_request", "{what}: {err}");
                        env.engine.revoke_authorization(&id, None, None).unwrap();
                    }
                }
                let response = env
                    .check(CheckRequest {
                        authorization_id: id.clone(),
                        actions: vec![names[0].clone()],
                        ..Default::default()
                    })
                    .unwrap();
                assert_eq!(outcome(&response, &names[0]), (Decision::Deny, "authorization_revoked".into()), "{what}");
                env.verified(&response);
            }
        }
        let (listed, unreadable) = env.all_authorizations();
        let listed: Vec<String> = listed.into_iter().map(|a| a.authorization_id).collect();
        accepted.sort();
        assert_eq!(listed, accepted, "{}: the list is exactly what was accepted", env.name);
        assert!(unreadable.is_empty(), "{}: {unreadable:?}", env.name);
        assert!(accepted.len() >= 30, "{}: only {} of 200 accepted", env.name, accepted.len());
        assert!(policies >= 5, "{}: only {policies} policies accepted", env.name);
        assert!(refused_past >= 3, "{}: only {refused_past} times past the range", env.name);
        assert_eq!(env.engine.list_policies(100, None).unwrap().items.len(), policies, "{}", env.name);
    }
}
