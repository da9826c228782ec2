//! `check_many`: checks decided together answer exactly what the same checks one at a time answer,
//! on every store, and a check that fails inside a group leaves the others committed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use allowly_core::model::{CheckRequest, CheckResponse};
use allowly_core::store::{Durability, MemoryStore, SqliteStore, Store};
use allowly_core::Error;
use common::Fixture;
use serde_json::{json, Value};

const COST: i64 = 40_000;
/// Room for three budgeted checks of `COST`.
const CAP: i64 = 3 * COST + 1;

fn request(authorization_id: &str, action: &str, context: Value) -> CheckRequest {
    CheckRequest {
        authorization_id: authorization_id.into(),
        actions: vec![action.into()],
        context: Some(context),
        ..Default::default()
    }
}

/// A sequence that exercises every decision, each guard's limit, the budget running out, an
/// invalid request, an unknown authorization and idempotent retries (a replay and a conflict).
fn sequence(authorization_id: &str) -> Vec<CheckRequest> {
    let internal = json!({"recipient_domain": "example.com"});
    let mut requests = vec![
        request(authorization_id, "email.send", internal.clone()),
        request(authorization_id, "email.send", json!({"recipient_domain": "other.org"})),
        request(authorization_id, "account.delete", json!({})),
        request(authorization_id, "refund.issue", json!({})),
        request("auth_unknown", "email.send", internal.clone()),
        CheckRequest { actions: Vec::new(), ..request(authorization_id, "email.send", json!({})) },
    ];
    for _ in 0..3 {
        requests.push(request(authorization_id, "search.web", json!({})));
    }
    for _ in 0..4 {
        requests.push(CheckRequest {
            resource: Some("crm/accounts/7".into()),
            ..request(authorization_id, "crm.read", json!({"initiated_by": "user"}))
        });
    }
    for _ in 0..5 {
        requests.push(CheckRequest {
            estimated_cost_micros: Some(COST),
            ..request(authorization_id, "email.send", internal.clone())
        });
    }
    let retried = CheckRequest {
        idempotency_key: Some("retry-1".into()),
        ..request(authorization_id, "calendar.invite", json!({}))
    };
    requests.push(retried.clone());
    requests.push(retried.clone());
    requests.push(CheckRequest { resource: Some("another".into()), ..retried });
    requests
}

/// What a caller can compare across engines: per action the decision, reason and budget; per
/// error its code.
fn observed(answer: &Result<CheckResponse, Error>) -> Value {
    match answer {
        Ok(response) => Value::Array(
            response
                .results
                .iter()
                .map(|(action, result)| {
                    json!([action, result.decision, result.reason, result.budget, result.receipt.is_some()])
                })
                .collect(),
        ),
        Err(err) => json!({"error": err.code()}),
    }
}

fn receipts(answer: &Result<CheckResponse, Error>) -> Vec<allowly_core::receipt::SignedReceipt> {
    let Ok(response) = answer else { return Vec::new() };
    response
        .results
        .iter()
        .filter(|(_, r)| r.receipt.is_some())
        .map(|(action, _)| common::signed(response, action))
        .collect()
}

#[test]
fn a_group_answers_what_one_check_at_a_time_answers_on_every_store() {
    let stores: Vec<(&str, Fixture, Fixture)> = common::both()
        .into_iter()
        .zip(common::both())
        .map(|((name, grouped), (_, single))| (name, grouped, single))
        .collect();
    for (store, grouped, single) in stores {
        let grouped_id = grouped.authorize(Some(CAP));
        let single_id = single.authorize(Some(CAP));
        let group = grouped.engine.check_many(&sequence(&grouped_id));
        let one_by_one: Vec<_> = sequence(&single_id).iter().map(|r| single.engine.check(r)).collect();

        assert_eq!(group.len(), one_by_one.len(), "{store}");
        for (n, (a, b)) in group.iter().zip(&one_by_one).enumerate() {
            assert_eq!(observed(a), observed(b), "{store}: check #{n}");
        }
        let decisions: Vec<Value> = group.iter().map(observed).collect();
        let text = serde_json::to_string(&decisions).unwrap();
        for expected in [
            "confirm",
            "escalate",
            "deny",
            "rate_limited",
            "budget_exceeded",
            "invalid_request",
            "idempotency_key_reused",
        ] {
            assert!(text.contains(expected), "{store}: the sequence should produce `{expected}`: {text}");
        }

        // The retry replays the first answer (same receipt); the budget counts three reservations.
        let n = group.len();
        assert_eq!(
            serde_json::to_value(group[n - 3].as_ref().unwrap()).unwrap(),
            serde_json::to_value(group[n - 2].as_ref().unwrap()).unwrap(),
            "{store}"
        );
        assert_eq!(grouped.engine.get_authorization(&grouped_id).unwrap().budget_spent_micros, 3 * COST, "{store}");

        // Every receipt that was returned is stored as returned and verifies.
        let returned: Vec<_> = group.iter().flat_map(receipts).collect();
        assert!(returned.len() >= 15, "{store}: {} receipts", returned.len());
        for receipt in &returned {
            let payload = grouped.verify(receipt);
            let id = payload["receipt_id"].as_str().unwrap();
            assert_eq!(&grouped.engine.receipt(id).unwrap().receipt, receipt, "{store}");
        }
    }
}

#[test]
fn an_empty_group_changes_nothing() {
    for (store, f) in common::both() {
        assert!(f.engine.check_many(&[]).is_empty(), "{store}");
    }
}

/// Three works in one group; the middle one writes and then fails.
fn group_with_a_failure(store: &dyn Store) -> Vec<allowly_core::Result<()>> {
    store.write_each(3, &mut |n, tx| {
        tx.set_counter(&format!("counter-{n}"), 1)?;
        if n == 1 {
            return Err(Error::invalid("work", "fails after writing"));
        }
        Ok(())
    })
}

fn counters(store: &dyn Store) -> Vec<i64> {
    let mut values = Vec::new();
    store
        .read(&mut |tx| {
            values = (0..3).map(|n| tx.counter(&format!("counter-{n}"))).collect::<allowly_core::Result<_>>()?;
            Ok(())
        })
        .unwrap();
    values
}

#[test]
fn a_work_that_fails_inside_a_group_leaves_nothing_and_the_others_commit() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("group.db"), Durability::Process).unwrap();
    let memory = MemoryStore::new();
    for (name, store) in [("sqlite", &sqlite as &dyn Store), ("memory", &memory as &dyn Store)] {
        let outcomes = group_with_a_failure(store);
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{name}: {outcomes:?}");
        assert!(matches!(outcomes[1], Err(Error::InvalidRequest { .. })), "{name}: {outcomes:?}");
        assert_eq!(counters(store), vec![1, 0, 1], "{name}");
    }
    // The group was committed: a new connection to the file sees it.
    drop(sqlite);
    let reopened = SqliteStore::open(&dir.path().join("group.db"), Durability::Process).unwrap();
    assert_eq!(counters(&reopened), vec![1, 0, 1]);
}
