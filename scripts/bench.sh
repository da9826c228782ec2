#!/usr/bin/env bash
# Whole-system figures, measured side by side in one run: criterion medians for the engine;
# `allowly verify` against the reference verifier on the same 10,000-receipt export; `allowly serve`
# under 64 connections from a second process on the SQLite home and on PostgreSQL (100
# authorizations, and one hot budgeted authorization); remote check latency of the official Python
# client beside this project's client on the same server.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --locked --workspace --all-targets >/dev/null
cargo bench --locked -p allowly-core --bench engine -- --noplot --warm-up-time 1 --measurement-time 3 >/dev/null 2>&1 || {
  echo "cargo bench failed"; exit 1; }

reference="$("$root/scripts/reference-venv.sh")/bin/allowly-receipt-verify"
work=$(mktemp -d)
pg_started=0
# A PostgreSQL cluster this script started (not one that was running already) is deleted at exit.
cleanup() {
  if [ "$pg_started" = 1 ]; then "$root/scripts/postgres.sh" destroy >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cargo run --quiet --release --locked -p allowly-core --example export_corpus -- "$work" 10000 >/dev/null
workspace=$(cat "$work/workspace_id")
trust=()
while read -r fingerprint; do trust+=(--trusted-key-fingerprint "$fingerprint"); done < "$work/fingerprints"

# Median wall time of a command over N runs, in milliseconds.
median_ms() {
  local runs=$1; shift
  local times=()
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N); "$@" >/dev/null 2>&1; end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
ours=$(median_ms 5 target/release/allowly verify "$work/export.jsonl" --keys "$work/keys.json" --workspace-id "$workspace" "${trust[@]}")
theirs=$(median_ms 3 "$reference" --workspace-id "$workspace" "${trust[@]}" --export "$work/export.jsonl" "$work/keys.json")

python3 - "$root/target/criterion" "$ours" "$theirs" <<'PY'
import json, pathlib, sys
root, ours, theirs = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def median_ns(name):
    return json.loads((root / name / "new" / "estimates.json").read_text())["median"]["point_estimate"]
rows = [
    ("policy evaluation + decision (no signing)", "policy/evaluate_and_decide", "< 2 µs"),
    ("sign one receipt", "receipt/sign", ""),
    ("verify one receipt (JSON in)", "receipt/verify_json", ""),
    ("check, 1 action, signed, memory store", "check/memory_signed", "≥ 25,000/s"),
    ("check, 1 action, signed, SQLite (WAL, durable to process crash)", "check/sqlite_signed", "≥ 12,000/s"),
    ("check, budgeted reservation, SQLite", "check/sqlite_budgeted", ""),
    ("check, 1 action, signed, SQLite with fsync per commit (power loss)", "check/sqlite_signed_fsync_per_commit", ""),
]
print(f"{'benchmark':66} {'median':>11} {'per second':>12}  target")
for label, name, target in rows:
    ns = median_ns(name)
    shown = f"{ns/1000:.2f} µs" if ns < 1e6 else f"{ns/1e6:.2f} ms"
    print(f"{label:66} {shown:>11} {1e9/ns:>12,.0f}  {target}")
ratio = theirs / max(ours, 1)
print(f"{'verify 10,000-receipt export: allowly verify':66} {ours:>8} ms")
print(f"{'verify 10,000-receipt export: allowly-receipt-verify 5.0.0':66} {theirs:>8} ms")
print(f"{'speed-up (reference / ours, medians of the same file)':66} {ratio:>10.1f}×  target ≥ 20×")
PY

echo
echo "allowly serve, 64 keep-alive connections from a second process (loadgen), ${SERVER_BENCH_SECONDS:=10} s each"
scripts/postgres.sh status 2>/dev/null || pg_started=1
eval "$(scripts/postgres.sh start)"
sqlite=$(scripts/server-bench.sh 64 "$SERVER_BENCH_SECONDS" | sed -n 1p)
pg_spread=$(LOADGEN_AUTHORIZATIONS=100 scripts/server-bench.sh 64 "$SERVER_BENCH_SECONDS" \
  --database-url "$(scripts/postgres.sh fresh-database allowly_bench)" | sed -n 1p)
pg_hot=$(LOADGEN_BUDGETED=1 scripts/server-bench.sh 64 "$SERVER_BENCH_SECONDS" \
  --database-url "$(scripts/postgres.sh fresh-database allowly_bench)" | sed -n 1p)
python3 - "$sqlite" "$pg_spread" "$pg_hot" <<'PY'
import json, sys
rows = [
    ("SQLite home, one authorization", sys.argv[1], "≥ 8,000/s, p99 < 20 ms"),
    ("PostgreSQL, 100 authorizations", sys.argv[2], "≥ 3,000/s"),
    ("PostgreSQL, one hot budgeted authorization", sys.argv[3], "≥ 1,500/s"),
]
print(f"{'storage':46} {'checks/s':>9} {'p50':>9} {'p99':>9} {'errors':>7}  target")
for label, raw, target in rows:
    r = json.loads(raw)
    print(f"{label:46} {r['checks_per_second']:>9,.0f} {r['p50_ms']:>6.2f} ms {r['p99_ms']:>6.2f} ms {r['errors']:>7}  {target}")
PY

echo
"$(scripts/official-venv.sh)/bin/python" scripts/bench/remote_latency.py target/release/allowly 2000
