//! `allowly check --url` when the runtime does not decide: the local fallback on stdout (exit 3 for
//! its deny), and a warning on stderr saying nobody decided, why, and that no receipt exists.
//! Errors the runtime does answer (413) are errors, not the fallback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_allowly");
const KEY: &str = "allowly.runtime.ws_x.ak_y.secret";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `allowly [--json] check --url URL --api-key KEY --authorization-id auth_x --action email.send [extra...]`.
fn check(url: &str, json: bool, extra: &[&str]) -> Run {
    let mut command = Command::new(BIN);
    if json {
        command.arg("--json");
    }
    command
        .args(["check", "--url", url, "--api-key", KEY, "--authorization-id", "auth_x", "--action", "email.send"])
        .args(extra);
    for name in ["ALLOWLY_HOME", "ALLOWLY_URL", "ALLOWLY_API_KEY"] {
        command.env_remove(name);
    }
    let output = command.output().expect("run allowly");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Checks the fallback deny in text and JSON modes; `why` is what the warning must say.
fn expect_fallback(url: &str, failure: &str, why: &str) {
    let reason = format!("fallback_closed_{failure}");
    let warning = format!("warning: the runtime at {url} did not decide this check: {why}");
    let text = check(url, false, &[]);
    assert_eq!(text.code, 3, "{}\n{}", text.stdout, text.stderr);
    let words: Vec<&str> = text.stdout.split_whitespace().collect();
    assert_eq!(words, ["email.send", "deny", reason.as_str(), "-"], "{}", text.stdout);
    let lines: Vec<&str> = text.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            warning.as_str(),
            "warning: the answer is the local fail-closed fallback (deny), not a policy decision; no receipt exists"
        ],
        "{}",
        text.stderr
    );

    let json = check(url, true, &[]);
    assert_eq!(json.code, 3, "{}\n{}", json.stdout, json.stderr);
    let answer: Value = serde_json::from_str(&json.stdout).unwrap();
    let result = &answer["results"]["email.send"];
    assert_eq!((result["decision"].as_str(), result["reason"].as_str()), (Some("deny"), Some(reason.as_str())));
    assert_eq!((result["is_fallback"].as_bool(), &result["receipt"]), (Some(true), &Value::Null));
    assert_eq!(json.stderr, text.stderr, "the same warning in both modes");
}

#[test]
fn a_closed_port_answers_the_unreachable_fallback_with_a_warning() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // The listener is gone: connections are refused.
    let url = format!("http://127.0.0.1:{port}");
    expect_fallback(&url, "unreachable", "it could not be reached, or answered 5xx (unreachable)");
}

#[test]
fn a_runtime_that_never_answers_gets_the_timeout_fallback_within_the_check_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accepts and never answers (the connections stay open until the test ends).
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let started = Instant::now();
    expect_fallback(&url, "timeout", "it did not answer within 1000 ms, or answered 408 (timeout)");
    // Two checks (text and JSON), each bounded by the 1 s check timeout.
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

/// A runtime that reads each whole request and answers `status` with `body`.
fn answering(status: &str, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let status = status.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = answer(stream, &status, body);
        }
    });
    url
}

fn answer(stream: TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut request_body = vec![0; length];
    reader.read_exact(&mut request_body)?;
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[test]
fn http_5xx_and_408_answer_the_fallback_with_a_warning() {
    let url = answering("503 Service Unavailable", r#"{"error":{"code":"store_unavailable","message":"down"}}"#);
    expect_fallback(&url, "unreachable", "it could not be reached, or answered 5xx (unreachable)");
    let url = answering("408 Request Timeout", r#"{"error":{"code":"request_timeout","message":"slow"}}"#);
    expect_fallback(&url, "timeout", "it did not answer within 1000 ms, or answered 408 (timeout)");
}

#[test]
fn a_request_too_large_is_a_typed_error_not_the_fallback() {
    let url = answering(
        "413 Payload Too Large",
        r#"{"error":{"code":"request_too_large","message":"the request body is larger than 64 KiB"}}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("context.json");
    std::fs::write(&context, format!(r#"{{"note":"{}"}}"#, "x".repeat(100 * 1024))).unwrap();
    let context = format!("@{}", context.display());

    let text = check(&url, false, &["--context", &context]);
    assert_eq!(text.code, 1, "{}\n{}", text.stdout, text.stderr);
    assert_eq!(text.stderr, "error[request_too_large]: the request body is larger than 64 KiB\n");
    assert!(text.stdout.is_empty(), "{}", text.stdout);

    let json = check(&url, true, &["--context", &context]);
    assert_eq!(json.code, 1, "{}\n{}", json.stdout, json.stderr);
    let error: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(error["error"]["code"], "request_too_large");
    assert!(json.stderr.is_empty(), "no fallback warning: {}", json.stderr);
}
