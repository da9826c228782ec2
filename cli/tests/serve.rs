//! `allowly serve`, `allowly api-keys` and `allowly workspaces` as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_allowly");

fn allowly(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("ALLOWLY_HOME")
        .env_remove("ALLOWLY_DATABASE_URL")
        .output()
        .expect("run allowly");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
}

/// GET `path` on `addr`; the status and body.
fn get(addr: &str, path: &str, key: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    let status = raw.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[test]
fn api_keys_and_workspaces_on_the_home() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (code, _, stderr) = allowly(&home, &["api-keys", "list"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("workspace_not_found"), "{stderr}");

    // The first workspace of an empty home, with its two keys.
    let (code, out, _) = allowly(&home, &["--json", "workspaces", "create"]);
    assert_eq!(code, 0);
    let first = json(&out);
    assert_eq!(first["primary"], true);
    let ws = first["workspace_id"].as_str().unwrap().to_string();
    assert!(first["setup_key"]["key"].as_str().unwrap().starts_with(&format!("allowly.setup.{ws}.")));
    // A tenant next to it.
    let (code, out, _) = allowly(&home, &["--json", "workspaces", "create"]);
    assert_eq!(code, 0);
    let tenant = json(&out);
    assert_eq!(tenant["primary"], false);
    let tenant_id = tenant["workspace_id"].as_str().unwrap().to_string();
    let (_, out, _) = allowly(&home, &["--json", "workspaces", "list"]);
    let listed: Vec<String> = json(&out)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["workspace_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, vec![ws.clone(), tenant_id.clone()]);
    let (code, text, _) = allowly(&home, &["workspaces", "list"]);
    assert!(code == 0 && text.contains(&tenant_id) && text.contains("PRIMARY"), "{text}");

    // Keys: create (shown once), list (never the secret), revoke; on a tenant with --workspace.
    let (code, out, _) = allowly(&home, &["--json", "api-keys", "create", "--kind", "runtime", "--label", "ci"]);
    assert_eq!(code, 0);
    let created = json(&out);
    let secret = created["key"].as_str().unwrap().rsplit('.').next().unwrap().to_string();
    let key_id = created["key_id"].as_str().unwrap().to_string();
    let (_, out, _) = allowly(&home, &["--json", "api-keys", "list"]);
    assert!(!out.contains(&secret));
    assert_eq!(json(&out)["items"].as_array().unwrap().len(), 3);
    let (code, _, _) = allowly(&home, &["api-keys", "revoke", &key_id]);
    assert_eq!(code, 0);
    let (_, out, _) = allowly(&home, &["--json", "api-keys", "list"]);
    let revoked = json(&out)["items"].as_array().unwrap().iter().find(|k| k["key_id"] == key_id.as_str()).cloned();
    assert!(revoked.is_some_and(|k| k["revoked_at"].is_string()));
    let (code, out, _) =
        allowly(&home, &["--json", "api-keys", "create", "--kind", "setup", "--workspace", &tenant_id]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["workspace_id"], tenant_id.as_str());
    let (code, _, stderr) = allowly(&home, &["api-keys", "list", "--workspace", "ws_nope"]);
    assert!(code == 1 && stderr.contains("workspace_not_found"), "{stderr}");
    let (code, _, stderr) = allowly(&home, &["api-keys", "create", "--kind", "root"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn serve_prints_keys_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    for start in 0..2 {
        let mut child = Command::new(BIN)
            .arg("--home")
            .arg(&home)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("ALLOWLY_DATABASE_URL")
            .env("ALLOWLY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start allowly serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let banner = lines.next().unwrap().unwrap();
        let addr = banner.split("http://").nth(1).unwrap().split(' ').next().unwrap().to_string();
        let mut keys = Vec::new();
        if start == 0 {
            for line in lines.by_ref().take(3) {
                keys.push(line.unwrap());
            }
            assert!(keys[1].contains("allowly.setup.") && keys[2].contains("allowly.runtime."), "{keys:?}");
            let setup = keys[1].rsplit(' ').next().unwrap().to_string();
            assert_eq!(get(&addr, "/v1/policies", Some(&setup)).0, 200);
        }
        assert_eq!(get(&addr, "/readyz", None), (200, "{\"status\":\"ready\"}".to_string()));
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "serve did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0));
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        assert!(rest.iter().all(|l| !l.contains("allowly.setup.") && !l.contains("allowly.runtime.")), "{rest:?}");
    }
    // A PostgreSQL server that is not there: a clear error, exit 1.
    let (code, _, stderr) =
        allowly(&home, &["serve", "--listen", "127.0.0.1:0", "--database-url", "postgres://x@127.0.0.1:1/db"]);
    assert!(code == 1 && stderr.contains("store_unavailable"), "{stderr}");
    let (code, _, stderr) = allowly(&home, &["serve", "--listen", "127.0.0.1:0", "--database-url", "sqlite://x"]);
    assert!(code == 1 && stderr.contains("unsupported --database-url"), "{stderr}");
}

/// Runs `allowly --url URL --api-key KEY ARGS...` (no local data directory involved).
fn remote(url: &str, key: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["--url", url, "--api-key", key, "--home", "/nonexistent/allowly-home"])
        .args(args)
        .env_remove("ALLOWLY_HOME")
        .output()
        .expect("run allowly");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_runs_against_a_server_with_url_and_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let mut child = Command::new(BIN)
        .arg("--home")
        .arg(&home)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("ALLOWLY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start allowly serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let addr = banner.split("http://").nth(1).unwrap().split(' ').next().unwrap().to_string();
    let keys: Vec<String> =
        lines.by_ref().take(3).map(|l| l.unwrap().rsplit(' ').next().unwrap().to_string()).collect();
    let (setup, runtime) = (&keys[1], &keys[2]);
    let url = format!("http://{addr}");
    let policy = dir.path().join("policy.json");
    let repo_policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/support-agent.json");
    std::fs::copy(repo_policy, &policy).unwrap();

    let (code, _, stderr) = remote(&url, runtime, &["policies", "apply", policy.to_str().unwrap()]);
    assert!(code == 1 && stderr.contains("forbidden"), "a runtime key cannot manage policies: {stderr}");
    let (code, out, stderr) = remote(&url, setup, &["--json", "policies", "apply", policy.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json(&out)["policy_ref"]["policy_version"], 1);
    let (code, out, stderr) = remote(
        &url,
        runtime,
        &[
            "--json",
            "authorizations",
            "create",
            "--user-id",
            "u1",
            "--policy-id",
            "support_agent",
            "--policy-version",
            "1",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let auth = json(&out)["authorization_id"].as_str().unwrap().to_string();
    let check =
        |action: &str| remote(&url, runtime, &["--json", "check", "--authorization-id", &auth, "--action", action]);
    let (code, out, _) = check("account.delete");
    assert_eq!(
        (code, json(&out)["results"]["account.delete"]["reason"].as_str()),
        (3, Some("action_denied_by_policy"))
    );
    let (code, out, _) = check("refund.issue");
    assert_eq!(code, 5, "{out}");
    let receipt_id = json(&out)["results"]["refund.issue"]["receipt"]["receipt"]["payload"].is_string();
    assert!(receipt_id, "the server's answer carries the signed receipt");
    let (code, out, _) = remote(&url, runtime, &["keys", "document"]);
    assert_eq!((code, json(&out)["keys"].as_array().map(Vec::len)), (0, Some(1)));
    // The server rotates its signing key for a setup key (a runtime key may not).
    let (code, _, stderr) = remote(&url, runtime, &["keys", "rotate"]);
    assert!(code == 1 && stderr.contains("error["), "{stderr}");
    let (code, out, stderr) = remote(&url, setup, &["--json", "keys", "rotate"]);
    assert_eq!((code, json(&out)["active_until"].is_null()), (0, true), "{out}{stderr}");
    let rotated = json(&out)["key_id"].as_str().unwrap_or_default().to_string();
    let (code, out, _) = remote(&url, runtime, &["keys", "document"]);
    let keys = json(&out)["keys"].as_array().cloned().unwrap_or_default();
    assert_eq!((code, keys.len()), (0, 2), "{out}");
    assert!(keys.iter().any(|k| k["key_id"] == rotated.as_str() && k["active_until"].is_null()), "{out}");
    // What works on a local data directory only does not take --url.
    let (code, _, stderr) = remote(&url, runtime, &["receipts", "export", "--out", "x.jsonl"]);
    assert!(code == 2 && stderr.contains("`allowly receipts export` does not take --url"), "{stderr}");
    let (code, _, stderr) = remote(&url, runtime, &["receipts", "show"]);
    assert!(code == 2 && stderr.contains("works on the local data directory only"), "{stderr}");
    let (code, _, stderr) =
        remote(&url, "allowly.runtime.ws_x.ak_y.wrong", &["check", "--authorization-id", &auth, "--action", "a"]);
    assert!(code == 1 && stderr.contains("invalid_or_revoked_api_key"), "{stderr}");
    // A 100 KiB context is over the server's body limit: a typed error (exit 1), not a fallback deny.
    let big = serde_json::json!({"note": "x".repeat(100 * 1024)}).to_string();
    for _ in 0..5 {
        let (code, out, stderr) =
            remote(&url, runtime, &["check", "--authorization-id", &auth, "--action", "email.send", "--context", &big]);
        assert_eq!(code, 1, "{out}{stderr}");
        assert!(stderr.starts_with("error[request_too_large]: "), "{stderr}");
        assert!(!stderr.contains("fallback"), "{stderr}");
    }
    // The confirmation's status by the nonce that approves it, or by its id.
    let (code, out, _) = remote(
        &url,
        runtime,
        &[
            "--json",
            "check",
            "--authorization-id",
            &auth,
            "--action",
            "email.send",
            "--context",
            r#"{"recipient_domain":"partner.org"}"#,
        ],
    );
    assert_eq!(code, 4, "{out}");
    let result = &json(&out)["results"]["email.send"];
    let (nonce, id) = (result["confirm_nonce"].as_str().unwrap(), result["confirmation_id"].as_str().unwrap());
    for name in [nonce, id] {
        let (code, out, stderr) = remote(&url, runtime, &["--json", "confirmations", "status", name]);
        assert_eq!((code, json(&out)["confirmation_id"].as_str()), (0, Some(id)), "{stderr}");
    }

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    // With the server gone, a check fails closed instead of erroring.
    let (code, out, _) = check("refund.issue");
    let result = &json(&out)["results"]["refund.issue"];
    assert_eq!(
        (code, result["reason"].as_str(), result["is_fallback"].as_bool()),
        (3, Some("fallback_closed_unreachable"), Some(true))
    );
}
