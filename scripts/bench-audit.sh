#!/usr/bin/env bash
# The audit lookup (`GET /v1/receipts`) on a large store: fills a fresh SQLite file and a fresh
# PostgreSQL workspace with N real signed receipts each (default 1,000,000; the first argument
# overrides it), then times filtered pages of 50 through the engine, p50, p99 and max per filter
# shape (core/examples/audit_bench.rs), against the target p99 < 50 ms.
#
#   scripts/bench-audit.sh            # 1,000,000 receipts per store
#   scripts/bench-audit.sh 20000      # a quick run
#
# PostgreSQL comes from scripts/postgres.sh (ALLOWLY_PG_DIR, ALLOWLY_PG_PORT are honoured) in a
# database of its own, allowly_audit_bench; a cluster this script started is destroyed at exit.
# Exits non-zero when a run fails, not when a store misses the target (each run says PASS or FAIL).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
receipts=${1:-1000000}
[[ "$receipts" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [RECEIPTS]" >&2; exit 2; }

cargo build --quiet --release --locked -p allowly-core --example audit_bench
bench="$root/target/release/examples/audit_bench"

work=$(mktemp -d)
pg_started=0
# A PostgreSQL cluster this script started (not one that was running already) is deleted at exit.
cleanup() {
  if [ "$pg_started" = 1 ]; then "$root/scripts/postgres.sh" destroy >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== SQLite ($receipts receipts)"
"$bench" sqlite "$work/allowly.db" "$receipts"
rm -f "$work"/allowly.db*

echo
echo "== PostgreSQL ($receipts receipts)"
scripts/postgres.sh status 2>/dev/null || pg_started=1
eval "$(scripts/postgres.sh start)"
"$bench" postgres "$(scripts/postgres.sh fresh-database allowly_audit_bench)" "$receipts"
