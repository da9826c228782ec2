#!/usr/bin/env bash
# Creates (once) a virtualenv with the reference verifier and prints its directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/target/venv-reference"
if [ ! -x "$venv/bin/allowly-receipt-verify" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check allowly-receipt-format==5.0.0 >&2
fi
echo "$venv"
