#!/usr/bin/env bash
# Node SDK benchmark: embedded `check` throughput with its signed receipt (SQLite home), remote
# `check` latency against one local `allowly serve` beside the official Python client 0.8.0, and the
# MCP guard's cost per tool call (bench/mcp.mjs: p50/p99 with and without @allowly/sdk/mcp).
# Extra arguments go to bindings-node/bench/check.mjs (--checks N --runs R --concurrency C --remote-checks N).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset ALLOWLY_DATABASE_URL

cargo build --release --locked --quiet -p allowly-cli
export ALLOWLY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/allowly"
venv="$root/target/venv-official"
if ! "$venv/bin/python" -c 'import allowly, importlib.metadata as m; assert m.version("allowly") == "0.8.0"' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check allowly==0.8.0
fi
cd bindings-node
npm install --no-audit --no-fund --ignore-scripts --loglevel=error
npx napi build --platform --release --js native.cjs --dts native.d.ts >/dev/null 2>&1 \
  || npx napi build --platform --release --js native.cjs --dts native.d.ts
node bench/check.mjs "$@"
node bench/mcp.mjs
