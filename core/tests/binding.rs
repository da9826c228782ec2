//! An answer to a prompt covers only the request it was asked about: a confirmation or escalation
//! is reused (pending), honoured (approved, rejected) or used up (a one-use approval) only by a
//! check whose binding (rule, target and the values the action's rules test) equals its own, on
//! the same authorization, action and resource (docs/decisions.md, "What an answer covers").
//! Every test runs on each store (memory, SQLite, and PostgreSQL with the `postgres` feature).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use allowly_core::model::{AuthorizationCreate, CheckRequest, CheckResponse, PromptStatus, Resolution};
use allowly_core::policy::Decision::{self, Allow, Confirm, Deny, Escalate};
use allowly_core::store::{prompt_key, MemoryStore, Store, Tx};
use allowly_core::{Allowly, ManualClock, Options, Result};
use common::{both, Fixture};
use serde_json::{json, Value};

/// Refunds route by amount (over 10,000 to the CFO, over 100 to the manager) or region (EU to the
/// manager); bulk refunds always go to the CFO, by the action's own decision or by a rule; email
/// outside example.com and big meetings need the user's yes, and so does any invite.
fn policy() -> Value {
    let basic = |action: &str, decision: &str, target: Value, fields: Value, rules: Value| {
        json!({"policy": {"action": action, "decision": decision, "target": target, "fields": fields,
                          "rules": rules}})
    };
    let rule = |id: &str, decision: &str, target: &str, field: &str, op: &str, value: Value| {
        json!({"id": id, "decision": decision, "target": target,
               "conditions": [{"field": field, "op": op, "value": value}]})
    };
    json!({
        "policy_id": "refunds",
        "agent_id": "refund_bot",
        "default_expiry_days": 30,
        "actions": [
            basic("refund.issue", "allow", Value::Null, json!({"amount": "integer", "region": "string"}), json!([
                rule("cfo", "escalate", "member:cfo", "amount", "gt", json!(10000)),
                rule("manager", "escalate", "member:manager", "amount", "gt", json!(100)),
                rule("eu-review", "escalate", "member:manager", "region", "eq", json!("eu")),
            ])),
            basic("refund.bulk", "escalate", json!("member:cfo"), json!({"amount": "integer"}), json!([
                rule("huge", "escalate", "member:cfo", "amount", "gt", json!(10000)),
            ])),
            basic("email.send", "allow", Value::Null, json!({"recipient_domain": "string"}), json!([
                rule("external", "confirm", "agent_owner", "recipient_domain", "ne", json!("example.com")),
            ])),
            basic("calendar.invite", "confirm", json!("agent_owner"), json!({"attendees": "integer"}), json!([
                rule("big-meeting", "confirm", "agent_owner", "attendees", "gt", json!(10)),
            ])),
        ]
    })
}

fn authorize(engine: &Allowly) -> String {
    engine.create_policy(&policy()).unwrap();
    engine
        .create_authorization(&AuthorizationCreate {
            user_id: "user_42".into(),
            policy_id: "refunds".into(),
            ..Default::default()
        })
        .unwrap()
        .authorization_id
}

fn check_on(engine: &Allowly, id: &str, action: &str, resource: Option<&str>, context: Value) -> CheckResponse {
    engine
        .check(&CheckRequest {
            authorization_id: id.into(),
            actions: vec![action.into()],
            resource: resource.map(str::to_string),
            context: Some(context),
            ..Default::default()
        })
        .unwrap()
}

/// One check's single answer: decision, reason, the prompt it names (escalation id or
/// confirmation nonce) and the escalation's approver.
struct Answer {
    decision: Decision,
    reason: String,
    prompt: Option<String>,
    escalation_to: Option<String>,
    matched_rule_id: Value,
}

fn answer(response: &CheckResponse, action: &str) -> Answer {
    let result = response.results.get(action).unwrap();
    Answer {
        decision: result.decision,
        reason: result.reason.clone(),
        prompt: result.escalation_id.clone().or_else(|| result.confirm_nonce.clone()),
        escalation_to: result.escalation_to.clone(),
        matched_rule_id: result.policy_eval.as_ref().map_or(Value::Null, |e| e["result"]["matched_rule_id"].clone()),
    }
}

struct Env {
    f: Fixture,
    id: String,
}

impl Env {
    fn new(f: Fixture) -> Env {
        let id = authorize(&f.engine);
        Env { f, id }
    }

    fn check(&self, action: &str, context: Value) -> Answer {
        answer(&check_on(&self.f.engine, &self.id, action, None, context), action)
    }

    fn check_at(&self, action: &str, resource: Option<&str>, context: Value) -> Answer {
        answer(&check_on(&self.f.engine, &self.id, action, resource, context), action)
    }

    fn escalate(&self, action: &str, context: Value) -> String {
        let a = self.check(action, context);
        assert_eq!(a.decision, Escalate, "{}", a.reason);
        a.prompt.unwrap()
    }

    fn resolve_escalation(&self, escalation_id: &str, approved: bool) {
        let resolution = if approved { Resolution::Approved } else { Resolution::Rejected };
        self.f.engine.resolve_escalation(escalation_id, resolution, "approver", None).unwrap();
    }

    fn authority(&self, escalation_id: &str) -> String {
        self.f.engine.escalation_status(escalation_id).unwrap().authority_status
    }
}

#[test]
fn an_escalation_routed_to_the_manager_never_approves_what_goes_to_the_cfo() {
    for (store, f) in both() {
        let env = Env::new(f);
        let small = json!({"amount": 500, "region": "us"});
        let large = json!({"amount": 50000, "region": "us"});
        let to_manager = env.check("refund.issue", small.clone());
        assert_eq!(to_manager.decision, Escalate, "{store}");
        assert_eq!(to_manager.escalation_to.as_deref(), Some("member:manager"));
        let manager_id = to_manager.prompt.unwrap();

        // The pending escalation is not reused for a request routed elsewhere: that opens its own,
        // and its answer names the approver its own evaluation names.
        let to_cfo = env.check("refund.issue", large.clone());
        assert_eq!((to_cfo.decision, to_cfo.reason.as_str()), (Escalate, "escalate_condition_matched"), "{store}");
        assert_eq!((to_cfo.escalation_to.as_deref(), &to_cfo.matched_rule_id), (Some("member:cfo"), &json!("cfo")));
        let cfo_id = to_cfo.prompt.unwrap();
        assert_ne!(cfo_id, manager_id);

        // The manager approves the $500 refund: the $50,000 one still waits for the CFO, and the
        // one-use approval is not spent by it.
        env.resolve_escalation(&manager_id, true);
        let still = env.check("refund.issue", large.clone());
        assert_eq!((still.decision, still.prompt.as_deref()), (Escalate, Some(cfo_id.as_str())), "{store}");
        assert_eq!(env.authority(&manager_id), "available", "{store}");

        // Each approval unlocks exactly its own request, once.
        let granted = env.check("refund.issue", small.clone());
        assert_eq!((granted.decision, granted.reason.as_str()), (Allow, "escalation_approved"), "{store}");
        assert_eq!(env.authority(&manager_id), "consumed");
        env.resolve_escalation(&cfo_id, true);
        assert_eq!(env.check("refund.issue", large.clone()).decision, Allow, "{store}");
        assert_eq!(env.check("refund.issue", large).decision, Escalate, "{store}: one use");
        assert_eq!(env.check("refund.issue", small).decision, Escalate, "{store}: one use");
    }
}

#[test]
fn an_approval_covers_the_values_it_was_given_not_others_under_the_same_rule() {
    for (store, f) in both() {
        let env = Env::new(f);
        let id = env.escalate("refund.issue", json!({"amount": 500, "region": "us"}));
        env.resolve_escalation(&id, true);

        // Same rule, same approver, another amount: a new question.
        let other = env.check("refund.issue", json!({"amount": 501, "region": "us"}));
        assert_eq!((other.decision, &other.matched_rule_id), (Escalate, &json!("manager")), "{store}");
        assert_ne!(other.prompt.as_deref(), Some(id.as_str()));
        assert_eq!(env.authority(&id), "available");

        // Same rule and approver, another region (a field some rule tests): a new question too.
        assert_eq!(env.check("refund.issue", json!({"amount": 500, "region": "ca"})).decision, Escalate, "{store}");

        // A context key no rule tests is not part of what the policy decided on.
        let noted = env.check("refund.issue", json!({"amount": 500, "region": "us", "note": "customer called"}));
        assert_eq!((noted.decision, noted.reason.as_str()), (Allow, "escalation_approved"), "{store}");
    }
}

#[test]
fn the_same_approver_through_another_rule_is_another_question() {
    for (store, f) in both() {
        let env = Env::new(f);
        // Both go to the manager: one by amount, one by region.
        let by_amount = env.check("refund.issue", json!({"amount": 500, "region": "us"}));
        let by_region = env.check("refund.issue", json!({"amount": 50, "region": "eu"}));
        assert_eq!(by_amount.escalation_to, by_region.escalation_to, "{store}");
        assert_eq!((&by_amount.matched_rule_id, &by_region.matched_rule_id), (&json!("manager"), &json!("eu-review")));
        assert_ne!(by_amount.prompt, by_region.prompt, "{store}: one escalation each");

        env.resolve_escalation(by_region.prompt.as_deref().unwrap(), true);
        let a = env.check("refund.issue", json!({"amount": 500, "region": "us"}));
        assert_eq!((a.decision, a.prompt), (Escalate, by_amount.prompt), "{store}");
        let b = env.check("refund.issue", json!({"amount": 50, "region": "eu"}));
        assert_eq!((b.decision, b.reason.as_str()), (Allow, "escalation_approved"), "{store}");
    }
}

#[test]
fn the_actions_own_decision_and_a_rule_are_bound_apart() {
    for (store, f) in both() {
        let env = Env::new(f);
        // Both go to the CFO: small bulk refunds by the action's decision, huge ones by a rule.
        let action_level = env.check("refund.bulk", json!({"amount": 50}));
        assert_eq!(
            (action_level.reason.as_str(), &action_level.matched_rule_id),
            ("escalation_required", &Value::Null),
            "{store}"
        );
        let action_id = action_level.prompt.unwrap();
        env.resolve_escalation(&action_id, true);

        let by_rule = env.check("refund.bulk", json!({"amount": 50000}));
        assert_eq!((by_rule.decision, by_rule.reason.as_str()), (Escalate, "escalate_condition_matched"), "{store}");
        assert_eq!(by_rule.escalation_to.as_deref(), Some("member:cfo"));
        assert_ne!(by_rule.prompt.as_deref(), Some(action_id.as_str()));
        // The action's own decision binds the tested values too: 60 was not approved.
        assert_eq!(env.check("refund.bulk", json!({"amount": 60})).decision, Escalate, "{store}");
        assert_eq!(env.authority(&action_id), "available");
        assert_eq!(env.check("refund.bulk", json!({"amount": 50})).decision, Allow, "{store}");

        // The other way round: an approval given by rule does not serve the action's decision.
        env.resolve_escalation(by_rule.prompt.as_deref().unwrap(), true);
        assert_eq!(env.check("refund.bulk", json!({"amount": 50})).decision, Escalate, "{store}");
        assert_eq!(env.check("refund.bulk", json!({"amount": 50000})).decision, Allow, "{store}");
    }
}

#[test]
fn a_missing_field_is_bound_as_missing() {
    for (store, f) in both() {
        let env = Env::new(f);
        // Without an amount the refund might be a large one: the CFO decides.
        let unknown = env.check("refund.issue", json!({"region": "us"}));
        assert_eq!((unknown.decision, unknown.reason.as_str()), (Escalate, "context_field_missing"), "{store}");
        assert_eq!(unknown.escalation_to.as_deref(), Some("member:cfo"));
        let unknown_id = unknown.prompt.unwrap();
        env.resolve_escalation(&unknown_id, true);

        // The CFO approved a refund of no stated amount, not $50,000.
        let stated = env.check("refund.issue", json!({"amount": 50000, "region": "us"}));
        assert_eq!((stated.decision, stated.escalation_to.as_deref()), (Escalate, Some("member:cfo")), "{store}");
        assert_ne!(stated.prompt.as_deref(), Some(unknown_id.as_str()));
        assert_eq!(env.authority(&unknown_id), "available");
        assert_eq!(env.check("refund.issue", json!({"region": "us"})).decision, Allow, "{store}");
    }
}

#[test]
fn a_rejection_denies_only_what_it_rejected() {
    for (store, f) in both() {
        let env = Env::new(f);
        let small = json!({"amount": 500, "region": "us"});
        let id = env.escalate("refund.issue", small.clone());
        env.resolve_escalation(&id, false);
        let rejected = env.check("refund.issue", small);
        assert_eq!((rejected.decision, rejected.reason.as_str()), (Deny, "escalation_rejected"), "{store}");

        // Another request is asked, not denied by somebody else's answer.
        let large = env.check("refund.issue", json!({"amount": 50000, "region": "us"}));
        assert_eq!((large.decision, large.escalation_to.as_deref()), (Escalate, Some("member:cfo")), "{store}");
        let close = env.check("refund.issue", json!({"amount": 501, "region": "us"}));
        assert_eq!((close.decision, close.escalation_to.as_deref()), (Escalate, Some("member:manager")), "{store}");
    }
}

#[test]
fn an_approval_covers_its_own_resource_only() {
    for (store, f) in both() {
        let env = Env::new(f);
        let small = json!({"amount": 500, "region": "us"});
        let first = env.check_at("refund.issue", Some("order:1"), small.clone());
        let id = first.prompt.unwrap();
        env.resolve_escalation(&id, true);
        for resource in [Some("order:2"), Some(""), None] {
            let other = env.check_at("refund.issue", resource, small.clone());
            assert_eq!(other.decision, Escalate, "{store}: {resource:?}");
            assert_ne!(other.prompt.as_deref(), Some(id.as_str()));
        }
        assert_eq!(env.authority(&id), "available");
        let granted = env.check_at("refund.issue", Some("order:1"), small);
        assert_eq!((granted.decision, granted.reason.as_str()), (Allow, "escalation_approved"), "{store}");
    }
}

#[test]
fn a_users_yes_covers_the_recipient_it_was_asked_about() {
    for (store, f) in both() {
        let env = Env::new(f);
        let partner = json!({"recipient_domain": "partner.org"});
        let evil = json!({"recipient_domain": "evil.org"});
        let asked = env.check("email.send", partner.clone());
        assert_eq!((asked.decision, asked.reason.as_str()), (Confirm, "condition_requires_user_confirmation"));
        let nonce = asked.prompt.unwrap();

        // Pending: reused for the same recipient only.
        assert_eq!(env.check("email.send", partner.clone()).prompt.as_deref(), Some(nonce.as_str()), "{store}");
        let evil_asked = env.check("email.send", evil.clone());
        assert_eq!(evil_asked.decision, Confirm, "{store}");
        let evil_nonce = evil_asked.prompt.unwrap();
        assert_ne!(evil_nonce, nonce);

        // Approved for five minutes: every email to partner.org in the window, none to evil.org.
        env.f.engine.resolve_confirmation(&nonce, true, Some(300)).unwrap();
        for _ in 0..2 {
            let sent = env.check("email.send", partner.clone());
            assert_eq!((sent.decision, sent.reason.as_str()), (Allow, "user_confirmed"), "{store}");
        }
        let still = env.check("email.send", evil.clone());
        assert_eq!((still.decision, still.prompt.as_deref()), (Confirm, Some(evil_nonce.as_str())), "{store}");

        // A no for evil.org denies evil.org only.
        env.f.engine.resolve_confirmation(&evil_nonce, false, None).unwrap();
        let refused = env.check("email.send", evil);
        assert_eq!((refused.decision, refused.reason.as_str()), (Deny, "user_rejected_confirmation"), "{store}");
        assert_eq!(env.check("email.send", partner).decision, Allow, "{store}");
        let other = env.check("email.send", json!({"recipient_domain": "other.org"}));
        assert_eq!(other.decision, Confirm, "{store}");
    }
}

#[test]
fn a_confirmation_of_the_action_is_not_a_confirmation_of_a_rule() {
    for (store, f) in both() {
        let env = Env::new(f);
        let small = json!({"attendees": 3});
        let asked = env.check("calendar.invite", small.clone());
        assert_eq!(
            (asked.reason.as_str(), &asked.matched_rule_id),
            ("action_requires_user_confirmation", &Value::Null)
        );
        env.f.engine.resolve_confirmation(asked.prompt.as_deref().unwrap(), true, Some(300)).unwrap();
        assert_eq!(env.check("calendar.invite", small).decision, Allow, "{store}");

        let big = env.check("calendar.invite", json!({"attendees": 30}));
        assert_eq!((big.decision, big.reason.as_str()), (Confirm, "condition_requires_user_confirmation"), "{store}");
        assert_ne!(big.prompt, asked.prompt);
        assert_eq!(env.check("calendar.invite", json!({"attendees": 4})).decision, Confirm, "{store}");
    }
}

/// A store whose state the test can also reach, to plant rows as an older engine wrote them.
struct Shared(Arc<dyn Store>);

impl Store for Shared {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.0.write(work)
    }
    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.0.read(work)
    }
    fn write_each(&self, count: usize, work: &mut dyn FnMut(usize, &mut dyn Tx) -> Result<()>) -> Vec<Result<()>> {
        self.0.write_each(count, work)
    }
}

/// A store of each kind, with what an engine on it needs.
struct Backing {
    name: &'static str,
    store: Arc<dyn Store>,
    options: Options,
    _dir: Option<tempfile::TempDir>,
}

fn backings() -> Vec<Backing> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = allowly_core::store::SqliteStore::open(
        &dir.path().join("allowly.db"),
        allowly_core::store::Durability::Process,
    )
    .unwrap();
    #[allow(unused_mut)]
    let mut backings = vec![
        Backing { name: "memory", store: Arc::new(MemoryStore::new()), options: Options::default(), _dir: None },
        Backing { name: "sqlite", store: Arc::new(sqlite), options: Options::default(), _dir: Some(dir) },
    ];
    #[cfg(feature = "postgres")]
    if common::postgres_url().is_some() {
        let workspace_id = common::fresh_workspace_id();
        let store = allowly_core::store::PostgresStore::for_workspace(&common::postgres_pool(), &workspace_id).unwrap();
        let options = Options { workspace_id: Some(workspace_id), ..Options::default() };
        backings.push(Backing { name: "postgres", store: Arc::new(store), options, _dir: None });
    }
    backings
}

#[test]
fn prompts_stored_without_a_binding_unlock_nothing() {
    for Backing { name: store, store: shared, options, _dir } in backings() {
        let clock = Arc::new(ManualClock::new(common::start()));
        let engine = Allowly::with_store(Box::new(Shared(shared.clone())), Box::new(clock), options).unwrap();
        let id = authorize(&engine);
        let small = json!({"amount": 500, "region": "us"});
        let email = json!({"recipient_domain": "partner.org"});
        let asked = answer(&check_on(&engine, &id, "refund.issue", None, small.clone()), "refund.issue");
        let escalation_id = asked.prompt.unwrap();
        let nonce = answer(&check_on(&engine, &id, "email.send", None, email.clone()), "email.send").prompt.unwrap();

        // Approved prompts as an engine before bindings wrote them: under the old key and, to be
        // sure, under the new one too, where the latest row must also carry an equal binding.
        shared
            .write(&mut |tx| {
                let current = tx.escalation(&escalation_id)?.unwrap();
                let bound_key = current.prompt_key();
                let mut legacy = current.clone();
                legacy.status = PromptStatus::Approved;
                legacy.binding = None;
                legacy.escalation_id = format!("{escalation_id}L1");
                tx.put_escalation(&prompt_key(&id, "refund.issue", None), &legacy)?;
                legacy.escalation_id = format!("{escalation_id}L2");
                tx.put_escalation(&bound_key, &legacy)?;
                // A row under the right key whose binding names another rule is no match either.
                let mut other_rule = current.clone();
                other_rule.status = PromptStatus::Approved;
                other_rule.binding.as_mut().unwrap().matched_rule_id = Some("eu-review".into());
                other_rule.escalation_id = format!("{escalation_id}L3");
                tx.put_escalation(&bound_key, &other_rule)?;

                let current = tx.confirmation_by_nonce(&nonce)?.unwrap();
                let bound_key = current.prompt_key();
                let mut legacy = current.clone();
                legacy.status = PromptStatus::Approved;
                legacy.expires_at = legacy.expires_at.plus_seconds(300);
                legacy.binding = None;
                legacy.confirmation_id = format!("{}L1", current.confirmation_id);
                legacy.nonce = format!("{nonce}L1");
                tx.put_confirmation(&prompt_key(&id, "email.send", None), &legacy)?;
                legacy.confirmation_id = format!("{}L2", current.confirmation_id);
                legacy.nonce = format!("{nonce}L2");
                tx.put_confirmation(&bound_key, &legacy)?;
                Ok(())
            })
            .unwrap();

        let refund = answer(&check_on(&engine, &id, "refund.issue", None, small), "refund.issue");
        assert_eq!(refund.decision, Escalate, "{store}: {}", refund.reason);
        let planted = ["L1", "L2", "L3"].map(|suffix| format!("{escalation_id}{suffix}"));
        assert!(!planted.contains(refund.prompt.as_ref().unwrap()), "{store}: a new escalation, not a planted one");
        let sent = answer(&check_on(&engine, &id, "email.send", None, email), "email.send");
        assert_eq!(sent.decision, Confirm, "{store}: {}", sent.reason);
        let planted = ["L1", "L2"].map(|suffix| format!("{nonce}{suffix}"));
        assert!(!planted.contains(sent.prompt.as_ref().unwrap()), "{store}: not a planted confirmation");
    }
}
