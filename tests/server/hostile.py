"""`allowly serve` under hostile clients (loopback only, bounded in count and time).

Usage: hostile.py ALLOWLY_BINARY

Runs in the official client's virtualenv (its `Allowly` client is the well-behaved client whose
429 handling is checked). Each scenario starts its own server with small limits:

1. Slow headers, slow bodies, idle keep-alive connections and a connection flood from one address:
   the attackers' connections are closed on time, the server's memory and file descriptors stay
   under stated bounds, and a well-behaved client on its own connection keeps getting its checks
   answered (its p99 is printed and held to a generous bound).
2. A flood from many addresses up to the connection cap: the server stops accepting (no file
   descriptor exhaustion), `/readyz` on an old connection says it cannot accept, and once the flood
   ends new clients are served again.
3. Authentication before the body: a request without a valid key is answered 401 without waiting
   for its body; failed authentications from one address are answered 429 (`Retry-After`) past the
   limit while another address is unaffected; the refusals are logged with the client address and
   the key id, never the secret.
4. Per-key limits: past the request rate a key gets 429 `rate_limited` and the official client
   0.8.0 surfaces `retry_after_seconds`.
5. `/metrics` takes a setup key on the API's address and none on `--metrics-listen`; malformed
   chunked framing is answered 400.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from allowly import Allowly, AllowlyAPIError

FAILURES: list[str] = []

# The limits the scenarios run against (small, so the attacks stay small).
HEADER_TIMEOUT = 2
BODY_TIMEOUT = 3
MAX_CONNECTIONS = 600
PER_ADDRESS = 150
AUTH_FAILURES_PER_MINUTE = 10
KEY_REQUESTS_PER_MINUTE = 30
# Bounds asserted on the server process while attacked.
MAX_RSS_MB = 300
FD_SLACK = 64
HEALTHY_P99_BOUND_MS = 1000


def expect(condition: bool, label: str, detail: Any = None) -> None:
    if condition:
        print(f"ok    {label}")
    else:
        FAILURES.append(f"{label}: {detail!r}")
        print(f"FAIL  {label}: {detail!r}")


class Server:
    def __init__(self, binary: str, work: Path, name: str, *flags: str) -> None:
        self.log = work / f"{name}.log"
        env = dict(os.environ, ALLOWLY_LOG="allowly=info")
        self.proc = subprocess.Popen(
            [binary, "--home", str(work / f"{name}-home"), "serve", "--listen", "127.0.0.1:0", *flags],
            stdout=subprocess.PIPE, stderr=self.log.open("w"), env=env, text=True)
        self.port = 0
        self.setup_key = self.runtime_key = self.metrics_url = ""
        deadline = time.time() + 30
        assert self.proc.stdout is not None
        while time.time() < deadline and not (self.port and self.runtime_key):
            line = self.proc.stdout.readline()
            if not line:
                break
            if m := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line):
                self.port = int(m.group(1))
            if m := re.search(r"metrics on (http://\S+/metrics)", line):
                self.metrics_url = m.group(1)
            if m := re.search(r"allowly\.setup\.\S+", line):
                self.setup_key = m.group(0)
            if m := re.search(r"allowly\.runtime\.\S+", line):
                self.runtime_key = m.group(0)
        if not (self.port and self.runtime_key):
            self.proc.kill()
            raise SystemExit(f"server {name} did not start:\n{self.log.read_text()}")
        self.base_url = f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def connect(port: int, source: str = "127.0.0.1", blocking: bool = True) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    if blocking:
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
    else:
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
    return sock


def request(conn: http.client.HTTPConnection, method: str, path: str, key: str | None, body: Any = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict, dict[str, str]]:
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=sent)
    response = conn.getresponse()
    data = response.read()
    headers_ = {k.lower(): v for k, v in response.getheaders()}
    is_json = headers_.get("content-type", "").startswith("application/json")
    return response.status, (json.loads(data) if data and is_json else {}), headers_


class Source(http.client.HTTPConnection):
    """An HTTP connection from a chosen loopback address."""

    def __init__(self, port: int, source: str, timeout: float = 10) -> None:
        super().__init__("127.0.0.1", port, timeout=timeout, source_address=(source, 0))


def setup_workspace(server: Server) -> str:
    conn = Source(server.port, "127.0.0.1")
    policy = {"policy_id": "p", "profile": "allowly.policy.v1", "agent_id": "a", "default_expiry_days": 1,
              "actions": [{"policy": {"profile": "allowly.basic.v1", "action": "api.call", "decision": "allow",
                                      "target": None, "fields": {}, "rules": []},
                           "guards": {}, "executable_operations": []}]}
    status, body, _ = request(conn, "POST", "/v1/policies", server.setup_key, policy)
    assert status == 201, (status, body)
    status, body, _ = request(conn, "POST", "/v1/authorizations", server.runtime_key,
                              {"user_id": "u", "policy_id": "p", "policy_version": 1, "metadata": {}})
    assert status == 201, (status, body)
    conn.close()
    return body["authorization_id"]


def check_body(authorization_id: str) -> dict:
    return {"authorization_id": authorization_id, "actions": ["api.call"], "resource": None, "session_id": None,
            "estimated_cost_micros": None, "context": {}}


class HealthyClient(threading.Thread):
    """Checks back to back on one keep-alive connection, recording each latency."""

    def __init__(self, server: Server, authorization_id: str) -> None:
        super().__init__(daemon=True)
        self.server, self.authorization_id = server, authorization_id
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = Source(self.server.port, "127.0.0.1", timeout=30)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                status, body, _ = request(conn, "POST", "/v1/check", self.server.runtime_key,
                                          check_body(self.authorization_id))
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(repr(exc))
                conn = Source(self.server.port, "127.0.0.1", timeout=30)
                continue
            self.latencies.append((time.perf_counter() - started) * 1000)
            if status != 200 or body["results"]["api.call"]["decision"] != "allow":
                self.errors.append(f"{status} {body}")
            time.sleep(0.01)

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("inf")


def closed_within(sockets: list[socket.socket], seconds: float, since: float) -> tuple[int, float]:
    """Waits (up to `seconds` from `since`) until the server closed every socket (EOF or reset); how
    many it closed, and how long after `since` the last one was."""
    waiting = selectors.DefaultSelector()
    for s in sockets:
        s.setblocking(False)
        waiting.register(s, selectors.EVENT_READ)
    open_count, last = len(sockets), 0.0
    while open_count and time.time() - since < seconds:
        for key, _ in waiting.select(timeout=0.2):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                waiting.unregister(key.fileobj)
                open_count -= 1
                last = time.time() - since
    waiting.close()
    return len(sockets) - open_count, last


def attacks(binary: str, work: Path) -> None:
    print("==> slow headers, slow bodies, idle connections and a flood from one address")
    server = Server(binary, work, "attacked", "--max-connections", str(MAX_CONNECTIONS),
                    "--max-connections-per-address", str(PER_ADDRESS), "--header-timeout-seconds",
                    str(HEADER_TIMEOUT), "--body-timeout-seconds", str(BODY_TIMEOUT))
    try:
        authorization_id = setup_workspace(server)
        healthy = HealthyClient(server, authorization_id)
        healthy.start()
        time.sleep(0.5)
        baseline = (server.rss_mb(), server.fds())

        # Slow headers from 127.0.0.2: most of a request head, then nothing.
        headers_sent = time.time()
        slow_headers = [connect(server.port, "127.0.0.2") for _ in range(100)]
        for s in slow_headers:
            s.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000)
        # Slow bodies from 127.0.0.3: a valid key and a declared body that never completes.
        bodies_sent = time.time()
        slow_bodies = [connect(server.port, "127.0.0.3") for _ in range(100)]
        for s in slow_bodies:
            s.sendall(f"POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.runtime_key}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{".encode())
        # Idle keep-alive connections from 127.0.0.4: one request each, then silence.
        idle_since = time.time()
        idle = []
        for _ in range(100):
            s = connect(server.port, "127.0.0.4")
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(4096)
            idle.append(s)
        # A flood from 127.0.0.5 (on its own thread, while the others are watched): more sockets
        # than its address may hold.
        flood: list[socket.socket] = []

        def flooding() -> None:
            for _ in range(1500):
                try:
                    flood.append(connect(server.port, "127.0.0.5"))
                except OSError:
                    pass  # the backlog was full for a moment: not a connection

        flooder = threading.Thread(target=flooding)
        flooder.start()
        time.sleep(0.5)
        under_attack = (server.rss_mb(), server.fds())
        expect(under_attack[0] < MAX_RSS_MB, f"RSS under attack {under_attack[0]:.0f} MB < {MAX_RSS_MB} MB "
               f"(baseline {baseline[0]:.0f} MB)", under_attack)
        expect(under_attack[1] <= MAX_CONNECTIONS + FD_SLACK,
               f"open files under attack {under_attack[1]} <= {MAX_CONNECTIONS} connections + {FD_SLACK}", under_attack)

        closed, last = closed_within(slow_headers, HEADER_TIMEOUT + 4, headers_sent)
        expect(closed == len(slow_headers) and last <= HEADER_TIMEOUT + 2,
               f"slow headers: all {closed} closed after {last:.1f} s (header timeout {HEADER_TIMEOUT} s)", closed)
        closed, last = closed_within(slow_bodies, BODY_TIMEOUT + 4, bodies_sent)
        expect(closed == len(slow_bodies) and last <= BODY_TIMEOUT + 2,
               f"slow bodies: all {closed} closed after {last:.1f} s (body timeout {BODY_TIMEOUT} s)", closed)
        closed, last = closed_within(idle, HEADER_TIMEOUT + 4, idle_since)
        expect(closed == len(idle) and last <= HEADER_TIMEOUT + 2,
               f"idle keep-alive: all {closed} closed after {last:.1f} s (idle = header timeout {HEADER_TIMEOUT} s)",
               closed)
        flooder.join()
        # Their closes are already queued (or arrive now): count them from here, not from the start.
        refused, _ = closed_within(flood, 5, time.time())
        expect(len(flood) > 1000 and refused >= len(flood) - PER_ADDRESS,
               f"flood: {refused} of {len(flood)} connections closed at once ({PER_ADDRESS} may stay per address)",
               refused)
        for s in slow_headers + slow_bodies + idle + flood:
            s.close()
        time.sleep(HEADER_TIMEOUT + 1)
        after = (server.rss_mb(), server.fds())
        expect(after[1] <= baseline[1] + 8, f"open files back to {after[1]} (baseline {baseline[1]})", after)

        healthy.stop.set()
        healthy.join()
        p99 = healthy.p99()
        expect(not healthy.errors, f"the well-behaved client had all {len(healthy.latencies)} checks answered",
               healthy.errors[:3])
        expect(p99 < HEALTHY_P99_BOUND_MS, f"its p99 under attack: {p99:.1f} ms (bound {HEALTHY_P99_BOUND_MS} ms)", p99)
    finally:
        server.stop()


def connection_cap(binary: str, work: Path) -> None:
    print("==> a flood from many addresses up to the connection cap")
    cap = 200
    server = Server(binary, work, "capped", "--max-connections", str(cap), "--max-connections-per-address",
                    "100", "--header-timeout-seconds", "30")
    try:
        old = Source(server.port, "127.0.0.1")
        status, body, _ = request(old, "GET", "/readyz", None)
        expect(status == 200, "/readyz is 200 before the flood", (status, body))
        flood = [connect(server.port, f"127.0.1.{1 + i // 90}", blocking=False) for i in range(1800)]
        time.sleep(1.5)
        fds = server.fds()
        expect(fds <= cap + FD_SLACK, f"at the cap the server holds {fds} files (cap {cap} connections)", fds)
        status, body, _ = request(old, "GET", "/readyz", None)
        expect(status == 503, "/readyz on an old connection: 503 while the server cannot accept", (status, body))
        for s in flood:
            s.close()
        time.sleep(1)
        fresh = Source(server.port, "127.0.0.9")
        status, _, _ = request(fresh, "GET", "/healthz", None)
        expect(status == 200, "after the flood a new client is served", status)
        status, body, _ = request(old, "GET", "/readyz", None)
        expect(status == 200, "and /readyz is 200 again", (status, body))
    finally:
        server.stop()


def authentication(binary: str, work: Path) -> None:
    print("==> authentication before the body; failed authentications limited per address")
    server = Server(binary, work, "auth", "--auth-failures-per-minute", str(AUTH_FAILURES_PER_MINUTE),
                    "--key-requests-per-minute", str(KEY_REQUESTS_PER_MINUTE))
    try:
        # No key and a declared 1 MB body that never comes: answered at once, the body unread.
        s = connect(server.port, "127.0.0.6")
        s.sendall(b"POST /v1/policies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000000\r\n\r\n")
        started = time.time()
        head = s.recv(4096).decode(errors="replace")
        expect(head.startswith("HTTP/1.1 401") and time.time() - started < 1,
               "no key: 401 at once, without reading the declared body", head[:40])
        s.close()
        wrong = "allowly.runtime.ws_0000000000000000000000000.ak_0000000000000000000000000.wrong"
        attacker = Source(server.port, "127.0.0.7")
        statuses = []
        for _ in range(AUTH_FAILURES_PER_MINUTE + 3):
            status, body, headers = request(attacker, "GET", "/v1/authorizations", wrong)
            statuses.append(status)
        expect(statuses[:AUTH_FAILURES_PER_MINUTE] == [401] * AUTH_FAILURES_PER_MINUTE and statuses[-1] == 429,
               f"{AUTH_FAILURES_PER_MINUTE} failed authentications from one address, then 429", statuses)
        expect(int(headers.get("retry-after", "0")) >= 1 and body.get("error", {}).get("code") == "rate_limited",
               "the 429 says when to retry", (headers.get("retry-after"), body))
        status, _, _ = request(attacker, "GET", "/v1/authorizations", server.runtime_key)
        expect(status == 429, "even a right key from that address waits out the limit", status)
        other = Source(server.port, "127.0.0.8")
        status, _, _ = request(other, "GET", "/v1/authorizations", wrong)
        expect(status == 401, "another address is unaffected (401, not 429)", status)
        log = server.log.read_text()
        expect("127.0.0.7" in log and "ak_0000000000000000000000000" in log and ".wrong" not in log,
               "refusals are logged with the client address and the key id, never the secret",
               [line for line in log.splitlines() if "127.0.0.7" in line][:2])

        print("==> per-key limits and the official client")
        authorization_id = setup_workspace(server)
        client = Allowly(server.runtime_key, base_url=server.base_url, dangerously_allow_insecure_base_url=True)

        async def until_limited() -> AllowlyAPIError | None:
            for _ in range(KEY_REQUESTS_PER_MINUTE + 5):
                try:
                    await client.check(authorization_id=authorization_id, actions=["api.call"])
                except AllowlyAPIError as exc:
                    return exc
            return None

        refused = asyncio.run(until_limited())
        expect(refused is not None and refused.status == 429 and refused.code == "rate_limited"
               and (refused.retry_after_seconds or 0) >= 1,
               "past its request rate a key gets 429 rate_limited; the official client surfaces retry_after_seconds",
               refused and (refused.status, refused.code, refused.retry_after_seconds))
    finally:
        server.stop()


def framing_and_metrics(binary: str, work: Path) -> None:
    print("==> /metrics: a setup key on the API's address, none on --metrics-listen")
    server = Server(binary, work, "framing", "--metrics-listen", "127.0.0.1:0")
    try:
        status, _, _ = request(Source(server.port, "127.0.0.1"), "GET", "/metrics", None)
        expect(status == 401, "GET /metrics without a key on the API's address: 401", status)
        status, _, _ = request(Source(server.port, "127.0.0.1"), "GET", "/metrics", server.setup_key)
        expect(status == 200, "with a setup key: 200", status)
        with urllib.request.urlopen(server.metrics_url) as answer:
            text = answer.read().decode()
        expect("allowly_connections_open" in text, f"{server.metrics_url} without a key: the metrics", text[:80])

        print("==> malformed chunked framing")
        for name, chunked in [("a chunk size that is not hex", b"zz\r\n{}\r\n0\r\n\r\n"),
                              ("a chunk longer than its size", b"2\r\n{}{}{}\r\n0\r\n\r\n"),
                              ("a size line without its CRLF", b"2{}\r\n0\r\n\r\n")]:
            s = connect(server.port)
            s.sendall(f"POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.runtime_key}\r\n"
                      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + chunked)
            head = s.recv(4096).decode(errors="replace")
            expect(head.startswith("HTTP/1.1 400"), f"{name}: 400", head[:60])
            s.close()
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in (attacks, connection_cap, authentication, framing_and_metrics):
            scenario(argv[1], Path(tmp))
    for failure in FAILURES:
        print(f"FAIL  {failure}")
    if FAILURES:
        return 1
    print("hostile clients: every bound held")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
