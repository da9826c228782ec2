//! Writes an export of N signed receipts (default 10,000) for benchmarking verifiers.
//! Usage: `cargo run --release --example export_corpus -- OUT_DIR [N]`

use std::path::PathBuf;

use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::Allowly;
use serde_json::json;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult<()> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: export_corpus OUT_DIR [N]")?);
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(10_000);
    std::fs::create_dir_all(&out)?;
    let engine = Allowly::in_memory()?;
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
    for _ in 1..count {
        engine.check(&request)?;
    }
    engine.export_receipts(&out.join("export.jsonl"), None, &mut |_| {})?;
    let document = engine.key_document()?;
    std::fs::write(out.join("keys.json"), serde_json::to_vec_pretty(&document)?)?;
    std::fs::write(out.join("workspace_id"), engine.workspace_id())?;
    let fingerprints: Vec<&str> = document.keys.iter().map(|k| k.public_key_fingerprint.as_str()).collect();
    std::fs::write(out.join("fingerprints"), format!("{}\n", fingerprints.join("\n")))?;
    Ok(())
}
