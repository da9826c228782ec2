#!/usr/bin/env bash
# The Python MCP guard's tests (allowly.mcp, docs/mcp.md) on the wheel built from bindings-python/:
# fastmcp 4 through the real fastmcp.Client (in memory and the stdio example), the official mcp 2.x
# MCPServer through its own Client, `allowly serve` for the remote runs; then mypy --strict on
# allowly.mcp and the example. fastmcp 4.2.3 depends on mcp 2.3.0, so one venv holds both.
# Idempotent; works on a fresh clone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset ALLOWLY_DATABASE_URL

venv="$root/target/venv-mcp-fastmcp"
pins=(fastmcp==4.2.3 mcp==2.3.0 pytest mypy "maturin>=1.16,<2.0")
if ! "$venv/bin/python" -c '
import importlib.metadata as m, maturin, mypy, pytest
assert (m.version("fastmcp"), m.version("mcp")) == ("4.2.3", "2.3.0")' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
fi

echo "==> allowly serve (release)"
cargo build --release --locked --quiet -p allowly-cli

echo "==> the allowly wheel"
# scripts/python-test.sh builds target/wheels-python; it is reused while it holds the Python sources
# as they are now and is newer than the Rust sources, else built the same way.
wheels="$root/target/wheels-python"
if ! "$venv/bin/python" - "$wheels" "$root" <<'EOF'
import sys, zipfile
from pathlib import Path

wheels, root = Path(sys.argv[1]), Path(sys.argv[2])
found = sorted(wheels.glob("allowly-*.whl"))
if len(found) != 1:
    sys.exit(1)
wheel = found[0]
source = root / "bindings-python" / "python"
with zipfile.ZipFile(wheel) as archive:
    packed = {name: archive.read(name) for name in archive.namelist() if name.startswith("allowly/")}
for path in source.rglob("*"):
    if path.is_file() and path.suffix in (".py", ".pyi", ".typed"):
        if packed.get(path.relative_to(source).as_posix()) != path.read_bytes():
            sys.exit(1)
built = wheel.stat().st_mtime
rust = [root / "Cargo.lock", root / "bindings-python" / "Cargo.toml"]
for folder in ("core", "bindings-python/src"):
    rust += [p for p in (root / folder).rglob("*") if p.is_file()]
sys.exit(1 if any(p.stat().st_mtime > built for p in rust) else 0)
EOF
then
  rm -rf "$wheels"
  PATH="$venv/bin:$PATH" "$venv/bin/maturin" build --release --locked --quiet \
    --manifest-path bindings-python/Cargo.toml --interpreter "$venv/bin/python" --out "$wheels"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/allowly-*.whl

echo "==> pytest (bindings-python/tests/mcp)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export PYTEST_ADDOPTS="--basetemp=$scratch/pytest ${PYTEST_ADDOPTS:-}"
cd "$root/bindings-python/tests"
ALLOWLY_BIN="$root/target/release/allowly" "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" mcp

echo "==> mypy --strict (allowly.mcp, the example)"
cd "$root/bindings-python"
"$venv/bin/python" -m mypy --strict --no-incremental --cache-dir /dev/null -p allowly.mcp
"$venv/bin/python" -m mypy --strict --no-incremental --cache-dir /dev/null "$root/examples/mcp/server.py"

echo "python MCP guard tests passed"
