//! A running server issues the daily checkpoints of the days that have ended, by itself: each
//! commits exactly that day's receipts, chains to the one before, is served over HTTP and
//! verifies against the published keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use allowly_core::engine::DATABASE_FILE;
use allowly_core::model::{AuthorizationCreate, CheckRequest, ReceiptEnvelope};
use allowly_core::receipt::{decode_receipt, verify_checkpoint, CheckpointEvidence, KeySet, Verifier};
use allowly_core::store::{Durability, SqliteStore};
use allowly_core::{Allowly, ManualClock, Options, Timestamp};
use allowly_server::{CheckpointSchedule, Storage};
use common::{TestResult, TestServer};
use serde_json::Value;

/// The `receipt_id` a signed receipt (or pending envelope) names.
fn receipt_id(envelope: &ReceiptEnvelope) -> TestResult<String> {
    let id = match envelope {
        ReceiptEnvelope::Signed { receipt } => decode_receipt(&receipt.to_value())?["receipt_id"].clone(),
        ReceiptEnvelope::Pending { receipt_id, .. } => Value::from(receipt_id.as_str()),
    };
    Ok(id.as_str().ok_or("no receipt_id")?.to_string())
}

/// Writes, into a new home, a workspace whose receipts were signed two days ago and yesterday;
/// returns the receipt ids of each day.
fn workspace_with_past_days(home: &Path) -> TestResult<[Vec<String>; 2]> {
    std::fs::create_dir_all(home)?;
    let two_days_ago = Timestamp::now().start_of_day().plus_days(-2).plus_seconds(10 * 3600);
    let clock = Arc::new(ManualClock::new(two_days_ago));
    let store = SqliteStore::open(&home.join(DATABASE_FILE), Durability::Process)?;
    let engine = Allowly::with_store(Box::new(store), Box::new(clock.clone()), Options::default())?;
    engine.create_policy(&common::policy_body("support"))?;
    let created = engine.create_authorization(&AuthorizationCreate {
        user_id: "user_1".into(),
        policy_id: "support".into(),
        ..Default::default()
    })?;
    let mut days = [Vec::new(), Vec::new()];
    days[0].push(receipt_id(&created.receipt)?);
    for (day, checks) in [(0, 3), (1, 2)] {
        for _ in 0..checks {
            clock.advance_millis(60_000);
            let answer = engine.check(&CheckRequest {
                authorization_id: created.authorization_id.clone(),
                actions: vec!["email.read".into()],
                ..Default::default()
            })?;
            let result = answer.results.get("email.read").ok_or("no result")?;
            days[day].push(receipt_id(result.receipt.as_ref().ok_or("no receipt")?)?);
        }
        clock.advance_millis(24 * 3600 * 1000);
    }
    Ok(days)
}

fn read_evidence(home: &Path) -> TestResult<CheckpointEvidence> {
    Ok(Allowly::open_embedded(home)?.checkpoint_evidence()?)
}

#[test]
fn the_server_checkpoints_each_ended_day_by_itself() -> TestResult {
    let mut days = None;
    let server = TestServer::start_with(|config| {
        let Storage::Sqlite { home } = &config.storage else { panic!("the test server runs on a SQLite home") };
        days = Some(workspace_with_past_days(home).unwrap());
        config.checkpoints = Some(CheckpointSchedule { every: Duration::from_millis(200), grace: Duration::ZERO });
    })?;
    let days = days.ok_or("no workspace written")?;

    let deadline = Instant::now() + Duration::from_secs(20);
    let evidence = loop {
        let evidence = read_evidence(&server.home)?;
        if evidence.checkpoints.len() >= 2 || Instant::now() > deadline {
            break evidence;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(evidence.checkpoints.len(), 2, "one checkpoint per ended day");

    // Each checkpoint commits exactly its day's receipts.
    for (entry, expected) in evidence.checkpoints.iter().zip(&days) {
        let mut members = entry.member_receipt_ids.clone();
        let mut expected = expected.clone();
        members.sort();
        expected.sort();
        assert_eq!(members, expected);
    }

    // Served over HTTP, verified against the published keys, the second chained to the first.
    let keys_document = server.request("GET", &format!("/v1/workspaces/{}/keys", server.workspace_id), None, None)?;
    let keys_document = keys_document.body;
    let (workspace_id, keys) = KeySet::from_document(&keys_document)?;
    let fingerprints: Vec<String> = keys_document["keys"]
        .as_array()
        .ok_or("no keys")?
        .iter()
        .filter_map(|key| key["public_key_fingerprint"].as_str().map(str::to_owned))
        .collect();
    let verifier = Verifier::new(keys, &workspace_id, fingerprints);
    let fetch = |receipt_id: &str| -> TestResult<Value> {
        let reply = server.request("GET", &format!("/v1/receipts/{receipt_id}"), Some(&server.runtime), None)?;
        assert_eq!(reply.status, 200, "{receipt_id}");
        assert_eq!(reply.body["status"], "signed");
        Ok(reply.body["receipt"].clone())
    };
    let mut previous: Option<Value> = None;
    for entry in &evidence.checkpoints {
        let checkpoint_id = decode_receipt(&entry.checkpoint.to_value())?["receipt_id"].as_str().unwrap().to_string();
        let checkpoint = fetch(&checkpoint_id)?;
        assert_eq!(checkpoint, entry.checkpoint.to_value());
        let members = entry.member_receipt_ids.iter().map(|id| fetch(id)).collect::<TestResult<Vec<Value>>>()?;
        verify_checkpoint(&verifier, &checkpoint, &members, previous.as_ref(), Timestamp::now())?;
        previous = Some(checkpoint);
    }

    // Later passes issue nothing new.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(read_evidence(&server.home)?.checkpoints.len(), 2);
    Ok(())
}

#[test]
fn a_server_started_without_a_schedule_issues_none() -> TestResult {
    let server = TestServer::start_with(|config| {
        let Storage::Sqlite { home } = &config.storage else { panic!("the test server runs on a SQLite home") };
        workspace_with_past_days(home).unwrap();
        config.checkpoints = None;
    })?;
    std::thread::sleep(Duration::from_millis(500));
    assert!(read_evidence(&server.home)?.checkpoints.is_empty());
    Ok(())
}
