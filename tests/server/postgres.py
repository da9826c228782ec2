"""`allowly serve` on PostgreSQL: scale-out over two servers, SIGKILL under load, and an outage.

Usage: postgres.py ALLOWLY_BINARY POSTGRES_SH

Runs in the official client's virtualenv: its `allowly.verify.verify_receipt` checks the receipts
against the key document the servers publish. POSTGRES_SH is scripts/postgres.sh; its cluster must
be running (each scenario gets a fresh database on it). The outage scenario starts a second cluster
of its own (ALLOWLY_PG_DIR / ALLOWLY_PG_PORT below) so that stopping it disturbs nothing else.

1. Scale-out: two servers on one database; 400 concurrent budgeted checks on one authorization,
   spread over both, allow exactly floor(cap / cost); every receipt is stored and verifies. An
   idempotency key and a one-use escalation approval stay exact across the two servers too.
2. SIGKILL: a server killed under load; every answered check's receipt is in the database (read
   back through a second server) and the budget counts every answered reservation.
3. Key rotation while both servers sign: `allowly keys rotate --database-url` and then
   `POST /v1/setup/keys/rotate` on the other server, under load on both; no check fails, both
   servers move to each new key, and every receipt verifies against the published key windows.
4. Outage: PostgreSQL stopped under load: checks answer 503 (never an allow without a receipt),
   `/readyz` is 503, the remote client (the CLI with --url) answers its fail-closed fallback; once
   PostgreSQL is back the same server answers again and no answered receipt is lost.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from allowly.verify import load_keys_from_json, verify_receipt

FAILURES: list[str] = []
OUTAGE_CLUSTER = {"ALLOWLY_PG_DIR": "/tmp/allowly-pg-outage", "ALLOWLY_PG_PORT": "55433"}


def expect(condition: bool, label: str, detail: Any = None) -> None:
    if condition:
        print(f"ok    {label}")
    else:
        FAILURES.append(f"{label}: {detail!r}")
        print(f"FAIL  {label}: {detail!r}")


class Server:
    """One `allowly serve --database-url` process."""

    def __init__(self, binary: str, url: str, work: Path, name: str, first_start: bool = True) -> None:
        env = dict(os.environ, ALLOWLY_LOG="warn")
        self.log = work / f"{name}.log"
        self.proc = subprocess.Popen(
            [binary, "--home", str(work / f"{name}-home"), "serve", "--listen", "127.0.0.1:0", "--database-url", url],
            stdout=subprocess.PIPE, stderr=self.log.open("w"), env=env, text=True,
        )
        self.port = 0
        self.setup_key = self.runtime_key = None
        deadline = time.time() + 30
        assert self.proc.stdout is not None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if m := re.search(r"listening on http://127\.0\.0\.1:(\d+) \(workspace (\S+),", line):
                self.port, self.workspace_id = int(m.group(1)), m.group(2)
            self.setup_key = self.setup_key or (m.group(0) if (m := re.search(r"allowly\.setup\.\S+", line)) else None)
            if m := re.search(r"allowly\.runtime\.\S+", line):
                self.runtime_key = m.group(0)
            # A server on a database that already has a workspace prints no keys.
            if self.port and (self.runtime_key or not first_start):
                break
        if not self.port:
            self.proc.kill()
            raise SystemExit(f"server {name} did not start; log:\n{self.log.read_text()}")

    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def request(conn: http.client.HTTPConnection, method: str, path: str, key: str, body: Any = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict]:
    payload = json.dumps(body).encode() if body is not None else None
    sent = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", **(headers or {})}
    conn.request(method, path, body=payload, headers=sent)
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else {})


def call(server: Server, method: str, path: str, key: str, body: Any = None) -> tuple[int, dict]:
    conn = server.connection()
    try:
        return request(conn, method, path, key, body)
    finally:
        conn.close()


def postgres_sh(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([script, *args], capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    if done.returncode != 0:
        raise SystemExit(f"postgres.sh {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


def publish_policy(server: Server, setup_key: str) -> None:
    def action(name: str, decision: str, target: str | None) -> dict:
        return {"policy": {"profile": "allowly.basic.v1", "action": name, "decision": decision, "target": target,
                           "fields": {}, "rules": []}, "guards": {}, "executable_operations": []}

    policy = {"policy_id": "load", "profile": "allowly.policy.v1", "agent_id": "load_agent", "default_expiry_days": 1,
              "actions": [action("api.call", "allow", None), action("refund.issue", "escalate", "member:finance")]}
    status, body = call(server, "POST", "/v1/policies", setup_key, policy)
    assert status == 201, (status, body)


def authorize(server: Server, runtime_key: str, budget_limit_micros: int) -> str:
    status, created = call(server, "POST", "/v1/authorizations", runtime_key, {
        "user_id": "u", "policy_id": "load", "policy_version": 1, "budget_limit_micros": budget_limit_micros,
        "metadata": {},
    })
    assert status == 201, (status, created)
    return created["authorization_id"]


def check_body(authorization_id: str, action: str, resource: str, cost: int | None = None) -> dict:
    return {"authorization_id": authorization_id, "actions": [action], "resource": resource, "session_id": None,
            "estimated_cost_micros": cost, "context": {}}


def concurrently(count: int, work) -> list[Any]:
    """Runs work(i) on `count` threads released together; their results in order."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - reported as a failed result
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def verify_all(server: Server, receipts: dict[str, dict]) -> int:
    """Verifies each receipt with the official client's verifier; the number that verify."""
    status, doc = call(server, "GET", f"/v1/workspaces/{server.workspace_id}/keys", "")
    assert status == 200, (status, doc)
    keys = load_keys_from_json(doc)
    trusted = {k["public_key_fingerprint"] for k in doc["keys"]}
    verified = 0
    for receipt_id, receipt in receipts.items():
        try:
            payload = verify_receipt(receipt, keys, expected_workspace_id=server.workspace_id,
                                     trusted_key_fingerprints=trusted)
            verified += payload["receipt_id"] == receipt_id
        except Exception as exc:  # noqa: BLE001
            FAILURES.append(f"receipt {receipt_id} does not verify: {type(exc).__name__}: {exc}")
    return verified


def stored_receipts(server: Server, key: str, answered: dict[str, dict]) -> tuple[list[str], list[str]]:
    """The answered receipt ids that the server cannot return, and those it returns changed."""
    missing, changed = [], []
    conn = server.connection()
    for receipt_id, receipt in answered.items():
        status, body = request(conn, "GET", f"/v1/receipts/{receipt_id}", key)
        if status != 200 or body.get("status") != "signed":
            missing.append(receipt_id)
        elif body.get("receipt") != receipt:
            changed.append(receipt_id)
    conn.close()
    return missing, changed


def scale_out(binary: str, script: str, work: Path) -> None:
    print("==> scale-out: two servers on one PostgreSQL database")
    url = postgres_sh(script, "fresh-database", "allowly_scale_out")
    first = Server(binary, url, work, "scale-a")
    second = Server(binary, url, work, "scale-b", first_start=False)
    servers = [first, second]
    try:
        expect(first.workspace_id == second.workspace_id, "both servers serve the same workspace",
               (first.workspace_id, second.workspace_id))
        setup, runtime = first.setup_key, first.runtime_key
        publish_policy(first, setup)

        cost, allowed_wanted, checks = 1_000_000, 137, 400
        authorization_id = authorize(second, runtime, allowed_wanted * cost + cost // 2)

        def budgeted_check(i: int) -> tuple[int, dict]:
            return call(servers[i % 2], "POST", "/v1/check", runtime,
                        check_body(authorization_id, "api.call", f"r:{i}", cost))

        started = time.perf_counter()
        answers = concurrently(checks, budgeted_check)
        elapsed = time.perf_counter() - started
        errors = [a for a in answers if not (isinstance(a, tuple) and a[0] == 200)]
        expect(not errors, f"all {checks} concurrent checks answered 200 ({elapsed:.2f}s)", errors[:3])
        results = [a[1]["results"]["api.call"] for a in answers if isinstance(a, tuple) and a[0] == 200]
        allowed = [r for r in results if r["decision"] == "allow"]
        denied = [r for r in results if r["decision"] == "deny"]
        expect(len(allowed) == allowed_wanted, f"exactly floor(cap / cost) = {allowed_wanted} allowed", len(allowed))
        expect(all(r["reason"] == "budget_exceeded" for r in denied) and len(denied) == checks - allowed_wanted,
               "every other check is denied budget_exceeded", {r["reason"] for r in denied})
        from_each = [sum(1 for i, a in enumerate(answers) if i % 2 == s and isinstance(a, tuple)
                         and a[1]["results"]["api.call"]["decision"] == "allow") for s in (0, 1)]
        expect(all(n > 0 for n in from_each), "both servers allowed some of them", from_each)
        status, shown = call(first, "GET", f"/v1/authorizations/{authorization_id}", runtime)
        expect(status == 200 and shown.get("budget_spent_micros") == allowed_wanted * cost,
               "the budget spent is exactly the allowed checks' cost", shown.get("budget_spent_micros"))

        answered = {r["receipt_id"]: r["receipt"]["receipt"] for r in results}
        expect(len(answered) == checks, "every answer carries a signed receipt of its own", len(answered))
        missing, changed = stored_receipts(first, runtime, answered)
        expect(not missing and not changed, "every receipt is stored (read back through the first server)",
               (missing[:3], changed[:3]))
        verified = verify_all(second, answered)
        expect(verified == checks, "receipts from both servers verify under the workspace's keys", verified)

        # An idempotency key sent to both servers at once reserves once and answers one receipt.
        retried = authorize(first, runtime, 10 * cost)

        def same_key(i: int) -> tuple[int, dict]:
            conn = servers[i % 2].connection()
            try:
                return request(conn, "POST", "/v1/check", runtime, check_body(retried, "api.call", "r:once", cost),
                               headers={"Idempotency-Key": "scale-out-retry"})
            finally:
                conn.close()

        replies = concurrently(40, same_key)
        ids = {a[1]["results"]["api.call"]["receipt_id"] for a in replies if isinstance(a, tuple) and a[0] == 200}
        expect(len(ids) == 1 and all(isinstance(a, tuple) and a[0] == 200 for a in replies),
               "40 retries with one Idempotency-Key over both servers get one answer", ids)
        status, shown = call(second, "GET", f"/v1/authorizations/{retried}", runtime)
        expect(shown.get("budget_spent_micros") == cost, "and reserve the budget once", shown.get("budget_spent_micros"))

        # A one-use escalation approval allows exactly one of 40 concurrent checks over both servers.
        status, first_try = call(first, "POST", "/v1/check", runtime, check_body(authorization_id, "refund.issue", "x"))
        escalation_id = first_try["results"]["refund.issue"]["escalation_id"]
        status, _ = call(second, "POST", f"/v1/escalations/{escalation_id}/resolve", runtime,
                         {"resolution": "approved", "resolved_by": "finance"})
        expect(status == 200, "the escalation is approved through the second server", status)
        replies = concurrently(40, lambda i: call(servers[i % 2], "POST", "/v1/check", runtime,
                                                  check_body(authorization_id, "refund.issue", "x")))
        decisions = [a[1]["results"]["refund.issue"]["decision"] for a in replies if isinstance(a, tuple) and a[0] == 200]
        expect(len(decisions) == 40 and decisions.count("allow") == 1,
               "an approved escalation allows exactly one of 40 concurrent checks", decisions.count("allow"))

        # A tenant created with the CLI on the same database is served by both, and isolated.
        created = subprocess.run([binary, "--json", "workspaces", "create", "--database-url", url],
                                 capture_output=True, text=True, check=True)
        tenant = json.loads(created.stdout)
        expect(tenant["primary"] is False, "`allowly workspaces create --database-url` adds a tenant", tenant)
        tenant_setup, tenant_runtime = tenant["setup_key"]["key"], tenant["runtime_key"]["key"]
        publish_policy(second, tenant_setup)
        tenant_authorization = authorize(first, tenant_runtime, cost)
        status, body = call(first, "POST", "/v1/check", tenant_runtime,
                            check_body(tenant_authorization, "api.call", "t", cost))
        expect(status == 200 and body["results"]["api.call"]["decision"] == "allow",
               "its keys work on both running servers", (status, body))
        status, _ = call(first, "GET", f"/v1/authorizations/{authorization_id}", tenant_runtime)
        expect(status == 404, "the tenant cannot read the first workspace's authorization", status)
    finally:
        for server in servers:
            server.stop()


def sigkill(binary: str, script: str, work: Path) -> None:
    print("==> SIGKILL under load: every answered check is in the database")
    url = postgres_sh(script, "fresh-database", "allowly_sigkill")
    server = Server(binary, url, work, "kill")
    runtime = server.runtime_key
    publish_policy(server, server.setup_key)
    authorization_id = authorize(server, runtime, 10**15)
    answered: dict[str, dict] = {}
    lock = threading.Lock()
    stop = threading.Event()
    threads_count = 32

    def worker(n: int) -> None:
        conn = server.connection()
        i = 0
        while not stop.is_set():
            i += 1
            try:
                status, data = request(conn, "POST", "/v1/check", runtime,
                                       check_body(authorization_id, "api.call", f"r:{n}:{i}", 1))
            except (OSError, http.client.HTTPException, ValueError):
                return  # the server is gone: this check was not answered
            if status != 200:
                with lock:
                    FAILURES.append(f"check answered HTTP {status} before the kill: {data}")
                return
            result = data["results"]["api.call"]
            with lock:
                answered[result["receipt_id"]] = result["receipt"]["receipt"]

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads_count)]
    for t in pool:
        t.start()
    time.sleep(3)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    stop.set()
    for t in pool:
        t.join()
    expect(server.proc.returncode == -signal.SIGKILL, "the server died of SIGKILL", server.proc.returncode)
    expect(len(answered) >= 100, f"{len(answered)} checks answered before the kill", len(answered))

    after = Server(binary, url, work, "after-kill", first_start=False)
    try:
        missing, changed = stored_receipts(after, runtime, answered)
        expect(not missing and not changed, "every answered receipt is stored unchanged (read by a new server)",
               (len(missing), missing[:3], changed[:3]))
        status, shown = call(after, "GET", f"/v1/authorizations/{authorization_id}", runtime)
        spent = shown.get("budget_spent_micros", -1)
        expect(len(answered) <= spent <= len(answered) + threads_count,
               "the budget counts every answered reservation (at most the in-flight ones more)", spent)
    finally:
        after.stop()


def key_id_of(receipt: dict) -> str:
    """The `kid` of a receipt (a flattened JWS: protected header, payload, signature)."""
    header = receipt["protected"]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def rotation(binary: str, script: str, work: Path) -> None:
    print("==> key rotation on PostgreSQL while two servers sign")
    url = postgres_sh(script, "fresh-database", "allowly_rotation")
    first = Server(binary, url, work, "rotate-a")
    second = Server(binary, url, work, "rotate-b", first_start=False)
    servers = [first, second]
    try:
        setup, runtime = first.setup_key, first.runtime_key
        publish_policy(first, setup)
        authorization_id = authorize(first, runtime, 10**15)
        answers: list[tuple[int, dict]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def worker(n: int) -> None:
            server = servers[n % 2]
            conn = server.connection(timeout=30)
            i = 0
            while not stop.is_set():
                i += 1
                answer = request(conn, "POST", "/v1/check", runtime,
                                 check_body(authorization_id, "api.call", f"r:{n}:{i}", 1))
                with lock:
                    answers.append(answer)

        pool = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in pool:
            t.start()
        time.sleep(1)
        cli = subprocess.run([binary, "--json", "keys", "rotate", "--database-url", url],
                             capture_output=True, text=True)
        by_cli = json.loads(cli.stdout or "{}").get("key_id")
        expect(cli.returncode == 0 and by_cli, "`allowly keys rotate --database-url` rotates while both sign",
               (cli.returncode, cli.stdout, cli.stderr))
        time.sleep(1)
        status, by_route = call(second, "POST", "/v1/setup/keys/rotate", setup)
        expect(status == 201 and by_route.get("key_id") and by_route.get("active_until") is None,
               "POST /v1/setup/keys/rotate rotates on the other server", (status, by_route))
        time.sleep(1)
        stop.set()
        for t in pool:
            t.join()

        failed = [(status, body) for status, body in answers if status != 200]
        expect(not failed, f"all {len(answers)} checks under rotation were answered", failed[:3])
        receipts = {body["results"]["api.call"]["receipt_id"]: body["results"]["api.call"]["receipt"]["receipt"]
                    for status, body in answers if status == 200}
        used = {key_id_of(receipt) for receipt in receipts.values()}
        status, doc = call(first, "GET", f"/v1/workspaces/{first.workspace_id}/keys", "")
        published = [k["key_id"] for k in doc.get("keys", [])]
        expect(len(published) == 3 and {by_cli, by_route.get("key_id")} <= set(published),
               "the key document publishes the first key and both rotated ones", published)
        expect(len(used) == 3, "receipts were signed by all three keys in turn", sorted(used))
        for server in servers:
            status, body = call(server, "POST", "/v1/check", runtime,
                                check_body(authorization_id, "api.call", "after", 1))
            jws = body["results"]["api.call"]["receipt"]["receipt"]
            receipts[body["results"]["api.call"]["receipt_id"]] = jws
            expect(key_id_of(jws) == by_route.get("key_id"), f"server {server.log.stem} signs with the newest key",
                   key_id_of(jws))
        expect(verify_all(first, receipts) == len(receipts), f"all {len(receipts)} receipts verify")
    finally:
        for server in servers:
            server.stop()


def outage(binary: str, script: str, work: Path) -> None:
    print("==> PostgreSQL stopped under load, then restarted")
    postgres_sh(script, "start", env=OUTAGE_CLUSTER)
    url = postgres_sh(script, "fresh-database", "allowly_outage", env=OUTAGE_CLUSTER)
    server = Server(binary, url, work, "outage")
    runtime = server.runtime_key
    base_url = f"http://127.0.0.1:{server.port}"
    try:
        publish_policy(server, server.setup_key)
        authorization_id = authorize(server, runtime, 10**15)
        answers: list[tuple[int, dict]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def worker(n: int) -> None:
            conn = server.connection(timeout=30)
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    answer = request(conn, "POST", "/v1/check", runtime,
                                     check_body(authorization_id, "api.call", f"r:{n}:{i}", 1))
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    with lock:
                        FAILURES.append(f"the server dropped a check during the outage: {exc!r}")
                    return
                with lock:
                    answers.append(answer)
                if answer[0] != 200:
                    time.sleep(0.01)

        pool = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in pool:
            t.start()
        time.sleep(1)
        postgres_sh(script, "stop", env=OUTAGE_CLUSTER)
        time.sleep(2)
        status, body = call(server, "GET", "/readyz", "")
        expect(status == 503, "/readyz answers 503 while PostgreSQL is down", (status, body))
        status, body = call(server, "POST", "/v1/check", runtime, check_body(authorization_id, "api.call", "down", 1))
        expect(status == 503 and body.get("error", {}).get("code") == "store_unavailable",
               "a check answers 503 store_unavailable", (status, body))
        remote = subprocess.run(
            [binary, "--json", "--url", base_url, "--api-key", runtime, "check", "--authorization-id",
             authorization_id, "--action", "api.call"], capture_output=True, text=True)
        fallback = json.loads(remote.stdout or "{}").get("results", {}).get("api.call", {})
        expect(remote.returncode == 3 and fallback.get("decision") == "deny" and fallback.get("is_fallback") is True
               and fallback.get("receipt") is None and fallback.get("reason", "").startswith("fallback_closed_"),
               "the remote client answers its fail-closed fallback", (remote.returncode, fallback))

        postgres_sh(script, "start", env=OUTAGE_CLUSTER)
        deadline = time.time() + 30
        while time.time() < deadline and call(server, "GET", "/readyz", "")[0] != 200:
            time.sleep(0.2)
        expect(call(server, "GET", "/readyz", "")[0] == 200, "/readyz is 200 again once PostgreSQL is back")
        time.sleep(0.5)
        stop.set()
        for t in pool:
            t.join()

        statuses = {}
        for status, _ in answers:
            statuses[status] = statuses.get(status, 0) + 1
        expect(set(statuses) <= {200, 503} and statuses.get(503, 0) > 0 and statuses.get(200, 0) > 0,
               "under load the checks were answered 200, then 503 during the outage, then 200", statuses)
        allowed = {}
        for status, body in answers:
            if status == 200:
                result = body["results"]["api.call"]
                if result["decision"] != "allow" or not result.get("receipt", {}).get("receipt"):
                    FAILURES.append(f"an answered check was not an allow with its receipt: {result}")
                allowed[result["receipt_id"]] = result["receipt"]["receipt"]
        status, body = call(server, "POST", "/v1/check", runtime, check_body(authorization_id, "api.call", "back", 1))
        expect(status == 200 and body["results"]["api.call"]["decision"] == "allow",
               "the same server allows again after the restart", (status, body))
        missing, changed = stored_receipts(server, runtime, allowed)
        expect(not missing and not changed, f"all {len(allowed)} allowed receipts are stored", (missing[:3], changed[:3]))
        expect(verify_all(server, allowed) == len(allowed), "and verify")
    finally:
        server.stop()
        subprocess.run([script, "destroy"], capture_output=True, env=dict(os.environ, **OUTAGE_CLUSTER))


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    binary, script = argv[1], argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in (scale_out, sigkill, rotation, outage):
            scenario(binary, script, Path(tmp))
    for failure in FAILURES:
        print(f"FAIL  {failure}")
    if FAILURES:
        return 1
    print("postgres: scale-out, SIGKILL, key rotation and outage all hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
