//! Store keys are unambiguous by construction: prompts and counters of different requests never
//! share a key, whatever characters their parts hold (issue 12, class 3), on every store. And a
//! prompt's status follows its authorization: once that is revoked or expired, nothing reads
//! `pending` or `available` that no check would honour (issue 12, class 6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use allowly_core::model::{AuthorizationCreate, CheckRequest, CheckResponse, Confirmation, PromptStatus, Resolution};
use allowly_core::policy::Decision::{Allow, Confirm, Deny, Escalate};
use allowly_core::store::{prompt_key, Durability, MemoryStore, SqliteStore, Store, Tx};
use allowly_core::{Allowly, ManualClock, Options, Result};
use common::outcome;
use serde_json::{json, Value};

/// One store reached both through an engine and directly, to write rows the engine would refuse.
struct Shared(Arc<dyn Store>);

impl Store for Shared {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.0.write(work)
    }
    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.0.read(work)
    }
}

/// An engine on a store the test reaches directly too, with one authorization of the support policy.
struct Direct {
    engine: Allowly,
    store: Arc<dyn Store>,
    authorization_id: String,
    _dir: Option<tempfile::TempDir>,
}

impl Direct {
    fn check(&self, action: &str) -> CheckResponse {
        let request = CheckRequest {
            authorization_id: self.authorization_id.clone(),
            actions: vec![action.into()],
            ..Default::default()
        };
        self.engine.check(&request).unwrap()
    }
}

impl Direct {
    fn on(store: Arc<dyn Store>, options: Options, dir: Option<tempfile::TempDir>) -> Direct {
        let clock = Box::new(ManualClock::new(common::start()));
        let engine = Allowly::with_store(Box::new(Shared(store.clone())), clock, options).unwrap();
        engine.create_policy(&common::support_policy()).unwrap();
        let request =
            AuthorizationCreate { user_id: "user_42".into(), policy_id: "support_agent".into(), ..Default::default() };
        let authorization_id = engine.create_authorization(&request).unwrap().authorization_id;
        Direct { engine, store, authorization_id, _dir: dir }
    }
}

/// Each store, shared between an engine and the test.
fn stores() -> Vec<(&'static str, Direct)> {
    let mut stores = vec![("memory", Direct::on(Arc::new(MemoryStore::new()), Options::default(), None))];
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("allowly.db"), Durability::Process).unwrap();
    stores.push(("sqlite", Direct::on(Arc::new(sqlite), Options::default(), Some(dir))));
    #[cfg(feature = "postgres")]
    if common::postgres_url().is_some() {
        let workspace_id = common::fresh_workspace_id();
        let store = allowly_core::store::PostgresStore::for_workspace(&common::postgres_pool(), &workspace_id).unwrap();
        let options = Options { workspace_id: Some(workspace_id), ..Options::default() };
        stores.push(("postgres", Direct::on(Arc::new(store), options, None)));
    }
    stores
}

/// An approved confirmation row, open for an hour.
fn approved(authorization_id: &str, confirmation_id: &str, action: &str, resource: Option<&str>) -> Confirmation {
    serde_json::from_value(json!({
        "confirmation_id": confirmation_id, "nonce": format!("cnf_nonce_{confirmation_id}"),
        "authorization_id": authorization_id, "action": action, "resource": resource, "status": "approved",
        "created_at": "2026-03-02T09:00:00.000Z", "expires_at": "2026-03-02T10:00:00.000Z",
        "resolved_at": "2026-03-02T09:00:00.000Z", "source_receipt_id": "rcp_source", "resolution_receipt_id": null,
    }))
    .unwrap()
}

#[test]
fn prompts_of_different_requests_never_share_a_key_on_any_store() {
    // The pair, and every other way a separator in one part could pose as another split.
    let colliding_once: [(&str, Option<&str>); 7] = [
        ("pay\u{1f}r:acct1", None),
        ("pay", Some("acct1\u{1f}-")),
        ("pay", Some("acct1")),
        ("pay", Some("")),
        ("pay", None),
        ("pay\u{1f}-", None),
        ("pay\u{1e}r:acct1", None),
    ];
    for (store, direct) in stores() {
        let authorization_id = &direct.authorization_id;
        direct
            .store
            .write(&mut |tx| {
                for (n, (action, resource)) in colliding_once.iter().enumerate() {
                    let row = approved(authorization_id, &format!("cnf_{n}"), action, *resource);
                    tx.put_confirmation(&prompt_key(authorization_id, action, *resource), &row)?;
                }
                Ok(())
            })
            .unwrap();
        direct
            .store
            .read(&mut |tx| {
                for (n, (action, resource)) in colliding_once.iter().enumerate() {
                    let found = tx.latest_confirmation(&prompt_key(authorization_id, action, *resource))?;
                    assert_eq!(
                        found.map(|c| c.confirmation_id),
                        Some(format!("cnf_{n}")),
                        "{store}: {action:?} / {resource:?} must find its own prompt"
                    );
                }
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn a_prompt_stored_under_the_old_key_format_is_asked_again() {
    for (store, direct) in stores() {
        let id = &direct.authorization_id;
        let old_key = format!("{id}\u{1f}calendar.invite\u{1f}-");
        let row = approved(id, "cnf_old", "calendar.invite", None);
        direct.store.write(&mut |tx| tx.put_confirmation(&old_key, &row)).unwrap();
        let response = direct.check("calendar.invite");
        assert_eq!(
            outcome(&response, "calendar.invite"),
            (Confirm, "action_requires_user_confirmation".into()),
            "{store}: an approval under the old key is never reused (lost approvals fail closed)"
        );
    }
}

/// A policy whose actions differ only where the old key formats put separators.
fn capped_policy() -> Value {
    let action = |name: &str| {
        json!({"policy": {"profile": "allowly.basic.v1", "action": name, "decision": "allow", "target": null,
                          "fields": {}, "rules": []},
               "guards": {"max_per_day": 1, "rate_limit": {"max_calls": 1, "window_seconds": 60}},
               "executable_operations": []})
    };
    json!({"policy_id": "capped", "profile": "allowly.policy.v1", "agent_id": "capped_bot", "default_expiry_days": 30,
           "actions": [action("a"), action("a:b"), action("a:1"), action("a:1:2"), action("r:a")]})
}

#[test]
fn daily_caps_and_rate_limits_count_each_action_apart_and_every_resource_together() {
    for (store, f) in common::both() {
        f.engine.create_policy(&capped_policy()).unwrap();
        let id = f
            .engine
            .create_authorization(&AuthorizationCreate {
                user_id: "user_1".into(),
                policy_id: "capped".into(),
                ..Default::default()
            })
            .unwrap()
            .authorization_id;
        let check = |action: &str, resource: Option<&str>| {
            let response = f
                .try_check(CheckRequest {
                    authorization_id: id.clone(),
                    actions: vec![action.into()],
                    resource: resource.map(str::to_string),
                    ..Default::default()
                })
                .unwrap();
            outcome(&response, action)
        };
        // Action `a` with resource `b` and action `a:b` (or `a:1`, `a:1:2`: a day number after `a`)
        // each have a counter of their own.
        for (action, resource) in [("a", Some("b")), ("a:b", None), ("a:1", None), ("a:1:2", Some("2")), ("r:a", None)]
        {
            assert_eq!(
                check(action, resource),
                (Allow, "authorization_granted_action_active".into()),
                "{store}: {action}"
            );
        }
        // The cap counts the action on every resource: `a` on another resource is the second use.
        assert_eq!(check("a", Some("c")), (Deny, "rate_limited".into()), "{store}");
        assert_eq!(check("a", None), (Deny, "rate_limited".into()), "{store}");
        // A new day and a new window: each action may run once more, still apart.
        f.clock.advance_millis(86_400_000);
        for action in ["a", "a:b", "a:1", "a:1:2", "r:a"] {
            assert_eq!(check(action, None).0, Allow, "{store}: {action} on the next day");
            assert_eq!(check(action, None), (Deny, "rate_limited".into()), "{store}: {action} twice");
        }
    }
}

// ---- statuses after revocation -------------------------------------------------------------------

#[test]
fn statuses_after_a_revocation_say_revoked_and_pending_prompts_end() {
    for (store, f) in common::both() {
        let id = f.authorize(None);
        // An approved confirmation, open for five minutes.
        let confirm = f.check(&id, &["calendar.invite"], json!({}));
        let result = confirm.results.get("calendar.invite").unwrap();
        let (nonce, approved_id) = (result.confirm_nonce.clone().unwrap(), result.confirmation_id.clone().unwrap());
        f.engine.resolve_confirmation(&nonce, true, Some(300)).unwrap();
        // One action on one resource.
        let ask = |action: &str, resource: &str| {
            let response = f
                .try_check(CheckRequest {
                    authorization_id: id.clone(),
                    actions: vec![action.into()],
                    resource: Some(resource.into()),
                    context: Some(json!({"recipient_domain": "partner.org"})),
                    ..Default::default()
                })
                .unwrap();
            response.results.get(action).unwrap().clone()
        };
        // A rejected confirmation and a pending one (emails to a partner in two threads).
        let rejected = ask("email.send", "thread-1");
        f.engine.resolve_confirmation(rejected.confirm_nonce.as_deref().unwrap(), false, None).unwrap();
        let rejected_id = rejected.confirmation_id.clone().unwrap();
        let pending_id = ask("email.send", "thread-2").confirmation_id.unwrap();
        // An approved escalation, a consumed one and a pending one (on three orders).
        let escalate = |resource: &str| ask("refund.issue", resource);
        let approved_escalation = escalate("order-1").escalation_id.unwrap();
        f.engine.resolve_escalation(&approved_escalation, Resolution::Approved, "finance_lead", None).unwrap();
        let consumed_escalation = escalate("order-2").escalation_id.unwrap();
        f.engine.resolve_escalation(&consumed_escalation, Resolution::Approved, "finance_lead", None).unwrap();
        assert_eq!(escalate("order-2").decision, Allow, "{store}: the approval is used up");
        let pending_escalation = escalate("order-3");
        assert_eq!(pending_escalation.decision, Escalate);
        let pending_escalation = pending_escalation.escalation_id.unwrap();

        let before = f.engine.confirmation_status(&approved_id).unwrap();
        assert_eq!((before.status, before.authority_status.as_str()), (PromptStatus::Approved, "available"));
        assert_eq!(f.engine.escalation_status(&approved_escalation).unwrap().authority_status, "available");

        f.clock.advance_millis(1_000);
        let revoked = f.engine.revoke_authorization(&id, None, None).unwrap();
        assert_eq!(revoked.revoked_confirmations, vec![pending_id.clone()], "{store}");

        let c = f.engine.confirmation_status(&approved_id).unwrap();
        assert_eq!(
            (c.status, c.authority_status.as_str(), c.child_authorization_id, c.authority_expires_at),
            (PromptStatus::Approved, "revoked", None, None),
            "{store}: an approval of a revoked authorization is no authority"
        );
        let c = f.engine.confirmation_status(&nonce).unwrap();
        assert_eq!(c.authority_status, "revoked", "{store}: by nonce too");
        let c = f.engine.confirmation_status(&rejected_id).unwrap();
        assert_eq!((c.status, c.authority_status.as_str()), (PromptStatus::Rejected, "none"), "{store}");
        let c = f.engine.confirmation_status(&pending_id).unwrap();
        assert_eq!(
            (c.status, c.authority_status.as_str(), c.resolved_at, c.expires_at),
            (PromptStatus::Expired, "none", None, revoked.revoked_at.clone()),
            "{store}"
        );

        let e = f.engine.escalation_status(&approved_escalation).unwrap();
        assert_eq!((e.status, e.authority_status.as_str()), (PromptStatus::Approved, "revoked"), "{store}");
        let e = f.engine.escalation_status(&consumed_escalation).unwrap();
        assert_eq!((e.status, e.authority_status.as_str()), (PromptStatus::Approved, "consumed"), "{store}");
        // The revocation ends the pending escalation too: it reads expired, from the revocation on,
        // and resolving it is refused.
        let e = f.engine.escalation_status(&pending_escalation).unwrap();
        assert_eq!(
            (e.status, e.authority_status.as_str(), e.resolved_at, e.expires_at),
            (PromptStatus::Expired, "none", None, revoked.revoked_at.clone()),
            "{store}"
        );
        let err =
            f.engine.resolve_escalation(&pending_escalation, Resolution::Approved, "finance_lead", None).unwrap_err();
        assert_eq!(err.code(), "authorization_revoked", "{store}");
        assert_eq!(f.engine.escalation_status(&pending_escalation).unwrap().status, PromptStatus::Expired);
        // And no check uses any of it.
        for action in ["calendar.invite", "refund.issue", "email.send"] {
            assert_eq!(
                outcome(&f.check(&id, &[action], json!({"recipient_domain": "partner.org"})), action),
                (Deny, "authorization_revoked".into()),
                "{store}"
            );
        }
    }
}

#[test]
fn an_approval_that_lapsed_before_the_revocation_reads_expired() {
    for (store, f) in common::both() {
        let id = f.authorize(None);
        let confirm = f.check(&id, &["calendar.invite"], json!({}));
        let result = confirm.results.get("calendar.invite").unwrap();
        f.engine.resolve_confirmation(result.confirm_nonce.as_deref().unwrap(), true, Some(60)).unwrap();
        f.clock.advance_millis(120_000);
        f.engine.revoke_authorization(&id, Some("admin"), None).unwrap();
        let c = f.engine.confirmation_status(result.confirmation_id.as_deref().unwrap()).unwrap();
        assert_eq!((c.status, c.authority_status.as_str()), (PromptStatus::Approved, "expired"), "{store}");
    }
}

#[test]
fn an_expired_authorization_ends_its_prompts_as_well() {
    for (store, f) in common::both() {
        f.engine.create_policy(&common::support_policy()).unwrap();
        let expires_at = "2026-03-02T09:02:00.000Z"; // two minutes after the fixtures' start
        let id = f
            .engine
            .create_authorization(&AuthorizationCreate {
                user_id: "user_42".into(),
                policy_id: "support_agent".into(),
                expires_at: Some(expires_at.into()),
                ..Default::default()
            })
            .unwrap()
            .authorization_id;
        let confirm = f.check(&id, &["calendar.invite"], json!({}));
        let result = confirm.results.get("calendar.invite").unwrap();
        f.engine.resolve_confirmation(result.confirm_nonce.as_deref().unwrap(), true, Some(600)).unwrap();
        let escalated = f.check(&id, &["refund.issue"], json!({}));
        let escalation_id = escalated.results.get("refund.issue").unwrap().escalation_id.clone().unwrap();
        f.clock.advance_millis(180_000);
        assert_eq!(
            outcome(&f.check(&id, &["calendar.invite"], json!({})), "calendar.invite").1,
            "authorization_expired"
        );
        let c = f.engine.confirmation_status(result.confirmation_id.as_deref().unwrap()).unwrap();
        assert_eq!((c.status, c.authority_status.as_str()), (PromptStatus::Approved, "expired"), "{store}");
        let e = f.engine.escalation_status(&escalation_id).unwrap();
        assert_eq!((e.status, e.authority_status.as_str()), (PromptStatus::Expired, "none"), "{store}");
        assert_eq!(e.expires_at, expires_at, "{store}: a pending prompt ends with its authorization");
    }
}
