//! Reopening the SQLite file restores the whole workspace; checkpoints chain and verify.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::policy::Decision;
use allowly_core::receipt::verify_checkpoint;
use allowly_core::store::{Durability, SqliteStore};
use allowly_core::{Allowly, Clock, ManualClock, Options};
use serde_json::json;

fn open(path: &std::path::Path, clock: &Arc<ManualClock>) -> Allowly {
    let store = SqliteStore::open(path, Durability::Process).unwrap();
    Allowly::with_store(Box::new(store), Box::new(clock.clone()), Options::default()).unwrap()
}

#[test]
fn reopening_the_file_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowly.db");
    let clock = Arc::new(ManualClock::new(common::start()));
    let engine = open(&path, &clock);
    engine.create_policy(&common::support_policy()).unwrap();
    let id = engine
        .create_authorization(&AuthorizationCreate {
            user_id: "u".into(),
            policy_id: "support_agent".into(),
            budget_limit_micros: Some(10),
            ..Default::default()
        })
        .unwrap()
        .authorization_id;
    let check = |engine: &Allowly, actions: &[&str], cost: Option<i64>, key: Option<&str>| {
        engine
            .check(&CheckRequest {
                authorization_id: id.clone(),
                actions: actions.iter().map(|a| a.to_string()).collect(),
                estimated_cost_micros: cost,
                context: Some(json!({"recipient_domain": "partner.org"})),
                idempotency_key: key.map(str::to_string),
                ..Default::default()
            })
            .unwrap()
    };
    let first = check(&engine, &["email.send", "refund.issue"], Some(6), Some("k1"));
    let nonce = first.results.get("email.send").unwrap().confirm_nonce.clone().unwrap();
    let escalation = first.results.get("refund.issue").unwrap().escalation_id.clone().unwrap();
    let workspace = engine.workspace_id().to_string();
    let keys = engine.key_document().unwrap();
    drop(engine);

    let engine = open(&path, &clock);
    assert_eq!(engine.workspace_id(), workspace);
    assert_eq!(engine.key_document().unwrap(), keys);
    assert_eq!(engine.get_policy("support_agent").unwrap().policy_ref.policy_version, 1);
    assert_eq!(
        check(&engine, &["email.send", "refund.issue"], Some(6), Some("k1")),
        first,
        "idempotency records survive"
    );
    // The pending prompts survive and resolve.
    engine.resolve_confirmation(&nonce, true, None).unwrap();
    engine.resolve_escalation(&escalation, allowly_core::model::Resolution::Approved, "alice", None).unwrap();
    let after = check(&engine, &["email.send", "refund.issue"], Some(6), None);
    assert_eq!(after.results.get("email.send").unwrap().decision, Decision::Allow);
    assert_eq!(after.results.get("refund.issue").unwrap().decision, Decision::Allow);
    assert_eq!(
        engine.get_authorization(&id).unwrap().budget_spent_micros,
        6,
        "the first check reserved nothing: none allowed"
    );
    let over = check(&engine, &["email.send"], Some(6), None);
    assert_eq!(over.results.get("email.send").unwrap().reason, "budget_exceeded", "counters survive reopening");
}

#[test]
fn daily_checkpoints_chain_and_verify_across_rotation() {
    let f = common::sqlite();
    let id = f.authorize(None);
    let check = || f.check(&id, &["email.send"], json!({"recipient_domain": "example.com"}));
    check();
    check();
    f.clock.advance_millis(86_400_000);
    f.engine.rotate_key().unwrap();
    check();
    assert!(f.engine.create_checkpoints().unwrap().len() == 1, "only whole days are checkpointed");
    f.clock.advance_millis(86_400_000);
    let second = f.engine.create_checkpoints().unwrap();
    assert_eq!(second.len(), 1);
    assert!(f.engine.create_checkpoints().unwrap().is_empty(), "a day is checkpointed once");

    let evidence = f.engine.checkpoint_evidence().unwrap();
    assert_eq!(evidence.checkpoints.len(), 2);
    let verifier = f.verifier();
    let now = f.clock.now();
    let member = |id: &String| f.engine.receipt(id).unwrap().receipt.to_value();
    let day1: Vec<_> = evidence.checkpoints[0].member_receipt_ids.iter().map(member).collect();
    let day2: Vec<_> = evidence.checkpoints[1].member_receipt_ids.iter().map(member).collect();
    assert_eq!(day1.len(), 3, "authorization.create and two checks");
    assert_eq!(day2.len(), 1);
    let first = evidence.checkpoints[0].checkpoint.to_value();
    let second = evidence.checkpoints[1].checkpoint.to_value();
    verify_checkpoint(&verifier, &first, &day1, None, now).unwrap();
    verify_checkpoint(&verifier, &second, &day2, Some(&first), now).unwrap();
    assert!(verify_checkpoint(&verifier, &first, &day1[1..], None, now).is_err(), "a missing member fails");
    assert!(verify_checkpoint(&verifier, &second, &day2, Some(&second), now).is_err(), "the chain is checked");
}
