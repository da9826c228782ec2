//! Writes receipts of every kind the engine issues, across a key rotation and two checkpointed
//! days, for the interop test with the reference verifier (`scripts/interop.sh`).
//!
//! Usage: `cargo run --example interop_corpus -- OUT_DIR`
//! Writes: keys.json, workspace_id, fingerprints (one per line), receipts/<kind>.json,
//! export.jsonl, export.jsonl.gz, evidence.json.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use allowly_core::model::{AuthorizationCreate, CheckRequest, CheckResponse, ReceiptEnvelope, Resolution};
use allowly_core::store::MemoryStore;
use allowly_core::{Allowly, ManualClock, Options, Timestamp};
use serde_json::{json, Value};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult<()> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: interop_corpus OUT_DIR")?);
    std::fs::create_dir_all(out.join("receipts"))?;
    let start = Timestamp::parse("2026-03-02T09:00:00.000Z").ok_or("bad start")?;
    let clock = Arc::new(ManualClock::new(start));
    let engine = Allowly::with_store(Box::new(MemoryStore::new()), Box::new(clock.clone()), Options::default())?;
    let save = |kind: &str, receipt_id: &str| -> AnyResult<()> {
        let stored = engine.receipt(receipt_id)?;
        std::fs::write(out.join("receipts").join(format!("{kind}.json")), serde_json::to_vec_pretty(&stored.receipt)?)?;
        Ok(())
    };
    let step = || clock.advance_millis(1_000);

    engine.create_policy(&policy())?;
    let created = engine.create_authorization(&AuthorizationCreate {
        user_id: "user_42".into(),
        policy_id: "interop".into(),
        budget_limit_micros: Some(50_000_000),
        ..Default::default()
    })?;
    let id = created.authorization_id.clone();
    save("authorization_create", pending_id(&created.receipt))?;
    step();

    let check = |actions: &[&str], cost: Option<i64>, context: Value| -> AnyResult<CheckResponse> {
        step();
        Ok(engine.check(&CheckRequest {
            authorization_id: id.clone(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            estimated_cost_micros: cost,
            context: Some(context),
            resource: Some("mailbox/1".into()),
            session_id: Some("sess_7f2".into()),
            ..Default::default()
        })?)
    };
    let allowed = check(&["email.send"], Some(20_000_000), json!({"amount": 5, "note": "line\n\ttab ünïcode 😀"}))?;
    save("allow", &receipt_of(&allowed, "email.send")?)?;
    save("deny", &receipt_of(&check(&["account.delete"], None, json!({}))?, "account.delete")?)?;
    let confirm = check(&["email.send"], None, json!({"amount": 500}))?;
    let confirm_result = confirm.results.get("email.send").ok_or("no result")?;
    save("confirm", &receipt_of(&confirm, "email.send")?)?;
    let escalate = check(&["refund.issue"], None, json!({}))?;
    let escalate_result = escalate.results.get("refund.issue").ok_or("no result")?;
    save("escalate", &receipt_of(&escalate, "refund.issue")?)?;
    save("rate_limited_first_allow", &receipt_of(&check(&["search.web"], None, json!({}))?, "search.web")?)?;
    save("rate_limited", &receipt_of(&check(&["search.web"], None, json!({}))?, "search.web")?)?;

    step();
    let resolved =
        engine.resolve_confirmation(confirm_result.confirm_nonce.as_deref().ok_or("no nonce")?, true, Some(600))?;
    save("confirmation_resolve", pending_id(resolved.receipt.as_ref().ok_or("no receipt")?))?;
    save("user_confirmed_allow", &receipt_of(&check(&["email.send"], None, json!({"amount": 500}))?, "email.send")?)?;

    // Day two, under a rotated key.
    clock.set(start.plus_days(1));
    engine.rotate_key()?;
    step();
    let escalation = engine.resolve_escalation(
        escalate_result.escalation_id.as_deref().ok_or("no id")?,
        Resolution::Approved,
        "alice",
        None,
    )?;
    save("escalation_resolve", pending_id(escalation.receipt.as_ref().ok_or("no receipt")?))?;
    save("escalation_approved_allow", &receipt_of(&check(&["refund.issue"], None, json!({}))?, "refund.issue")?)?;
    check(&["email.send"], Some(20_000_000), json!({"amount": 5}))?;
    let over = check(&["email.send"], Some(20_000_000), json!({"amount": 5}))?;
    expect_reason(&over, "email.send", "budget_exceeded")?;
    save("budget_exceeded", &receipt_of(&over, "email.send")?)?;
    // Without `amount` the confirmation rule applies all the same, and says why.
    let missing = check(&["email.send"], None, json!({}))?;
    expect_reason(&missing, "email.send", "context_field_missing")?;
    save("context_field_missing", &receipt_of(&missing, "email.send")?)?;
    step();
    let settled = engine.settle_budget(&receipt_of(&allowed, "email.send")?, 1_000_000, None)?;
    match &settled.receipt {
        ReceiptEnvelope::Signed { receipt } => {
            std::fs::write(out.join("receipts/budget_settle.json"), serde_json::to_vec_pretty(receipt)?)?
        }
        ReceiptEnvelope::Pending { receipt_id, .. } => save("budget_settle", receipt_id)?,
    }
    step();
    let unknown = engine.check(&CheckRequest {
        authorization_id: "auth_does_not_exist".into(),
        actions: vec!["email.send".into()],
        ..Default::default()
    })?;
    save("unknown_authorization", &receipt_of(&unknown, "email.send")?)?;
    step();
    let revoked = engine.revoke_authorization(&id, Some("admin"), Some("interop"))?;
    save("authorization_revoke", pending_id(&revoked.receipt))?;

    // Day three: checkpoint the two whole days behind us.
    clock.set(start.plus_days(2));
    let checkpoints = engine.create_checkpoints()?;
    if checkpoints.len() != 2 {
        return Err(format!("expected 2 checkpoints, got {}", checkpoints.len()).into());
    }
    for (i, checkpoint) in checkpoints.iter().enumerate() {
        save(&format!("checkpoint_day{}", i + 1), &checkpoint.receipt_id)?;
    }

    let mut progress = |_| {};
    engine.export_receipts(&out.join("export.jsonl"), Some(&out.join("evidence.json")), &mut progress)?;
    engine.export_receipts(&out.join("export.jsonl.gz"), None, &mut progress)?;
    let document = engine.key_document()?;
    write(&out.join("keys.json"), &serde_json::to_vec_pretty(&document)?)?;
    write(&out.join("workspace_id"), engine.workspace_id().as_bytes())?;
    let fingerprints: Vec<&str> = document.keys.iter().map(|k| k.public_key_fingerprint.as_str()).collect();
    write(&out.join("fingerprints"), format!("{}\n", fingerprints.join("\n")).as_bytes())?;
    println!("wrote {} receipt kinds to {}", std::fs::read_dir(out.join("receipts"))?.count(), out.display());
    Ok(())
}

/// The receipt id of one action's result.
fn receipt_of(response: &CheckResponse, action: &str) -> AnyResult<String> {
    let result = response.results.get(action).ok_or_else(|| format!("no result for `{action}`"))?;
    Ok(result.receipt_id.clone().ok_or("a decision without a receipt")?)
}

/// Fails unless one action's result has `reason`: a receipt kind is only worth its name.
fn expect_reason(response: &CheckResponse, action: &str, reason: &str) -> AnyResult<()> {
    let got = response.results.get(action).map(|result| result.reason.as_str());
    if got == Some(reason) {
        Ok(())
    } else {
        Err(format!("`{action}`: expected {reason}, got {got:?}").into())
    }
}

fn write(path: &Path, bytes: &[u8]) -> AnyResult<()> {
    Ok(std::fs::write(path, bytes)?)
}

fn pending_id(envelope: &ReceiptEnvelope) -> &str {
    match envelope {
        ReceiptEnvelope::Pending { receipt_id, .. } => receipt_id,
        ReceiptEnvelope::Signed { .. } => "",
    }
}

fn policy() -> Value {
    let basic = |action: &str, decision: &str, target: Value, rules: Value| {
        json!({"profile": "allowly.basic.v1", "action": action, "decision": decision, "target": target,
               "fields": {"amount": "integer"}, "rules": rules})
    };
    json!({
        "policy_id": "interop",
        "profile": "allowly.policy.v1",
        "agent_id": "interop_agent",
        "default_expiry_days": 30,
        "actions": [
            {"policy": basic("email.send", "allow", Value::Null, json!([{"id": "large", "decision": "confirm",
                "target": "agent_owner", "conditions": [{"field": "amount", "op": "gt", "value": 100}]}])),
             "guards": {}, "executable_operations": []},
            {"policy": basic("refund.issue", "escalate", json!("member:finance_lead"), json!([])), "guards": {}, "executable_operations": []},
            {"policy": basic("account.delete", "deny", Value::Null, json!([])), "guards": {}, "executable_operations": []},
            {"policy": basic("search.web", "allow", Value::Null, json!([])), "guards": {"max_per_day": 1}, "executable_operations": []}
        ]
    })
}
