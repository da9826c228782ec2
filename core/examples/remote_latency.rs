//! Latency of `check` through this project's remote client (`allowly_core::connect`) against a
//! running `allowly serve`: CALLS checks one after another on one client (connection reuse),
//! after a warm-up; prints mean, p50, p99 and calls per second as JSON.
//!
//! ```text
//! cargo run --release -p allowly-core --example remote_latency -- BASE_URL RUNTIME_KEY AUTHORIZATION_ID ACTION [CALLS]
//! ```

use std::time::{Duration, Instant};

use allowly_core::model::CheckRequest;
use allowly_core::RemoteOptions;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let [_, base_url, key, authorization_id, action, rest @ ..] = args.as_slice() else {
        return Err("usage: remote_latency BASE_URL RUNTIME_KEY AUTHORIZATION_ID ACTION [CALLS]".into());
    };
    let calls: usize = rest.first().map(|n| n.parse()).transpose()?.unwrap_or(2000);
    let client = allowly_core::connect(base_url, key, RemoteOptions::default())?;
    let request = CheckRequest {
        authorization_id: authorization_id.clone(),
        actions: vec![action.clone()],
        ..Default::default()
    };
    for _ in 0..calls / 10 {
        client.check_or_fallback(&request)?;
    }
    let mut latencies = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        let call = Instant::now();
        let answer = client.check_or_fallback(&request)?;
        latencies.push(call.elapsed());
        if answer.results.iter().any(|(_, result)| result.is_fallback) {
            return Err("the server did not answer (fallback result)".into());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let mean = latencies.iter().sum::<Duration>() / calls.max(1) as u32;
    println!(
        "{}",
        serde_json::json!({
            "client": "allowly-core remote client (Rust)",
            "calls": calls,
            "mean_ms": ms(mean),
            "p50_ms": ms(at(0.5)),
            "p99_ms": ms(at(0.99)),
            "calls_per_second": calls as f64 / elapsed,
        })
    );
    Ok(())
}
