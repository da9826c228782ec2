#!/usr/bin/env bash
# Speed figures of the Python SDK, side by side (bindings-python/bench/bench.py): embedded check
# from Python vs the same check in Rust; remote check vs the official allowly 0.8.0 client;
# allowly.verify on 10,000 receipts vs the reference verifier. `--quick` for fewer calls.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset ALLOWLY_DATABASE_URL

venv="$root/target/venv-python"
official="$root/target/venv-official"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import allowly._native' 2>/dev/null; then
  echo "run scripts/python-test.sh first (it builds and installs the wheel)"; exit 1
fi
if ! "$official/bin/python" -c 'import allowly, importlib.metadata as m; assert m.version("allowly") == "0.8.0"' 2>/dev/null; then
  python3 -m venv "$official"
  "$official/bin/pip" install --quiet --disable-pip-version-check allowly==0.8.0
fi
cargo build --release --locked --quiet -p allowly-cli
ALLOWLY_BENCH_JSON="$root/target/python-bench.json" "$venv/bin/python" bindings-python/bench/bench.py \
  "$root/target/release/allowly" "$official/bin/python" "$@"
