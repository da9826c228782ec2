//! The Rust half of the C-vs-Rust check benchmark (`scripts/c-bench.sh` runs it alternately with
//! `bench/check_c.c`): the same embedded check, on the same policy and request, called from Rust
//! through `allowly_core::api::Api::check`. Prints `rust_check_1 median_ns=<n>` and
//! `rust_check_2 median_ns=<n>` (the second loop matches the C bench's second, typed loop).
//!
//! Usage: `check_rust <policy.json> <home dir> <checks>` (cargo bench's own `--bench` is ignored).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use allowly_core::api::Api;
use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::policy::Decision;
use allowly_core::Allowly;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.len() < 3 {
        eprintln!("usage: check_rust <policy.json> <home dir> <checks>");
        std::process::exit(2);
    }
    let policy: serde_json::Value = serde_json::from_slice(&std::fs::read(&args[0]).unwrap()).unwrap();
    let checks: usize = args[2].parse().unwrap();
    let engine = Allowly::open_embedded(&args[1]).unwrap();
    let api: &dyn Api = &engine;
    api.create_policy(&policy).unwrap();
    let authorization_id = api
        .create_authorization(&AuthorizationCreate {
            user_id: "bench_user".into(),
            policy_id: "bench".into(),
            ..Default::default()
        })
        .unwrap()
        .authorization_id;
    let request = CheckRequest {
        authorization_id,
        actions: vec!["email.send".into()],
        context: Some(serde_json::json!({"recipient_domain": "example.com"})),
        ..Default::default()
    };
    // Two timed loops, like bench/check_c.c (its JSON loop, then its typed loop), so both sides
    // meet the same store size at the same point.
    for label in ["rust_check_1", "rust_check_2"] {
        let mut samples = Vec::with_capacity(checks);
        for i in 0..checks + checks / 10 {
            let start = Instant::now();
            let response = api.check_or_fallback(&request).unwrap();
            let elapsed = start.elapsed().as_nanos();
            assert_eq!(response.results.get("email.send").map(|r| r.decision), Some(Decision::Allow));
            if i >= checks / 10 {
                samples.push(elapsed);
            }
        }
        samples.sort_unstable();
        println!("{label} median_ns={} n={}", samples[samples.len() / 2], samples.len());
    }
}
