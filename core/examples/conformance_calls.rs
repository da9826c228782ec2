//! The Rust runner of the conformance walk (tests/conformance/conformance.py): reads one JSON line
//! per call, `{"op": "<name>", "args": {...}}`, runs it through `Api::call` of an embedded engine
//! or a remote client, and writes one JSON line per answer: `{"ok": <answer>}` or
//! `{"error": {"kind", "code", "status"}}`. `{"op": "__catalog__"}` answers the catalog.
//!
//! `conformance_calls embedded <home>` | `conformance_calls remote <base_url> <api_key> <workspace_id>`

use std::io::{BufRead, Write};

use allowly_core::api::Api;
use allowly_core::ops::{Request, CATALOG};
use allowly_core::remote::RemoteOptions;
use allowly_core::{Allowly, Error};
use serde_json::{json, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let api: Box<dyn Api> = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["embedded", home] => Box::new(Allowly::open_embedded(home)?),
        ["remote", base_url, api_key, workspace_id] => {
            let options = RemoteOptions { workspace_id: Some(workspace_id.to_string()), ..RemoteOptions::default() };
            Box::new(allowly_core::connect(base_url, api_key, options)?)
        }
        _ => return Err("usage: conformance_calls embedded <home> | remote <base_url> <api_key> <workspace_id>".into()),
    };
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let call: Value = serde_json::from_str(&line?)?;
        let op = call["op"].as_str().unwrap_or_default();
        let answer = if op == "__catalog__" {
            json!({"ok": CATALOG})
        } else {
            match Request::from_value(op, call["args"].clone()).and_then(|request| api.call(request)) {
                Ok(answer) => json!({"ok": answer}),
                Err(err) => error(&err),
            }
        };
        let mut out = stdout.lock();
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}

fn error(err: &Error) -> Value {
    json!({"error": {"kind": err.kind(), "code": err.code(), "status": err.http_status(), "message": err.to_string()}})
}
