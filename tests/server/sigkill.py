"""A server killed with SIGKILL under load loses no answered check.

Usage: sigkill.py ALLOWLY_BINARY [SECONDS] [THREADS]

Starts `allowly serve` on a fresh home, runs budgeted checks from many concurrent connections,
records the receipt ids of every check that was answered, kills the server with SIGKILL while
checks are in flight, then reopens the home with the CLI and asserts that every answered receipt is
stored (byte for byte) and that the budget counts every answered reservation. Standard library only.
"""
from __future__ import annotations

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


def start_server(binary: str, home: Path, log: Path) -> tuple[subprocess.Popen, int, str, str]:
    env = dict(os.environ, ALLOWLY_LOG="warn")
    env.pop("ALLOWLY_DATABASE_URL", None)
    proc = subprocess.Popen(
        [binary, "--home", str(home), "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=log.open("w"), env=env, text=True,
    )
    port = setup = runtime = None
    deadline = time.time() + 30
    assert proc.stdout is not None
    while time.time() < deadline and not (port and setup and runtime):
        line = proc.stdout.readline()
        if not line:
            break
        port = port or (m.group(1) if (m := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)) else None)
        setup = setup or (m.group(0) if (m := re.search(r"allowly\.setup\.\S+", line)) else None)
        runtime = runtime or (m.group(0) if (m := re.search(r"allowly\.runtime\.\S+", line)) else None)
    if not (port and setup and runtime):
        proc.kill()
        raise SystemExit(f"server did not start; log:\n{log.read_text()}")
    return proc, int(port), setup, runtime


def request(conn: http.client.HTTPConnection, method: str, path: str, key: str, body=None) -> tuple[int, dict]:
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else {})


def main(argv: list[str]) -> int:
    binary = argv[1]
    seconds = float(argv[2]) if len(argv) > 2 else 3.0
    threads = int(argv[3]) if len(argv) > 3 else 32
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        proc, port, setup, runtime = start_server(binary, home, Path(tmp) / "server.log")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        policy = {
            "policy_id": "load", "profile": "allowly.policy.v1", "agent_id": "load_agent", "default_expiry_days": 1,
            "actions": [
                {"policy": {"profile": "allowly.basic.v1", "action": a, "decision": d, "target": t, "fields": {},
                            "rules": []}, "guards": {}, "executable_operations": []}
                for a, d, t in (("api.call", "allow", None), ("email.send", "confirm", "agent_owner"))
            ],
        }
        status, _ = request(conn, "POST", "/v1/policies", setup, policy)
        assert status == 201, status
        status, created = request(conn, "POST", "/v1/authorizations", runtime, {
            "user_id": "u", "policy_id": "load", "policy_version": 1, "budget_limit_micros": 10**15, "metadata": {},
        })
        assert status == 201, (status, created)
        authorization_id = created["authorization_id"]
        conn.close()

        answered: list[tuple[str, dict]] = []  # (receipt id, signed receipt) of answered checks
        reserved = [0]
        lock = threading.Lock()
        stop = threading.Event()

        def worker(n: int) -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            i = 0
            while not stop.is_set():
                i += 1
                body = {"authorization_id": authorization_id, "actions": ["api.call", "email.send"],
                        "resource": f"r:{n}:{i}", "session_id": None, "estimated_cost_micros": 1,
                        "context": {"worker": n, "i": i}}
                try:
                    status, data = request(c, "POST", "/v1/check", runtime, body)
                except (OSError, http.client.HTTPException, ValueError):
                    return  # the server is gone: this check was not answered
                if status != 200:
                    with lock:
                        failures.append(f"check answered HTTP {status}: {data}")
                    return
                with lock:
                    for result in data["results"].values():
                        receipt = result["receipt"]["receipt"]
                        answered.append((result["receipt_id"], receipt))
                    if data["results"]["api.call"]["decision"] == "allow":
                        reserved[0] += 1

        pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for t in pool:
            t.start()
        time.sleep(seconds)
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.time()
        proc.wait()
        stop.set()
        for t in pool:
            t.join()
        count = len(answered)
        print(f"answered {count} receipts ({reserved[0]} budgeted checks) before SIGKILL; "
              f"server exit {proc.returncode}")
        if proc.returncode != -signal.SIGKILL:
            failures.append(f"server was not killed by SIGKILL: {proc.returncode}")
        if count < 100:
            failures.append(f"too few checks answered to mean anything: {count}")

        # Reopen the home with the CLI: every answered receipt is stored, unchanged.
        export = Path(tmp) / "export.jsonl"
        subprocess.run([binary, "--home", str(home), "receipts", "export", "--out", str(export)],
                       check=True, capture_output=True)
        stored = {}
        for line in export.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                stored[item["receipt_id"]] = item["receipt"]
        missing = [rid for rid, _ in answered if rid not in stored]
        changed = [rid for rid, receipt in answered if rid in stored and stored[rid] != receipt]
        if missing:
            failures.append(f"{len(missing)} answered receipts are missing, e.g. {missing[:3]}")
        if changed:
            failures.append(f"{len(changed)} stored receipts differ from the answers, e.g. {changed[:3]}")
        # The last answers are the ones a lost commit would hit: read them one by one too.
        for rid, receipt in answered[-10:]:
            shown = subprocess.run([binary, "--home", str(home), "--json", "receipts", "show", rid],
                                   capture_output=True, text=True)
            if shown.returncode != 0 or json.loads(shown.stdout).get("receipt") != receipt:
                failures.append(f"`allowly receipts show {rid}` does not return the answered receipt")
        # Budget: every answered reservation is counted; at most the in-flight ones more.
        shown = subprocess.run([binary, "--home", str(home), "--json", "authorizations", "show", authorization_id],
                               capture_output=True, text=True, check=True)
        spent = json.loads(shown.stdout)["budget_spent_micros"]
        if not reserved[0] <= spent <= reserved[0] + threads:
            failures.append(f"budget spent {spent} is not within [{reserved[0]}, {reserved[0] + threads}]")
        print(f"stored {len(stored)} receipts; budget spent {spent}; checked {time.time() - killed_at:.1f}s after the kill")
    for failure in failures:
        print(f"FAIL  {failure}")
    if failures:
        return 1
    print("sigkill: every answered check has its receipt in the database")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
