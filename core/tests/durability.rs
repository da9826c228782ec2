//! A process killed with SIGKILL mid-loop loses no receipt whose decision it had returned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::store::{Durability, SqliteStore};
use allowly_core::{Allowly, Options, SystemClock};
use serde_json::json;

fn open(path: &Path) -> Allowly {
    let store = SqliteStore::open(path, Durability::Process).unwrap();
    Allowly::with_store(Box::new(store), Box::new(SystemClock), Options::default()).unwrap()
}

/// Child half: checks forever, printing each returned receipt id as soon as it has it.
#[test]
fn child_check_loop() {
    let (Ok(path), Ok(id)) = (std::env::var("ALLOWLY_TEST_KILL_DB"), std::env::var("ALLOWLY_TEST_AUTHORIZATION"))
    else {
        return;
    };
    let engine = open(Path::new(&path));
    let stdout = std::io::stdout();
    loop {
        let response = engine
            .check(&CheckRequest {
                authorization_id: id.clone(),
                actions: vec!["email.send".into(), "account.delete".into()],
                estimated_cost_micros: Some(1),
                context: Some(json!({"recipient_domain": "example.com"})),
                ..Default::default()
            })
            .unwrap();
        let mut out = stdout.lock();
        for (_, result) in response.results.iter() {
            writeln!(out, "RECEIPT {}", result.receipt_id.as_deref().unwrap()).unwrap();
        }
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_loses_no_returned_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowly.db");
    let engine = open(&path);
    engine.create_policy(&common::support_policy()).unwrap();
    let id = engine
        .create_authorization(&AuthorizationCreate {
            user_id: "u".into(),
            policy_id: "support_agent".into(),
            budget_limit_micros: Some(1_000_000_000),
            ..Default::default()
        })
        .unwrap()
        .authorization_id;
    drop(engine);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_check_loop", "--nocapture", "--test-threads=1"])
        .env("ALLOWLY_TEST_KILL_DB", &path)
        .env("ALLOWLY_TEST_AUTHORIZATION", &id)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut returned = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while returned.len() < 3000 {
        let line = lines.next().expect("the child keeps checking").unwrap();
        if let Some((_, receipt_id)) = line.split_once("RECEIPT ") {
            returned.push(receipt_id.to_string());
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush, mid-transaction.
    child.wait().unwrap();
    // Whatever the child had printed before it died is also readable now.
    for line in lines.map_while(Result::ok) {
        if let Some((_, receipt_id)) = line.split_once("RECEIPT ") {
            returned.push(receipt_id.to_string());
        }
    }

    let engine = open(&path);
    let verifier_doc = engine.key_document().unwrap();
    let fingerprints: Vec<String> = verifier_doc.keys.iter().map(|k| k.public_key_fingerprint.clone()).collect();
    let (workspace_id, keys) = allowly_core::receipt::KeySet::from_document(&verifier_doc.to_value()).unwrap();
    let verifier = allowly_core::receipt::Verifier::new(keys, &workspace_id, fingerprints);
    for receipt_id in &returned {
        let stored = engine.receipt(receipt_id).unwrap_or_else(|err| panic!("receipt {receipt_id} lost: {err}"));
        verifier.verify(&stored.receipt.to_value(), allowly_core::Timestamp::now()).unwrap();
    }
    // Every allow reserved exactly one micro, and nothing else did.
    let spent = engine.get_authorization(&id).unwrap().budget_spent_micros;
    assert!(spent as usize >= returned.len() / 2, "spent {spent} for {} returned receipts", returned.len());
}
