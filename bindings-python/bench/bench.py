"""The Python SDK's speed figures, side by side (run by scripts/python-bench.sh).

1. Embedded check: the same check on the same in-process engine, timed in a Rust loop
   (`Engine._bench_rust_check`, through core's Api) and from Python (allowly.sync), in alternating
   rounds; the overhead is the difference.
2. Remote check against one local `allowly serve`: this SDK (async and sync) versus the official
   allowly 0.8.0 client (async), sequential and with 16 calls in flight.
3. allowly.verify on 10,000 receipts versus the reference Python verifier allowly_receipt_format.

Usage: bench.py ALLOWLY_BIN OFFICIAL_PYTHON [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import allowly
import allowly.verify as ours
from allowly.sync import Allowly as SyncAllowly

HERE = Path(__file__).resolve().parent
POLICY = HERE / "policy.json"
CONTEXT = {"recipient_domain": "example.com"}


def figures(samples_us: list[float], total_s: float | None = None) -> dict[str, float]:
    ordered = sorted(samples_us)
    n = len(ordered)
    return {
        "calls": n,
        "mean_us": sum(ordered) / n,
        "p50_us": ordered[round((n - 1) * 0.5)],
        "p99_us": ordered[round((n - 1) * 0.99)],
        "calls_per_second": n / (total_s if total_s is not None else sum(ordered) / 1e6),
    }


def policy_body() -> tuple[str, dict[str, Any]]:
    body = json.loads(POLICY.read_text())
    policy_id = body.pop("policy_id")
    body.pop("description", None)
    return policy_id, body


def setup_workspace(setup: SyncAllowly, runtime: SyncAllowly) -> str:
    policy_id, body = policy_body()
    setup.policies.create(policy_id=policy_id, definition=body)
    return runtime.authorizations.create(user_id="bench_user", policy_id=policy_id).authorization_id


# ---------------------------------------------------------------------------------------------
# 1. Embedded


def bench_embedded(calls: int, rounds: int) -> dict[str, Any]:
    """Alternating rounds on one engine in this process: `calls` checks from Rust
    (`Engine._bench_rust_check`, the GIL released) then the same `calls` checks from Python."""
    home = tempfile.mkdtemp(prefix="allowly-bench-")
    try:
        client = SyncAllowly.embedded(home)
        authorization_id = setup_workspace(client, client)
        engine = client._engine
        check = client.check
        for _ in range(min(calls, 500)):
            check(authorization_id=authorization_id, actions=["docs.read"], context=CONTEXT)
        rows = []
        for _ in range(rounds):
            rust = engine._bench_rust_check(authorization_id, ["docs.read"], CONTEXT, calls)
            samples = []
            clock = time.perf_counter_ns
            for _ in range(calls):
                t0 = clock()
                answer = check(authorization_id=authorization_id, actions=["docs.read"], context=CONTEXT)
                samples.append((clock() - t0) / 1000)
                if answer.results["docs.read"].reason != "authorization_granted_action_active":
                    raise SystemExit("unexpected decision " + answer.results["docs.read"].reason)
            rows.append((figures(rust), figures(samples)))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    med = lambda key, side: statistics.median(r[side][key] for r in rows)  # noqa: E731
    return {
        "rounds": rounds,
        "calls_per_round": calls,
        "rust": {k: med(k, 0) for k in ("mean_us", "p50_us", "p99_us", "calls_per_second")},
        "python": {k: med(k, 1) for k in ("mean_us", "p50_us", "p99_us", "calls_per_second")},
        "overhead_p50_us": statistics.median(r[1]["p50_us"] - r[0]["p50_us"] for r in rows),
        "overhead_mean_us": statistics.median(r[1]["mean_us"] - r[0]["mean_us"] for r in rows),
    }


# ---------------------------------------------------------------------------------------------
# 2. Remote


def start_server(binary: str, home: str) -> tuple[subprocess.Popen[bytes], str, str, str]:
    out_path = home + ".out"
    process = subprocess.Popen(
        [binary, "--home", home, "serve", "--listen", "127.0.0.1:0"],
        stdout=open(out_path, "wb"),
        stderr=open(home + ".log", "wb"),
        env={k: v for k, v in os.environ.items() if k != "ALLOWLY_DATABASE_URL"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = Path(out_path).read_text(errors="replace")
        url = re.search(r"listening on (http://[0-9.:]+)", text)
        setup = re.search(r"allowly\.setup\.\S+", text)
        runtime = re.search(r"allowly\.runtime\.\S+", text)
        if url and setup and runtime:
            return process, url.group(1), setup.group(0), runtime.group(0)
        time.sleep(0.05)
    process.kill()
    raise SystemExit("allowly serve did not start")


CLIENT_BENCH = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from allowly import Allowly

    async def main(base_url, key, authorization_id, calls, concurrency):
        async with Allowly(key, base_url=base_url, dangerously_allow_insecure_base_url=True) as client:
            context = {"recipient_domain": "example.com"}
            misses = 0  # answers other than the granted allow (a client-side fallback on a timeout)
            async def one():
                nonlocal misses
                r = await client.check(authorization_id=authorization_id, actions=["docs.read"], context=context)
                misses += r.results["docs.read"].reason != "authorization_granted_action_active"
            for _ in range(min(calls, 300)):
                await one()
            samples = []
            started = time.perf_counter()
            for _ in range(calls):
                t0 = time.perf_counter_ns()
                await one()
                samples.append((time.perf_counter_ns() - t0) / 1000)
            sequential = time.perf_counter() - started
            started = time.perf_counter()
            async def worker(n):
                for _ in range(n):
                    await one()
            await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
            concurrent = (calls // concurrency * concurrency) / (time.perf_counter() - started)
            print(json.dumps({"samples": samples, "seconds": sequential, "concurrent_cps": concurrent,
                              "misses": misses}))

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    """
)


def client_bench(python: str, base_url: str, key: str, authorization_id: str, calls: int) -> dict[str, Any]:
    out = subprocess.run(
        [python, "-c", CLIENT_BENCH, base_url, key, authorization_id, str(calls), "16"],
        check=True, capture_output=True, text=True, cwd=tempfile.gettempdir(),
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    result = figures(raw["samples"], raw["seconds"])
    result["concurrent_cps"] = raw["concurrent_cps"]
    if raw["misses"]:
        print(f"note: {raw['misses']} answers from {python} were not the granted allow (client-side fallbacks)")
    return result


def sync_remote(base_url: str, key: str, authorization_id: str, calls: int) -> dict[str, Any]:
    client = SyncAllowly(key, base_url=base_url)
    for _ in range(min(calls, 300)):
        client.check(authorization_id=authorization_id, actions=["docs.read"], context=CONTEXT)
    samples = []
    started = time.perf_counter()
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        client.check(authorization_id=authorization_id, actions=["docs.read"], context=CONTEXT)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return figures(samples, time.perf_counter() - started)


def bench_remote(allowly_bin: str, official_python: str, calls: int) -> dict[str, Any]:
    work = tempfile.mkdtemp(prefix="allowly-bench-remote-")
    process, base_url, setup_key, runtime_key = start_server(allowly_bin, os.path.join(work, "home"))
    try:
        setup = SyncAllowly(setup_key, base_url=base_url)
        runtime = SyncAllowly(runtime_key, base_url=base_url)
        authorization_id = setup_workspace(setup, runtime)
        # Alternate the clients so that neither gets a warmer server.
        official = client_bench(official_python, base_url, runtime_key, authorization_id, calls)
        mine_async = client_bench(sys.executable, base_url, runtime_key, authorization_id, calls)
        mine_sync = sync_remote(base_url, runtime_key, authorization_id, calls)
        official_2 = client_bench(official_python, base_url, runtime_key, authorization_id, calls)
        mine_async_2 = client_bench(sys.executable, base_url, runtime_key, authorization_id, calls)
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    best = lambda a, b: a if a["calls_per_second"] >= b["calls_per_second"] else b  # noqa: E731
    return {"official_async": best(official, official_2), "allowly_async": best(mine_async, mine_async_2),
            "allowly_sync": mine_sync}


# ---------------------------------------------------------------------------------------------
# 3. Verify


def bench_verify(count: int) -> dict[str, Any]:
    import allowly_receipt_format as ref

    home = tempfile.mkdtemp(prefix="allowly-bench-verify-")
    try:
        client = SyncAllowly.embedded(home)
        authorization_id = setup_workspace(client, client)
        receipts = []
        while len(receipts) < count:
            answer = client.check(authorization_id=authorization_id, actions=["docs.read"], context=CONTEXT)
            envelope = answer.results["docs.read"].receipt
            assert isinstance(envelope, allowly.ReceiptEnvelopeSigned)
            receipts.append(envelope.receipt)
        doc, workspace_id = client.keys(), client.workspace_id
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert workspace_id is not None
    keys, ref_keys = ours.load_keys_from_json(doc), ref.load_keys_from_json(doc)
    trusted = {k["public_key_fingerprint"] for k in doc["keys"]}

    def timed(fn: Any) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    def reference() -> None:
        for r in receipts:
            ref.verify_receipt(r, ref_keys, expected_workspace_id=workspace_id, trusted_key_fingerprints=trusted)

    def batch() -> None:
        results = ours.verify_receipts(receipts, keys, expected_workspace_id=workspace_id,
                                       trusted_key_fingerprints=trusted)
        assert not any(isinstance(r, Exception) for r in results)

    def loop() -> None:
        for r in receipts:
            ours.verify_receipt(r, keys, expected_workspace_id=workspace_id, trusted_key_fingerprints=trusted)

    # The same receipts as a JSONL export (one bare receipt per line), read and verified in Rust.
    export_dir = tempfile.mkdtemp(prefix="allowly-bench-export-")
    export = os.path.join(export_dir, "receipts.jsonl")
    with open(export, "w") as out:
        out.writelines(json.dumps(r) + "\n" for r in receipts)

    def exported() -> None:
        report = ours.verify_export(export, keys, expected_workspace_id=workspace_id,
                                    trusted_key_fingerprints=trusted)
        assert report.ok and report.invalid == 0 and len(report.lines) == count

    try:
        ref_s = min(timed(reference) for _ in range(2))
        batch_s = min(timed(batch) for _ in range(3))
        loop_s = min(timed(loop) for _ in range(3))
        export_s = min(timed(exported) for _ in range(3))
    finally:
        shutil.rmtree(export_dir, ignore_errors=True)
    return {"receipts": count, "reference_s": ref_s, "verify_receipts_s": batch_s, "verify_receipt_loop_s": loop_s,
            "verify_export_s": export_s, "speedup_batch": ref_s / batch_s, "speedup_loop": ref_s / loop_s,
            "speedup_export": ref_s / export_s}


def main() -> None:
    allowly_bin, official_python = sys.argv[1:3]
    quick = "--quick" in sys.argv
    calls = 2000 if quick else 10_000
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)

    embedded = bench_embedded(calls, 5)
    r, p = embedded["rust"], embedded["python"]
    print("\n== embedded check: the same check on the same engine, from Rust and from Python "
          f"(median of 5 alternating rounds; load average now {os.getloadavg()[0]:.2f}) ==")
    print(f"{'':24}{'mean µs':>10}{'p50 µs':>10}{'p99 µs':>10}{'calls/s':>10}")
    print(f"{'Rust loop (core Api)':24}{r['mean_us']:10.1f}{r['p50_us']:10.1f}{r['p99_us']:10.1f}{r['calls_per_second']:10.0f}")
    print(f"{'Python allowly.sync':24}{p['mean_us']:10.1f}{p['p50_us']:10.1f}{p['p99_us']:10.1f}{p['calls_per_second']:10.0f}")
    print(f"overhead per call: {embedded['overhead_p50_us']:.2f} µs at the median, "
          f"{embedded['overhead_mean_us']:.2f} µs on the mean (target ≤ 5 µs)", flush=True)

    remote = bench_remote(allowly_bin, official_python, calls // 2)
    print(f"\n== remote check, one local allowly serve (sequential; and 16 in flight; "
          f"load average now {os.getloadavg()[0]:.2f}) ==")
    print(f"{'':26}{'mean µs':>10}{'p99 µs':>10}{'calls/s':>10}{'16 in flight':>14}")
    for label, key in [("official allowly 0.8.0", "official_async"), ("this SDK, async", "allowly_async"),
                       ("this SDK, sync", "allowly_sync")]:
        f = remote[key]
        print(f"{label:26}{f['mean_us']:10.1f}{f['p99_us']:10.1f}{f['calls_per_second']:10.0f}"
              f"{f.get('concurrent_cps', float('nan')):14.0f}")
    ratio = remote["allowly_async"]["calls_per_second"] / remote["official_async"]["calls_per_second"]
    ratio_c = remote["allowly_async"]["concurrent_cps"] / remote["official_async"]["concurrent_cps"]
    print(f"async calls/s vs official: {ratio:.2f}x sequential, {ratio_c:.2f}x with 16 in flight (target ≥ 2x)",
          flush=True)

    verify = bench_verify(10_000)
    print(f"\n== verify 10,000 receipts (load average now {os.getloadavg()[0]:.2f}) ==")
    print(f"reference allowly_receipt_format 5.0.0: {verify['reference_s'] * 1000:8.1f} ms")
    print(f"allowly.verify.verify_receipts (batch):  {verify['verify_receipts_s'] * 1000:8.1f} ms"
          f"  {verify['speedup_batch']:.1f}x   (target ≥ 20x)")
    print(f"allowly.verify.verify_receipt (loop):    {verify['verify_receipt_loop_s'] * 1000:8.1f} ms"
          f"  {verify['speedup_loop']:.1f}x")
    print(f"allowly.verify.verify_export (JSONL):    {verify['verify_export_s'] * 1000:8.1f} ms"
          f"  {verify['speedup_export']:.1f}x   (target ≥ 20x)")

    out = Path(os.environ.get("ALLOWLY_BENCH_JSON", "python-bench.json"))
    out.write_text(json.dumps({"embedded": embedded, "remote": remote, "verify": verify}, indent=1))
    print(f"\nfigures written to {out}")


if __name__ == "__main__":
    main()
