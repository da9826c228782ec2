//! What the console and an auditor read: the filtered receipt lookup (`GET /v1/receipts`), the
//! approvals inbox (`GET /v1/confirmations`, `GET /v1/escalations`) and verification of pasted
//! receipts (`POST /v1/verify`). Every test runs on the memory, SQLite and PostgreSQL stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use allowly_core::engine::STATUS_SCAN_ROWS;
use allowly_core::model::{AuthorizationCreate, AuthorizationStatus, PromptStatus, ReceiptSummary};
use allowly_core::ops::{ListAuthorizations, ListReceipts, PageArgs, Request, VerifyReceipts};
use allowly_core::{Clock, ErrorKind, ManualClock};
use common::{both, signed, Fixture};
use serde_json::{json, Value};

/// A second user's authorization on the fixture's policy.
fn authorize_user(fixture: &Fixture, user_id: &str) -> String {
    fixture
        .engine
        .create_authorization(&AuthorizationCreate {
            user_id: user_id.into(),
            policy_id: "support_agent".into(),
            ..Default::default()
        })
        .unwrap()
        .authorization_id
}

fn list(fixture: &Fixture, request: ListReceipts) -> Vec<ReceiptSummary> {
    fixture.engine.list_receipts(&request).unwrap().items
}

#[test]
fn the_audit_lookup_filters_by_every_member_newest_first() {
    for (store, fixture) in both() {
        let alice = fixture.authorize(None);
        let bob = authorize_user(&fixture, "user_bob");
        fixture.clock.advance_millis(1000);
        let started = fixture.clock.now();
        for round in 0..3 {
            fixture.check(&alice, &["email.send"], json!({"recipient_domain": "example.com"}));
            fixture.check(&alice, &["account.delete"], json!({}));
            fixture.check(&bob, &["email.send"], json!({"recipient_domain": "other.org"}));
            fixture.clock.advance_millis(1000 + round);
        }
        let all = list(&fixture, ListReceipts::default());
        // Two authorization.create receipts, then nine decisions.
        assert_eq!(all.len(), 11, "{store}");
        assert!(
            all.windows(2).all(|w| (&w[0].issued_at, &w[0].receipt_id) >= (&w[1].issued_at, &w[1].receipt_id)),
            "{store}: newest first"
        );

        let by = |request: ListReceipts| list(&fixture, request);
        let alice_mail = by(ListReceipts {
            user_id: Some("user_42".into()),
            action: Some("email.send".into()),
            ..Default::default()
        });
        assert_eq!(alice_mail.len(), 3, "{store}");
        assert!(alice_mail.iter().all(|r| r.user_id == "user_42" && r.decision == "allow"), "{store}");
        let denied = by(ListReceipts { decision: Some("deny".into()), ..Default::default() });
        assert_eq!(denied.len(), 3, "{store}");
        assert!(denied.iter().all(|r| r.action.as_deref() == Some("account.delete")), "{store}");
        let confirms = by(ListReceipts { reason: Some(fixture_reason(&fixture, &bob)), ..Default::default() });
        assert!(confirms.iter().all(|r| r.user_id == "user_bob"), "{store}");
        let bobs = by(ListReceipts { authorization_id: Some(bob.clone()), ..Default::default() });
        assert_eq!(bobs.len(), 4, "{store}: three checks and the creation");
        let created = by(ListReceipts { event: Some("authorization.create".into()), ..Default::default() });
        assert_eq!(created.len(), 2, "{store}");
        assert!(created.iter().all(|r| r.action.is_none() && r.event.is_some()), "{store}");
        let agent = by(ListReceipts { agent_id: Some("support_bot".into()), ..Default::default() });
        assert_eq!(agent.len(), 11, "{store}");
        assert!(by(ListReceipts { agent_id: Some("other_bot".into()), ..Default::default() }).is_empty(), "{store}");

        // `since` is inclusive, `until` exclusive: the first round alone.
        let first_round = by(ListReceipts {
            since: Some(started.to_string()),
            until: Some(started.plus_millis(1000).to_string()),
            ..Default::default()
        });
        assert_eq!(first_round.len(), 3, "{store}");

        // The summary is the receipt's own payload.
        let verifier = fixture.verifier();
        for summary in &all {
            let payload = verifier.verify(&summary.receipt.to_value(), fixture.clock.now()).unwrap();
            assert_eq!(payload["receipt_id"], json!(summary.receipt_id), "{store}");
            assert_eq!(payload["user_id"], json!(summary.user_id), "{store}");
            assert_eq!(payload["decision"], json!(summary.decision), "{store}");
        }
    }
}

/// The reason of bob's (confirm) decision, as the engine wrote it.
fn fixture_reason(fixture: &Fixture, authorization_id: &str) -> String {
    let bobs = list(fixture, ListReceipts { authorization_id: Some(authorization_id.into()), ..Default::default() });
    bobs.iter().find(|r| r.decision == "confirm").map(|r| r.reason.clone()).expect("a confirm receipt")
}

#[test]
fn audit_pages_cover_every_match_once_and_bad_filters_are_refused() {
    for (store, fixture) in both() {
        let id = fixture.authorize(None);
        for _ in 0..7 {
            fixture.check(&id, &["email.send", "account.delete"], json!({"recipient_domain": "example.com"}));
            fixture.clock.advance_millis(1);
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = fixture
                .engine
                .list_receipts(&ListReceipts {
                    decision: Some("allow".into()),
                    page: PageArgs::new(3, cursor.as_deref()),
                    ..Default::default()
                })
                .unwrap();
            assert!(page.items.len() <= 3, "{store}");
            seen.extend(page.items.iter().map(|r| (r.issued_at.clone(), r.receipt_id.clone())));
            match page.next_cursor {
                Some(next) if page.has_more => cursor = Some(next),
                _ => break,
            }
        }
        assert_eq!(seen.len(), 7, "{store}: {seen:?}");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7, "{store}: no receipt twice");
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "{store}: newest first across pages");

        let invalid = |request: ListReceipts, field: &str| {
            let err = fixture.engine.list_receipts(&request).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{store}: {err}");
            assert_eq!(err.fields()[0].field, field, "{store}: {err}");
        };
        invalid(ListReceipts { since: Some("yesterday".into()), ..Default::default() }, "since");
        invalid(ListReceipts { user_id: Some("a\u{0}b".into()), ..Default::default() }, "user_id");
        invalid(ListReceipts { page: PageArgs::new(1, Some("rcp_nope")), ..Default::default() }, "cursor");
        invalid(ListReceipts { page: PageArgs::new(101, None), ..Default::default() }, "limit");
    }
}

#[test]
fn the_inbox_lists_what_waits_for_an_answer_as_it_stands_now() {
    for (store, fixture) in both() {
        let id = fixture.authorize(None);
        let asked = fixture.check(&id, &["email.send", "refund.issue"], json!({"recipient_domain": "other.org"}));
        let nonce = asked.results.get("email.send").unwrap().confirm_nonce.clone().unwrap();
        let escalation_id = asked.results.get("refund.issue").unwrap().escalation.clone().unwrap().escalation_id;

        let pending = fixture.engine.list_confirmations(Some(PromptStatus::Pending), 100, None).unwrap();
        assert_eq!(pending.items.len(), 1, "{store}");
        let item = &pending.items[0];
        assert_eq!(item.user_id.as_deref(), Some("user_42"), "{store}");
        assert_eq!(item.agent_id.as_deref(), Some("support_bot"), "{store}");
        assert_eq!(item.confirmation.action, "email.send", "{store}");
        // The nonce resolves a confirmation: it is not listed.
        assert!(!serde_json::to_string(&pending).unwrap().contains(&nonce), "{store}");

        let waiting = fixture.engine.list_escalations(Some(PromptStatus::Pending), 100, None).unwrap();
        assert_eq!(waiting.items.len(), 1, "{store}");
        assert_eq!(waiting.items[0].escalation.escalation_id, escalation_id, "{store}");
        assert_eq!(waiting.items[0].escalation_to.as_deref(), Some("member:finance_lead"), "{store}");

        fixture.engine.resolve_confirmation(&nonce, true, None).unwrap();
        assert!(fixture.engine.list_confirmations(Some(PromptStatus::Pending), 100, None).unwrap().items.is_empty());
        let approved = fixture.engine.list_confirmations(Some(PromptStatus::Approved), 100, None).unwrap();
        assert_eq!(approved.items.len(), 1, "{store}");

        // An escalation nobody answered expires: it leaves the pending list for the expired one.
        fixture.clock.advance_millis(8 * 24 * 3600 * 1000);
        assert!(fixture.engine.list_escalations(Some(PromptStatus::Pending), 100, None).unwrap().items.is_empty());
        let expired = fixture.engine.list_escalations(Some(PromptStatus::Expired), 100, None).unwrap();
        assert_eq!(expired.items.len(), 1, "{store}");
        assert_eq!(fixture.engine.list_escalations(None, 100, None).unwrap().items.len(), 1, "{store}");
    }
}

fn verify(fixture: &Fixture, input: Value) -> allowly_core::receipt::VerifyReport {
    fixture.engine.verify_receipts(&VerifyReceipts { input, ..Default::default() }).unwrap()
}

#[test]
fn pasted_receipts_verify_against_the_workspace_keys_by_default() {
    for (store, fixture) in both() {
        let id = fixture.authorize(None);
        let response =
            fixture.check(&id, &["email.send", "account.delete"], json!({"recipient_domain": "example.com"}));
        let receipt = signed(&response, "email.send").to_value();
        let text = serde_json::to_string(&receipt).unwrap();

        let one = verify(&fixture, Value::String(text.clone()));
        assert!(one.valid, "{store}: {one:?}");
        assert_eq!(one.input, "receipt");
        let verdict = &one.receipts[0];
        assert_eq!(verdict.decision.as_deref(), Some("allow"));
        assert_eq!(verdict.kind.as_deref(), Some("decision"));
        assert_eq!(verdict.subject.as_deref(), Some("email.send"));
        let document = fixture.engine.key_document().unwrap();
        assert_eq!(verdict.key_id.as_deref(), Some(document.keys[0].key_id.as_str()));
        assert_eq!(verdict.key_fingerprint.as_deref(), Some(document.keys[0].public_key_fingerprint.as_str()));

        // The same receipt as a JSON value, in its envelope, and a whole check response.
        assert!(verify(&fixture, receipt.clone()).valid, "{store}");
        let envelope = verify(&fixture, json!({"status": "signed", "receipt": receipt}));
        assert_eq!((envelope.valid, envelope.input.as_str()), (true, "receipt_envelope"), "{store}");
        let whole = verify(&fixture, serde_json::to_value(&response).unwrap());
        assert_eq!((whole.valid, whole.input.as_str(), whole.ok), (true, "check_response", 2), "{store}");

        // One character of the signature changed: a mismatch, named as the reference verifier does.
        let mut altered = receipt.clone();
        let signature = altered["signature"].as_str().unwrap().to_string();
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        altered["signature"] = json!(format!("{flipped}{}", &signature[1..]));
        let bad = verify(&fixture, altered);
        assert!(!bad.valid, "{store}");
        let failure = bad.receipts[0].error.as_ref().unwrap();
        assert_eq!(failure.class, "SignatureMismatchError", "{store}: {failure:?}");
        assert_eq!(bad.receipts[0].receipt_id, verdict.receipt_id, "{store}");

        // A key document that does not hold the signing key.
        let other = common::memory();
        let foreign = other.engine.key_document().unwrap().to_value();
        let unknown = fixture
            .engine
            .verify_receipts(&VerifyReceipts {
                input: receipt.clone(),
                key_document: Some(foreign),
                trusted_key_fingerprints: Some(vec![]),
                checkpoint_evidence: None,
            })
            .unwrap();
        assert!(!unknown.valid);
        assert_eq!(unknown.receipts[0].error.as_ref().unwrap().class, "SchemaError", "{store}: another workspace");

        // Trusting nothing: the key is known but not trusted.
        let untrusted = fixture
            .engine
            .verify_receipts(&VerifyReceipts {
                input: receipt.clone(),
                key_document: None,
                trusted_key_fingerprints: Some(vec![]),
                checkpoint_evidence: None,
            })
            .unwrap();
        assert_eq!(untrusted.receipts[0].error.as_ref().unwrap().class, "VerificationError", "{store}");

        // JSON Lines of both receipts: an export.
        let lines = response
            .results
            .iter()
            .map(|(action, _)| serde_json::to_string(&signed(&response, action).to_value()).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let export = verify(&fixture, Value::String(lines));
        assert_eq!((export.valid, export.input.as_str(), export.ok), (true, "export", 2), "{store}: {export:?}");

        let nothing = fixture.engine.verify_receipts(&VerifyReceipts { input: json!("  \n"), ..Default::default() });
        assert_eq!(nothing.unwrap_err().kind(), ErrorKind::InvalidRequest);
        let garbage = verify(&fixture, json!("not a receipt"));
        assert!(!garbage.valid, "{store}");
        assert_eq!(garbage.receipts[0].error.as_ref().unwrap().class, "SchemaError", "{store}");
    }
}

/// A SQLite workspace file (in a folder removed when the first member drops) with one
/// authorization and one check of three actions: allowed, denied and escalated.
fn workspace_file_with_a_check() -> (tempfile::TempDir, PathBuf, Arc<ManualClock>, Fixture, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowly.db");
    let clock = Arc::new(ManualClock::new(common::start()));
    let fixture = common::sqlite_at(&path, &clock);
    let id = fixture.authorize(None);
    fixture.check(&id, &["email.send", "account.delete", "refund.issue"], json!({"recipient_domain": "example.com"}));
    (dir, path, clock, fixture, id)
}

#[test]
fn a_workspace_file_from_before_the_lookup_is_upgraded_with_its_receipts_found() {
    let (_dir, path, clock, fixture, _id) = workspace_file_with_a_check();
    drop(fixture);

    // Back to schema version 1, as an engine before the lookup left the file.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP INDEX receipts_by_user; DROP INDEX receipts_by_decision; DROP INDEX receipts_by_authorization;
         DROP INDEX receipts_by_reason; DROP INDEX receipts_by_event;
         DROP INDEX confirmations_by_status; DROP INDEX escalations_by_status;
         ALTER TABLE receipts DROP COLUMN user_id; ALTER TABLE receipts DROP COLUMN agent_id;
         ALTER TABLE receipts DROP COLUMN action; ALTER TABLE receipts DROP COLUMN event;
         ALTER TABLE receipts DROP COLUMN decision; ALTER TABLE receipts DROP COLUMN reason;
         ALTER TABLE escalations DROP COLUMN status;
         DROP INDEX authorizations_by_user; DROP INDEX authorizations_by_agent;
         ALTER TABLE authorizations DROP COLUMN user_id; ALTER TABLE authorizations DROP COLUMN agent_id;
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);

    let fixture = common::sqlite_at(&path, &clock);
    let denied = list(&fixture, ListReceipts { decision: Some("deny".into()), ..Default::default() });
    assert_eq!(denied.len(), 1);
    assert_eq!((denied[0].action.as_deref(), denied[0].user_id.as_str()), (Some("account.delete"), "user_42"));
    assert_eq!(list(&fixture, ListReceipts { user_id: Some("user_42".into()), ..Default::default() }).len(), 4);
    let pending = fixture.engine.list_escalations(Some(PromptStatus::Pending), 10, None).unwrap();
    assert_eq!(pending.items.len(), 1, "the escalation's status was filled in");
}

/// Stores every receipt of the file at `path` as versions 1 to 3 did: its compact JWS, as text.
fn receipts_as_text(path: &Path, clock: &Arc<ManualClock>) {
    let fixture = common::sqlite_at(path, clock);
    let conn = rusqlite::Connection::open(path).unwrap();
    let ids: Vec<String> = conn
        .prepare("SELECT receipt_id FROM receipts")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in &ids {
        let receipt = fixture.engine.receipt(id).unwrap().receipt;
        let compact = format!("{}.{}.{}", receipt.protected, receipt.payload, receipt.signature);
        conn.execute("UPDATE receipts SET jws = ?2 WHERE receipt_id = ?1", rusqlite::params![id, compact]).unwrap();
    }
    conn.pragma_update(None, "user_version", 3).unwrap();
}

fn stored_as(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut kinds = conn.prepare("SELECT DISTINCT typeof(jws) FROM receipts ORDER BY 1").unwrap();
    kinds.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn receipts_stored_as_text_before_version_4_read_byte_exact_beside_packed_ones() {
    let (_dir, path, clock, fixture, id) = workspace_file_with_a_check();
    fixture.engine.create_checkpoints().unwrap();
    let before = fixture.engine.recent_receipts(100).unwrap();
    assert!(before.len() >= 4);
    assert_eq!(stored_as(&path), ["blob"], "the engine packs what it stores");
    drop(fixture);
    receipts_as_text(&path, &clock);
    assert_eq!(stored_as(&path), ["text"]);

    let fixture = common::sqlite_at(&path, &clock);
    assert_eq!(fixture.engine.recent_receipts(100).unwrap(), before, "every receipt as it was, byte for byte");
    fixture.check(&id, &["email.send"], json!({"recipient_domain": "example.com"}));
    assert_eq!(stored_as(&path), ["blob", "text"]);
    let all = fixture.engine.recent_receipts(100).unwrap();
    assert_eq!(all.len(), before.len() + 1);
    let lines: Vec<String> = all.iter().map(|receipt| receipt.receipt.to_value().to_string()).collect();
    let report =
        fixture.engine.verify_receipts(&VerifyReceipts { input: json!(lines.join("\n")), ..Default::default() });
    let report = report.unwrap();
    assert!(report.valid && report.ok == all.len() as u64, "{report:?}");
    let denied = list(&fixture, ListReceipts { decision: Some("deny".into()), ..Default::default() });
    assert_eq!(denied.len(), 1, "found through the index, from a text row");
}

#[test]
fn a_damaged_packed_receipt_is_named_and_the_others_still_read() {
    let (_dir, path, _clock, fixture, _id) = workspace_file_with_a_check();
    let receipts = fixture.engine.recent_receipts(10).unwrap();
    let (damaged, intact) = (&receipts[0].receipt_id, &receipts[1].receipt_id);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE receipts SET jws = substr(jws, 1, 80) WHERE receipt_id = ?1", [damaged]).unwrap();
    let error = fixture.engine.receipt(damaged).unwrap_err();
    assert!(allowly_core::store::is_unreadable(&error), "{error}");
    assert!(error.to_string().contains(damaged.as_str()), "{error}");
    assert_eq!(&fixture.engine.receipt(intact).unwrap().receipt_id, intact);
}

// ---------------------------------------------------------------------------------------------
// Authorizations by user, agent and status

/// An authorization of `user_id` to the agent of `policy_id`, one second after the previous one
/// (so creation order is id order), expiring at `expires_at` when given.
fn grant(fixture: &Fixture, user_id: &str, policy_id: &str, expires_at: Option<String>) -> String {
    fixture.clock.advance_millis(1000);
    fixture
        .engine
        .create_authorization(&AuthorizationCreate {
            user_id: user_id.into(),
            policy_id: policy_id.into(),
            expires_at,
            ..Default::default()
        })
        .unwrap()
        .authorization_id
}

/// The fixture's policy again for another agent.
fn publish_billing_policy(fixture: &Fixture) {
    let mut billing = common::support_policy();
    billing["policy_id"] = json!("billing");
    billing["agent_id"] = json!("billing_bot");
    fixture.engine.create_policy(&billing).unwrap();
}

/// Every authorization `request` lists, page after page; and the number of pages.
fn all_authorizations(fixture: &Fixture, request: ListAuthorizations) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let page = fixture
            .engine
            .list_authorizations(&ListAuthorizations {
                page: PageArgs { cursor: cursor.clone(), ..request.page.clone() },
                ..request.clone()
            })
            .unwrap();
        pages += 1;
        ids.extend(page.items.into_iter().map(|a| a.authorization_id));
        match page.next_cursor {
            Some(next) if page.has_more => cursor = Some(next),
            _ => return (ids, pages),
        }
    }
}

#[test]
fn authorizations_are_listed_by_user_agent_and_status_as_it_stands_now() {
    for (store, fixture) in both() {
        fixture.authorize(None);
        publish_billing_policy(&fixture);
        let soon = fixture.clock.now().plus_millis(3_600_000).to_string();
        let a1 = grant(&fixture, "user_42", "support_agent", None);
        let a2 = grant(&fixture, "user_bob", "support_agent", None);
        let a3 = grant(&fixture, "user_42", "billing", None);
        let a4 = grant(&fixture, "user_42", "support_agent", Some(soon));
        let a5 = grant(&fixture, "user_bob", "billing", None);
        fixture.engine.revoke_authorization(&a5, None, None).unwrap();
        // Past the first hour: `a4` was never written again, and is expired now.
        fixture.clock.advance_millis(2 * 3_600_000);

        let everything = all_authorizations(&fixture, ListAuthorizations::default()).0;
        let first = everything[0].clone();
        assert_eq!(
            everything,
            [first.as_str(), a1.as_str(), a2.as_str(), a3.as_str(), a4.as_str(), a5.as_str()],
            "{store}: creation order"
        );
        let listed = |user: Option<&str>, agent: Option<&str>, status: Option<AuthorizationStatus>| {
            let request = ListAuthorizations {
                user_id: user.map(str::to_string),
                agent_id: agent.map(str::to_string),
                status,
                page: PageArgs::new(1, None),
            };
            // Pages of one, so the cursor carries every filter along.
            all_authorizations(&fixture, request).0
        };
        assert_eq!(
            listed(Some("user_42"), None, None),
            [first.as_str(), a1.as_str(), a3.as_str(), a4.as_str()],
            "{store}"
        );
        assert_eq!(listed(None, Some("billing_bot"), None), [a3.as_str(), a5.as_str()], "{store}");
        assert_eq!(listed(Some("user_42"), Some("billing_bot"), None), [a3.as_str()], "{store}");
        assert_eq!(
            listed(None, None, Some(AuthorizationStatus::Active)),
            [first.as_str(), a1.as_str(), a2.as_str(), a3.as_str()],
            "{store}"
        );
        assert_eq!(listed(None, None, Some(AuthorizationStatus::Expired)), [a4.as_str()], "{store}");
        assert_eq!(listed(None, None, Some(AuthorizationStatus::Revoked)), [a5.as_str()], "{store}");
        assert_eq!(listed(Some("user_bob"), Some("billing_bot"), Some(AuthorizationStatus::Revoked)), [a5.as_str()]);
        assert!(listed(Some("user_nobody"), None, None).is_empty(), "{store}");
        let page = fixture
            .engine
            .list_authorizations(&ListAuthorizations {
                user_id: Some("user_42".into()),
                page: PageArgs::new(2, Some(&a1)),
                ..Default::default()
            })
            .unwrap();
        let ids: Vec<&str> = page.items.iter().map(|a| a.authorization_id.as_str()).collect();
        assert_eq!((ids, page.has_more), (vec![a3.as_str(), a4.as_str()], false), "{store}: after the cursor");
        assert_eq!(page.items[1].status, AuthorizationStatus::Expired, "{store}");

        // Bad input is refused, naming its field, and changes nothing.
        let receipts = list(&fixture, ListReceipts::default()).len();
        for (args, field) in [
            (json!({"status": "frozen"}), "status"),
            (json!({"status": "Active"}), "status"),
            (json!({"user_id": "user\u{7}"}), "user_id"),
            (json!({"agent_id": "a\u{0}b"}), "agent_id"),
            (json!({"limit": 0, "status": "active"}), "limit"),
        ] {
            let err = Request::from_value("list_authorizations", args.clone())
                .and_then(|request| fixture.engine.execute(request, "test"))
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{store}: {args}: {err}");
            assert_eq!(err.fields()[0].field, field, "{store}: {args}: {err}");
        }
        assert_eq!(list(&fixture, ListReceipts::default()).len(), receipts, "{store}");
        assert_eq!(all_authorizations(&fixture, ListAuthorizations::default()).0, everything, "{store}");
    }
}

/// A rare status is not looked for through the whole workspace in one page: a page reads at most
/// `STATUS_SCAN_ROWS` authorizations and ends there, and the next page goes on after them.
#[test]
fn a_page_of_a_rare_status_reads_a_bounded_number_of_rows() {
    let fixture = common::memory();
    fixture.authorize(None);
    let mut ids: Vec<String> =
        (0..STATUS_SCAN_ROWS + 1).map(|_| grant(&fixture, "user_42", "support_agent", None)).collect();
    ids.insert(0, all_authorizations(&fixture, ListAuthorizations::default()).0[0].clone());
    let revoked = ids.last().unwrap().clone();
    fixture.engine.revoke_authorization(&revoked, None, None).unwrap();

    let request = ListAuthorizations { status: Some(AuthorizationStatus::Revoked), ..Default::default() };
    let first = fixture.engine.list_authorizations(&request).unwrap();
    assert!(first.items.is_empty() && first.has_more);
    assert_eq!(first.next_cursor.as_deref(), Some(ids[STATUS_SCAN_ROWS - 1].as_str()), "the last row read");
    assert_eq!(all_authorizations(&fixture, request), (vec![revoked], 2));
    // Without a status a page is full.
    let page = fixture.engine.list_authorizations(&ListAuthorizations::default()).unwrap();
    assert_eq!((page.items.len(), page.next_cursor.as_deref()), (100, Some(ids[99].as_str())));
}

#[test]
fn a_workspace_file_from_before_the_authorization_filters_is_upgraded_with_its_authorizations_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowly.db");
    let clock = std::sync::Arc::new(allowly_core::ManualClock::new(common::start()));
    let fixture = common::sqlite_at(&path, &clock);
    let first = fixture.authorize(None);
    publish_billing_policy(&fixture);
    let bob = grant(&fixture, "user_bob", "support_agent", None);
    let billing = grant(&fixture, "user_42", "billing", None);
    let damaged = grant(&fixture, "user_42", "billing", None);
    fixture.engine.revoke_authorization(&billing, None, None).unwrap();
    drop(fixture);

    // Back to schema version 2, as an engine before the filters left the file; one body damaged.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP INDEX authorizations_by_user; DROP INDEX authorizations_by_agent;
         ALTER TABLE authorizations DROP COLUMN user_id; ALTER TABLE authorizations DROP COLUMN agent_id;
         PRAGMA user_version = 2;",
    )
    .unwrap();
    conn.execute("UPDATE authorizations SET body = '{not json' WHERE authorization_id = ?1", [&damaged]).unwrap();
    drop(conn);

    let fixture = common::sqlite_at(&path, &clock);
    let listed = |request: ListAuthorizations| {
        let page = fixture.engine.list_authorizations(&request).unwrap();
        let unreadable: Vec<String> = page.unreadable.into_iter().map(|row| row.id).collect();
        (page.items.into_iter().map(|a| a.authorization_id).collect::<Vec<_>>(), unreadable)
    };
    let of = |user: &str, agent: Option<&str>| ListAuthorizations {
        user_id: Some(user.into()),
        agent_id: agent.map(str::to_string),
        ..Default::default()
    };
    assert_eq!(listed(of("user_42", None)), (vec![first.clone(), billing.clone()], vec![]));
    assert_eq!(listed(of("user_bob", Some("support_bot"))), (vec![bob.clone()], vec![]));
    let revoked = ListAuthorizations { status: Some(AuthorizationStatus::Revoked), ..Default::default() };
    assert_eq!(listed(revoked), (vec![billing.clone()], vec![damaged.clone()]), "a row that does not load is named");
    // The damaged row, whose user could not be read, is still listed without a filter.
    assert_eq!(listed(ListAuthorizations::default()), (vec![first, bob, billing], vec![damaged]));
    let created = grant(&fixture, "user_bob", "billing", None);
    assert_eq!(listed(of("user_bob", Some("billing_bot"))).0, [created], "written from now on");
}

#[test]
fn the_overview_adds_up_to_what_the_lookup_finds() {
    const DAY: i64 = 86_400_000;
    for (store, fixture) in both() {
        let old = fixture.authorize(None);
        fixture.check(&old, &["account.delete"], json!({}));
        // Past the 30 days the overview covers (the first authorization has expired by then).
        fixture.clock.advance_millis(35 * DAY);
        let alice = fixture.authorize(Some(1_000));
        for round in 0..3 {
            fixture.check(&alice, &["email.send"], json!({"recipient_domain": "example.com"}));
            fixture.check(&alice, &["email.send"], json!({"recipient_domain": format!("other{round}.org")}));
            fixture.check(&alice, &["account.delete", "refund.issue"], json!({}));
            if round == 0 {
                fixture.check(&alice, &["email.send"], json!({"recipient_domain": "blocked.example"}));
            }
            fixture.clock.advance_millis(DAY + 1000);
        }
        // An escalation asked now is still pending (the earlier ones' windows have passed).
        fixture.check(&alice, &["account.delete", "refund.issue"], json!({}));

        let overview = fixture.engine.overview().unwrap();
        assert_eq!(overview.days.len(), 30, "{store}");
        assert_eq!(overview.days[29].day, fixture.clock.now().start_of_day(), "{store}: the last day is today");
        let since = overview.days[0].day.to_string();
        let listed = |decision: &str, action: Option<&str>, reason: Option<&str>| {
            let mut found = 0;
            let mut cursor = None;
            loop {
                let page = fixture
                    .engine
                    .list_receipts(&ListReceipts {
                        decision: Some(decision.into()),
                        action: action.map(str::to_string),
                        reason: reason.map(str::to_string),
                        since: Some(since.clone()),
                        page: PageArgs::new(2, cursor.as_deref()),
                        ..Default::default()
                    })
                    .unwrap();
                found += page.items.len() as u64;
                match page.next_cursor {
                    Some(next) if page.has_more => cursor = Some(next),
                    _ => return found,
                }
            }
        };
        let per_verb =
            |pick: fn(&allowly_core::engine::DayOfDecisions) -> u64| overview.days.iter().map(pick).sum::<u64>();
        assert_eq!(per_verb(|d| d.allow), listed("allow", None, None), "{store}");
        assert_eq!(per_verb(|d| d.confirm), listed("confirm", None, None), "{store}");
        assert_eq!(per_verb(|d| d.escalate), listed("escalate", None, None), "{store}");
        assert_eq!(per_verb(|d| d.deny), listed("deny", None, None), "{store}");
        assert_eq!((per_verb(|d| d.allow), per_verb(|d| d.deny)), (3, 5), "{store}: the old denial is not counted");
        assert_eq!(overview.days.iter().filter(|d| d.total() > 0).count(), 4, "{store}: four days with decisions");

        let top = &overview.most_denied_actions[0];
        assert_eq!((top.name.as_str(), top.count), ("account.delete", 4), "{store}");
        assert_eq!(top.count, listed("deny", Some("account.delete"), None), "{store}");
        for reason in &overview.most_denied_reasons {
            assert_eq!(reason.count, listed("deny", None, Some(&reason.name)), "{store}: {reason:?}");
        }

        let pending = |status| fixture.engine.list_confirmations(Some(status), 100, None).unwrap().items.len() as u64;
        assert_eq!(overview.pending_confirmations, pending(PromptStatus::Pending), "{store}");
        let escalations = fixture.engine.list_escalations(Some(PromptStatus::Pending), 100, None).unwrap().items;
        assert_eq!(overview.pending_escalations, escalations.len() as u64, "{store}");
        assert!(overview.pending_escalations > 0, "{store}");
        let oldest = escalations.iter().map(|e| e.created_at.clone()).min().unwrap();
        assert!(overview.oldest_pending.unwrap().to_string() <= oldest, "{store}");
        assert_eq!(overview.decisions_last_minute, 2, "{store}: the last check's two decisions");
        assert_eq!(overview.budgets.iter().map(|a| a.authorization_id.as_str()).collect::<Vec<_>>(), [alice.as_str()]);
    }
}

#[test]
fn an_unlocked_allow_links_to_the_question_and_the_answer() {
    for (store, fixture) in both() {
        let id = fixture.authorize(None);
        let mail = json!({"recipient_domain": "other.org"});
        let asked = fixture.check(&id, &["email.send", "refund.issue"], mail.clone());
        let result = |response: &allowly_core::model::CheckResponse, action: &str| {
            serde_json::to_value(response).unwrap()["results"][action].clone()
        };
        let (confirm, escalate) = (result(&asked, "email.send"), result(&asked, "refund.issue"));
        let nonce = confirm["confirm_nonce"].as_str().unwrap();
        let escalation_id = escalate["escalation"]["escalation_id"].as_str().unwrap();
        fixture.engine.resolve_confirmation(nonce, true, None).unwrap();
        let approved = allowly_core::model::Resolution::Approved;
        fixture.engine.resolve_escalation(escalation_id, approved, "finance_lead", None).unwrap();
        let answer_to = |event: &str| {
            let answers = list(&fixture, ListReceipts { event: Some(event.into()), ..Default::default() });
            assert_eq!(answers.len(), 1, "{store}");
            answers[0].receipt_id.clone()
        };
        let (confirmation_answer, escalation_answer) =
            (answer_to("confirmation.resolve"), answer_to("escalation.resolve"));
        fixture.clock.advance_millis(1000);
        let unlocked = fixture.check(&id, &["email.send", "refund.issue"], mail.clone());
        let (mail_allow, refund_allow) = (result(&unlocked, "email.send"), result(&unlocked, "refund.issue"));
        assert_eq!(
            (mail_allow["decision"].as_str(), refund_allow["decision"].as_str()),
            (Some("allow"), Some("allow"))
        );

        let related = |receipt: &Value| -> Vec<(&'static str, String)> {
            let receipt_id = receipt["receipt_id"].as_str().unwrap();
            fixture
                .engine
                .related_receipts(receipt_id)
                .unwrap()
                .into_iter()
                .map(|r| (r.relation, r.receipt_id))
                .collect()
        };
        let confirm_id = confirm["receipt_id"].as_str().unwrap().to_string();
        let escalate_id = escalate["receipt_id"].as_str().unwrap().to_string();
        assert_eq!(
            related(&mail_allow),
            [
                ("Confirmation that unlocked this allow", confirmation_answer.clone()),
                ("Confirmation asked by", confirm_id.clone())
            ],
            "{store}"
        );
        assert_eq!(
            related(&refund_allow),
            [
                ("Escalation that unlocked this allow", escalation_answer.clone()),
                ("Escalation asked by", escalate_id.clone())
            ],
            "{store}"
        );
        assert_eq!(related(&confirm), [("Answered by", confirmation_answer.clone())], "{store}");
        assert_eq!(related(&escalate), [("Answered by", escalation_answer.clone())], "{store}");
        let answer = fixture.engine.related_receipts(&confirmation_answer).unwrap();
        assert_eq!(answer[0].receipt_id, confirm_id, "{store}");

        // An allow no approval unlocked has no relations.
        let plain = fixture.check(&id, &["email.send"], json!({"recipient_domain": "example.com"}));
        assert!(related(&result(&plain, "email.send")).is_empty(), "{store}");
    }
}
