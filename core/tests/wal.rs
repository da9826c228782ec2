//! The write-ahead log of a workspace file is checkpointed in the background: it stays a few
//! megabytes instead of growing to SQLite's auto-checkpoint size (64 MiB here), whose copy would
//! otherwise stall a commit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use allowly_core::engine::DATABASE_FILE;
use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::Allowly;
use serde_json::json;

const ROUNDS: usize = 25;
const CHECKS_PER_ROUND: usize = 300;
/// Without the background checkpoints the log passes this long before the last round (it reached
/// 67 MB in a trial without them; 5 MB with them).
const BOUND_BYTES: u64 = 16 << 20;

#[test]
fn the_wal_stays_short_while_checks_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Allowly::open_embedded(dir.path()).unwrap();
    engine
        .create_policy(&json!({"policy_id": "p", "profile": "allowly.policy.v1", "agent_id": "a",
            "default_expiry_days": 30, "actions": [{"policy": {"profile": "allowly.basic.v1",
            "action": "search.web", "decision": "allow", "target": null, "fields": {}, "rules": []},
            "guards": {}, "executable_operations": []}]}))
        .unwrap();
    let authorization_id = engine
        .create_authorization(&AuthorizationCreate { user_id: "u".into(), policy_id: "p".into(), ..Default::default() })
        .unwrap()
        .authorization_id;
    let request = CheckRequest { authorization_id, actions: vec!["search.web".into()], ..Default::default() };
    let wal = dir.path().join(format!("{DATABASE_FILE}-wal"));
    let mut largest = 0;
    for _ in 0..ROUNDS {
        for _ in 0..CHECKS_PER_ROUND {
            engine.check(&request).unwrap();
        }
        largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        // A pause, as between bursts of real traffic: the checkpointer catches up, and the next
        // commit starts the log over.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(largest < BOUND_BYTES, "the WAL grew to {largest} bytes");
}
