"""Remote `check` latency against one `allowly serve`, client beside client, in one run.

Usage: remote_latency.py ALLOWLY_BINARY CALLS  (run with the official client's virtualenv)

Starts `allowly serve` on a fresh home, publishes a one-action allow policy and an authorization,
then times CALLS sequential checks (after a warm-up) with each client on the same server:
the official Python client `allowly` 0.8.0 (async, one client, connection reuse) and this
project's Rust remote client (the `remote_latency` example). Prints one table.
"""
from __future__ import annotations

import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from allowly import Allowly


def start_server(binary: str, home: Path) -> tuple[subprocess.Popen, str, str, str]:
    proc = subprocess.Popen([binary, "--home", str(home), "serve", "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={"ALLOWLY_LOG": "warn", "PATH": "/usr/bin:/bin"})
    assert proc.stdout is not None
    text = ""
    while "runtime key" not in text:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the server did not start")
        text += line
    base = re.search(r"http://127\.0\.0\.1:\d+", text).group(0)
    setup = re.search(r"allowly\.setup\.\S+", text).group(0)
    runtime = re.search(r"allowly\.runtime\.\S+", text).group(0)
    return proc, base, setup, runtime


def post(base: str, path: str, key: str, body: dict) -> dict:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def summary(name: str, latencies: list[float], elapsed: float) -> dict:
    latencies.sort()
    return {"client": name, "calls": len(latencies), "mean_ms": statistics.fmean(latencies) * 1000,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            "calls_per_second": len(latencies) / elapsed}


async def official(base: str, key: str, authorization_id: str, calls: int) -> dict:
    async with Allowly(key, base_url=base, dangerously_allow_insecure_base_url=True) as client:
        for _ in range(calls // 10):
            await client.check(authorization_id=authorization_id, actions=["api.call"])
        latencies = []
        started = time.perf_counter()
        for _ in range(calls):
            call = time.perf_counter()
            await client.check(authorization_id=authorization_id, actions=["api.call"])
            latencies.append(time.perf_counter() - call)
        return summary("official Python client allowly 0.8.0", latencies, time.perf_counter() - started)


def main(argv: list[str]) -> int:
    binary, calls = argv[1], int(argv[2])
    example = str(Path(binary).parent / "examples" / "remote_latency")
    with tempfile.TemporaryDirectory() as tmp:
        proc, base, setup, runtime = start_server(binary, Path(tmp) / "home")
        try:
            post(base, "/v1/policies", setup, {
                "policy_id": "latency", "profile": "allowly.policy.v1", "agent_id": "bench", "default_expiry_days": 1,
                "actions": [{"policy": {"profile": "allowly.basic.v1", "action": "api.call", "decision": "allow",
                                        "target": None, "fields": {}, "rules": []},
                             "guards": {}, "executable_operations": []}]})
            authorization_id = post(base, "/v1/authorizations", runtime, {
                "user_id": "bench", "policy_id": "latency", "policy_version": 1, "metadata": {}})["authorization_id"]
            rows = [asyncio.run(official(base, runtime, authorization_id, calls))]
            ours = subprocess.run([example, base, runtime, authorization_id, "api.call", str(calls)],
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(ours.stdout))
        finally:
            proc.terminate()
            proc.wait()
    print(f"{'remote check, sequential, one local server':46} {'mean':>9} {'p50':>9} {'p99':>9} {'calls/s':>9}")
    for row in rows:
        print(f"{row['client']:46} {row['mean_ms']:>6.3f} ms {row['p50_ms']:>6.3f} ms {row['p99_ms']:>6.3f} ms "
              f"{row['calls_per_second']:>9,.0f}")
    print(f"{'speed-up in calls per second (ours / official)':46} {rows[1]['calls_per_second'] / rows[0]['calls_per_second']:>9.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
