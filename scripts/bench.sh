#!/usr/bin/env bash
# Whole-system figures, measured side by side in one run and printed beside the figures quoted in
# issue 17 and their targets:
# - criterion medians of the engine; `allowly verify` against the reference verifier on one
#   10,000-receipt export; remote check latency of the official Python client beside ours;
# - `allowly serve` loaded by Debian's `wrk` (scripts/bench/check.lua), 64 connections, 2 threads:
#   SQLite with one and with 1,000 authorizations, PostgreSQL with 100 authorizations and with one
#   hot budgeted authorization. `/healthz` under the same wrk settings is the HTTP floor of this
#   machine, and every HTTP figure is also printed as a ratio to it;
# - the server's memory after the load, the store's bytes per receipt, `allowly receipts export`.
#
# Environment:
#   BENCH_SECONDS=10       seconds per wrk run
#   BENCH_RSS_SECONDS=300  also run one long SQLite load that long, for "server RSS after 5 minutes"
#   BENCH_SCALE=1          also build a 1,000,000-receipt store and time `allowly receipts export`
#                          and `allowly verify` on it (a few minutes)
# PostgreSQL comes from scripts/postgres.sh (ALLOWLY_PG_DIR, ALLOWLY_PG_PORT); a cluster this script
# started is destroyed at exit. Exits 1 when a wrk run had errors or denials: such a figure is not valid.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The SQLite rows are of the SQLite home; PostgreSQL is passed explicitly.
unset ALLOWLY_DATABASE_URL
seconds=${BENCH_SECONDS:-10}
rss_seconds=${BENCH_RSS_SECONDS:-0}
scale=${BENCH_SCALE:-0}
connections=64
threads=2

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench.sh: installing wrk (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk >&2 || {
      apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk >&2; }
  else
    echo "bench.sh: the HTTP figures need wrk; install it (Debian: sudo apt-get install wrk) or run as root" >&2
    exit 1
  fi
fi

# One build for everything below: the binaries are run from target/release, never through cargo run.
cargo build --release --locked --workspace --all-targets >/dev/null
cargo bench --locked -p allowly-core --bench engine -- --noplot --warm-up-time 1 --measurement-time 3 >/dev/null 2>&1 || {
  echo "cargo bench failed"; exit 1; }
allowly=target/release/allowly

reference="$("$root/scripts/reference-venv.sh")/bin/allowly-receipt-verify"
official_python="$("$root/scripts/official-venv.sh")/bin/python"
work=$(mktemp -d)
results="$work/results"
servers=()
pg_started=0
# Every server this script started is killed, and a PostgreSQL cluster it started (not one that was
# running already) is deleted.
cleanup() {
  for pid in "${servers[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ "$pg_started" = 1 ]; then "$root/scripts/postgres.sh" destroy >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Records one measured figure under a name, for the table at the end: record NAME COMMAND...
# runs the command, which prints the figure as JSON (a failure stops the script).
record() {
  local name=$1 value; shift
  value=$("$@")
  printf '%s\t%s\n' "$name" "$value" >>"$results"
}

# Runs a command and prints {"seconds": wall time, "max_rss_kb": its peak resident memory}.
measure() {
  python3 - "$@" <<'PY'
import json, resource, subprocess, sys, time
started = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(json.dumps({"seconds": time.monotonic() - started,
                  "max_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
PY
}

# --- the engine, and `allowly verify` beside the reference verifier -----------------------------

target/release/examples/export_corpus "$work/corpus" 10000 >/dev/null
workspace=$(cat "$work/corpus/workspace_id")
trust=()
while read -r fingerprint; do trust+=(--trusted-key-fingerprint "$fingerprint"); done <"$work/corpus/fingerprints"

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
ours=$(median_ms 5 "$allowly" verify "$work/corpus/export.jsonl" --keys "$work/corpus/keys.json" --workspace-id "$workspace" "${trust[@]}")
theirs=$(median_ms 3 "$reference" --workspace-id "$workspace" "${trust[@]}" --export "$work/corpus/export.jsonl" "$work/corpus/keys.json")
record verify_vs_reference echo "{\"ours_ms\": $ours, \"reference_ms\": $theirs}"

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
print(f"{'speed-up (reference / ours, medians of the same file)':66} {ratio:>10.1f}×  target ≥ 40×")
PY

echo
"$official_python" scripts/bench/remote_latency.py "$allowly" 2000

# --- `allowly serve` under wrk -------------------------------------------------------------------

# Starts `allowly serve` on a fresh home (extra arguments go to `serve`); sets server_pid,
# server_home, base, setup_key and runtime_key.
start_server() {
  local dir
  dir=$(mktemp -d "$work/serve.XXXX")
  server_home="$dir/home"
  ALLOWLY_LOG=warn "$allowly" --home "$server_home" serve --listen 127.0.0.1:0 "$@" >"$dir/out" 2>"$dir/log" &
  server_pid=$!
  servers+=("$server_pid")
  for _ in $(seq 1 100); do grep -q 'runtime key' "$dir/out" 2>/dev/null && break; sleep 0.1; done
  base=$(grep -o 'http://127.0.0.1:[0-9]*' "$dir/out" | head -1) || {
    echo "allowly serve did not start:"; cat "$dir/log"; exit 1; }
  setup_key=$(grep -o 'allowly\.setup\.[^ ]*' "$dir/out")
  runtime_key=$(grep -o 'allowly\.runtime\.[^ ]*' "$dir/out")
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" 2>/dev/null || true
}

# Prints the server's peak and current resident memory as JSON (kB, from /proc).
server_memory() {
  awk '/^VmHWM:/ {hwm = $2} /^VmRSS:/ {rss = $2} END {printf "{\"hwm_kb\": %d, \"rss_kb\": %d}\n", hwm, rss}' \
    "/proc/$server_pid/status"
}

# One wrk run against the running server: wrk_run NAME SCRIPT PATH [VAR=value for the Lua script...].
# Records the Lua script's result under NAME, with `denied` set when any check was denied (an unknown
# authorization or a spent budget is a signed `deny` answered 200, which wrk does not see as an error).
wrk_run() {
  local name=$1 script=$2 path=$3; shift 3
  local out="$work/wrk-$name.out" result denied=false
  env "$@" wrk -t"$threads" -c"$connections" -d"${wrk_seconds:-$seconds}s" --latency -s "scripts/bench/$script" \
    "$base$path" >"$out" 2>&1 || { echo "wrk failed ($name):"; cat "$out"; exit 1; }
  result=$(sed -n 's/^BENCH_RESULT //p' "$out")
  [ -n "$result" ] || { echo "wrk printed no result ($name):"; cat "$out"; exit 1; }
  if [ "$script" = check.lua ] && ! python3 scripts/bench/http_setup.py denials "$base" "$setup_key" >"$work/denied-$name"; then
    denied=true
  fi
  record "$name" python3 -c 'import json, sys; r = json.loads(sys.argv[1]); r["denied"] = sys.argv[2] == "true"; print(json.dumps(r))' "$result" "$denied"
}

# Creates COUNT authorizations of a fresh open policy NAME on the running server; prints the ids file.
authorizations() {
  local name=$1 count=$2 budget=${3:-}
  python3 scripts/bench/http_setup.py authorizations "$base" "$setup_key" "$name" "$count" "$work/$name.ids" $budget
  echo "$work/$name.ids"
}

echo
echo "allowly serve under wrk: $threads threads, $connections connections, ${seconds} s per run (HTTP floor, SQLite, PostgreSQL)..."

# SQLite: the floor, one authorization, then 1,000 on the same server; its memory after both.
start_server
wrk_run healthz healthz.lua /healthz
ids=$(authorizations wrk_one 1)
wrk_run sqlite_one check.lua /v1/check BENCH_RUNTIME_KEY="$runtime_key" BENCH_AUTHORIZATIONS="$ids"
ids=$(authorizations wrk_spread 1000)
wrk_run sqlite_spread check.lua /v1/check BENCH_RUNTIME_KEY="$runtime_key" BENCH_AUTHORIZATIONS="$ids"
record sqlite_memory server_memory
stop_server
record store_bytes python3 scripts/bench/http_setup.py store-bytes "$server_home/allowly.db"
record export_store measure "$allowly" --home "$server_home" receipts export --out "$work/store-export.jsonl"

# PostgreSQL: 100 authorizations, then one hot budgeted authorization whose budget the run cannot spend.
scripts/postgres.sh status 2>/dev/null || pg_started=1
eval "$(scripts/postgres.sh start)"
start_server --database-url "$(scripts/postgres.sh fresh-database allowly_bench)"
ids=$(authorizations wrk_spread 100)
wrk_run pg_spread check.lua /v1/check BENCH_RUNTIME_KEY="$runtime_key" BENCH_AUTHORIZATIONS="$ids"
ids=$(authorizations wrk_hot 1 1000000000000000)
wrk_run pg_hot check.lua /v1/check BENCH_RUNTIME_KEY="$runtime_key" BENCH_AUTHORIZATIONS="$ids" BENCH_COST_MICROS=1
stop_server

if [ "$rss_seconds" -gt 0 ]; then
  echo "one long SQLite run of ${rss_seconds} s, 1,000 authorizations (BENCH_RSS_SECONDS)..."
  start_server
  ids=$(authorizations wrk_spread 1000)
  wrk_seconds=$rss_seconds wrk_run sqlite_long check.lua /v1/check BENCH_RUNTIME_KEY="$runtime_key" BENCH_AUTHORIZATIONS="$ids"
  record long_memory server_memory
  stop_server
fi

if [ "$scale" = 1 ]; then
  echo "1,000,000 receipts in a SQLite home, then export and verify (BENCH_SCALE)..."
  target/release/examples/export_corpus "$work/scale" 1000000 sqlite >/dev/null
  scale_trust=()
  while read -r fingerprint; do scale_trust+=(--trusted-key-fingerprint "$fingerprint"); done <"$work/scale/fingerprints"
  record export_scale measure "$allowly" --home "$work/scale/home" receipts export --out "$work/scale/cli-export.jsonl"
  rm -f "$work/scale/cli-export.jsonl"
  record verify_scale measure "$allowly" verify "$work/scale/export.jsonl" --keys "$work/scale/keys.json" \
    --workspace-id "$(cat "$work/scale/workspace_id")" "${scale_trust[@]}"
fi

echo
python3 - "$results" "$seconds" "$threads" "$connections" "$(nproc)" "$rss_seconds" "$scale" <<'PY'
import json, sys
path, seconds, threads, connections, cores, rss_seconds, scale = sys.argv[1:]
got = {}
for line in open(path):
    name, value = line.rstrip("\n").split("\t", 1)
    got[name] = json.loads(value)

invalid = []
floor = got["healthz"]

def rate(n):
    return f"{n/1000:,.1f}k/s" if n >= 1000 else f"{n:,.0f}/s"

def ms(x):
    return f"{x:.2f} ms" if x < 10 else f"{x:.1f} ms"

def mb(kb):
    return f"{kb/1024:,.0f} MB"

def http_row(name):
    r = got[name]
    now = f"{rate(r['requests_per_second'])}, p50 {ms(r['p50_ms'])}, p99 {ms(r['p99_ms'])}"
    problems = []
    if r["http_errors"] or r["socket_errors"]:
        problems.append(f"{r['http_errors']} HTTP + {r['socket_errors']} socket errors")
    if r.get("denied"):
        problems.append("checks denied")
    if problems:
        invalid.append(name)
        return f"NOT VALID ({'; '.join(problems)}): {now}", "—"
    times = f"{r['requests_per_second'] / floor['requests_per_second']:.2f}× rate, p99 {r['p99_ms'] / floor['p99_ms']:.1f}×"
    return now, times

def not_run(why):
    return f"not run ({why})", ""

rows = []
rows.append(("`/healthz`, the HTTP floor (same wrk settings, same run)", "—", *http_row("healthz"), "—"))
rows.append(("`allowly serve` SQLite, one authorization, 64 connections (wrk)", "7.5k/s, p99 16 ms",
             *http_row("sqlite_one"), "≥ 15,000/s, p99 < 10 ms"))
rows.append(("the same, 1,000 authorizations", "—", *http_row("sqlite_spread"), "≥ 15,000/s"))
rows.append(("PostgreSQL, 100 authorizations", "2.25–3.1k/s", *http_row("pg_spread"), "≥ 6,000/s"))
rows.append(("PostgreSQL, one hot budgeted authorization", "2.8–4.1k/s", *http_row("pg_hot"), "≥ 5,000/s, budget exact"))
rows.append(("check p99 with 10,000,000 receipts in the store vs 100,000", "flat to 1M (p99 ~290 µs)",
             *not_run("needs a 10M-receipt store; not in bench.sh"), "within 1.2× at 10M, SQLite and PostgreSQL"))
store = got["store_bytes"]
if store["receipts_and_indexes_bytes"] is None:
    now = f"{store['file_bytes'] / store['receipts']:,.0f} B (whole file; no dbstat), {store['receipts']:,} receipts"
else:
    now = (f"{store['receipts_and_indexes_bytes'] / store['receipts']:,.0f} B "
           f"(whole file {store['file_bytes'] / store['receipts']:,.0f} B), {store['receipts']:,} receipts")
rows.append(("store bytes per receipt (SQLite, receipts + indexes)", "2,220", now, "", "≤ 1,200"))

def export_now(measured, receipts):
    return f"{receipts / measured['seconds'] / 1000:,.0f}k/s, {mb(measured['max_rss_kb'])} ({receipts:,} receipts)"

rows.append(("`allowly receipts export` of the SQLite store above", "—",
             export_now(got["export_store"], store["receipts"]), "", "≥ 200k/s, RSS < 100 MB"))
if "export_scale" in got:
    rows.append(("`allowly receipts export` of 10,000,000 receipts", "233k/s, 13 MB (1M)",
                 export_now(got["export_scale"], 1_000_000), "", "keep ≥ 200k/s, RSS < 100 MB"))
else:
    rows.append(("`allowly receipts export` of 10,000,000 receipts", "233k/s, 13 MB (1M)",
                 *not_run("BENCH_SCALE=1 runs 1M; 10M not in bench.sh"), "keep ≥ 200k/s, RSS < 100 MB"))
if "verify_scale" in got:
    v = got["verify_scale"]
    now = f"{v['seconds']:.1f} s, {mb(v['max_rss_kb'])} ({1_000_000 / v['seconds'] / 1000:,.0f}k receipts/s)"
    rows.append(("`allowly verify` of a 1,000,000-receipt export", "10.9 s, 519 MB", now, "",
                 "≥ 150k receipts/s on 2 cores, RSS < 100 MB"))
else:
    rows.append(("`allowly verify` of a 1,000,000-receipt export", "10.9 s, 519 MB", *not_run("BENCH_SCALE=1"),
                 "≥ 150k receipts/s on 2 cores, RSS < 100 MB"))
v = got["verify_vs_reference"]
rows.append(("`allowly verify` vs the reference verifier (same 10k file, same run)", "26–36×",
             f"{v['reference_ms'] / max(v['ours_ms'], 1):.1f}× ({v['ours_ms']:,} ms vs {v['reference_ms']:,} ms)", "", "≥ 40×"))
m = got["sqlite_memory"]
rows.append((f"server RSS after the SQLite runs above ({seconds} s each)", "—",
             f"peak {mb(m['hwm_kb'])}, now {mb(m['rss_kb'])}", "", "< 150 MB"))
if "long_memory" in got:
    m = got["long_memory"]
    now = f"peak {mb(m['hwm_kb'])}, now {mb(m['rss_kb'])} after {int(rss_seconds)} s"
    if "sqlite_long" in got:
        load, _ = http_row("sqlite_long")
        now += f" at {load}"
    rows.append(("server RSS after 5 minutes of load", "—", now, "", "< 150 MB"))
else:
    rows.append(("server RSS after 5 minutes of load", "—", *not_run("BENCH_RSS_SECONDS=300"), "< 150 MB"))

header = ("figure", "today", "now", "× floor", "target")
widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
def line(cells):
    return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"
print(line(header))
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for row in rows:
    print(line(row))
print()
print(f"wrk {threads} threads, {connections} connections, {seconds} s per run, on this {cores}-core machine: the load "
      f"generator shares the {cores} cores with the server (and with PostgreSQL), so every HTTP figure is bounded by "
      f"both. × floor: the figure's rate as a fraction of /healthz's, and its p99 as a multiple of /healthz's. "
      f"A run with any error or denied check is NOT VALID.")
if invalid:
    print(f"not valid: {', '.join(invalid)}")
    sys.exit(1)
PY
