#!/usr/bin/env bash
# The conformance walk (tests/conformance/conformance.py): every operation of the catalog from Rust,
# Python, Node and C, embedded and against `allowly serve`, with the same answers. Runs after the
# SDK scripts, whose builds it reuses: the Python wheel in target/venv-python (scripts/python-test.sh),
# the Node addon (scripts/node-test.sh) and liballowly (scripts/c-test.sh); it builds the Rust runner
# and the C runner (bindings-c/build/plain/c_calls) itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset ALLOWLY_DATABASE_URL
target="${CARGO_TARGET_DIR:-$root/target}"

cargo build --release --locked --quiet -p allowly-cli
cargo build --release --locked --quiet -p allowly-core --example conformance_calls
make --no-print-directory -s -C bindings-c tests

python="$target/venv-python/bin/python"
"$python" -c 'import allowly' || { echo "FAIL  the Python SDK is not installed in $python: run scripts/python-test.sh first"; exit 1; }
[ -e bindings-node/native.cjs ] || { echo "FAIL  the Node addon is not built: run scripts/node-test.sh first"; exit 1; }

"$python" tests/conformance/conformance.py "$target/release/allowly" "$target/release/examples/conformance_calls" \
  "$python" node bindings-c/build/plain/c_calls
