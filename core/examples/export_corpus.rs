//! Writes an export of N signed receipts (default 10,000) for benchmarking verifiers.
//! Usage: `cargo run --release --example export_corpus -- OUT_DIR [N] [sqlite]`
//! With `sqlite`, the receipts are kept in `OUT_DIR/home` (a workspace `allowly --home` opens), so
//! `allowly receipts export` can be timed on the same receipts; otherwise they live in memory.

use std::path::PathBuf;

use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::Allowly;
use serde_json::json;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult<()> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: export_corpus OUT_DIR [N]")?);
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(10_000);
    let on_disk = match args.next().as_deref() {
        None => false,
        Some("sqlite") => true,
        Some(other) => return Err(format!("unknown store `{other}` (expected `sqlite`)").into()),
    };
    std::fs::create_dir_all(&out)?;
    let engine = if on_disk { Allowly::open_embedded(out.join("home"))? } else { Allowly::in_memory()? };
    engine.create_policy(&json!({
        "policy_id": "bench", "profile": "allowly.policy.v1", "agent_id": "bench_agent", "default_expiry_days": 30,
        "actions": [{"policy": {"profile": "allowly.basic.v1", "action": "email.send", "decision": "allow",
                                "target": null, "fields": {}, "rules": []},
                     "guards": {}, "executable_operations": []}]
    }))?;
    let id = engine
        .create_authorization(&AuthorizationCreate {
            user_id: "u".into(),
            policy_id: "bench".into(),
            ..Default::default()
        })?
        .authorization_id;
    let request = CheckRequest {
        authorization_id: id,
        actions: vec!["email.send".into()],
        context: Some(json!({"recipient": "ana@example.com", "subject": "quarterly numbers", "n": 3})),
        ..Default::default()
    };
    // In groups: one commit per group keeps a million receipts on disk to a couple of minutes.
    let group = vec![request; 1000];
    let mut remaining = count.saturating_sub(1);
    while remaining > 0 {
        let n = remaining.min(group.len());
        for result in engine.check_many(&group[..n]) {
            result?;
        }
        remaining -= n;
    }
    engine.export_receipts(&out.join("export.jsonl"), None, &mut |_| {})?;
    let document = engine.key_document()?;
    std::fs::write(out.join("keys.json"), serde_json::to_vec_pretty(&document)?)?;
    std::fs::write(out.join("workspace_id"), engine.workspace_id())?;
    let fingerprints: Vec<&str> = document.keys.iter().map(|k| k.public_key_fingerprint.as_str()).collect();
    std::fs::write(out.join("fingerprints"), format!("{}\n", fingerprints.join("\n")))?;
    Ok(())
}
