//! Rust baseline for `scripts/python-bench.sh`: opens a fresh embedded workspace, publishes
//! `policy.json`, creates one authorization and times the same `check` the Python benchmark makes
//! through the SDK (through the same `Api` trait). Prints one JSON line of per-call figures.
//!
//! Usage: allowly-python-bench POLICY_JSON CALLS HOME

use std::time::Instant;

use allowly_core::api::Api;
use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::Allowly;
use serde_json::{json, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, policy_file, calls, home] = args.as_slice() else {
        return Err("usage: allowly-python-bench POLICY_JSON CALLS HOME".into());
    };
    let calls: usize = calls.parse()?;
    let engine = Allowly::open_embedded(home)?;
    let body: Value = serde_json::from_str(&std::fs::read_to_string(policy_file)?)?;
    let policy_id = body["policy_id"].as_str().ok_or("the policy has no policy_id")?.to_string();
    Api::create_policy(&engine, &body)?;
    let auth = Api::create_authorization(
        &engine,
        &AuthorizationCreate { user_id: "bench_user".into(), policy_id, ..Default::default() },
    )?;
    let request = CheckRequest {
        authorization_id: auth.authorization_id,
        actions: vec!["docs.read".into()],
        context: Some(json!({"recipient_domain": "example.com"})),
        ..Default::default()
    };
    let api: &dyn Api = &engine;
    for _ in 0..calls.min(500) {
        api.check(&request)?;
    }
    let mut samples = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        let one = Instant::now();
        let answer = api.check(&request)?;
        samples.push(one.elapsed().as_nanos() as f64 / 1000.0);
        if answer.results.get("docs.read").map(|r| r.reason.as_str()) != Some("authorization_granted_action_active") {
            return Err("unexpected decision".into());
        }
    }
    let total = started.elapsed().as_secs_f64();
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples.get(((samples.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
    let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
    println!(
        "{}",
        json!({"calls": calls, "mean_us": mean, "p50_us": at(0.5), "p99_us": at(0.99), "calls_per_second": calls as f64 / total})
    );
    Ok(())
}
