#!/usr/bin/env python3
"""Conformance runner of the Python SDK: operations of the catalog by name, one JSON line each.

Usage:
    python python_calls.py embedded <home_dir>
    python python_calls.py remote <base_url> <api_key> <workspace_id>

Run it with a Python that has the SDK installed (the wheel of bindings-python/; scripts/python-test.sh
installs it into target/venv-python). Reads JSON lines from stdin, each
``{"op": "<operation>", "args": {...}}`` (``args`` as the HTTP API's JSON merged, plus
``idempotency_key``; absent means ``{}``), and writes one JSON line to stdout per line read, flushed:

    {"ok": <the answer's JSON, exactly the HTTP answer body; null for the 204 operations>}
    {"error": {"kind": "<core's error kind>", "code": "<stable code>", "status": <int or null>,
               "class": "<Python exception class name>"}}

The line ``{"op": "__catalog__"}`` is answered with ``{"ok": <the catalog, a JSON array>}``. Blank
lines are skipped; the runner exits at the end of its input. Nothing else is written to stdout.
"""

from __future__ import annotations

import json
import sys

import allowly
from allowly import AllowlyError
from allowly.sync import Allowly

USAGE = (
    "usage: python_calls.py embedded <home_dir>\n"
    "       python_calls.py remote <base_url> <api_key> <workspace_id>\n"
)


def open_client(argv: list[str]) -> Allowly:
    if len(argv) == 2 and argv[0] == "embedded":
        return Allowly.embedded(argv[1])
    if len(argv) == 4 and argv[0] == "remote":
        base_url, api_key, workspace_id = argv[1:]
        # The runtime of a conformance run listens on 127.0.0.1 over plain HTTP.
        return Allowly(api_key, base_url=base_url, workspace_id=workspace_id, dangerously_allow_insecure_base_url=True)
    sys.stderr.write(USAGE)
    raise SystemExit(2)


def error_line(kind: str, code: str, status: int | None, cls: str) -> str:
    return json.dumps({"error": {"kind": kind, "code": code, "status": status, "class": cls}})


def answer(client: Allowly, line: str) -> str:
    try:
        request = json.loads(line)
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            raise ValueError('a request line is {"op": "<operation>", "args": {...}}')
        args = request.get("args", {})
        if not isinstance(args, dict):
            raise ValueError("`args` must be a JSON object")
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        sys.stderr.write(f"python_calls: {exc}\n")
        return error_line("invalid_request", "invalid_line", None, type(exc).__name__)
    if request["op"] == "__catalog__":
        return json.dumps({"ok": allowly.catalog()})
    try:
        # The engine's generic call with JSON text in and out: the arguments reach core exactly as
        # the line has them, and the answer is core's JSON, not re-encoded here.
        answered: str = client._engine.call(request["op"], json.dumps(args))
    except AllowlyError as exc:
        return error_line(exc.kind, exc.code, exc.status, type(exc).__name__)
    except Exception as exc:  # noqa: BLE001 - a bug of the SDK: reported on the line, the run goes on
        sys.stderr.write(f"python_calls: {request['op']}: {type(exc).__name__}: {exc}\n")
        return error_line("internal", "python_exception", None, type(exc).__name__)
    return '{"ok":' + answered + "}"


def main(argv: list[str]) -> int:
    client = open_client(argv)
    for line in sys.stdin:
        if not line.strip():
            continue
        sys.stdout.write(answer(client, line) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
