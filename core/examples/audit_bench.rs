//! Benchmark of the audit lookup (`GET /v1/receipts`, [`Allowly::list_receipts`]) on a large store.
//!
//! ```text
//! cargo run --release --locked -p allowly-core --example audit_bench -- sqlite FILE [RECEIPTS]
//! cargo run --release --locked -p allowly-core --example audit_bench -- postgres URL [RECEIPTS]
//! ```
//!
//! Fills a fresh store (a SQLite file that must not exist yet, or a new workspace of the PostgreSQL
//! database at URL) with RECEIPTS (default 1,000,000) real signed receipts, then times filtered
//! pages of 50 (the console's page) through the engine, one line per filter shape with p50, p99 and
//! max, and an overall PASS/FAIL against p99 < 50 ms; then times the console's Overview (a month
//! of receipts counted). `scripts/bench-audit.sh` runs it on both.
//!
//! The fill skips the decision logic but not the receipts: an engine creates the workspace, its
//! signing key and four policies; the receipts are then signed with that key over canonical
//! payloads holding the members the engine writes (`canonical_payload` in `core/src/engine/mod.rs`)
//! and stored with [`Tx::put_receipt`] 2,000 per transaction, their facts taken from the same
//! values. A sample is verified against the workspace's key document before the queries run.
//!
//! Distribution: 2,000 users, 5,000 authorizations (each with its `authorization.create` receipt),
//! 4 agents with 3 actions each, decisions 80% allow, 10% deny, 7% confirm, 3% escalate with a few
//! reasons each, issued over 90 days and written in issue order as a live workspace would.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use allowly_core::canonical::canonical_sha256_hex;
use allowly_core::model::{ReceiptFacts, StoredReceipt};
use allowly_core::ops::{ListReceipts, PageArgs, VerifyReceipts};
use allowly_core::policy::PolicyRef;
use allowly_core::receipt::{decode_receipt, ReceiptSigner, SCHEMA_VERSION};
use allowly_core::store::{Durability, SqliteStore, Store, Tx};
use allowly_core::{engine::engine_version, Allowly, ManualClock, Options, Timestamp};
use serde_json::{json, Map, Value};

type AnyError = Box<dyn std::error::Error + Send + Sync>;
type AnyResult<T> = Result<T, AnyError>;

const USAGE: &str = "usage: audit_bench (sqlite FILE | postgres URL) [RECEIPTS]";
/// Receipts per write transaction.
const BATCH: usize = 2_000;
/// Queries per filter shape, and the page size of each (the console's).
const QUERIES: usize = 200;
/// Overviews timed (each counts a month of receipts).
const OVERVIEWS: usize = 5;
const PAGE: usize = 50;
const TARGET_P99_MS: f64 = 50.0;

const USERS: usize = 2_000;
const AUTHORIZATIONS: usize = 5_000;
const DAYS: i64 = 90;
const DAY_MS: i64 = 86_400_000;
/// Day 0 of the 90; the workspace's key is active from here.
const START: &str = "2026-01-05T00:00:00.000Z";

/// Each agent's policy and its three actions (twelve in all).
const AGENTS: [(&str, [&str; 3]); 4] = [
    ("support_bot", ["email.send", "ticket.reply", "calendar.invite"]),
    ("billing_bot", ["refund.issue", "invoice.send", "payment.retry"]),
    ("sales_bot", ["crm.read", "crm.update", "quote.send"]),
    ("ops_bot", ["account.delete", "search.web", "report.export"]),
];

const DECISIONS: [&str; 4] = ["allow", "deny", "confirm", "escalate"];

/// Reasons of a decision with their weights (out of 100), and whether the policy was evaluated
/// (a guard that denies first leaves no `policy_eval`).
struct Reason {
    reason: &'static str,
    weight: u64,
    evaluated: bool,
}

const fn reason(reason: &'static str, weight: u64, evaluated: bool) -> Reason {
    Reason { reason, weight, evaluated }
}

/// Per decision: its share of the decisions (out of 100) and its reasons (names as the engine
/// writes them, `core/src/engine/check.rs`).
const REASONS: [(&str, u64, &[Reason]); 4] = [
    (
        "allow",
        80,
        &[
            reason("authorization_granted_action_active", 94, true),
            reason("user_confirmed", 4, true),
            reason("escalation_approved", 2, true),
        ],
    ),
    (
        "deny",
        10,
        &[
            reason("action_denied_by_policy", 40, true),
            reason("deny_condition_matched", 25, true),
            reason("rate_limited", 15, false),
            reason("action_not_in_authorization", 10, false),
            reason("budget_exceeded", 5, true),
            reason("authorization_expired", 5, false),
        ],
    ),
    (
        "confirm",
        7,
        &[
            reason("action_requires_user_confirmation", 60, true),
            reason("condition_requires_user_confirmation", 40, true),
        ],
    ),
    ("escalate", 3, &[reason("escalation_required", 70, true), reason("escalate_condition_matched", 30, true)]),
];

/// A filter shape: a request with random values.
type Shape<'a> = dyn Fn(&mut Rng) -> ListReceipts + 'a;

/// SplitMix64: reproducible runs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

/// An engine and a filler share one store (one SQLite connection, one PostgreSQL pool).
struct Shared(Arc<dyn Store>);

impl Store for Shared {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> allowly_core::Result<()>) -> allowly_core::Result<()> {
        self.0.write(work)
    }
    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> allowly_core::Result<()>) -> allowly_core::Result<()> {
        self.0.read(work)
    }
    fn write_each(
        &self,
        count: usize,
        work: &mut dyn FnMut(usize, &mut dyn Tx) -> allowly_core::Result<()>,
    ) -> Vec<allowly_core::Result<()>> {
        self.0.write_each(count, work)
    }
}

/// Where the receipts go.
enum Target {
    Sqlite(PathBuf),
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres(String),
}

struct Authorization {
    id: String,
    user: String,
    agent: usize,
    policy_ref: PolicyRef,
    created_at: i64,
}

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, kind, location, rest @ ..] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let count: usize = match rest.first() {
        Some(n) => n.replace(['_', ','], "").parse().map_err(|_| format!("RECEIPTS must be a count: {n}"))?,
        None => 1_000_000,
    };
    if count == 0 {
        return Err("RECEIPTS must be at least 1".into());
    }
    let target = match kind.as_str() {
        "sqlite" => Target::Sqlite(PathBuf::from(location)),
        "postgres" => Target::Postgres(location.clone()),
        _ => return Err(USAGE.into()),
    };
    let start = Timestamp::parse(START).ok_or("bad START")?;
    let end = start.plus_days(DAYS);
    let clock = Arc::new(ManualClock::new(start));
    let (store, options) = open(&target)?;
    let engine = Allowly::with_store(Box::new(Shared(store.clone())), Box::new(clock.clone()), options)?;
    println!(
        "audit_bench: {} store, workspace {}, {count} receipts over {DAYS} days",
        match target {
            Target::Sqlite(_) => "SQLite",
            Target::Postgres(_) => "PostgreSQL",
        },
        engine.workspace_id()
    );

    // Four policies, created by the engine, so every receipt names a real edition.
    let mut policy_refs = Vec::new();
    for (agent, actions) in AGENTS {
        let created = engine.create_policy(&policy(agent, &actions))?;
        policy_refs.push(created.policy_ref);
    }

    let mut rng = Rng(0x00A1_10E1_7B5E_ED01);
    // Fewer authorizations than 5,000 only for tiny runs, so most receipts stay decisions.
    let authorization_count = AUTHORIZATIONS.min(count.div_ceil(4)).max(1);
    let authorizations = authorizations(authorization_count, start, &policy_refs, &mut rng)?;

    // Every receipt's instant and subject (an authorization's creation or one of its decisions),
    // in issue order: receipts are written in the order a live workspace issues them.
    let decisions = count.saturating_sub(authorizations.len());
    let mut schedule: Vec<(i64, u32, bool)> = Vec::with_capacity(count);
    for (n, authorization) in authorizations.iter().enumerate().take(count) {
        schedule.push((authorization.created_at, n as u32, false));
    }
    for _ in 0..decisions {
        let n = rng.index(authorizations.len());
        let from = authorizations[n].created_at + 1;
        let at = from + rng.below((end.millis() - from) as u64) as i64;
        schedule.push((at, n as u32, true));
    }
    schedule.sort_unstable();

    let key = {
        let mut found = None;
        store.read(&mut |tx| {
            found = tx.signing_keys()?.into_iter().find(|key| key.active_until.is_none());
            Ok(())
        })?;
        found.ok_or("the workspace has no active key")?
    };
    let workspace_id = engine.workspace_id().to_string();

    // Signing on one thread, writing on this one.
    let filled = Instant::now();
    let mut writing = Duration::ZERO;
    std::thread::scope(|scope| -> AnyResult<()> {
        let (send, receive) = sync_channel::<Vec<StoredReceipt>>(4);
        let schedule = &schedule;
        let authorizations = &authorizations;
        let workspace_id = workspace_id.as_str();
        let signer = ReceiptSigner::new(&key.key_id, &key.secret_key);
        let producer = scope.spawn(move || -> AnyResult<()> {
            let mut rng = Rng(0x0005_EED0_FA0D);
            for chunk in schedule.chunks(BATCH) {
                let mut batch = Vec::with_capacity(chunk.len());
                for &(at, n, decision) in chunk {
                    let authorization = &authorizations[n as usize];
                    batch.push(receipt(&signer, workspace_id, authorization, Timestamp(at), decision, &mut rng)?);
                }
                if send.send(batch).is_err() {
                    break; // the writer stopped; its error is the one reported
                }
            }
            Ok(())
        });
        let mut written = 0usize;
        let mut next_report = count / 10;
        let mut outcome = Ok(());
        for batch in receive {
            let began = Instant::now();
            outcome = store.write(&mut |tx| {
                for stored in &batch {
                    tx.put_receipt(stored)?;
                }
                Ok(())
            });
            writing += began.elapsed();
            if outcome.is_err() {
                break;
            }
            written += batch.len();
            if written >= next_report && written < count {
                let seconds = filled.elapsed().as_secs_f64();
                println!("  filled {written:>9} ({:>7.0} receipts/s)", written as f64 / seconds);
                next_report += count / 10;
            }
        }
        let produced = producer.join().map_err(|_| "the signing thread panicked")?;
        outcome?;
        produced
    })?;
    let seconds = filled.elapsed().as_secs_f64();
    println!(
        "filled {count} receipts in {seconds:.1} s: {:.0} receipts/s, {:.2} s per 10,000 ({:.1} s of it in store writes)",
        count as f64 / seconds,
        seconds * 10_000.0 / count as f64,
        writing.as_secs_f64()
    );
    clock.set(end);
    settle(&target)?;
    check_sample(&engine, &authorizations)?;

    let mut rng = Rng(0x0A0D_17BE_7C40);
    let mut all = Vec::new();
    // The shapes whose own p99 misses the target (the pooled p99 can hide a rare slow shape).
    let mut over = Vec::new();
    println!(
        "\n{:<38} {:>7} {:>8} {:>8} {:>8} {:>10}",
        "filter (limit 50, random values)", "queries", "p50 ms", "p99 ms", "max ms", "avg items"
    );
    let users: Vec<&str> = authorizations.iter().map(|a| a.user.as_str()).collect();
    let reasons: Vec<&str> = REASONS
        .iter()
        .flat_map(|(_, _, reasons)| reasons.iter().map(|r| r.reason))
        .chain(["authorization_created"])
        .collect();
    let actions: Vec<&str> = AGENTS.iter().flat_map(|(_, actions)| actions.iter().copied()).collect();
    let shapes: [(&str, &Shape); 11] = [
        ("user", &|rng| ListReceipts { user_id: Some(rng.pick(&users).to_string()), ..page(None) }),
        ("user + action", &|rng| {
            let authorization = rng.pick(&authorizations);
            ListReceipts {
                user_id: Some(authorization.user.clone()),
                action: Some(rng.pick(&AGENTS[authorization.agent].1).to_string()),
                ..page(None)
            }
        }),
        ("decision = deny", &|_| ListReceipts { decision: Some("deny".into()), ..page(None) }),
        ("authorization", &|rng| ListReceipts {
            authorization_id: Some(rng.pick(&authorizations).id.clone()),
            ..page(None)
        }),
        ("action, 1-day since/until window", &|rng| {
            let since = start.plus_days(rng.below(DAYS as u64) as i64);
            ListReceipts {
                action: Some(rng.pick(&actions).to_string()),
                since: Some(since.to_string()),
                until: Some(since.plus_days(1).to_string()),
                ..page(None)
            }
        }),
        ("reason (any of 14, uniformly)", &|rng| ListReceipts {
            reason: Some(rng.pick(&reasons).to_string()),
            ..page(None)
        }),
        ("agent + decision", &|rng| ListReceipts {
            agent_id: Some(rng.pick(&AGENTS).0.to_string()),
            decision: Some(rng.pick(&DECISIONS).to_string()),
            ..page(None)
        }),
        ("no filter", &|_| page(None)),
        // No index of their own since schema version 3: a walk of the newest receipts.
        ("action", &|rng| ListReceipts { action: Some(rng.pick(&actions).to_string()), ..page(None) }),
        ("agent", &|rng| ListReceipts { agent_id: Some(rng.pick(&AGENTS).0.to_string()), ..page(None) }),
        ("decision = escalate (3%)", &|_| ListReceipts { decision: Some("escalate".into()), ..page(None) }),
    ];
    for (label, shape) in shapes {
        let mut times = Vec::with_capacity(QUERIES);
        let mut items = 0usize;
        for _ in 0..QUERIES {
            let request = shape(&mut rng);
            let began = Instant::now();
            let answer = engine.list_receipts(&request)?;
            times.push(began.elapsed());
            items += answer.items.len();
        }
        over.extend(report(label, &mut times, items, ""));
        all.extend(times);
    }

    // Page 2 of a user's receipts: the cursor is page 1's last receipt. A user with under 51
    // receipts (small runs) has no page 2; the cursor is then the newest receipt of page 1, so the
    // same statement (a cursor on the user filter) is still what is timed.
    let mut times = Vec::with_capacity(QUERIES);
    let (mut items, mut short) = (0usize, 0usize);
    for _ in 0..QUERIES {
        let first = ListReceipts { user_id: Some(rng.pick(&users).to_string()), ..page(None) };
        let answer = engine.list_receipts(&first)?;
        let cursor = match (&answer.next_cursor, answer.items.first()) {
            (Some(cursor), _) => cursor.clone(),
            (None, Some(newest)) => {
                short += 1;
                newest.receipt_id.clone()
            }
            (None, None) => return Err("a user has no receipts".into()),
        };
        let request = ListReceipts { page: PageArgs::new(PAGE, Some(&cursor)), ..first };
        let began = Instant::now();
        let answer = engine.list_receipts(&request)?;
        times.push(began.elapsed());
        items += answer.items.len();
    }
    let note =
        if short > 0 { format!("  ({short} users had no page 2: cursor at their newest)") } else { String::new() };
    over.extend(report("user, page 2 (cursor)", &mut times, items, &note));
    all.extend(times);

    // The console's Overview: one grouped count of the last 30 days, the approvals, the budgets.
    let mut times = Vec::with_capacity(OVERVIEWS);
    for _ in 0..OVERVIEWS {
        let began = Instant::now();
        let overview = engine.overview()?;
        times.push(began.elapsed());
        if overview.days.iter().all(|day| day.total() == 0) {
            return Err("the overview counted nothing".into());
        }
    }
    times.sort();
    println!(
        "overview (30 days of {DAYS}), {OVERVIEWS} runs: p50 {:.1} ms, max {:.1} ms (not in the target)",
        ms(percentile(&times, 0.50)),
        ms(times.last().copied().unwrap_or_default())
    );

    all.sort();
    let p99 = ms(percentile(&all, 0.99));
    println!(
        "{:<38} {:>7} {:>8.2} {:>8.2} {:>8.2}",
        "all shapes",
        all.len(),
        ms(percentile(&all, 0.50)),
        p99,
        ms(all.last().copied().unwrap_or_default())
    );
    println!(
        "{}: p99 {p99:.2} ms against the target p99 < {TARGET_P99_MS} ms ({count} receipts)",
        if p99 < TARGET_P99_MS { "PASS" } else { "FAIL" }
    );
    if !over.is_empty() {
        println!("shapes over the target on their own: {}", over.join(", "));
    }
    if let Target::Sqlite(path) = &target {
        let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        println!("store file: {:.1} MB (WAL {:.1} MB)", size(path), size(&wal));
    }
    Ok(())
}

/// The store, and the engine options it needs.
fn open(target: &Target) -> AnyResult<(Arc<dyn Store>, Options)> {
    match target {
        Target::Sqlite(path) => {
            if path.exists() {
                return Err(format!("{} exists: the benchmark fills a fresh store", path.display()).into());
            }
            Ok((Arc::new(SqliteStore::open(path, Durability::Process)?), Options::default()))
        }
        #[cfg(feature = "postgres")]
        Target::Postgres(url) => {
            use allowly_core::store::{PostgresOptions, PostgresPool, PostgresStore};
            let pool = PostgresPool::connect(url, PostgresOptions { pool_size: 4, ..PostgresOptions::default() })?;
            let workspace_id = new_id("ws_audit_bench_", Timestamp::now())?;
            let store = PostgresStore::for_workspace(&pool, &workspace_id)?;
            Ok((Arc::new(store), Options { workspace_id: Some(workspace_id), ..Options::default() }))
        }
        #[cfg(not(feature = "postgres"))]
        Target::Postgres(_) => Err("built without the `postgres` feature".into()),
    }
}

/// After the fill: PostgreSQL's planner statistics are refreshed, as autovacuum does after a bulk
/// of inserts (a live workspace that grew to this size has them); reports the table's size. The
/// SQLite store never runs ANALYZE, so neither does this.
fn settle(target: &Target) -> AnyResult<()> {
    match target {
        Target::Sqlite(_) => Ok(()),
        #[cfg(feature = "postgres")]
        Target::Postgres(url) => {
            let began = Instant::now();
            let mut client = postgres::Client::connect(url, postgres::NoTls)?;
            client.batch_execute("ANALYZE allowly.receipts")?;
            let row = client
                .query_one("SELECT pg_table_size('allowly.receipts'), pg_indexes_size('allowly.receipts')", &[])?;
            let (table, indexes): (i64, i64) = (row.get(0), row.get(1));
            println!(
                "ANALYZE allowly.receipts ({:.1} s); table {:.1} MB, indexes {:.1} MB (all workspaces of the database)",
                began.elapsed().as_secs_f64(),
                table as f64 / 1e6,
                indexes as f64 / 1e6
            );
            Ok(())
        }
        #[cfg(not(feature = "postgres"))]
        Target::Postgres(_) => Err("built without the `postgres` feature".into()),
    }
}

fn policy(agent: &str, actions: &[&str; 3]) -> Value {
    let actions: Vec<Value> = actions
        .iter()
        .map(|action| {
            json!({"policy": {"profile": "allowly.basic.v1", "action": action, "decision": "allow",
                              "target": null, "fields": {}, "rules": []},
                   "guards": {}, "executable_operations": []})
        })
        .collect();
    json!({"policy_id": agent, "profile": "allowly.policy.v1", "agent_id": agent, "default_expiry_days": 90,
           "actions": actions})
}

/// Authorizations spread over users (every user has one once there are 2,000) and agents, created
/// over the first 30 days.
fn authorizations(
    count: usize,
    start: Timestamp,
    policy_refs: &[PolicyRef],
    rng: &mut Rng,
) -> AnyResult<Vec<Authorization>> {
    (0..count)
        .map(|n| {
            let created_at = start.millis() + 60_000 + rng.below(30 * DAY_MS as u64) as i64;
            let agent = rng.index(AGENTS.len());
            Ok(Authorization {
                id: new_id("auth_", Timestamp(created_at))?,
                user: format!("user_{:04}", n % USERS),
                agent,
                policy_ref: policy_refs[agent].clone(),
                created_at,
            })
        })
        .collect()
}

/// Picks by weight.
fn weighted<'a, T>(rng: &mut Rng, items: &'a [T], weight: impl Fn(&T) -> u64) -> &'a T {
    let total: u64 = items.iter().map(&weight).sum();
    let mut roll = rng.below(total);
    for item in items {
        if roll < weight(item) {
            return item;
        }
        roll -= weight(item);
    }
    &items[items.len() - 1]
}

/// One signed receipt: a decision of `authorization` at `at`, or its creation.
fn receipt(
    signer: &ReceiptSigner,
    workspace_id: &str,
    authorization: &Authorization,
    at: Timestamp,
    decision: bool,
    rng: &mut Rng,
) -> AnyResult<StoredReceipt> {
    let receipt_id = new_id("rcp_", at)?;
    let (agent_id, agent_actions) = AGENTS[authorization.agent];
    let policy_ref = &authorization.policy_ref;
    let mut payload = Map::new();
    let facts = if decision {
        let (outcome, _, reasons) = weighted(rng, &REASONS, |(_, weight, _)| *weight);
        let why = weighted(rng, reasons, |r| r.weight);
        let action = *rng.pick(&agent_actions);
        let mut context = json!({
            "initiated_by": if rng.below(4) == 0 { "agent" } else { "user" },
            "session_id": format!("ses_{:06}", rng.below(1_000_000)),
            "request_n": rng.below(10_000),
        });
        if why.reason.starts_with("escalat") {
            let event = if *outcome == "escalate" { "requested" } else { "consumed" };
            context["escalation"] = json!({
                "id": new_id("esc_", at)?, "event": event,
                "status": if event == "requested" { "pending" } else { "approved" }, "action": action,
                "escalation_to": "member:finance_lead",
                "resolved_by": if event == "requested" { Value::Null } else { json!("member:finance_lead") },
            });
        }
        if why.evaluated {
            let rule = why.reason.contains("condition").then(|| format!("{}-rule", action.replace('.', "-")));
            // What the policy said (a confirmed or approved allow was a prompt first).
            let (evaluated, target) = match (*outcome, why.reason) {
                ("confirm", _) | (_, "user_confirmed") => ("confirm", json!("agent_owner")),
                ("escalate", _) | (_, "escalation_approved") => ("escalate", json!("member:finance_lead")),
                ("deny", reason) if reason != "budget_exceeded" => ("deny", Value::Null),
                _ => ("allow", Value::Null),
            };
            // Only a matched rule names the fields it tested.
            let fields = if rule.is_some() { json!({"request_n": context["request_n"]}) } else { json!({}) };
            let input_sha256 = canonical_sha256_hex(&context)?;
            payload.insert(
                "policy_eval".into(),
                json!({"input_sha256": input_sha256, "result": {
                    "profile": "allowly.basic.v1", "status": "ok", "decision": evaluated, "target": target,
                    "matched_rule_id": rule, "evaluated_fields": fields}}),
            );
        }
        let resource = action.starts_with("crm.").then(|| format!("crm/contact/{}", rng.below(50_000)));
        payload.insert("action".into(), json!(action));
        payload.insert("context".into(), context);
        payload.insert("resource".into(), json!(resource));
        ReceiptFacts {
            user_id: authorization.user.clone(),
            agent_id: agent_id.into(),
            action: Some(action.into()),
            event: None,
            decision: (*outcome).into(),
            reason: why.reason.into(),
        }
    } else {
        payload.insert("event".into(), json!("authorization.create"));
        payload.insert(
            "context".into(),
            json!({"actions": agent_actions, "expires_at": Timestamp(authorization.created_at).plus_days(90).to_string(),
                   "budget_limit_micros": null, "replaces": null, "source": "allowly.embedded"}),
        );
        payload.insert("resource".into(), Value::Null);
        ReceiptFacts {
            user_id: authorization.user.clone(),
            agent_id: agent_id.into(),
            action: None,
            event: Some("authorization.create".into()),
            decision: "authorization_granted".into(),
            reason: "authorization_created".into(),
        }
    };
    for (name, value) in [
        ("agent_id", json!(facts.agent_id)),
        ("authorization_id", json!(authorization.id)),
        ("decision", json!(facts.decision)),
        ("engine_version", json!(engine_version())),
        ("issued_at", json!(at.to_string())),
        ("policy_ref", serde_json::to_value(policy_ref)?),
        ("reason", json!(facts.reason)),
        ("receipt_id", json!(receipt_id)),
        ("schema_version", json!(SCHEMA_VERSION)),
        ("user_id", json!(facts.user_id)),
        ("workspace_id", json!(workspace_id)),
    ] {
        payload.insert(name.into(), value);
    }
    Ok(StoredReceipt {
        receipt_id,
        issued_at: at,
        authorization_id: Some(authorization.id.clone()),
        is_checkpoint: false,
        facts,
        receipt: signer.sign(&Value::Object(payload))?,
    })
}

/// Verifies a sample against the workspace's own keys (the newest receipts, and the
/// `authorization.create` receipts of ten authorizations), and checks that the listed facts are
/// those of each payload.
fn check_sample(engine: &Allowly, authorizations: &[Authorization]) -> AnyResult<()> {
    let mut requests = vec![page(None)];
    for authorization in authorizations.iter().take(10) {
        requests.push(ListReceipts {
            authorization_id: Some(authorization.id.clone()),
            until: Some(Timestamp(authorization.created_at + 1).to_string()),
            ..page(None)
        });
    }
    let (mut checked, mut lifecycle) = (0, 0);
    for request in requests {
        for item in engine.list_receipts(&request)?.items {
            let report =
                engine.verify_receipts(&VerifyReceipts { input: item.receipt.to_value(), ..Default::default() })?;
            if !report.valid {
                return Err(format!("receipt {} does not verify: {:?}", item.receipt_id, report.receipts).into());
            }
            let facts = ReceiptFacts::of_payload(&decode_receipt(&item.receipt.to_value())?);
            let listed = ReceiptFacts {
                user_id: item.user_id.clone(),
                agent_id: item.agent_id.clone(),
                action: item.action.clone(),
                event: item.event.clone(),
                decision: item.decision.clone(),
                reason: item.reason.clone(),
            };
            if facts != listed {
                return Err(format!("receipt {}: stored facts {listed:?}, payload {facts:?}", item.receipt_id).into());
            }
            checked += 1;
            lifecycle += usize::from(item.event.is_some());
        }
    }
    if lifecycle != authorizations.len().min(10) {
        return Err(format!(
            "found {lifecycle} authorization.create receipts of {} authorizations",
            authorizations.len().min(10)
        )
        .into());
    }
    println!(
        "verified {checked} sampled receipts ({lifecycle} lifecycle) against the workspace's key document; facts match"
    );
    Ok(())
}

/// A fresh `prefix` id (ULID) at `at`.
fn new_id(prefix: &str, at: Timestamp) -> AnyResult<String> {
    allowly_core::ids::new_id(prefix, at).map_err(|err| format!("no random bytes: {err}").into())
}

fn page(cursor: Option<&str>) -> ListReceipts {
    ListReceipts { page: PageArgs::new(PAGE, cursor), ..Default::default() }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted times.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Prints a shape's line; returns `label (p99 ...)` when its p99 misses the target.
fn report(label: &str, times: &mut [Duration], items: usize, note: &str) -> Option<String> {
    times.sort();
    let p99 = ms(percentile(times, 0.99));
    println!(
        "{label:<38} {:>7} {:>8.2} {p99:>8.2} {:>8.2} {:>10.1}{}{note}",
        times.len(),
        ms(percentile(times, 0.50)),
        ms(times.last().copied().unwrap_or_default()),
        items as f64 / times.len().max(1) as f64,
        if p99 < TARGET_P99_MS { "" } else { "  <- over target" }
    );
    (p99 >= TARGET_P99_MS).then(|| format!("{label} (p99 {p99:.1} ms)"))
}
