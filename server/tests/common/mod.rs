//! A real server on 127.0.0.1:0 in-process, and a tiny raw HTTP/1.1 client that can send anything
//! (including bodies no well-behaved client would).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use allowly_server::{Config, Server, Storage};
use serde_json::{json, Value};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub workspace_id: String,
    pub setup: String,
    pub runtime: String,
    pub home: PathBuf,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl TestServer {
    pub fn start() -> TestResult<TestServer> {
        TestServer::start_with(|_| {})
    }

    pub fn start_with(configure: impl FnOnce(&mut Config)) -> TestResult<TestServer> {
        let dir = tempfile::tempdir()?;
        let home = dir.path().join("home");
        let mut config = Config::new("127.0.0.1:0".parse()?, Storage::Sqlite { home: home.clone() });
        configure(&mut config);
        TestServer::launch(config, dir, home, None)
    }

    /// A server on a PostgreSQL database (no background checkpoints, so the store's only traffic
    /// is the requests'). On a database that already has its workspace, pass the keys printed for
    /// it (`first`): a server prints keys only when it creates the workspace.
    pub fn start_postgres(url: &str, first: Option<&TestServer>) -> TestResult<TestServer> {
        let dir = tempfile::tempdir()?;
        let home = dir.path().join("home");
        let mut config = Config::new("127.0.0.1:0".parse()?, Storage::Postgres { url: url.to_string() });
        config.checkpoints = None;
        let keys = first.map(|first| (first.setup.clone(), first.runtime.clone()));
        TestServer::launch(config, dir, home, keys)
    }

    fn launch(
        config: Config,
        dir: tempfile::TempDir,
        home: PathBuf,
        known_keys: Option<(String, String)>,
    ) -> TestResult<TestServer> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let server = match Server::bind(config).await {
                    Ok(server) => server,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err.to_string()));
                        return Err("bind failed".to_string());
                    }
                };
                let keys = server.starter_keys().cloned();
                let _ = ready_tx.send(Ok((server.local_addr(), server.primary_workspace_id().to_string(), keys)));
                server
                    .run(async move {
                        let _ = shutdown_rx.await;
                    })
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        let (addr, workspace_id, keys) = ready_rx.recv_timeout(Duration::from_secs(30))??;
        let (setup, runtime) = match (keys, known_keys) {
            (Some(keys), _) => (keys.setup.key, keys.runtime.key),
            (None, Some(known)) => known,
            (None, None) => return Err("a first start must create keys".into()),
        };
        Ok(TestServer {
            addr,
            base: format!("http://{addr}"),
            workspace_id,
            setup,
            runtime,
            home,
            _dir: dir,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// Sends the shutdown signal without waiting for the server to stop.
    pub fn signal_stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Stops the server gracefully and returns what `run` returned.
    pub fn stop(&mut self) -> Result<(), String> {
        self.signal_stop();
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| "server thread panicked".to_string())?,
            None => Ok(()),
        }
    }

    pub fn request(&self, method: &str, path: &str, key: Option<&str>, body: Option<&[u8]>) -> TestResult<Reply> {
        self.request_with(method, path, key, body, &[])
    }

    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> TestResult<Reply> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        if let Some(key) = key {
            head.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body.unwrap_or_default());
        self.raw(&raw)
    }

    /// Sends raw bytes and reads the answer until the server closes the connection. One attempt:
    /// the server reads (and throws away) an over-limit body before its 413, so even then the
    /// answer arrives instead of a reset.
    pub fn raw(&self, bytes: &[u8]) -> TestResult<Reply> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(bytes)?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out)?;
        Reply::parse(&out)
    }

    pub fn json(&self, method: &str, path: &str, key: Option<&str>, body: &Value) -> TestResult<Reply> {
        self.request(method, path, key, Some(&serde_json::to_vec(body)?))
    }

    // Fixtures ------------------------------------------------------------------------------------

    pub fn create_policy(&self) -> TestResult<Value> {
        let reply = self.json("POST", "/v1/policies", Some(&self.setup), &policy_body("support"))?;
        assert_eq!(reply.status, 201, "{}", reply.text);
        Ok(reply.body)
    }

    pub fn create_authorization(&self, budget: Option<i64>) -> TestResult<String> {
        let body = json!({"user_id": "user_1", "policy_id": "support", "policy_version": 1,
                          "metadata": {}, "budget_limit_micros": budget});
        let reply = self.json("POST", "/v1/authorizations", Some(&self.runtime), &body)?;
        assert_eq!(reply.status, 201, "{}", reply.text);
        Ok(reply.body["authorization_id"].as_str().ok_or("no authorization_id")?.to_string())
    }

    pub fn check(&self, authorization_id: &str, actions: &[&str], extra: Value) -> TestResult<Reply> {
        let mut body = json!({"authorization_id": authorization_id, "actions": actions, "resource": null,
                              "session_id": null, "estimated_cost_micros": null, "context": {}});
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        self.json("POST", "/v1/check", Some(&self.runtime), &body)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub body: Value,
}

impl Reply {
    fn parse(raw: &[u8]) -> TestResult<Reply> {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no complete response head")?;
        let head = std::str::from_utf8(&raw[..split])?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().ok_or("no status line")?;
        let status: u16 = status_line.split(' ').nth(1).ok_or("no status")?.parse()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
            body = dechunk(&body)?;
        }
        let text = String::from_utf8(body)?;
        let json = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
        Ok(Reply { status, headers, text, body: json })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Whether the body is exactly `{"error":{"code","message","fields":[...]}}`.
    pub fn is_error_body(&self) -> bool {
        let Some(outer) = self.body.as_object() else { return false };
        let Some(error) = outer.get("error").and_then(Value::as_object) else { return false };
        outer.len() == 1
            && error.len() == 3
            && error.get("code").is_some_and(Value::is_string)
            && error.get("message").is_some_and(Value::is_string)
            && error.get("fields").and_then(Value::as_array).is_some_and(|fields| {
                fields.iter().all(|f| {
                    f.get("field").is_some_and(Value::is_string) && f.get("message").is_some_and(Value::is_string)
                })
            })
    }
}

fn dechunk(mut body: &[u8]) -> TestResult<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end])?.trim(), 16)?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).ok_or("short chunk")?);
        body = body.get(size + 2..).ok_or("short chunk")?;
    }
}

pub fn action(name: &str, decision: &str, target: Value) -> Value {
    json!({"policy": {"profile": "allowly.basic.v1", "action": name, "decision": decision, "target": target,
                      "fields": {}, "rules": []},
           "guards": {}, "executable_operations": []})
}

pub fn definition() -> Value {
    json!({
        "profile": "allowly.policy.v1",
        "agent_id": "support_agent",
        "actions": [
            action("email.read", "allow", Value::Null),
            action("email.send", "confirm", json!("agent_owner")),
            action("refund.issue", "escalate", json!("member:finance")),
            action("account.delete", "deny", Value::Null),
        ],
        "default_expiry_days": 30,
    })
}

pub fn policy_body(policy_id: &str) -> Value {
    let mut body = definition();
    if let Some(map) = body.as_object_mut() {
        map.insert("policy_id".into(), json!(policy_id));
    }
    body
}

/// The key set of a JSON object.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

pub fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    names.sort();
    names
}
