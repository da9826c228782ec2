#!/usr/bin/env bash
# End-to-end tests of `allowly serve` with the release binary:
#  1. the official Python client `allowly` 0.8.0 (from PyPI, unchanged) drives every call of the
#     wire-compatible subset against a fresh home and verifies every receipt it saw;
#  2. a second workspace created while the server runs is isolated from the first;
#  3. SIGTERM stops the server with exit 0, and a restart never prints the keys again;
#  4. a server killed with SIGKILL under concurrent load loses no answered check;
#  5. on PostgreSQL: the official client again, then scale-out over two servers, SIGKILL under load
#     and a PostgreSQL outage (tests/server/postgres.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# These tests and figures are of the SQLite home.
unset ALLOWLY_DATABASE_URL

cargo build --release --locked --quiet -p allowly-cli
allowly="$root/target/release/allowly"

venv=$(scripts/official-venv.sh)

work=$(mktemp -d)
server_pid=""
pg_started=0
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  # A PostgreSQL cluster this script started (not one scripts/test.sh or the user runs) is deleted.
  if [ "$pg_started" = 1 ]; then "$root/scripts/postgres.sh" destroy >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
home="$work/home"

# start_server <stdout file> [serve flags...]: starts `allowly serve` on a free port; sets server_pid
# and base_url.
start_server() {
  local out=$1
  shift
  "$allowly" --home "$home" serve --listen 127.0.0.1:0 "$@" >"$out" 2>>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 300); do
    if grep -q 'listening on' "$out" 2>/dev/null; then
      base_url=$(grep -o 'listening on http://[0-9.:]*' "$out" | head -1 | sed 's/listening on //')
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL  the server did not start"; cat "$work/server.log"; exit 1
}

# stop_server <signal>: sends the signal and requires exit status 0.
stop_server() {
  local rc=0
  kill "-$1" "$server_pid"
  wait "$server_pid" || rc=$?
  server_pid=""
  if [ "$rc" != 0 ]; then echo "FAIL  the server exited $rc after SIG$1"; tail -20 "$work/server.log"; exit 1; fi
  echo "ok    SIG$1 stops the server with exit 0"
}

echo "==> official client allowly 0.8.0 against allowly serve"
start_server "$work/first.out"
setup_key=$(grep -o 'allowly\.setup\.[^ ]*' "$work/first.out" || true)
runtime_key=$(grep -o 'allowly\.runtime\.[^ ]*' "$work/first.out" || true)
if [ -z "$setup_key" ] || [ -z "$runtime_key" ]; then echo "FAIL  first start printed no keys"; cat "$work/first.out"; exit 1; fi
echo "ok    first start printed a setup and a runtime key"
other_runtime_key=$("$allowly" --home "$home" --json workspaces create \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["runtime_key"]["key"])')
"$venv/bin/python" tests/server/official_client.py "$base_url" "$setup_key" "$runtime_key" "$other_runtime_key"
stop_server TERM

echo "==> restart: the keys are never printed again"
start_server "$work/second.out"
if grep -q 'allowly\.\(setup\|runtime\)\.' "$work/second.out"; then echo "FAIL  a restart printed keys again"; exit 1; fi
echo "ok    a restart prints no keys"
python3 -c 'import json, sys, urllib.request as u; assert json.load(u.urlopen(sys.argv[1] + "/readyz"))["status"] == "ready"' "$base_url"
echo "ok    the restarted server is ready"
stop_server INT

echo "==> SIGKILL under load"
python3 tests/server/sigkill.py "$allowly" 3 32

echo "==> official client allowly 0.8.0 against allowly serve on PostgreSQL"
scripts/postgres.sh status 2>/dev/null || pg_started=1
eval "$(scripts/postgres.sh start)"
start_server "$work/pg.out" --database-url "$(scripts/postgres.sh fresh-database allowly_official_client)"
setup_key=$(grep -o 'allowly\.setup\.[^ ]*' "$work/pg.out" || true)
runtime_key=$(grep -o 'allowly\.runtime\.[^ ]*' "$work/pg.out" || true)
if [ -z "$setup_key" ] || [ -z "$runtime_key" ]; then echo "FAIL  first start printed no keys"; cat "$work/pg.out"; exit 1; fi
"$venv/bin/python" tests/server/official_client.py "$base_url" "$setup_key" "$runtime_key"
stop_server TERM

echo "==> hostile clients: slow headers and bodies, idle connections, floods, failed authentications, per-key limits"
"$venv/bin/python" tests/server/hostile.py "$allowly"

echo "==> PostgreSQL: scale-out over two servers, SIGKILL under load, an outage"
"$venv/bin/python" tests/server/postgres.py "$allowly" scripts/postgres.sh

echo
echo "server tests passed"
