//! Load generator for `allowly serve`: N keep-alive connections send checks as fast as they are
//! answered, from this (second) process; prints throughput and latency percentiles as JSON.
//!
//! ```text
//! cargo run --release -p allowly-server --example loadgen -- BASE_URL SETUP_KEY RUNTIME_KEY [CONNECTIONS] [SECONDS]
//! ```
//! It publishes a one-action `allow` policy and authorizations first, then checks that action.
//! Environment: `LOADGEN_AUTHORIZATIONS=N` spreads the connections over N authorizations (default
//! 1: every check queues on one hot authorization); `LOADGEN_BUDGETED=1` makes every check reserve
//! budget (1 micro against a cap it never reaches); `LOADGEN_WINDOWS=1` also prints, per 100 ms
//! window, the worst latency when over 20 ms.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Failure = Box<dyn std::error::Error + Send + Sync>;

struct Connection {
    stream: TcpStream,
    host: String,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(host: &str) -> Result<Connection, Failure> {
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream, host: host.to_string(), buffer: Vec::with_capacity(16 * 1024) })
    }

    /// One request on the kept-alive connection; returns the status and the body.
    async fn send(&mut self, method: &str, path: &str, key: &str, body: &[u8]) -> Result<(u16, Vec<u8>), Failure> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(&request).await?;
        self.buffer.clear();
        let mut chunk = [0u8; 16 * 1024];
        let (head_end, length) = loop {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buffer[..end])?;
                let length = head
                    .split("\r\n")
                    .filter_map(|line| line.split_once(':'))
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                    .map(|(_, value)| value.trim().parse::<usize>())
                    .transpose()?
                    .unwrap_or(0);
                break (end + 4, length);
            }
        };
        while self.buffer.len() < head_end + length {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err("connection closed mid-body".into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
        let status =
            std::str::from_utf8(&self.buffer[..head_end])?.split(' ').nth(1).ok_or("no status")?.parse::<u16>()?;
        Ok((status, self.buffer[head_end..head_end + length].to_vec()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: loadgen BASE_URL SETUP_KEY RUNTIME_KEY [CONNECTIONS] [SECONDS]".into());
    }
    let host = args[1].trim_start_matches("http://").trim_end_matches('/').to_string();
    let (setup, runtime) = (args[2].clone(), args[3].clone());
    let connections: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let seconds: u64 = args.get(5).map(|s| s.parse()).transpose()?.unwrap_or(10);

    let mut conn = Connection::open(&host).await?;
    let policy = json!({
        "policy_id": "loadgen", "profile": "allowly.policy.v1", "agent_id": "loadgen_agent", "default_expiry_days": 1,
        "actions": [{"policy": {"profile": "allowly.basic.v1", "action": "api.call", "decision": "allow",
                                 "target": null, "fields": {}, "rules": []},
                     "guards": {}, "executable_operations": []}],
    });
    let (status, body) = conn.send("POST", "/v1/policies", &setup, &serde_json::to_vec(&policy)?).await?;
    if status != 201 {
        return Err(format!("policy: HTTP {status}: {}", String::from_utf8_lossy(&body)).into());
    }
    let version = serde_json::from_slice::<Value>(&body)?["policy_ref"]["policy_version"].clone();
    let authorizations: usize =
        std::env::var("LOADGEN_AUTHORIZATIONS").ok().map(|n| n.parse()).transpose()?.unwrap_or(1);
    let budgeted = std::env::var_os("LOADGEN_BUDGETED").is_some();
    let mut checks = Vec::with_capacity(authorizations);
    for _ in 0..authorizations.max(1) {
        let create = json!({"user_id": "loadgen", "policy_id": "loadgen", "policy_version": version, "metadata": {},
                            "budget_limit_micros": if budgeted { Some(1_000_000_000_000_000u64) } else { None }});
        let (status, body) = conn.send("POST", "/v1/authorizations", &runtime, &serde_json::to_vec(&create)?).await?;
        if status != 201 {
            return Err(format!("authorization: HTTP {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        let authorization_id = serde_json::from_slice::<Value>(&body)?["authorization_id"]
            .as_str()
            .ok_or("no authorization_id")?
            .to_string();
        checks.push(serde_json::to_vec(&json!({
            "authorization_id": authorization_id, "actions": ["api.call"], "resource": null, "session_id": null,
            "estimated_cost_micros": if budgeted { Some(1) } else { None }, "context": {"channel": "loadgen"},
        }))?);
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(connections);
    for connection in 0..connections {
        let check = checks[connection % checks.len()].clone();
        let (host, runtime) = (host.clone(), runtime.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let mut conn = Connection::open(&host).await?;
            while Instant::now() < deadline {
                let started = Instant::now();
                match conn.send("POST", "/v1/check", &runtime, &check).await {
                    Ok((200, _)) => latencies.push((started, started.elapsed())),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = Connection::open(&host).await?;
                    }
                }
            }
            Ok::<_, Failure>((latencies, errors))
        }));
    }
    let started = Instant::now();
    let mut timed = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut l, e) = task.await??;
        timed.append(&mut l);
        errors += e;
    }
    // Where the slow answers were: the worst latency per 100 ms window, if it was over 20 ms.
    if std::env::var_os("LOADGEN_WINDOWS").is_some() {
        let origin = timed.iter().map(|(at, _)| *at).min();
        let mut windows = std::collections::BTreeMap::<u128, Duration>::new();
        for (at, latency) in &timed {
            let window = origin.map_or(0, |o| at.duration_since(o).as_millis() / 100);
            let worst = windows.entry(window).or_default();
            *worst = (*worst).max(*latency);
        }
        for (window, worst) in windows.iter().filter(|(_, w)| w.as_millis() > 20) {
            eprintln!("t={:>6} ms  worst {:>6.1} ms", window * 100, worst.as_secs_f64() * 1000.0);
        }
    }
    let mut latencies: Vec<Duration> = timed.into_iter().map(|(_, latency)| latency).collect();
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pick =
        |q: f64| latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1))).copied();
    let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let report = json!({
        "connections": connections,
        "authorizations": checks.len(),
        "budgeted": budgeted,
        "seconds": elapsed,
        "checks": latencies.len(),
        "errors": errors,
        "checks_per_second": latencies.len() as f64 / elapsed,
        "p50_ms": ms(pick(0.50)),
        "p99_ms": ms(pick(0.99)),
        "max_ms": ms(latencies.last().copied()),
    });
    println!("{report}");
    Ok(())
}
