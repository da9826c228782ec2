//! Engine benchmarks: policy evaluation, signing, verification and whole checks on both stores.
//! `scripts/bench.sh` runs them and prints one table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::policy::Definition;
use allowly_core::receipt::{KeySet, ReceiptSigner, Verifier};
use allowly_core::store::{Durability, MemoryStore, SqliteStore, Store};
use allowly_core::{Allowly, ManualClock, Options, Timestamp};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{json, Value};

fn policy() -> Value {
    json!({
        "policy_id": "bench",
        "profile": "allowly.policy.v1",
        "agent_id": "bench_agent",
        "default_expiry_days": 3650,
        "actions": [{
            "policy": {"profile": "allowly.basic.v1", "action": "email.send", "decision": "allow", "target": null,
                       "fields": {"recipient_domain": "string", "risk": "integer", "tags": "list"},
                       "rules": [
                           {"id": "external", "decision": "confirm", "target": "agent_owner",
                            "conditions": [{"field": "recipient_domain", "op": "not_in", "value": ["example.com", "example.org"]}]},
                           {"id": "risky", "decision": "deny", "target": null,
                            "conditions": [{"field": "risk", "op": "gte", "value": 9},
                                           {"field": "tags", "op": "contains_any", "value": ["legal", "pii"]}]}
                       ]},
            "guards": {"resource_pattern": "mailbox/*"}, "executable_operations": []
        }]
    })
}

fn context() -> Value {
    json!({"recipient_domain": "example.com", "risk": 2, "tags": ["sales"], "initiated_by": "user"})
}

fn engine_on(store: Box<dyn Store>) -> (Allowly, String) {
    let clock = Arc::new(ManualClock::new(Timestamp::parse("2026-03-02T09:00:00.000Z").unwrap()));
    let engine = Allowly::with_store(store, Box::new(clock), Options::default()).unwrap();
    engine.create_policy(&policy()).unwrap();
    let id = engine
        .create_authorization(&AuthorizationCreate {
            user_id: "u".into(),
            policy_id: "bench".into(),
            ..Default::default()
        })
        .unwrap()
        .authorization_id;
    (engine, id)
}

fn request(id: &str) -> CheckRequest {
    CheckRequest {
        authorization_id: id.into(),
        actions: vec!["email.send".into()],
        resource: Some("mailbox/1".into()),
        context: Some(context()),
        ..Default::default()
    }
}

fn policy_evaluation(c: &mut Criterion) {
    let mut body = policy();
    let definition_json = json!({
        "profile": body["profile"].take(), "agent_id": body["agent_id"].take(),
        "actions": body["actions"].take(), "default_expiry_days": body["default_expiry_days"].take(),
    });
    let definition = Definition::parse(&definition_json).unwrap();
    let Value::Object(context) = context() else { unreachable!() };
    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(1));
    group.bench_function("evaluate_and_decide", |b| {
        b.iter(|| {
            let entry = definition.action("email.send").unwrap();
            let allowed = entry.guards.resource_allowed(Some("mailbox/1")) && entry.guards.initiator_allowed(&context);
            let evaluation = entry.evaluate(&context).unwrap();
            (allowed, evaluation.decision)
        })
    });
    group.finish();
}

fn receipts(c: &mut Criterion) {
    let signer = ReceiptSigner::new("key_bench", &[7u8; 32]);
    let payload = json!({
        "schema_version": "5", "receipt_id": "rcp_01JBENCH", "workspace_id": "ws_bench",
        "issued_at": "2026-03-02T09:00:00.000Z", "action": "email.send", "decision": "allow",
        "reason": "authorization_granted_action_active", "user_id": "u", "agent_id": "bench_agent",
        "resource": "mailbox/1", "context": context(), "authorization_id": "auth_1",
        "policy_ref": {"policy_id": "bench", "policy_version": 1, "definition_sha256": "0".repeat(64)},
        "engine_version": format!("sha256:{}", "1".repeat(64)),
    });
    let receipt = signer.sign(&payload).unwrap();
    let record = allowly_core::receipt::KeyRecord {
        key_id: "key_bench".into(),
        public_key: signer.public_key(),
        active_from: Timestamp(0),
        active_until: None,
    };
    let keys = KeySet::from_records(&[record]).unwrap();
    let verifier = Verifier::new(keys, "ws_bench", [allowly_core::receipt::fingerprint(&signer.public_key())]);
    let receipt_json = serde_json::to_vec(&receipt).unwrap();
    let now = Timestamp::parse("2026-03-03T00:00:00.000Z").unwrap();

    let mut group = c.benchmark_group("receipt");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| b.iter(|| signer.sign(&payload).unwrap()));
    group.bench_function("verify_json", |b| b.iter(|| verifier.verify_json(&receipt_json, now).unwrap()));
    group.finish();
}

fn checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    group.throughput(Throughput::Elements(1));
    let (memory, memory_id) = engine_on(Box::new(MemoryStore::new()));
    let memory_request = request(&memory_id);
    group.bench_function("memory_signed", |b| b.iter(|| memory.check(&memory_request).unwrap()));

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("bench.db"), Durability::Process).unwrap();
    let (sqlite, sqlite_id) = engine_on(Box::new(store));
    let sqlite_request = request(&sqlite_id);
    group.bench_function("sqlite_signed", |b| b.iter(|| sqlite.check(&sqlite_request).unwrap()));
    group.bench_function("sqlite_budgeted", |b| {
        b.iter_batched(
            || CheckRequest { estimated_cost_micros: Some(1), ..sqlite_request.clone() },
            |req| sqlite.check(&req).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // A group of checks decided together (`check_many`, one commit); figures are per check.
    const GROUP: usize = 32;
    let mut group = c.benchmark_group("check_group_of_32");
    group.throughput(Throughput::Elements(GROUP as u64));
    let requests = vec![sqlite_request.clone(); GROUP];
    group.bench_function("sqlite_signed", |b| {
        b.iter(|| assert!(sqlite.check_many(&requests).iter().all(Result::is_ok)));
    });
    let requests = vec![memory_request.clone(); GROUP];
    group.bench_function("memory_signed", |b| {
        b.iter(|| assert!(memory.check_many(&requests).iter().all(Result::is_ok)));
    });
    group.finish();

    let mut group = c.benchmark_group("check");
    group.throughput(Throughput::Elements(1));
    let store = SqliteStore::open(&dir.path().join("bench-fsync.db"), Durability::Power).unwrap();
    let (power, power_id) = engine_on(Box::new(store));
    let power_request = request(&power_id);
    group.bench_function("sqlite_signed_fsync_per_commit", |b| b.iter(|| power.check(&power_request).unwrap()));
    group.finish();
}

criterion_group!(benches, policy_evaluation, receipts, checks);
criterion_main!(benches);
