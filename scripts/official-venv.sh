#!/usr/bin/env bash
# Creates (once) a virtualenv with the official Python client `allowly` 0.8.0 and prints its directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/target/venv-official"
if ! "$venv/bin/python" -c 'import allowly, importlib.metadata as m; assert m.version("allowly") == "0.8.0"' 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check allowly==0.8.0 >&2
fi
echo "$venv"
