//! End-to-end tests of the `allowly` binary on a temporary data directory.

// Test code: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_allowly");

/// A fresh workspace directory and helpers to run the binary on it.
struct Workspace {
    dir: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

impl Workspace {
    fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Runs `allowly --home HOME ARGS...` (without --home for `verify`, which takes none).
    fn run(&self, args: &[&str]) -> Run {
        let mut command = Command::new(BIN);
        if args.iter().find(|arg| !arg.starts_with("--")) != Some(&"verify") {
            command.arg("--home").arg(self.home());
        }
        let output: Output = command.args(args).env_remove("ALLOWLY_HOME").output().expect("run allowly");
        Run {
            code: output.status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs with `--json` and expects exit code `code`.
    fn json(&self, args: &[&str], code: i32) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        assert_eq!(run.code, code, "allowly {args:?}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        run.json()
    }

    fn init(&self) -> Value {
        self.json(&["init"], 0)
    }

    fn apply_support_policy(&self) -> Value {
        let file = self.write("policy.json", &support_policy().to_string());
        self.json(&["policies", "apply", file.to_str().expect("utf-8 path")], 0)
    }

    fn receipt_count(&self) -> usize {
        let listed = self.json(&["receipts", "show", "--limit", "1000"], 0);
        listed["items"].as_array().expect("items").len()
    }
}

fn basic(action: &str, decision: &str, target: Value, fields: Value, rules: Value) -> Value {
    json!({
        "policy": {
            "profile": "allowly.basic.v1", "action": action, "decision": decision, "target": target,
            "fields": fields, "rules": rules,
        },
        "guards": {},
        "executable_operations": [],
    })
}

/// One policy that yields every decision: allow, confirm (external recipients), escalate, deny,
/// and a plain action for budgeted checks.
fn support_policy() -> Value {
    json!({
        "policy_id": "support-agent",
        "description": "support bot",
        "profile": "allowly.policy.v1",
        "agent_id": "support-bot",
        "default_expiry_days": 30,
        "actions": [
            basic("email.send", "allow", Value::Null, json!({"recipient_domain": "string"}), json!([{
                "id": "external-recipient", "decision": "confirm", "target": "agent_owner",
                "conditions": [{"field": "recipient_domain", "op": "ne", "value": "example.com"}],
            }])),
            basic("refund.issue", "escalate", json!("member:finance_lead"), json!({}), json!([])),
            basic("account.delete", "deny", Value::Null, json!({}), json!([])),
            basic("llm.call", "allow", Value::Null, json!({}), json!([])),
        ],
    })
}

fn result<'a>(response: &'a Value, action: &str) -> &'a Value {
    let found = &response["results"][action];
    assert!(found.is_object(), "no result for {action} in {response}");
    found
}

fn decision_and_reason(response: &Value, action: &str) -> (String, String) {
    let r = result(response, action);
    (r["decision"].as_str().unwrap_or("").to_string(), r["reason"].as_str().unwrap_or("").to_string())
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn quickstart_flow_decides_records_and_verifies() {
    let ws = Workspace::new();
    let init = ws.init();
    let workspace_id = init["workspace_id"].as_str().expect("workspace id").to_string();
    assert!(workspace_id.starts_with("ws_"), "{init}");
    assert_eq!(init["created"], true);
    let fingerprint = init["public_key_fingerprint"].as_str().expect("fingerprint").to_string();
    assert!(fingerprint.starts_with("sha256:") && fingerprint.len() == 71, "{fingerprint}");
    // A second init reuses the workspace and its key.
    let again = ws.init();
    assert_eq!(again["workspace_id"], init["workspace_id"]);
    assert_eq!(again["created"], false);
    assert_eq!(again["public_key_fingerprint"], init["public_key_fingerprint"]);

    let policy = ws.apply_support_policy();
    assert_eq!(policy["policy_ref"]["policy_id"], "support-agent");
    assert_eq!(policy["policy_ref"]["policy_version"], 1);
    assert_eq!(policy["definition"]["agent_id"], "support-bot");

    let created = ws.json(
        &[
            "authorizations",
            "create",
            "--user-id",
            "user_42",
            "--policy-id",
            "support-agent",
            "--budget-limit-micros",
            "50000000",
        ],
        0,
    );
    let auth = created["authorization_id"].as_str().expect("authorization id").to_string();
    assert!(auth.starts_with("auth_"), "{created}");
    assert_eq!(created["budget_limit_micros"], 50_000_000);
    assert_eq!(created["actions"], json!(["email.send", "refund.issue", "account.delete", "llm.call"]));
    assert_eq!(created["receipt"]["status"], "pending");

    let check = |actions: &[&str], extra: &[&str], code: i32| -> Value {
        let mut args = vec!["check", "--authorization-id", auth.as_str()];
        for action in actions {
            args.extend_from_slice(&["--action", action]);
        }
        args.extend_from_slice(extra);
        ws.json(&args, code)
    };

    // allow
    let internal = ["--context", r#"{"recipient_domain":"example.com"}"#];
    let allowed = check(&["email.send"], &internal, 0);
    assert_eq!(
        decision_and_reason(&allowed, "email.send"),
        ("allow".into(), "authorization_granted_action_active".into())
    );
    assert_eq!(allowed["authorization_id"], auth.as_str());
    assert_eq!(result(&allowed, "email.send")["receipt"]["status"], "signed");

    // confirm, approve, allow
    let external = ["--context", r#"{"recipient_domain":"gmail.com"}"#];
    let confirm = check(&["email.send"], &external, 4);
    assert_eq!(
        decision_and_reason(&confirm, "email.send"),
        ("confirm".into(), "condition_requires_user_confirmation".into())
    );
    let nonce = result(&confirm, "email.send")["confirm_nonce"].as_str().expect("nonce").to_string();
    let approved = ws.json(&["confirmations", "approve", &nonce], 0);
    assert_eq!(approved["decision"], "approved");
    let confirmed = check(&["email.send"], &external, 0);
    assert_eq!(decision_and_reason(&confirmed, "email.send"), ("allow".into(), "user_confirmed".into()));
    // A nonce resolves once.
    let twice = ws.json(&["confirmations", "approve", &nonce], 1);
    assert_eq!(twice["error"]["code"], "confirmation_already_resolved");

    // escalate, approve, one allow, escalate again
    let escalated = check(&["refund.issue"], &[], 5);
    let first = result(&escalated, "refund.issue");
    assert_eq!(first["decision"], "escalate");
    assert_eq!(first["escalation_to"], "member:finance_lead");
    let escalation = first["escalation_id"].as_str().expect("escalation id").to_string();
    let resolved = ws.json(&["escalations", "approve", &escalation, "--resolved-by", "alice", "--note", "ok"], 0);
    assert_eq!(resolved["status"], "approved");
    assert_eq!(resolved["resolved_by"], "alice");
    let once = check(&["refund.issue"], &[], 0);
    assert_eq!(decision_and_reason(&once, "refund.issue"), ("allow".into(), "escalation_approved".into()));
    let again = check(&["refund.issue"], &[], 5);
    let second = result(&again, "refund.issue");
    assert_eq!(second["decision"], "escalate");
    assert_ne!(second["escalation_id"], escalation.as_str(), "an approval is good for one check");

    // deny
    let denied = check(&["account.delete"], &[], 3);
    assert_eq!(decision_and_reason(&denied, "account.delete"), ("deny".into(), "action_denied_by_policy".into()));

    // the strongest decision sets the exit code: deny > escalate > confirm > allow
    let mixed = check(&["email.send", "account.delete"], &internal, 3);
    assert_eq!(decision_and_reason(&mixed, "email.send").0, "allow");
    let resource = ["--resource", "mailbox:new", "--context", r#"{"recipient_domain":"gmail.com"}"#];
    let confirm_and_escalate = check(&["email.send", "refund.issue"], &resource, 5);
    assert_eq!(decision_and_reason(&confirm_and_escalate, "email.send").0, "confirm");
    assert_eq!(decision_and_reason(&confirm_and_escalate, "refund.issue").0, "escalate");

    // budget: cap 50M, checks of 20M allow, allow, then deny
    let cost = ["--estimated-cost-micros", "20000000"];
    let b1 = check(&["llm.call"], &cost, 0);
    assert_eq!(result(&b1, "llm.call")["budget"]["spent_after_micros"], 20_000_000);
    let b2 = check(&["llm.call"], &cost, 0);
    assert_eq!(result(&b2, "llm.call")["budget"]["spent_after_micros"], 40_000_000);
    let b3 = check(&["llm.call"], &cost, 3);
    assert_eq!(decision_and_reason(&b3, "llm.call"), ("deny".into(), "budget_exceeded".into()));

    // settle the first check at 5M: 40M - 20M + 5M = 25M spent, so 20M fits again
    let first_receipt = result(&b1, "llm.call")["receipt_id"].as_str().expect("receipt id").to_string();
    let settled =
        ws.json(&["budget", "settle", "--check-receipt-id", &first_receipt, "--actual-cost-micros", "5000000"], 0);
    assert_eq!(settled["spent_after_micros"], 25_000_000);
    assert_eq!(settled["delta_micros"], -15_000_000);
    let shown = ws.json(&["authorizations", "show", &auth], 0);
    assert_eq!(shown["budget_spent_micros"], 25_000_000);
    assert_eq!(shown["status"], "active");
    check(&["llm.call"], &cost, 0);

    // revoke, then everything is denied
    let revoked = ws.json(&["authorizations", "revoke", &auth], 0);
    assert_eq!(revoked["authorization_id"], auth.as_str());
    let after = check(&["email.send"], &internal, 3);
    assert_eq!(decision_and_reason(&after, "email.send"), ("deny".into(), "authorization_revoked".into()));
    assert_eq!(ws.json(&["authorizations", "show", &auth], 0)["status"], "revoked");

    // unknown authorization: a signed deny, not an error
    let unknown = ws.json(&["check", "--authorization-id", "auth_missing", "--action", "email.send"], 3);
    assert_eq!(decision_and_reason(&unknown, "email.send"), ("deny".into(), "authorization_not_found".into()));

    // export, publish keys, verify offline
    let export = ws.path("export.jsonl");
    let exported = ws.json(&["receipts", "export", "--out", s(&export)], 0);
    let count = exported["receipts"].as_u64().expect("count");
    // 1 create, 17 action decisions, 1 confirmation, 1 escalation, 1 settlement, 1 revoke
    assert_eq!(count, 22, "{exported}");
    assert_eq!(ws.receipt_count(), 22);
    let keys_doc = ws.run(&["keys", "document"]);
    assert_eq!(keys_doc.code, 0);
    let keys_value: Value = serde_json::from_str(&keys_doc.stdout).expect("key document is JSON");
    assert_eq!(keys_value["workspace_id"], workspace_id.as_str());
    assert_eq!(keys_value["keys"][0]["public_key_fingerprint"], fingerprint.as_str());
    let keys = ws.write("keys.json", &keys_doc.stdout);

    let verify_args = |input: &Path| -> Vec<String> {
        [
            "verify",
            s(input),
            "--keys",
            s(&keys),
            "--workspace-id",
            &workspace_id,
            "--trusted-key-fingerprint",
            &fingerprint,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let args = verify_args(&export);
    let verified = ws.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(verified.code, 0, "{}\n{}", verified.stdout, verified.stderr);
    let ok_lines = verified.stdout.lines().filter(|l| l.starts_with("OK  rcp_")).count() as u64;
    assert_eq!(ok_lines, count, "{}", verified.stdout);
    assert!(verified.stdout.contains(&format!("{count} ok, 0 invalid ({count} checked)")), "{}", verified.stdout);
    assert!(verified.stdout.contains("  email.send  allow"), "{}", verified.stdout);
    assert!(verified.stdout.contains("  authorization.create  authorization_granted"), "{}", verified.stdout);

    // one tampered signature makes the export invalid
    let text = std::fs::read_to_string(&export).expect("export");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut line: Value = serde_json::from_str(&lines[3]).expect("export line");
    let envelope = if line.get("receipt").is_some() { &mut line["receipt"] } else { &mut line };
    let signature = envelope["signature"].as_str().expect("signature").to_string();
    let flipped: String = signature
        .char_indices()
        .map(|(i, c)| {
            if i == 10 {
                if c == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                c
            }
        })
        .collect();
    envelope["signature"] = Value::from(flipped);
    lines[3] = line.to_string();
    let tampered = ws.write("tampered.jsonl", &(lines.join("\n") + "\n"));
    let args = verify_args(&tampered);
    let rejected = ws.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(rejected.code, 1, "{}\n{}", rejected.stdout, rejected.stderr);
    assert_eq!(rejected.stdout.lines().filter(|l| l.starts_with("INVALID")).count(), 1, "{}", rejected.stdout);
    assert!(rejected.stdout.contains(&format!("{} ok, 1 invalid ({count} checked)", count - 1)), "{}", rejected.stdout);

    // a single receipt verifies too, and only under a trusted key
    let one = ws.json(&["receipts", "show", &first_receipt], 0);
    assert_eq!(one["status"], "signed");
    let single = ws.write("receipt.json", &one["receipt"].to_string());
    let args = verify_args(&single);
    let ok = ws.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains(&format!("OK  {first_receipt}  llm.call  allow")), "{}", ok.stdout);
    let untrusted = format!("sha256:{}", "0".repeat(64));
    let bad = ws.run(&[
        "verify",
        s(&single),
        "--keys",
        s(&keys),
        "--workspace-id",
        &workspace_id,
        "--trusted-key-fingerprint",
        &untrusted,
    ]);
    assert_eq!(bad.code, 1, "{}\n{}", bad.stdout, bad.stderr);
    assert!(bad.stdout.starts_with("INVALID"), "{}", bad.stdout);

    // usage errors exit 2
    let missing_keys =
        ws.run(&["verify", s(&export), "--workspace-id", &workspace_id, "--trusted-key-fingerprint", &fingerprint]);
    assert_eq!(missing_keys.code, 2, "{}", missing_keys.stderr);
    assert_eq!(ws.run(&["check", "--authorization-id", &auth]).code, 2, "--action is required");
    assert_eq!(
        ws.run(&["check", "--authorization-id", &auth, "--action", "x", "--estimated-cost-micros", "ten"]).code,
        2
    );
    assert_eq!(ws.run(&["frobnicate"]).code, 2);
    let absent_input = ws.run(&[
        "verify",
        s(&ws.path("nope.jsonl")),
        "--keys",
        s(&keys),
        "--workspace-id",
        &workspace_id,
        "--trusted-key-fingerprint",
        &fingerprint,
    ]);
    assert_eq!(absent_input.code, 2, "{}", absent_input.stderr);
}

#[test]
fn human_output_explains_decisions_and_next_steps() {
    let ws = Workspace::new();
    ws.init();
    ws.apply_support_policy();
    let created = ws.json(&["authorizations", "create", "--user-id", "u1", "--policy-id", "support-agent"], 0);
    let auth = created["authorization_id"].as_str().expect("id").to_string();

    let run = ws.run(&[
        "check",
        "--authorization-id",
        &auth,
        "--action",
        "email.send",
        "--action",
        "refund.issue",
        "--action",
        "llm.call",
        "--context",
        r#"{"recipient_domain":"gmail.com"}"#,
    ]);
    assert_eq!(run.code, 5, "{}\n{}", run.stdout, run.stderr);
    let words: Vec<Vec<&str>> = run.stdout.lines().take(3).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(words[0][..3], ["email.send", "confirm", "condition_requires_user_confirmation"], "{}", run.stdout);
    assert_eq!(words[1][..3], ["refund.issue", "escalate", "escalation_required"], "{}", run.stdout);
    assert_eq!(words[2][..3], ["llm.call", "allow", "authorization_granted_action_active"], "{}", run.stdout);
    assert!(words.iter().all(|w| w.len() == 4 && w[3].starts_with("rcp_")), "{}", run.stdout);
    // The suggested follow-ups repeat --home, and they run as printed.
    let program = format!("allowly --home {}", s(&ws.home()));
    assert!(run.stdout.contains(&format!("approve: {program} confirmations approve cnf_nonce_")), "{}", run.stdout);
    let suggested = run
        .stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix(&format!("approve: {program} escalations approve ")))
        .unwrap_or_else(|| panic!("no escalation hint in\n{}", run.stdout));
    let mut args: Vec<&str> = vec!["escalations", "approve"];
    args.extend(suggested.split_whitespace().map(|word| if word == "<approver>" { "bob" } else { word }));
    let approved = ws.run(&args);
    assert_eq!(approved.code, 0, "{}\n{}", approved.stdout, approved.stderr);
    assert!(approved.stdout.contains("approved by bob"), "{}", approved.stdout);
    // Without --home typed, the hint is the bare command.
    let by_env = Command::new(BIN)
        .args([
            "check",
            "--authorization-id",
            &auth,
            "--action",
            "email.send",
            "--context",
            r#"{"recipient_domain":"x.org"}"#,
        ])
        .env("ALLOWLY_HOME", ws.home())
        .output()
        .expect("run allowly");
    assert_eq!(by_env.status.code(), Some(4));
    let by_env = String::from_utf8_lossy(&by_env.stdout);
    assert!(by_env.contains("approve: allowly confirmations approve cnf_nonce_"), "{by_env}");

    let keys = ws.run(&["keys", "list"]);
    assert_eq!(keys.code, 0);
    assert!(keys.stdout.contains("FINGERPRINT") && keys.stdout.contains("(current)"), "{}", keys.stdout);
    // `keys document` is JSON even without --json
    let document: Value = serde_json::from_str(&ws.run(&["keys", "document"]).stdout).expect("json");
    assert_eq!(document["keys"].as_array().map(Vec::len), Some(1));

    let rotated = ws.json(&["keys", "rotate"], 0);
    assert!(rotated["key_id"].is_string() && rotated["active_until"].is_null(), "{rotated}");
    let document: Value = serde_json::from_str(&ws.run(&["keys", "document"]).stdout).expect("json");
    assert_eq!(document["keys"].as_array().map(Vec::len), Some(2), "the old key stays published");

    let error = ws.run(&["authorizations", "show", "auth_nope"]);
    assert_eq!(error.code, 1);
    assert!(error.stderr.starts_with("error[authorization_not_found]: "), "{}", error.stderr);
    assert!(error.stdout.is_empty());

    let help = Command::new(BIN).arg("--help").output().expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Exit codes:") && help.contains("3  check: at least one action is deny"), "{help}");
}

#[test]
fn commands_other_than_init_need_an_existing_workspace() {
    let ws = Workspace::new();
    let missing = ws.json(&["policies", "list"], 1);
    assert_eq!(missing["error"]["code"], "workspace_not_found");
    assert!(!ws.home().exists(), "nothing may be created without init");
}

#[test]
fn bad_input_is_rejected_with_typed_errors_and_writes_nothing() {
    let ws = Workspace::new();
    ws.init();
    let empty = ws.json(&["policies", "list"], 0);
    assert_eq!(empty["items"], json!([]));

    // malformed JSON
    let malformed = ws.write("malformed.json", r#"{"policy_id": "p", "profile": "#);
    let error = ws.json(&["policies", "apply", s(&malformed)], 1);
    assert_eq!(error["error"]["code"], "invalid_request");
    assert_eq!(error["error"]["fields"][0]["field"], "body");

    // an unknown field
    let mut unknown = support_policy();
    unknown["color"] = json!("blue");
    let file = ws.write("unknown.json", &unknown.to_string());
    let error = ws.json(&["policies", "apply", s(&file)], 1);
    assert_eq!(error["error"]["code"], "invalid_request");
    assert!(error["error"]["message"].as_str().unwrap_or("").contains("color"), "{error}");

    // duplicate names would silently drop one of them
    let file = ws.write("duplicate.json", r#"{"policy_id": "p", "policy_id": "q"}"#);
    let error = ws.json(&["policies", "apply", s(&file)], 1);
    assert_eq!(error["error"]["code"], "invalid_request");

    // a float in a policy
    let mut float = support_policy();
    float["default_expiry_days"] = json!(1.5);
    let file = ws.write("float.json", &float.to_string());
    assert_eq!(ws.json(&["policies", "apply", s(&file)], 1)["error"]["code"], "invalid_request");

    // none of those wrote a policy
    assert_eq!(ws.json(&["policies", "list"], 0), empty);

    ws.apply_support_policy();
    let created = ws.json(&["authorizations", "create", "--user-id", "u1", "--policy-id", "support-agent"], 0);
    let auth = created["authorization_id"].as_str().expect("id").to_string();
    let receipts_before = ws.receipt_count();
    let authorizations_before = ws.json(&["authorizations", "list"], 0);

    let check = |extra: &[&str]| -> Value {
        let mut args = vec!["check", "--authorization-id", auth.as_str()];
        args.extend_from_slice(extra);
        ws.json(&args, 1)
    };
    // floats in the context
    let error = check(&["--action", "email.send", "--context", r#"{"amount": 12.5}"#]);
    assert_eq!(error["error"]["code"], "invalid_request");
    assert_eq!(error["error"]["fields"][0]["field"], "context");
    // context over 4 KiB
    let big = json!({ "note": "x".repeat(4200) }).to_string();
    let error = check(&["--action", "email.send", "--context", &big]);
    assert_eq!(error["error"]["code"], "invalid_request");
    assert_eq!(error["error"]["fields"][0]["field"], "context");
    // the same from a file
    let big_file = ws.write("big.json", &big);
    let at = format!("@{}", s(&big_file));
    assert_eq!(check(&["--action", "email.send", "--context", &at])["error"]["fields"][0]["field"], "context");
    // a context that is not an object, or not JSON
    assert_eq!(check(&["--action", "email.send", "--context", "[1]"])["error"]["code"], "invalid_request");
    assert_eq!(check(&["--action", "email.send", "--context", "{nope"])["error"]["code"], "invalid_request");
    // more than 25 actions
    let names: Vec<String> = (0..26).map(|i| format!("action.{i}")).collect();
    let mut args = Vec::new();
    for name in &names {
        args.extend_from_slice(&["--action", name.as_str()]);
    }
    let error = check(&args);
    assert_eq!(error["error"]["code"], "invalid_request");
    assert_eq!(error["error"]["fields"][0]["field"], "actions");
    // a negative estimate
    assert_eq!(check(&["--action", "llm.call", "--estimated-cost-micros=-5"])["error"]["code"], "invalid_request");

    // unknown ids
    let error = ws.json(&["authorizations", "show", "auth_does_not_exist"], 1);
    assert_eq!(error["error"]["code"], "authorization_not_found");
    assert!(error["error"]["message"].as_str().unwrap_or("").contains("auth_does_not_exist"), "{error}");
    assert_eq!(ws.json(&["authorizations", "revoke", "auth_nope"], 1)["error"]["code"], "authorization_not_found");
    assert_eq!(ws.json(&["policies", "show", "nope"], 1)["error"]["code"], "policy_not_found");
    assert_eq!(ws.json(&["receipts", "show", "rcp_nope"], 1)["error"]["code"], "receipt_not_found");
    assert_eq!(ws.json(&["confirmations", "approve", "cnf_nonce_nope"], 1)["error"]["code"], "confirmation_not_found");
    assert_eq!(
        ws.json(&["escalations", "approve", "esc_nope", "--resolved-by", "a"], 1)["error"]["code"],
        "escalation_not_found"
    );

    // bad authorization requests
    let error = ws.json(
        &[
            "authorizations",
            "create",
            "--user-id",
            "u2",
            "--policy-id",
            "support-agent",
            "--metadata",
            r#"{"rate": 0.5}"#,
        ],
        1,
    );
    assert_eq!(error["error"]["fields"][0]["field"], "metadata");
    let error = ws.json(
        &[
            "authorizations",
            "create",
            "--user-id",
            "u2",
            "--policy-id",
            "support-agent",
            "--expires-at",
            "next tuesday",
        ],
        1,
    );
    assert_eq!(error["error"]["fields"][0]["field"], "expires_at");
    let error = ws
        .json(&["authorizations", "create", "--user-id", "u2", "--policy-id", "support-agent", "--action", "nope"], 1);
    assert_eq!(error["error"]["code"], "invalid_request");

    // an export into a missing directory names the file and writes nothing
    let nowhere = ws.path("missing-dir").join("export.jsonl");
    let error = ws.json(&["receipts", "export", "--out", s(&nowhere)], 1);
    assert_eq!(error["error"]["code"], "io_error");
    assert!(error["error"]["message"].as_str().unwrap_or("").contains(s(&nowhere)), "{error}");
    let evidence = ws.path("missing-dir").join("evidence.json");
    let out = ws.path("export.jsonl");
    assert_eq!(
        ws.json(&["receipts", "export", "--out", s(&out), "--checkpoint-evidence", s(&evidence)], 1)["error"]["code"],
        "io_error"
    );
    assert!(!out.exists(), "a refused export writes no file");

    // nothing was decided, signed or created by any of the rejected requests
    assert_eq!(ws.receipt_count(), receipts_before);
    assert_eq!(ws.json(&["authorizations", "list"], 0), authorizations_before);
}

#[test]
fn expires_at_accepts_rfc3339_with_offsets() {
    let ws = Workspace::new();
    ws.init();
    ws.apply_support_policy();
    let created = ws.json(
        &[
            "authorizations",
            "create",
            "--user-id",
            "u1",
            "--policy-id",
            "support-agent",
            "--action",
            "email.send",
            "--expires-at",
            "2999-01-01T02:00:00+02:00",
            "--metadata",
            r#"{"ticket": 7}"#,
        ],
        0,
    );
    assert_eq!(created["expires_at"], "2999-01-01T00:00:00.000Z");
    assert_eq!(created["actions"], json!(["email.send"]));
    let id = created["authorization_id"].as_str().expect("id");
    let shown = ws.json(&["authorizations", "show", id], 0);
    assert_eq!(shown["metadata"], json!({"ticket": 7}));
    // an action outside the granted subset is denied
    let denied = ws.json(&["check", "--authorization-id", id, "--action", "refund.issue"], 3);
    assert_eq!(decision_and_reason(&denied, "refund.issue"), ("deny".into(), "action_not_in_authorization".into()));
}

#[test]
fn export_with_checkpoint_evidence_verifies() {
    let ws = Workspace::new();
    let init = ws.init();
    ws.apply_support_policy();
    ws.json(&["authorizations", "create", "--user-id", "u1", "--policy-id", "support-agent"], 0);
    // Today's receipts are checkpointed tomorrow: nothing to checkpoint yet.
    let created = ws.json(&["checkpoints", "create"], 0);
    assert_eq!(created["checkpoints"], json!([]));

    let export = ws.path("export.jsonl.gz");
    let evidence = ws.path("evidence.json");
    let exported = ws.json(&["receipts", "export", "--out", s(&export), "--checkpoint-evidence", s(&evidence)], 0);
    assert_eq!(exported["receipts"], 1);
    assert_eq!(exported["checkpoints"], 0);
    let bytes = std::fs::read(&export).expect("export");
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a .gz export is gzip");
    let keys = ws.write("keys.json", &ws.run(&["keys", "document"]).stdout);
    let run = ws.run(&[
        "verify",
        s(&export),
        "--keys",
        s(&keys),
        "--workspace-id",
        init["workspace_id"].as_str().expect("ws"),
        "--trusted-key-fingerprint",
        init["public_key_fingerprint"].as_str().expect("fp"),
        "--checkpoint-evidence",
        s(&evidence),
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("1 ok, 0 invalid (1 checked)"), "{}", run.stdout);

    // keys of another workspace cannot vouch for this one: nothing is verified
    let run = ws.run(&[
        "verify",
        s(&export),
        "--keys",
        s(&keys),
        "--workspace-id",
        "ws_other",
        "--trusted-key-fingerprint",
        init["public_key_fingerprint"].as_str().expect("fp"),
    ]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("is the key document of"), "{}", run.stderr);
}

#[test]
fn receipts_of_a_rotated_key_keep_verifying() {
    let ws = Workspace::new();
    let init = ws.init();
    let workspace_id = init["workspace_id"].as_str().expect("ws").to_string();
    let old = init["public_key_fingerprint"].as_str().expect("fp").to_string();
    ws.apply_support_policy();
    ws.json(&["authorizations", "create", "--user-id", "u1", "--policy-id", "support-agent"], 0);
    let rotated = ws.json(&["keys", "rotate"], 0);
    let new = rotated["public_key_fingerprint"].as_str().expect("fp").to_string();
    assert_ne!(new, old);
    ws.json(&["authorizations", "create", "--user-id", "u2", "--policy-id", "support-agent"], 0);

    let export = ws.path("export.jsonl");
    ws.json(&["receipts", "export", "--out", s(&export)], 0);
    let keys = ws.write("keys.json", &ws.run(&["keys", "document"]).stdout);
    let verify = |trusted: &[&str]| {
        let mut args = vec!["verify", s(&export), "--keys", s(&keys), "--workspace-id", &workspace_id];
        for fingerprint in trusted {
            args.extend_from_slice(&["--trusted-key-fingerprint", fingerprint]);
        }
        ws.run(&args)
    };
    let both = verify(&[&old, &new]);
    assert_eq!(both.code, 0, "{}\n{}", both.stdout, both.stderr);
    assert!(both.stdout.contains("2 ok, 0 invalid (2 checked)"), "{}", both.stdout);
    // Trusting only the old key rejects what the new one signed, with the reference's class.
    let old_only = verify(&[&old]);
    assert_eq!(old_only.code, 1, "{}\n{}", old_only.stdout, old_only.stderr);
    assert!(old_only.stdout.contains("1 ok, 1 invalid (2 checked)"), "{}", old_only.stdout);
    assert!(
        old_only.stdout.contains("VerificationError: public key fingerprint is not trusted"),
        "{}",
        old_only.stdout
    );

    // --json gives the same verdicts line by line.
    let mut args = vec!["--json", "verify", s(&export), "--keys", s(&keys), "--workspace-id", &workspace_id];
    args.extend_from_slice(&["--trusted-key-fingerprint", &old]);
    let run = ws.run(&args);
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(report["valid"], false);
    assert_eq!(report["ok"], 1);
    assert_eq!(report["lines"][1]["error"]["code"], "untrusted_key");
}
