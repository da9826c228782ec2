//! The PostgreSQL store: exact under concurrency across engines ("processes"), workspaces isolated,
//! state restored by a new pool, prompt errors (and recovery) when the server goes away.
//!
//! Needs a server: `eval "$(scripts/postgres.sh start)"` exports `ALLOWLY_TEST_DATABASE_URL`;
//! without it every test that needs one prints a `SKIPPED (PostgreSQL)` line and passes
//! (`common::postgres_url`); `scripts/test.sh` fails on that line, and `ALLOWLY_REQUIRE_POSTGRES=1`
//! makes a missing URL a failure. Every test works in workspaces of its own. The outage test starts
//! (and stops) a private cluster of its own through `scripts/postgres.sh`.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use allowly_core::model::{ApiKeyKind, AuthorizationCreate, CheckRequest, CheckResponse, Resolution};
use allowly_core::ops::ListAuthorizations;
use allowly_core::policy::Decision;
use allowly_core::receipt::verify_checkpoint;
use allowly_core::store::{PostgresOptions, PostgresPool, PostgresStore};
use allowly_core::{Allowly, Clock, Error, ManualClock, Options, SystemClock};
use serde_json::json;

const CAP: i64 = 1_000_000;
const COST: i64 = 3_000;
const EXPECTED_ALLOWS: usize = (CAP / COST) as usize;

fn pool(size: usize) -> PostgresPool {
    let url = common::postgres_url().expect("ALLOWLY_TEST_DATABASE_URL is checked at the start of the test");
    PostgresPool::connect(&url, PostgresOptions { pool_size: size, ..PostgresOptions::default() }).unwrap()
}

/// A pool whose checks never share a transaction (every check takes its own), so the tests cover
/// both ways of running a check.
fn unbatched_pool(size: usize) -> PostgresPool {
    let options = PostgresOptions { pool_size: size, batch_size: 1, ..PostgresOptions::default() };
    let url = common::postgres_url().expect("ALLOWLY_TEST_DATABASE_URL is checked at the start of the test");
    PostgresPool::connect(&url, options).unwrap()
}

fn engine_on(pool: &PostgresPool, workspace_id: &str, clock: Box<dyn Clock>) -> Arc<Allowly> {
    let store = PostgresStore::for_workspace(pool, workspace_id).unwrap();
    let options = Options { workspace_id: Some(workspace_id.to_string()), ..Options::default() };
    Arc::new(Allowly::with_store(Box::new(store), clock, options).unwrap())
}

fn authorize(engine: &Allowly, budget: Option<i64>) -> String {
    engine.create_policy(&common::support_policy()).unwrap();
    engine
        .create_authorization(&AuthorizationCreate {
            user_id: "user_42".into(),
            policy_id: "support_agent".into(),
            budget_limit_micros: budget,
            ..Default::default()
        })
        .unwrap()
        .authorization_id
}

fn request(authorization_id: &str, action: &str) -> CheckRequest {
    let context = match action {
        "crm.read" => json!({"initiated_by": "user"}),
        _ => json!({"recipient_domain": "example.com"}),
    };
    CheckRequest {
        authorization_id: authorization_id.into(),
        actions: vec![action.into()],
        resource: (action == "crm.read").then(|| "crm/contacts".to_string()),
        context: Some(context),
        ..Default::default()
    }
}

/// Runs `threads × per_thread` checks of `make()` on `engine` and returns how many were allowed.
fn hammer(engine: &Allowly, threads: usize, per_thread: usize, make: &(dyn Fn() -> CheckRequest + Sync)) -> usize {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut allowed = 0;
                    for _ in 0..per_thread {
                        let request = make();
                        let response = engine.check(&request).unwrap();
                        let result = response.results.get(&request.actions[0]).unwrap();
                        match result.decision {
                            Decision::Allow => allowed += 1,
                            Decision::Deny => {
                                assert!(
                                    ["budget_exceeded", "rate_limited"].contains(&result.reason.as_str()),
                                    "{}",
                                    result.reason
                                )
                            }
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

fn budgeted(authorization_id: &str) -> CheckRequest {
    CheckRequest { estimated_cost_micros: Some(COST), ..request(authorization_id, "email.send") }
}

#[test]
fn the_test_database_url_is_set() {
    // Without a server the suite skips loudly (never silently): scripts/test.sh fails on the line.
    let Some(url) = common::postgres_url() else { return };
    assert!(url.starts_with("postgres"), "unexpected ALLOWLY_TEST_DATABASE_URL `{url}`");
}

#[test]
fn two_engines_on_one_workspace_never_overspend() {
    if common::postgres_url().is_none() {
        return;
    }
    // Two pools and two engines are two "processes" (separate connections, caches and signers);
    // the second gives every check a transaction of its own, the first groups them.
    let workspace_id = common::fresh_workspace_id();
    let (first_pool, second_pool) = (pool(8), unbatched_pool(8));
    let first = engine_on(&first_pool, &workspace_id, Box::new(SystemClock));
    let second = engine_on(&second_pool, &workspace_id, Box::new(SystemClock));
    let id = authorize(&first, Some(CAP));
    let allowed = std::thread::scope(|scope| {
        let a = scope.spawn(|| hammer(&first, 4, 500, &|| budgeted(&id)));
        let b = scope.spawn(|| hammer(&second, 4, 500, &|| budgeted(&id)));
        a.join().unwrap() + b.join().unwrap()
    });
    assert_eq!(allowed, EXPECTED_ALLOWS);
    assert_eq!(second.get_authorization(&id).unwrap().budget_spent_micros, EXPECTED_ALLOWS as i64 * COST);
    assert_eq!(first.key_document().unwrap(), second.key_document().unwrap(), "one workspace, one key");
}

/// Child half of the two-process test: runs only when the parent sets the variables.
#[test]
fn child_process_worker() {
    let (Ok(workspace_id), Ok(id)) =
        (std::env::var("ALLOWLY_TEST_PG_WORKSPACE"), std::env::var("ALLOWLY_TEST_PG_AUTHORIZATION"))
    else {
        return;
    };
    let engine = engine_on(&pool(4), &workspace_id, Box::new(SystemClock));
    let allowed = hammer(&engine, 4, 500, &|| budgeted(&id));
    println!("ALLOWED={allowed}");
}

#[test]
fn two_processes_on_one_workspace_never_overspend() {
    if common::postgres_url().is_none() {
        return;
    }
    let workspace_id = common::fresh_workspace_id();
    let engine = engine_on(&common::postgres_pool(), &workspace_id, Box::new(SystemClock));
    let id = authorize(&engine, Some(CAP));
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_process_worker", "--nocapture", "--test-threads=1"])
                .env("ALLOWLY_TEST_PG_WORKSPACE", &workspace_id)
                .env("ALLOWLY_TEST_PG_AUTHORIZATION", &id)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut allowed = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        let line =
            stdout.lines().find_map(|l| l.split_once("ALLOWED=").map(|(_, n)| n)).expect("child reported its count");
        allowed += line.trim().parse::<usize>().unwrap();
    }
    assert_eq!(allowed, EXPECTED_ALLOWS);
    assert_eq!(engine.get_authorization(&id).unwrap().budget_spent_micros, EXPECTED_ALLOWS as i64 * COST);
}

#[test]
fn daily_caps_and_rate_limits_are_exact_across_engines() {
    if common::postgres_url().is_none() {
        return;
    }
    let workspace_id = common::fresh_workspace_id();
    let clock = Arc::new(ManualClock::new(common::start()));
    let (first_pool, second_pool) = (pool(8), unbatched_pool(8));
    let first = engine_on(&first_pool, &workspace_id, Box::new(clock.clone()));
    let second = engine_on(&second_pool, &workspace_id, Box::new(clock.clone()));
    let id = authorize(&first, None);
    for (action, cap) in [("crm.read", 3), ("search.web", 2)] {
        let allowed = std::thread::scope(|scope| {
            let a = scope.spawn(|| hammer(&first, 4, 10, &|| request(&id, action)));
            let b = scope.spawn(|| hammer(&second, 4, 10, &|| request(&id, action)));
            a.join().unwrap() + b.join().unwrap()
        });
        assert_eq!(allowed, cap, "{action}");
    }
}

#[test]
fn an_approved_escalation_is_consumed_exactly_once() {
    if common::postgres_url().is_none() {
        return;
    }
    let workspace_id = common::fresh_workspace_id();
    let clock = Arc::new(ManualClock::new(common::start()));
    let (first_pool, second_pool) = (pool(8), pool(8));
    let first = engine_on(&first_pool, &workspace_id, Box::new(clock.clone()));
    let second = engine_on(&second_pool, &workspace_id, Box::new(clock.clone()));
    let id = authorize(&first, None);
    for round in 0..3 {
        let asked = first.check(&request(&id, "refund.issue")).unwrap();
        let escalation_id = asked.results.get("refund.issue").unwrap().escalation_id.clone().unwrap();
        second.resolve_escalation(&escalation_id, Resolution::Approved, "finance_lead", None).unwrap();
        let allowed: usize = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|i| {
                    let engine = if i % 2 == 0 { &first } else { &second };
                    let id = &id;
                    scope.spawn(move || {
                        let response = engine.check(&request(id, "refund.issue")).unwrap();
                        let result = response.results.get("refund.issue").unwrap();
                        usize::from(result.decision == Decision::Allow && result.reason == "escalation_approved")
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(allowed, 1, "round {round}: one approval, one allowed check");
    }
}

#[test]
fn concurrent_resolutions_of_one_prompt_succeed_once() {
    if common::postgres_url().is_none() {
        return;
    }
    let f = common::postgres();
    let id = f.authorize(None);
    let asked = f.check(&id, &["calendar.invite", "refund.issue"], json!({}));
    let nonce = asked.results.get("calendar.invite").unwrap().confirm_nonce.clone().unwrap();
    let escalation_id = asked.results.get("refund.issue").unwrap().escalation_id.clone().unwrap();
    let barrier = Barrier::new(8);
    let (confirmed, escalated) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let (engine, barrier, nonce, escalation_id) = (&f.engine, &barrier, &nonce, &escalation_id);
                scope.spawn(move || {
                    barrier.wait();
                    if i % 2 == 0 {
                        (engine.resolve_confirmation(nonce, i % 4 == 0, None).ok().map(|_| ()), None)
                    } else {
                        (None, engine.resolve_escalation(escalation_id, Resolution::Approved, "alice", None).ok())
                    }
                })
            })
            .collect();
        let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (results.iter().filter(|(c, _)| c.is_some()).count(), results.iter().filter(|(_, e)| e.is_some()).count())
    });
    assert_eq!((confirmed, escalated), (1, 1));
    let receipts = f.engine.recent_receipts(100).unwrap();
    let resolutions = receipts
        .iter()
        .filter(|r| {
            let payload = f.verify(&r.receipt);
            ["confirmation.resolve", "escalation.resolve"].contains(&payload["event"].as_str().unwrap_or(""))
        })
        .count();
    assert_eq!(resolutions, 2, "one resolution receipt per prompt");
}

#[test]
fn a_retried_check_under_concurrency_reserves_once() {
    if common::postgres_url().is_none() {
        return;
    }
    let workspace_id = common::fresh_workspace_id();
    let (first_pool, second_pool) = (pool(8), pool(8));
    let first = engine_on(&first_pool, &workspace_id, Box::new(SystemClock));
    let second = engine_on(&second_pool, &workspace_id, Box::new(SystemClock));
    let id = authorize(&first, Some(CAP));
    let barrier = Barrier::new(8);
    let answers: Vec<CheckResponse> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let engine = if i % 2 == 0 { &first } else { &second };
                let (barrier, id) = (&barrier, &id);
                scope.spawn(move || {
                    barrier.wait();
                    engine.check(&CheckRequest { idempotency_key: Some("retry-1".into()), ..budgeted(id) }).unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|a| a == &answers[0]), "every retry gets the first answer");
    assert_eq!(answers[0].results.get("email.send").unwrap().decision, Decision::Allow);
    assert_eq!(first.get_authorization(&id).unwrap().budget_spent_micros, COST, "reserved once");
}

#[test]
fn concurrent_setup_and_policy_publishing_are_exact() {
    if common::postgres_url().is_none() {
        return;
    }
    // Engines opened at once on a new workspace agree on one key; editions published at once
    // get distinct versions and none is lost.
    let workspace_id = common::fresh_workspace_id();
    let engines: Vec<Arc<Allowly>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..6)
            .map(|_| {
                let workspace_id = &workspace_id;
                scope.spawn(move || engine_on(&common::postgres_pool(), workspace_id, Box::new(SystemClock)))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let document = engines[0].key_document().unwrap();
    assert_eq!(document.keys.len(), 1, "one signing key");
    let versions: Vec<i64> = std::thread::scope(|scope| {
        let workers: Vec<_> = engines
            .iter()
            .enumerate()
            .map(|(i, engine)| {
                scope.spawn(move || {
                    let mut policy = common::support_policy();
                    policy["description"] = json!(format!("edition from engine {i}"));
                    policy["default_expiry_days"] = json!(10 + i);
                    engine.create_policy(&policy).unwrap().policy_ref.policy_version
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut sorted = versions.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=6).collect::<Vec<i64>>(), "{versions:?}");
    assert_eq!(engines[0].get_policy("support_agent").unwrap().policy_ref.policy_version, 6);
}

#[test]
fn a_revocation_among_concurrent_checks_cuts_them_off() {
    if common::postgres_url().is_none() {
        return;
    }
    let workspace_id = common::fresh_workspace_id();
    let (first_pool, second_pool) = (pool(8), unbatched_pool(4));
    let first = engine_on(&first_pool, &workspace_id, Box::new(SystemClock));
    let second = engine_on(&second_pool, &workspace_id, Box::new(SystemClock));
    let id = authorize(&first, Some(CAP));
    let revoked = std::sync::atomic::AtomicBool::new(false);
    let (allowed, denied_after) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let engine = if i % 4 == 3 { &second } else { &first };
                let (id, revoked) = (&id, &revoked);
                scope.spawn(move || {
                    let (mut allowed, mut denied_after) = (0, 0);
                    for _ in 0..60 {
                        let was_revoked = revoked.load(std::sync::atomic::Ordering::SeqCst);
                        let response = engine.check(&budgeted(id)).unwrap();
                        let result = response.results.get("email.send").unwrap();
                        match result.decision {
                            Decision::Allow => {
                                assert!(!was_revoked, "allowed after the revocation returned");
                                allowed += 1;
                            }
                            _ => {
                                assert_eq!(result.reason, "authorization_revoked");
                                denied_after += 1;
                            }
                        }
                    }
                    (allowed, denied_after)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30));
        first.revoke_authorization(&id, None, None).unwrap();
        revoked.store(true, std::sync::atomic::Ordering::SeqCst);
        workers.into_iter().map(|w| w.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    assert!(allowed > 0 && denied_after > 0, "{allowed} allowed, {denied_after} denied");
    let authorization = first.get_authorization(&id).unwrap();
    assert_eq!(authorization.budget_spent_micros, allowed as i64 * COST, "every allowed check reserved once");
    assert!(authorization.revoked_at.is_some());
    assert_eq!(second.revoke_authorization(&id, None, None).unwrap_err().code(), "authorization_revoked");
}

#[test]
fn work_sharing_a_transaction_commits_all_or_nothing() {
    if common::postgres_url().is_none() {
        return;
    }
    // Drives the store directly: every closure reads the authorization (so concurrent ones share
    // a transaction), increments a counter, and some then fail, before or after writing. The
    // counter must end at exactly the number of closures that succeeded.
    use allowly_core::store::{Store, Tx};
    let shared = common::postgres_pool();
    let workspace_id = common::fresh_workspace_id();
    let engine = engine_on(&shared, &workspace_id, Box::new(SystemClock));
    let id = authorize(&engine, None);
    let store = PostgresStore::for_workspace(&shared, &workspace_id).unwrap();
    // Prime the store's memory of the active key, as a check would.
    store.write(&mut |tx: &mut dyn Tx| tx.active_key_id().map(|_| ())).unwrap();
    let succeeded: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|thread| {
                let (store, id) = (&store, &id);
                scope.spawn(move || {
                    let mut succeeded = 0;
                    for call in 0..40 {
                        let fails_after_writing = (thread + call) % 7 == 0;
                        let fails_before_writing = (thread + call) % 11 == 0;
                        let outcome = store.write(&mut |tx: &mut dyn Tx| {
                            tx.active_key_id()?;
                            assert!(tx.authorization(id)?.is_some());
                            if fails_before_writing {
                                return Err(Error::conflict("planned", "fails before writing"));
                            }
                            let count = tx.counter("shared")?;
                            tx.set_counter("shared", count + 1)?;
                            if fails_after_writing {
                                return Err(Error::conflict("planned", "fails after writing"));
                            }
                            Ok(())
                        });
                        match outcome {
                            Ok(()) => succeeded += 1,
                            Err(err) => assert_eq!(err.code(), "planned", "{err}"),
                        }
                    }
                    succeeded
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let mut total = 0;
    store
        .read(&mut |tx: &mut dyn Tx| {
            total = tx.counter("shared")?;
            Ok(())
        })
        .unwrap();
    assert!(succeeded > 200, "{succeeded}");
    assert_eq!(total, succeeded as i64);
}

#[test]
fn workspaces_never_see_each_other() {
    if common::postgres_url().is_none() {
        return;
    }
    let shared = common::postgres_pool();
    let (a_id, b_id) = (common::fresh_workspace_id(), common::fresh_workspace_id());
    let a = engine_on(&shared, &a_id, Box::new(SystemClock));
    let b = engine_on(&shared, &b_id, Box::new(SystemClock));
    let authorization = authorize(&a, Some(CAP));
    let checked = a.check(&budgeted(&authorization)).unwrap();
    let receipt_id = checked.results.get("email.send").unwrap().receipt_id.clone().unwrap();
    let key = a.create_api_key(ApiKeyKind::Runtime, Some("a's key")).unwrap();

    assert_eq!(b.get_authorization(&authorization).unwrap_err().code(), "authorization_not_found");
    assert!(b.list_authorizations(&Default::default()).unwrap().items.is_empty());
    assert_eq!(b.receipt(&receipt_id).unwrap_err().code(), "receipt_not_found");
    assert!(b.recent_receipts(100).unwrap().is_empty());
    assert_eq!(b.get_policy("support_agent").unwrap_err().code(), "policy_not_found");
    assert!(b.list_api_keys().unwrap().is_empty());
    assert!(b.authenticate(&key.key).is_err(), "a's key does not open b");
    assert_ne!(a.key_document().unwrap(), b.key_document().unwrap());
    assert_eq!(b.settle_budget(&receipt_id, 1, None).unwrap_err().code(), "reservation_not_found");
    let from_b = b.check(&budgeted(&authorization)).unwrap();
    assert_eq!(from_b.results.get("email.send").unwrap().reason, "authorization_not_found");
    assert_eq!(a.get_authorization(&authorization).unwrap().budget_spent_micros, COST, "b changed nothing");
    assert_eq!(a.recent_receipts(100).unwrap().len(), 2, "authorization.create and one check");
    assert_eq!(b.recent_receipts(100).unwrap().len(), 1, "b's own denial only");

    let listed = PostgresStore::list_workspaces(&shared).unwrap();
    assert!(listed.contains(&a_id) && listed.contains(&b_id));
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "ordered");
    let opened = Allowly::with_store(
        Box::new(PostgresStore::for_workspace(&shared, &a_id).unwrap()),
        Box::new(SystemClock),
        Options { workspace_id: Some(b_id.clone()), ..Options::default() },
    );
    assert!(opened.is_err(), "a store of one workspace refuses to be opened as another");
}

#[test]
fn a_new_pool_restores_everything() {
    if common::postgres_url().is_none() {
        return;
    }
    let workspace_id = common::fresh_workspace_id();
    let clock = Arc::new(ManualClock::new(common::start()));
    let engine = engine_on(&pool(2), &workspace_id, Box::new(clock.clone()));
    let id = authorize(&engine, Some(10));
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
    let keys = engine.key_document().unwrap();
    let api_key = engine.create_api_key(ApiKeyKind::Setup, None).unwrap();
    drop(engine);

    let engine = engine_on(&pool(2), &workspace_id, Box::new(clock.clone()));
    assert_eq!(engine.workspace_id(), workspace_id);
    assert_eq!(engine.key_document().unwrap(), keys);
    assert_eq!(engine.authenticate(&api_key.key).unwrap(), ApiKeyKind::Setup);
    assert_eq!(engine.get_policy("support_agent").unwrap().policy_ref.policy_version, 1);
    assert_eq!(check(&engine, &["email.send", "refund.issue"], Some(6), Some("k1")), first, "idempotency survives");
    engine.resolve_confirmation(&nonce, true, None).unwrap();
    engine.resolve_escalation(&escalation, Resolution::Approved, "alice", None).unwrap();
    let after = check(&engine, &["email.send", "refund.issue"], Some(6), None);
    assert_eq!(after.results.get("email.send").unwrap().decision, Decision::Allow);
    assert_eq!(after.results.get("refund.issue").unwrap().decision, Decision::Allow);
    assert_eq!(engine.get_authorization(&id).unwrap().budget_spent_micros, 6);
    let over = check(&engine, &["email.send"], Some(6), None);
    assert_eq!(over.results.get("email.send").unwrap().reason, "budget_exceeded");
    engine.revoke_api_key(&api_key.key_id).unwrap();
    assert!(engine.authenticate(&api_key.key).is_err());
    engine.archive_policy("support_agent").unwrap();
    assert_eq!(engine.get_policy("support_agent").unwrap_err().code(), "policy_not_found");
}

#[test]
fn daily_checkpoints_chain_and_verify_across_rotation() {
    if common::postgres_url().is_none() {
        return;
    }
    let f = common::postgres();
    let id = f.authorize(None);
    let check = || f.check(&id, &["email.send"], json!({"recipient_domain": "example.com"}));
    check();
    check();
    f.clock.advance_millis(86_400_000);
    f.engine.rotate_key().unwrap();
    check();
    assert!(f.engine.create_checkpoints().unwrap().len() == 1, "only whole days are checkpointed");
    f.clock.advance_millis(86_400_000);
    assert_eq!(f.engine.create_checkpoints().unwrap().len(), 1);
    assert!(f.engine.create_checkpoints().unwrap().is_empty(), "a day is checkpointed once");

    let evidence = f.engine.checkpoint_evidence().unwrap();
    assert_eq!(evidence.checkpoints.len(), 2);
    let verifier = f.verifier();
    let now = f.clock.now();
    let member = |id: &String| f.engine.receipt(id).unwrap().receipt.to_value();
    let day1: Vec<_> = evidence.checkpoints[0].member_receipt_ids.iter().map(member).collect();
    let day2: Vec<_> = evidence.checkpoints[1].member_receipt_ids.iter().map(member).collect();
    assert_eq!((day1.len(), day2.len()), (3, 1));
    let first = evidence.checkpoints[0].checkpoint.to_value();
    let second = evidence.checkpoints[1].checkpoint.to_value();
    verify_checkpoint(&verifier, &first, &day1, None, now).unwrap();
    verify_checkpoint(&verifier, &second, &day2, Some(&first), now).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("receipts.jsonl");
    let summary = f.engine.export_receipts(&out, None, &mut |_| {}).unwrap();
    assert_eq!(summary.receipts, 6, "four action and lifecycle receipts and two checkpoints");
}

#[test]
fn concurrent_checkpointing_commits_each_day_once() {
    if common::postgres_url().is_none() {
        return;
    }
    let workspace_id = common::fresh_workspace_id();
    let clock = Arc::new(ManualClock::new(common::start()));
    let (first_pool, second_pool) = (pool(2), pool(2));
    let first = engine_on(&first_pool, &workspace_id, Box::new(clock.clone()));
    let second = engine_on(&second_pool, &workspace_id, Box::new(clock.clone()));
    let id = authorize(&first, None);
    for _ in 0..3 {
        first.check(&request(&id, "email.send")).unwrap();
        clock.advance_millis(86_400_000);
    }
    let barrier = Barrier::new(2);
    let made: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = [&first, &second]
            .into_iter()
            .map(|engine| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    engine.create_checkpoints().unwrap().len()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(made, 3, "three whole days, each checkpointed by one engine");
    assert_eq!(first.checkpoint_evidence().unwrap().checkpoints.len(), 3);
}

/// A clock that moves one millisecond forward on every reading, shared by "processes" (so the
/// order of readings is the order of time, without two readings in one millisecond).
struct TickingClock(std::sync::atomic::AtomicI64);

impl Clock for TickingClock {
    fn now(&self) -> allowly_core::Timestamp {
        allowly_core::Timestamp(self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
    }
}

#[test]
fn rotating_keys_while_checking_keeps_every_receipt_valid() {
    if common::postgres_url().is_none() {
        return;
    }
    // Rotation waits for the transactions signing with the old key before it reads the clock, so
    // none signs after the old key's window closed. (The ticking clock keeps the test about that
    // order: with a real clock a check and a rotation may read the same millisecond, and the
    // engine then closes the window exactly at the check's `issued_at`.)
    let workspace_id = common::fresh_workspace_id();
    let clock = Arc::new(TickingClock(std::sync::atomic::AtomicI64::new(allowly_core::Timestamp::now().millis())));
    let (first_pool, second_pool) = (pool(6), pool(2));
    let checker = engine_on(&first_pool, &workspace_id, Box::new(clock.clone()));
    let rotator = engine_on(&second_pool, &workspace_id, Box::new(clock.clone()));
    // Two threads per authorization, so checks also share transactions across rotations.
    let ids: Vec<String> = (0..3).map(|_| authorize(&checker, None)).collect();
    let receipts: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = ids
            .iter()
            .chain(ids.iter())
            .map(|id| {
                let checker = &checker;
                scope.spawn(move || {
                    (0..150)
                        .map(|_| common::signed(&checker.check(&request(id, "email.send")).unwrap(), "email.send"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(20));
            rotator.rotate_key().unwrap();
        }
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(receipts.len(), 900);
    let document = checker.key_document().unwrap();
    assert_eq!(document.keys.len(), 6);
    let fingerprints: Vec<String> = document.keys.iter().map(|k| k.public_key_fingerprint.clone()).collect();
    let (workspace, keys) = allowly_core::receipt::KeySet::from_document(&document.to_value()).unwrap();
    let verifier = allowly_core::receipt::Verifier::new(keys, &workspace, fingerprints);
    let now = clock.now();
    for receipt in &receipts {
        verifier.verify(&receipt.to_value(), now).unwrap();
    }
}

#[test]
fn an_unreachable_server_fails_fast_with_store_unavailable() {
    for url in [
        // Nothing listens there: refused at once.
        "postgres://postgres@127.0.0.1:1/allowly_test",
        // A black hole (or an unreachable network): bounded by connect_timeout.
        "postgres://postgres@10.255.255.1:5432/allowly_test?connect_timeout=1",
    ] {
        let started = Instant::now();
        let err = match PostgresPool::connect(url, PostgresOptions::default()) {
            Ok(_) => panic!("{url} should be unreachable"),
            Err(err) => err,
        };
        assert_eq!(err.code(), "store_unavailable", "{url}: {err}");
        assert!(matches!(err, Error::Store { .. }));
        assert!(started.elapsed() < Duration::from_secs(5), "{url} took {:?}", started.elapsed());
    }
    let err = PostgresPool::connect("not a url at all ://", PostgresOptions::default()).err().unwrap();
    assert_eq!(err.code(), "invalid_request");
}

/// A private cluster for the outage test, run by `scripts/postgres.sh` on a free port.
struct PrivateServer {
    dir: PathBuf,
    port: u16,
}

impl PrivateServer {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
    }

    fn run(&self, action: &str) -> String {
        let output = Command::new("bash")
            .arg(Self::script())
            .arg(action)
            .env("ALLOWLY_PG_DIR", &self.dir)
            .env("ALLOWLY_PG_PORT", self.port.to_string())
            .env("ALLOWLY_PG_DATABASE", "allowly_outage")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "scripts/postgres.sh {action} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn start() -> PrivateServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("allowly-pg-outage-{}-{port}", std::process::id()));
        let server = PrivateServer { dir, port };
        server.run("start");
        server
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/allowly_outage", self.port)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("destroy")
            .env("ALLOWLY_PG_DIR", &self.dir)
            .env("ALLOWLY_PG_PORT", self.port.to_string())
            .output();
    }
}

#[test]
fn a_stopped_server_fails_closed_promptly_and_the_pool_recovers() {
    // Like every test here: only with a PostgreSQL installation.
    if common::postgres_url().is_none() {
        return;
    }
    let server = PrivateServer::start();
    // Several processes migrating a fresh database at once.
    let pools: Vec<PostgresPool> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let url = server.url();
                scope.spawn(move || {
                    PostgresPool::connect(&url, PostgresOptions { pool_size: 4, ..PostgresOptions::default() }).unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let workspace_id = common::fresh_workspace_id();
    let engine = engine_on(&pools[0], &workspace_id, Box::new(SystemClock));
    let id = authorize(&engine, None);
    // Warm several connections, so stale ones sit in the pool during the outage.
    hammer(&engine, 4, 5, &|| request(&id, "email.send"));

    server.run("stop");
    for _ in 0..3 {
        let started = Instant::now();
        let err = engine.check(&request(&id, "email.send")).unwrap_err();
        assert_eq!(err.code(), "store_unavailable", "{err}");
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        let fallback = engine.check_or_fallback(&request(&id, "email.send")).unwrap();
        let result = fallback.results.get("email.send").unwrap();
        assert_eq!((result.decision, result.reason.as_str()), (Decision::Deny, "fallback_closed_unavailable"));
        assert!(result.is_fallback && result.receipt.is_none());
    }

    server.run("start");
    let response = engine.check(&request(&id, "email.send")).unwrap();
    assert_eq!(response.results.get("email.send").unwrap().decision, Decision::Allow, "the pool reconnected");
    assert_eq!(hammer(&engine, 4, 5, &|| request(&id, "email.send")), 20);
}

/// Receipts written before schema version 2 have no fact columns: the migration fills them in
/// from each JWS payload, so the audit lookup finds them.
#[test]
fn the_version_2_migration_fills_in_the_facts_of_older_receipts() {
    let Some(url) = common::postgres_url() else { return };
    let workspace_id = common::fresh_workspace_id();
    let engine = engine_on(&pool(2), &workspace_id, Box::new(SystemClock));
    let id = authorize(&engine, None);
    engine.check(&request(&id, "account.delete")).unwrap();
    engine.check(&request(&id, "refund.issue")).unwrap();

    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut tx = client.transaction().unwrap();
    // The migration lock, so no other test's pool migrates while version 2 is undone.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&0x616c_6c6f_776c_7900_i64]).unwrap();
    let forgotten = tx
        .execute(
            "UPDATE allowly.receipts SET user_id = NULL, agent_id = NULL, action = NULL, event = NULL,
                 decision = NULL, reason = NULL WHERE workspace_id = $1",
            &[&workspace_id],
        )
        .unwrap();
    assert_eq!(forgotten, 3, "the creation and two decisions");
    tx.execute("UPDATE allowly.escalations SET status = NULL WHERE workspace_id = $1", &[&workspace_id]).unwrap();
    tx.execute("DELETE FROM allowly.schema_version WHERE version >= 2", &[]).unwrap();
    tx.commit().unwrap();

    let engine = engine_on(&pool(2), &workspace_id, Box::new(SystemClock));
    let lookup = |request: allowly_core::ops::ListReceipts| engine.list_receipts(&request).unwrap().items;
    let denied = lookup(allowly_core::ops::ListReceipts { decision: Some("deny".into()), ..Default::default() });
    assert_eq!(denied.len(), 1);
    assert_eq!((denied[0].action.as_deref(), denied[0].user_id.as_str()), (Some("account.delete"), "user_42"));
    let created = lookup(allowly_core::ops::ListReceipts {
        event: Some("authorization.create".into()),
        agent_id: Some("support_bot".into()),
        ..Default::default()
    });
    assert_eq!(created.len(), 1);
    let pending = engine.list_escalations(Some(allowly_core::model::PromptStatus::Pending), 10, None).unwrap();
    assert_eq!(pending.items.len(), 1, "the escalation's status was filled in");
}

/// Authorizations written before schema version 3 have no user and agent columns: the migration
/// fills them in from each body, so the list finds them by user and agent. A body that is not JSON
/// keeps NULLs (the list names it as unreadable) and does not stop the migration.
#[test]
fn the_version_3_migration_fills_in_the_user_and_agent_of_older_authorizations() {
    let Some(url) = common::postgres_url() else { return };
    let workspace_id = common::fresh_workspace_id();
    let engine = engine_on(&pool(2), &workspace_id, Box::new(SystemClock));
    let alice = authorize(&engine, Some(100));
    let create = |user_id: &str| {
        let request =
            AuthorizationCreate { user_id: user_id.into(), policy_id: "support_agent".into(), ..Default::default() };
        engine.create_authorization(&request).unwrap().authorization_id
    };
    let (bob, damaged) = (create("user_bob"), create("user_bob"));

    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut tx = client.transaction().unwrap();
    // The migration lock, so no other test's pool migrates while version 3 is undone.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&0x616c_6c6f_776c_7900_i64]).unwrap();
    let forgotten = tx
        .execute(
            "UPDATE allowly.authorizations SET user_id = NULL, agent_id = NULL WHERE workspace_id = $1",
            &[&workspace_id],
        )
        .unwrap();
    assert_eq!(forgotten, 3);
    tx.execute(
        "UPDATE allowly.authorizations SET body = '{not json' WHERE workspace_id = $1 AND authorization_id = $2",
        &[&workspace_id, &damaged],
    )
    .unwrap();
    tx.execute("DELETE FROM allowly.schema_version WHERE version >= 3", &[]).unwrap();
    tx.commit().unwrap();

    let engine = engine_on(&pool(2), &workspace_id, Box::new(SystemClock));
    let listed = |user_id: &str| {
        let request = ListAuthorizations {
            user_id: Some(user_id.into()),
            agent_id: Some("support_bot".into()),
            ..Default::default()
        };
        engine.list_authorizations(&request).unwrap().items.into_iter().map(|a| a.authorization_id).collect::<Vec<_>>()
    };
    assert_eq!(listed("user_42"), [alice.as_str()]);
    assert_eq!(listed("user_bob"), [bob.as_str()], "the damaged row is found by no user");
    let everything = engine.list_authorizations(&ListAuthorizations::default()).unwrap();
    assert_eq!(everything.items.len(), 2);
    assert_eq!(everything.unreadable.iter().map(|row| row.id.as_str()).collect::<Vec<_>>(), [damaged.as_str()]);
    // A budgeted check rewrites its authorization; it stays found by its user.
    engine.check(&CheckRequest { estimated_cost_micros: Some(5), ..request(&alice, "email.send") }).unwrap();
    assert_eq!(listed("user_42"), [alice.as_str()]);
}
