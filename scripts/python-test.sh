#!/usr/bin/env bash
# The Python SDK's tests, on the wheel built from bindings-python/ (never the source tree):
# quickstart embedded and against `allowly serve`, the README's program (run as `python app.py` in an
# empty folder), fallback, verifier parity with the reference
# allowly-receipt-format 5.0.0, a script for the official allowly 0.8.0 client, bad input, stubs
# (mypy.stubtest) and mypy --strict on the examples. Idempotent; works on a fresh clone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset ALLOWLY_DATABASE_URL

venv="$root/target/venv-python"
if ! "$venv/bin/python" -c 'import maturin, pytest, mypy, allowly_receipt_format' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "maturin>=1.16,<2.0" pytest mypy allowly-receipt-format==5.0.0
fi

# The official client, for the side-by-side run of the official-client script (same venv as
# scripts/server-test.sh).
official="$root/target/venv-official"
if ! "$official/bin/python" -c 'import allowly, importlib.metadata as m; assert m.version("allowly") == "0.8.0"' 2>/dev/null; then
  python3 -m venv "$official"
  "$official/bin/pip" install --quiet --disable-pip-version-check allowly==0.8.0
fi

echo "==> allowly serve (release)"
cargo build --release --locked --quiet -p allowly-cli

echo "==> wheel (maturin build --release), installed once"
wheels="$root/target/wheels-python"
rm -rf "$wheels"
PATH="$venv/bin:$PATH" "$venv/bin/maturin" build --release --locked --quiet \
  --manifest-path bindings-python/Cargo.toml --interpreter "$venv/bin/python" --out "$wheels"
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/allowly-*.whl

echo "==> pytest (bindings-python/tests)"
# pytest's tmp_path folders (the README program's empty folder among them) go to a scratch folder
# removed at exit, not to /tmp/pytest-of-$USER, which pytest keeps.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export PYTEST_ADDOPTS="--basetemp=$scratch/pytest ${PYTEST_ADDOPTS:-}"
cd "$root/bindings-python/tests"
ALLOWLY_BIN="$root/target/release/allowly" "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" .

echo "==> without its conformance vectors the parity test fails, never skips"
if output=$(ALLOWLY_WIRE5_VECTORS=/nonexistent/wire5.json "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    test_verify_parity.py 2>&1); then
  echo "test_verify_parity.py passed without its vectors"
  exit 1
fi
grep -q "No such file or directory" <<<"$output" || { echo "$output"; echo "test_verify_parity.py failed for another reason"; exit 1; }

echo "==> mypy --strict (package and examples)"
cd "$root/bindings-python"
"$venv/bin/python" -m mypy --strict --no-incremental --cache-dir /dev/null examples
"$venv/bin/python" -m mypy --strict --no-incremental --cache-dir /dev/null -p allowly

echo "python SDK tests passed"
