#!/usr/bin/env bash
# Throughput and latency of `allowly serve` on a fresh SQLite home: CONNECTIONS keep-alive
# connections from a second process (the loadgen example) check as fast as answered for SECONDS.
# Usage: scripts/server-bench.sh [CONNECTIONS=64] [SECONDS=10] [extra `allowly serve` flags...]
# ALLOWLY_BIN names another `allowly` binary to serve (to compare two builds side by side).
# A quick look with the project's own load generator (its LOADGEN_* options show where slow answers
# fall); the figures quoted against targets are scripts/bench.sh's, under Debian's wrk.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# These tests and figures are of the SQLite home.
unset ALLOWLY_DATABASE_URL
connections=${1:-64}; seconds=${2:-10}; shift $(( $# > 2 ? 2 : $# ))
cargo build --release --locked --quiet -p allowly-cli -p allowly-server --example loadgen
work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
ALLOWLY_LOG=${ALLOWLY_LOG:-warn} "${ALLOWLY_BIN:-target/release/allowly}" --home "$work/home" serve --listen 127.0.0.1:0 "$@" \
  >"$work/out" 2>"$work/log" &
server_pid=$!
for _ in $(seq 1 100); do grep -q 'runtime key' "$work/out" 2>/dev/null && break; sleep 0.1; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/out" | head -1)
setup=$(grep -o 'allowly\.setup\.[^ ]*' "$work/out")
runtime=$(grep -o 'allowly\.runtime\.[^ ]*' "$work/out")
target/release/examples/loadgen "$base" "$setup" "$runtime" "$connections" "$seconds"
# The server's own view: its latency histogram of /v1/check (time inside the server).
python3 - "$base" "$setup" <<'PY'
import re, sys, urllib.request
request = urllib.request.Request(sys.argv[1] + "/metrics", headers={"Authorization": f"Bearer {sys.argv[2]}"})
text = urllib.request.urlopen(request).read().decode()
buckets = [(float(le), int(n)) for le, n in re.findall(
    r'allowly_http_request_duration_seconds_bucket\{route="/v1/check",le="([0-9.e+-]+)"\} (\d+)', text)]
total = int(re.search(r'allowly_http_request_duration_seconds_count\{route="/v1/check"\} (\d+)', text).group(1))
def quantile(q):
    return next((le for le, n in buckets if n >= q * total), float("inf"))
print(f'{{"server_side_checks": {total}, "server_p50_ms_at_most": {quantile(0.5) * 1000}, "server_p99_ms_at_most": {quantile(0.99) * 1000}}}')
PY
kill -TERM "$server_pid"; wait "$server_pid"; server_pid=""
