//! The cost of one signed check on the SQLite store, for instruction counts that machine noise does
//! not change (`valgrind --tool=callgrind`) and for comparing schema variants on the same file.
//!
//! ```text
//! cargo run --release --locked -p allowly-core --example check_cost -- setup FILE
//! valgrind --tool=callgrind target/release/examples/check_cost run FILE 2000
//! ```
//!
//! `setup` creates FILE (a SQLite store with one policy and one authorization, as `core/benches`
//! uses); `run` opens it and makes N checks of that authorization, each its own transaction, and
//! prints the wall time per check. Run twice with different N and subtract: what is left is N
//! checks without the opening costs.

use std::path::Path;
use std::time::Instant;

use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::store::{Durability, SqliteStore};
use allowly_core::{Allowly, Options, SystemClock};
use serde_json::json;

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const USAGE: &str = "usage: check_cost (setup FILE | run FILE CHECKS)";

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, file] if mode == "setup" => setup(Path::new(file)),
        [mode, file, checks] if mode == "run" => run(Path::new(file), checks.parse()?),
        _ => Err(USAGE.into()),
    }
}

fn engine(file: &Path) -> AnyResult<Allowly> {
    let store = SqliteStore::open(file, Durability::Process)?;
    Ok(Allowly::with_store(Box::new(store), Box::new(SystemClock), Options::default())?)
}

fn setup(file: &Path) -> AnyResult<()> {
    let engine = engine(file)?;
    engine.create_policy(&json!({
        "policy_id": "cost",
        "agent_id": "cost_agent",
        "default_expiry_days": 3650,
        "actions": [{
            "policy": {"action": "email.send", "decision": "allow", "fields": {"risk": "integer"},
                       "rules": [{"id": "risky", "decision": "deny",
                                  "conditions": [{"field": "risk", "op": "gte", "value": 9}]}]},
            "guards": {"resource_pattern": "mailbox/*"}
        }]
    }))?;
    let authorization = engine.create_authorization(&AuthorizationCreate {
        user_id: "u".into(),
        policy_id: "cost".into(),
        ..Default::default()
    })?;
    println!("{}", authorization.authorization_id);
    Ok(())
}

fn run(file: &Path, checks: usize) -> AnyResult<()> {
    let engine = engine(file)?;
    let authorization_id = engine
        .list_authorizations(&Default::default())?
        .items
        .first()
        .ok_or("run setup first")?
        .authorization_id
        .clone();
    let request = CheckRequest {
        authorization_id,
        actions: vec!["email.send".into()],
        resource: Some("mailbox/1".into()),
        context: Some(json!({"risk": 2})),
        ..Default::default()
    };
    let start = Instant::now();
    for _ in 0..checks {
        engine.check(&request)?;
    }
    println!("{:.1} µs per check", start.elapsed().as_secs_f64() * 1e6 / checks.max(1) as f64);
    Ok(())
}
