#!/usr/bin/env bash
# What the Python MCP guard adds to a tool call (bindings-python/bench/mcp_guard.py): fastmcp.Client
# in memory, with and without AllowlyMCPMiddleware, on an embedded workspace. Not a test: prints
# p50/p99 of each and the difference. Arguments go to the bench (`--calls N`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/target/venv-mcp-fastmcp"
if ! "$venv/bin/python" -c 'import allowly.mcp, fastmcp' 2>/dev/null; then
  echo "run scripts/mcp-python-test.sh first (it makes the venv and installs the wheel)"; exit 1
fi
"$venv/bin/python" bindings-python/bench/mcp_guard.py "$@"
