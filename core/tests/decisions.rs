//! One test per step of the decision pipeline (docs/decisions.md), on both stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use allowly_core::model::{AuthorizationCreate, CheckRequest, Resolution};
use allowly_core::policy::Decision::{Allow, Confirm, Deny, Escalate};
use common::{both, outcome, signed};
use serde_json::json;

const DAY: i64 = 86_400_000;

#[test]
fn unknown_authorization_is_denied_with_an_unbound_receipt() {
    for (store, f) in both() {
        let response = f.check("auth_missing", &["email.send"], json!({}));
        assert_eq!(outcome(&response, "email.send"), (Deny, "authorization_not_found".into()), "{store}");
        let payload = f.verify(&signed(&response, "email.send"));
        assert_eq!(payload["authorization_id"], json!(null));
        assert_eq!(payload["policy_ref"], json!(null));
        assert_eq!(payload["decision"], "deny");
    }
}

#[test]
fn allow_reports_policy_eval_and_a_verifiable_receipt() {
    for (store, f) in both() {
        let id = f.authorize(None);
        let response = f.check(&id, &["email.send"], json!({"recipient_domain": "example.com"}));
        assert_eq!(outcome(&response, "email.send"), (Allow, "authorization_granted_action_active".into()), "{store}");
        assert!(response.engine_version.starts_with("sha256:") && response.engine_version.len() == 71);
        let result = response.results.get("email.send").unwrap();
        let eval = result.policy_eval.as_ref().unwrap();
        assert_eq!(eval["result"]["decision"], "allow");
        assert_eq!(eval["result"]["matched_rule_id"], json!(null));
        let payload = f.verify(&signed(&response, "email.send"));
        assert_eq!(payload["policy_eval"], *eval);
        assert_eq!(payload["context"]["recipient_domain"], "example.com");
        assert_eq!(payload["agent_id"], "support_bot");
        assert_eq!(payload["user_id"], "user_42");
    }
}

#[test]
fn policy_rules_strengthen_the_decision() {
    for (store, f) in both() {
        let id = f.authorize(None);
        let response = f.check(&id, &["email.send"], json!({"recipient_domain": "blocked.example"}));
        assert_eq!(outcome(&response, "email.send"), (Deny, "deny_condition_matched".into()), "{store}");
        let response = f.check(&id, &["account.delete"], json!({}));
        assert_eq!(outcome(&response, "account.delete"), (Deny, "action_denied_by_policy".into()));
        // A declared string field sent as an integer fails closed.
        let response = f.check(&id, &["email.send"], json!({"recipient_domain": 9}));
        assert_eq!(outcome(&response, "email.send"), (Deny, "context_field_type_mismatch".into()));
    }
}

#[test]
fn results_follow_the_requested_actions() {
    for (store, f) in both() {
        let id = f.authorize(None);
        let response =
            f.check(&id, &["account.delete", "email.send", "not.granted"], json!({"recipient_domain": "example.com"}));
        let order: Vec<&str> = response.results.iter().map(|(a, _)| a).collect();
        assert_eq!(order, ["account.delete", "email.send", "not.granted"], "{store}");
        assert_eq!(outcome(&response, "not.granted"), (Deny, "action_not_in_authorization".into()));
        assert_eq!(outcome(&response, "email.send").0, Allow);
        let ids: std::collections::HashSet<&str> =
            response.results.iter().map(|(_, r)| r.receipt_id.as_deref().unwrap()).collect();
        assert_eq!(ids.len(), 3, "one receipt per action");
    }
}

#[test]
fn action_subset_limits_the_authorization() {
    for (store, f) in both() {
        f.engine.create_policy(&common::support_policy()).unwrap();
        let created = f
            .engine
            .create_authorization(&AuthorizationCreate {
                user_id: "u".into(),
                policy_id: "support_agent".into(),
                policy_version: Some(1),
                actions: Some(vec!["crm.read".into()]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(created.actions, ["crm.read"]);
        let response = f.check(&created.authorization_id, &["email.send"], json!({}));
        assert_eq!(outcome(&response, "email.send"), (Deny, "action_not_in_authorization".into()), "{store}");
    }
}

#[test]
fn revoked_and_superseded_authorizations_are_denied() {
    for (store, f) in both() {
        let id = f.authorize(None);
        let revoked = f.engine.revoke_authorization(&id, Some("admin"), None).unwrap();
        let payload = f.verify(&f.engine.receipt(pending_id(&revoked.receipt)).unwrap().receipt);
        assert_eq!(payload["event"], "authorization.revoke");
        let response = f.check(&id, &["email.send"], json!({}));
        assert_eq!(outcome(&response, "email.send"), (Deny, "authorization_revoked".into()), "{store}");
        assert!(f.engine.revoke_authorization(&id, None, None).is_err(), "revoking twice is a conflict");

        let old = f.authorize(None);
        let new = f
            .engine
            .create_authorization(&AuthorizationCreate {
                user_id: "user_42".into(),
                policy_id: "support_agent".into(),
                replaces: Some(old.clone()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(new.replaced_authorization_id.as_deref(), Some(old.as_str()));
        assert!(new.revocation_receipt.is_some());
        let response = f.check(&old, &["email.send"], json!({}));
        let result = response.results.get("email.send").unwrap();
        assert_eq!((result.decision, result.reason.as_str()), (Deny, "authorization_revoked"));
        assert_eq!(result.superseded_by.as_deref(), Some(new.authorization_id.as_str()));
        let response = f.check(&new.authorization_id, &["email.send"], json!({"recipient_domain": "example.com"}));
        assert_eq!(outcome(&response, "email.send").0, Allow);
    }
}

#[test]
fn expired_authorizations_are_denied() {
    for (store, f) in both() {
        let id = f.authorize(None);
        f.clock.advance_millis(30 * DAY - 1);
        assert_eq!(
            outcome(&f.check(&id, &["crm.read"], json!({"initiated_by": "user"})), "crm.read").0,
            Deny,
            "{store}: resource guard"
        );
        let response = f.check(&id, &["email.send"], json!({"recipient_domain": "example.com"}));
        assert_eq!(outcome(&response, "email.send").0, Allow, "{store}: one ms before expiry");
        f.clock.advance_millis(1);
        let response = f.check(&id, &["email.send"], json!({"recipient_domain": "example.com"}));
        assert_eq!(outcome(&response, "email.send"), (Deny, "authorization_expired".into()));
    }
}

fn crm(
    f: &common::Fixture,
    id: &str,
    resource: Option<&str>,
    initiated_by: &str,
) -> (allowly_core::policy::Decision, String) {
    let response = f
        .try_check(CheckRequest {
            authorization_id: id.into(),
            actions: vec!["crm.read".into()],
            resource: resource.map(str::to_string),
            context: Some(json!({"initiated_by": initiated_by})),
            ..Default::default()
        })
        .unwrap();
    outcome(&response, "crm.read")
}

#[test]
fn guards_check_resource_initiator_and_daily_cap() {
    for (store, f) in both() {
        let id = f.authorize(None);
        assert_eq!(crm(&f, &id, Some("billing/1"), "user"), (Deny, "resource_not_allowed".into()), "{store}");
        assert_eq!(crm(&f, &id, None, "user"), (Deny, "resource_not_allowed".into()));
        assert_eq!(crm(&f, &id, Some("crm/7"), "agent"), (Deny, "initiator_not_allowed".into()));
        // Denials above did not count: three allows, then the daily cap.
        for _ in 0..3 {
            assert_eq!(crm(&f, &id, Some("crm/7"), "user").0, Allow);
        }
        assert_eq!(crm(&f, &id, Some("crm/7"), "user"), (Deny, "rate_limited".into()));
        // The next UTC day starts a fresh count.
        f.clock.advance_millis(DAY);
        assert_eq!(crm(&f, &id, Some("crm/8"), "user").0, Allow);
    }
}

#[test]
fn sliding_window_rate_limit() {
    for (store, f) in both() {
        let id = f.authorize(None);
        assert_eq!(outcome(&f.check(&id, &["search.web"], json!({})), "search.web").0, Allow, "{store}");
        f.clock.advance_millis(30_000);
        assert_eq!(outcome(&f.check(&id, &["search.web"], json!({})), "search.web").0, Allow);
        f.clock.advance_millis(29_000);
        assert_eq!(outcome(&f.check(&id, &["search.web"], json!({})), "search.web"), (Deny, "rate_limited".into()));
        // 60 s after the first call it leaves the window.
        f.clock.advance_millis(1_000);
        assert_eq!(outcome(&f.check(&id, &["search.web"], json!({})), "search.web").0, Allow);
        assert_eq!(outcome(&f.check(&id, &["search.web"], json!({})), "search.web").0, Deny);
    }
}

#[test]
fn confirm_then_approve_allows_within_the_window_only() {
    for (store, f) in both() {
        let id = f.authorize(None);
        let context = json!({"recipient_domain": "partner.org"});
        let first = f.check(&id, &["email.send"], context.clone());
        let result = first.results.get("email.send").unwrap();
        assert_eq!(
            (result.decision, result.reason.as_str()),
            (Confirm, "condition_requires_user_confirmation"),
            "{store}"
        );
        let nonce = result.confirm_nonce.clone().unwrap();
        let confirmation_id = result.confirmation_id.clone().unwrap();
        assert!(confirmation_id.starts_with("cnf_") && nonce != confirmation_id);
        let payload = f.verify(&signed(&first, "email.send"));
        assert!(!payload.to_string().contains(&nonce), "the nonce is a secret and never signed into a receipt");

        // Asking again before the user answers reuses the same prompt.
        let again = f.check(&id, &["email.send"], context.clone());
        assert_eq!(again.results.get("email.send").unwrap().confirm_nonce.as_deref(), Some(nonce.as_str()));

        let resolved = f.engine.resolve_confirmation(&nonce, true, Some(120)).unwrap();
        assert_eq!(resolved.decision, "approved");
        let payload = f.verify(&f.engine.receipt(pending_id(resolved.receipt.as_ref().unwrap())).unwrap().receipt);
        assert_eq!(
            (payload["event"].as_str(), payload["decision"].as_str()),
            (Some("confirmation.resolve"), Some("confirmation_approved"))
        );
        assert!(f.engine.resolve_confirmation(&nonce, true, None).is_err(), "a nonce resolves once");

        let status = f.engine.confirmation_status(&confirmation_id).unwrap();
        assert_eq!(status.authority_status, "available");
        // The nonce names the same confirmation: whoever can approve it can follow it.
        let by_nonce = f.engine.confirmation_status(&nonce).unwrap();
        assert_eq!(
            (by_nonce.confirmation_id.as_str(), by_nonce.authority_status.as_str()),
            (confirmation_id.as_str(), "available")
        );
        let unknown_nonce = format!("{nonce}x");
        let err = f.engine.confirmation_status(&unknown_nonce).unwrap_err();
        assert_eq!(err.code(), "confirmation_not_found");
        assert!(!err.to_string().contains(&nonce), "a nonce is a secret: errors never echo it");
        for _ in 0..2 {
            let response = f.check(&id, &["email.send"], context.clone());
            assert_eq!(outcome(&response, "email.send"), (Allow, "user_confirmed".into()));
        }
        f.clock.advance_millis(120_000);
        let response = f.check(&id, &["email.send"], context.clone());
        let result = response.results.get("email.send").unwrap();
        assert_eq!(result.decision, Confirm, "after the window the user is asked again");
        assert_ne!(result.confirm_nonce.as_deref(), Some(nonce.as_str()));
    }
}

#[test]
fn rejected_confirmation_denies() {
    for (store, f) in both() {
        let id = f.authorize(None);
        let first = f.check(&id, &["calendar.invite"], json!({}));
        assert_eq!(
            outcome(&first, "calendar.invite"),
            (Confirm, "action_requires_user_confirmation".into()),
            "{store}"
        );
        let nonce = first.results.get("calendar.invite").unwrap().confirm_nonce.clone().unwrap();
        let resolved = f.engine.resolve_confirmation(&nonce, false, None).unwrap();
        assert_eq!((resolved.decision.as_str(), resolved.authorization_id.as_ref()), ("not_approved", None));
        let response = f.check(&id, &["calendar.invite"], json!({}));
        assert_eq!(outcome(&response, "calendar.invite"), (Deny, "user_rejected_confirmation".into()));
    }
}

#[test]
fn escalate_approve_allows_exactly_once() {
    for (store, f) in both() {
        let id = f.authorize(None);
        let first = f.check(&id, &["refund.issue"], json!({}));
        let result = first.results.get("refund.issue").unwrap();
        assert_eq!((result.decision, result.reason.as_str()), (Escalate, "escalation_required"), "{store}");
        assert_eq!(result.escalation_to.as_deref(), Some("member:finance_lead"));
        let escalation_id = result.escalation_id.clone().unwrap();
        assert_eq!(
            f.check(&id, &["refund.issue"], json!({})).results.get("refund.issue").unwrap().escalation_id.as_deref(),
            Some(escalation_id.as_str()),
            "pending escalations are reused"
        );

        let resolved = f.engine.resolve_escalation(&escalation_id, Resolution::Approved, "alice", Some("ok")).unwrap();
        assert_eq!(resolved.status, "approved");
        let payload = f.verify(&f.engine.receipt(pending_id(resolved.receipt.as_ref().unwrap())).unwrap().receipt);
        assert_eq!(payload["decision"], "escalation_approved");
        assert_eq!(f.engine.escalation_status(&escalation_id).unwrap().authority_status, "available");

        let granted = f.check(&id, &["refund.issue"], json!({}));
        assert_eq!(outcome(&granted, "refund.issue"), (Allow, "escalation_approved".into()));
        assert_eq!(f.engine.escalation_status(&escalation_id).unwrap().authority_status, "consumed");
        let after = f.check(&id, &["refund.issue"], json!({}));
        let result = after.results.get("refund.issue").unwrap();
        assert_eq!(result.decision, Escalate, "the approval was one use");
        assert_ne!(result.escalation_id.as_deref(), Some(escalation_id.as_str()));
    }
}

#[test]
fn rejected_escalation_denies() {
    for (store, f) in both() {
        let id = f.authorize(None);
        let first = f.check(&id, &["refund.issue"], json!({}));
        let escalation_id = first.results.get("refund.issue").unwrap().escalation_id.clone().unwrap();
        f.engine.resolve_escalation(&escalation_id, Resolution::Rejected, "bob", None).unwrap();
        let response = f.check(&id, &["refund.issue"], json!({}));
        assert_eq!(outcome(&response, "refund.issue"), (Deny, "escalation_rejected".into()), "{store}");
        assert!(f.engine.resolve_escalation(&escalation_id, Resolution::Approved, "bob", None).is_err());
    }
}

fn budgeted(f: &common::Fixture, id: &str, cost: i64, key: Option<&str>) -> allowly_core::model::CheckResponse {
    f.try_check(CheckRequest {
        authorization_id: id.into(),
        actions: vec!["email.send".into()],
        estimated_cost_micros: Some(cost),
        context: Some(json!({"recipient_domain": "example.com"})),
        idempotency_key: key.map(str::to_string),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn budget_caps_reserves_and_settles() {
    for (store, f) in both() {
        let id = f.authorize(Some(50_000_000));
        let first = budgeted(&f, &id, 20_000_000, None);
        assert_eq!(outcome(&first, "email.send").0, Allow, "{store}");
        let budget = first.results.get("email.send").unwrap().budget.clone().unwrap();
        assert_eq!((budget.spent_micros, budget.spent_after_micros), (0, Some(20_000_000)));
        assert_eq!(outcome(&budgeted(&f, &id, 20_000_000, None), "email.send").0, Allow);
        let third = budgeted(&f, &id, 20_000_000, None);
        assert_eq!(outcome(&third, "email.send"), (Deny, "budget_exceeded".into()));
        assert_eq!(f.engine.get_authorization(&id).unwrap().budget_spent_micros, 40_000_000);
        let payload = f.verify(&signed(&third, "email.send"));
        assert_eq!(payload["context"]["budget"]["spent_after_micros"], json!(null));

        // Settling the first check at 5_000_000 frees 15_000_000: the next check fits.
        let first_receipt = first.results.get("email.send").unwrap().receipt_id.clone().unwrap();
        let settled = f.engine.settle_budget(&first_receipt, 5_000_000, None).unwrap();
        assert_eq!(
            (settled.delta_micros, settled.spent_before_micros, settled.spent_after_micros),
            (-15_000_000, 40_000_000, 25_000_000)
        );
        let payload = match &settled.receipt {
            allowly_core::model::ReceiptEnvelope::Signed { receipt } => f.verify(receipt),
            other => panic!("{other:?}"),
        };
        assert_eq!(payload["event"], "budget.settle");
        assert_eq!(
            f.engine.settle_budget(&first_receipt, 5_000_000, None).unwrap(),
            settled,
            "same settlement replays"
        );
        assert!(f.engine.settle_budget(&first_receipt, 6_000_000, None).is_err(), "a different cost is a conflict");
        assert_eq!(f.engine.get_authorization(&id).unwrap().budget_spent_micros, 25_000_000);
        assert_eq!(outcome(&budgeted(&f, &id, 20_000_000, None), "email.send").0, Allow);
        assert_eq!(
            f.engine
                .settle_budget(third.results.get("email.send").unwrap().receipt_id.as_deref().unwrap(), 1, None)
                .unwrap_err()
                .code(),
            "reservation_not_found"
        );
    }
}

#[test]
fn budget_exceeded_overrides_confirm_and_escalate() {
    for (store, f) in both() {
        let id = f.authorize(Some(10));
        let response = f
            .try_check(CheckRequest {
                authorization_id: id.clone(),
                actions: vec!["refund.issue".into(), "calendar.invite".into(), "account.delete".into()],
                estimated_cost_micros: Some(11),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(outcome(&response, "refund.issue"), (Deny, "budget_exceeded".into()), "{store}");
        assert_eq!(outcome(&response, "calendar.invite"), (Deny, "budget_exceeded".into()));
        assert_eq!(outcome(&response, "account.delete"), (Deny, "action_denied_by_policy".into()));
    }
}

#[test]
fn idempotent_retry_returns_the_first_answer_and_reserves_once() {
    for (store, f) in both() {
        let id = f.authorize(Some(50_000_000));
        let first = budgeted(&f, &id, 20_000_000, Some("retry-1"));
        let retry = budgeted(&f, &id, 20_000_000, Some("retry-1"));
        assert_eq!(first, retry, "{store}");
        assert_eq!(f.engine.get_authorization(&id).unwrap().budget_spent_micros, 20_000_000);
        let conflict = f.try_check(CheckRequest {
            authorization_id: id.clone(),
            actions: vec!["email.send".into()],
            estimated_cost_micros: Some(1),
            idempotency_key: Some("retry-1".into()),
            ..Default::default()
        });
        assert_eq!(conflict.unwrap_err().code(), "idempotency_key_reused");
    }
}

fn pending_id(envelope: &allowly_core::model::ReceiptEnvelope) -> &str {
    match envelope {
        allowly_core::model::ReceiptEnvelope::Pending { receipt_id, .. } => receipt_id,
        other => panic!("expected a pending envelope, got {other:?}"),
    }
}

#[test]
fn receipts_carry_canonical_payload_bytes_for_tricky_contexts() {
    for (store, f) in both() {
        let id = f.authorize(None);
        let context = json!({"recipient_domain": "example.com", "control": "line\n\t\u{0}", "😀_key": "emoji",
                             "｡_key": "bmp", "nested": {"z": [1, -2, true, null], "a": "\"quoted\\\\"}});
        let response = f.check(&id, &["email.send"], context.clone());
        assert_eq!(outcome(&response, "email.send").0, Allow, "{store}");
        // `verify` also checks the payload is exactly the canonical form.
        let payload = f.verify(&signed(&response, "email.send"));
        assert_eq!(payload["context"], context);
    }
}
