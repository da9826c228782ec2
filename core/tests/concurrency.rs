//! Budgets stay exact under concurrency: threads on one engine, and processes on one SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::policy::Decision;
use allowly_core::store::{Durability, SqliteStore};
use allowly_core::{Allowly, Options, SystemClock};
use serde_json::json;

const CAP: i64 = 1_000_000;
const COST: i64 = 3_000;
const EXPECTED_ALLOWS: usize = (CAP / COST) as usize;

/// Runs `threads × per_thread` budgeted checks and returns how many were allowed.
fn hammer(engine: &Arc<Allowly>, authorization_id: &str, threads: usize, per_thread: usize) -> usize {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut allowed = 0;
                    for _ in 0..per_thread {
                        let response = engine
                            .check(&CheckRequest {
                                authorization_id: authorization_id.into(),
                                actions: vec!["email.send".into()],
                                estimated_cost_micros: Some(COST),
                                context: Some(json!({"recipient_domain": "example.com"})),
                                ..Default::default()
                            })
                            .unwrap();
                        let result = response.results.get("email.send").unwrap();
                        match result.decision {
                            Decision::Allow => allowed += 1,
                            Decision::Deny => assert_eq!(result.reason, "budget_exceeded"),
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    allowed
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

#[test]
fn threads_never_overspend_on_either_store() {
    for (store, f) in common::both() {
        let id = f.authorize(Some(CAP));
        let allowed = hammer(&f.engine, &id, 8, 1000);
        assert_eq!(allowed, EXPECTED_ALLOWS, "{store}");
        let authorization = f.engine.get_authorization(&id).unwrap();
        assert_eq!(authorization.budget_spent_micros, EXPECTED_ALLOWS as i64 * COST);
    }
}

fn open_shared(path: &Path) -> Arc<Allowly> {
    let store = SqliteStore::open(path, Durability::Process).unwrap();
    Arc::new(Allowly::with_store(Box::new(store), Box::new(SystemClock), Options::default()).unwrap())
}

/// Child half of the two-process test: runs only when the parent sets the variables.
#[test]
fn child_process_worker() {
    let (Ok(path), Ok(id)) = (std::env::var("ALLOWLY_TEST_SHARED_DB"), std::env::var("ALLOWLY_TEST_AUTHORIZATION"))
    else {
        return;
    };
    let engine = open_shared(Path::new(&path));
    let allowed = hammer(&engine, &id, 4, 1000);
    println!("ALLOWED={allowed}");
}

#[test]
fn two_processes_sharing_one_file_never_overspend() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowly.db");
    let engine = open_shared(&path);
    engine.create_policy(&common::support_policy()).unwrap();
    let id = engine
        .create_authorization(&AuthorizationCreate {
            user_id: "u".into(),
            policy_id: "support_agent".into(),
            budget_limit_micros: Some(CAP),
            ..Default::default()
        })
        .unwrap()
        .authorization_id;
    drop(engine);

    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_process_worker", "--nocapture", "--test-threads=1"])
                .env("ALLOWLY_TEST_SHARED_DB", &path)
                .env("ALLOWLY_TEST_AUTHORIZATION", &id)
                .output_async()
        })
        .collect();
    let mut allowed = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        // libtest may print its own "test ... " prefix on the same line.
        let line =
            stdout.lines().find_map(|l| l.split_once("ALLOWED=").map(|(_, n)| n)).expect("child reported its count");
        allowed += line.trim().parse::<usize>().unwrap();
    }
    assert_eq!(allowed, EXPECTED_ALLOWS);
    let engine = open_shared(&path);
    assert_eq!(engine.get_authorization(&id).unwrap().budget_spent_micros, EXPECTED_ALLOWS as i64 * COST);
}

trait SpawnPiped {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    }
}
