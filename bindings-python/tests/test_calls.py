"""Every surface is built from core's operation catalog: `allowly.catalog()` is core's list, the
engine's generic `call` runs any operation of it by name (JSON text in and out, or Python data),
the conformance runner (tests/conformance/runners/python_calls.py) speaks its line protocol over
it, and the async client is derived from the sync one, method for method."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from typing import Any

import pytest

import allowly
import allowly.client
import allowly.sync
from allowly import InvalidRequestError, NotFoundError
from allowly.sync import Allowly

from conftest import ROOT, Server

RUNNER = ROOT / "tests" / "conformance" / "runners" / "python_calls.py"
PLAN = json.loads((ROOT / "tests" / "conformance" / "plan.json").read_text())


def test_catalog_is_cores() -> None:
    catalog = allowly.catalog()
    names = [route["operation"] for route in catalog]
    assert len(names) == len(set(names)) == 26
    assert {"check", "create_policy", "archive_policy", "rotate_signing_key", "revoke_api_key"} <= set(names)
    archive = next(route for route in catalog if route["operation"] == "archive_policy")
    assert (archive["method"], archive["path"], archive["path_field"], archive["access"], archive["status"]) == (
        "DELETE", "/v1/policies/{id}", "policy_id", "setup", 204)
    # The plan walks the whole catalog.
    assert {step["op"] for step in PLAN["steps"]} == set(names)


def test_call_takes_json_text_or_python_data() -> None:
    client = Allowly.in_memory()
    engine = client._engine
    assert json.loads(engine.call("list_policies", "{}")) == {"items": [], "has_more": False, "next_cursor": None}
    assert engine.call("list_policies", None) == {"items": [], "has_more": False, "next_cursor": None}
    assert engine.call("rotate_signing_key", "null").startswith('{"')
    key = client.call("create_api_key", {"kind": "runtime", "label": "ci"})
    assert key["key"].startswith("allowly.runtime.") and client.call("revoke_api_key", {"key_id": key["key_id"]}) is None
    with pytest.raises(InvalidRequestError) as bad:
        engine.call("list_policies", "{not json")
    assert bad.value.fields[0].field == "args"
    with pytest.raises(InvalidRequestError) as unknown:
        engine.call("launch", "{}")
    assert unknown.value.fields[0].field == "operation"
    # Python data is JSON data: floats and non-JSON objects are type errors naming the member.
    with pytest.raises(allowly.AllowlyTypeError) as typed:
        client.call("settle_budget", {"check_receipt_id": "rcp_x", "actual_cost_micros": 1.5})
    assert typed.value.field == "actual_cost_micros"
    with pytest.raises(allowly.AllowlyTypeError):
        client.call("get_policy", {"policy_id": object()})
    # As JSON text the same float reaches core, as over HTTP.
    with pytest.raises(InvalidRequestError) as wire:
        engine.call("settle_budget", '{"check_receipt_id": "rcp_x", "actual_cost_micros": 1.5}')
    assert wire.value.fields[0].field == "actual_cost_micros"


def test_call_check_falls_back_like_check() -> None:
    client = Allowly("allowly.runtime.ws_x.ak_x.secret", base_url="http://127.0.0.1:1", check_timeout_ms=200)
    answer = client.call("check", {"authorization_id": "auth_1", "actions": ["email.send"]})
    result = answer["results"]["email.send"]
    assert (result["decision"], result["is_fallback"]) == ("deny", True)
    assert answer == json.loads(client._engine.call("check", json.dumps({"authorization_id": "auth_1",
                                                                          "actions": ["email.send"]})))


def resolve(value: Any, answers: dict[str, Any]) -> Any:
    """The plan's `${step/path}` references, replaced by that part of an earlier answer."""
    if isinstance(value, str):
        match = re.fullmatch(r"\$\{([^/}]+)/?([^}]*)\}", value)
        if not match:
            return value
        found = answers[match.group(1)]
        for part in filter(None, match.group(2).split("/")):
            found = found[part]
        return found
    if isinstance(value, dict):
        return {key: resolve(item, answers) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, answers) for item in value]
    return value


def run_plan(argv: list[str]) -> list[tuple[str, dict[str, Any]]]:
    runner = subprocess.Popen([sys.executable, str(RUNNER), *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert runner.stdin is not None and runner.stdout is not None

    def ask(line: str) -> dict[str, Any]:
        assert runner.stdin is not None and runner.stdout is not None
        runner.stdin.write(line + "\n")
        runner.stdin.flush()  # the runner answers each line before reading the next
        answered: dict[str, Any] = json.loads(runner.stdout.readline())
        return answered

    try:
        seen = [("__catalog__", ask('{"op": "__catalog__"}'))]
        answers: dict[str, Any] = {}
        for step in PLAN["steps"]:
            got = ask(json.dumps({"op": step["op"], "args": resolve(step.get("args", {}), answers)}))
            if "ok" in got:
                answers[step["name"]] = got["ok"]
            seen.append((step["name"], got))
        seen.append(("not json", ask("{oops")))
        seen.append(("no args", ask('{"op": "list_api_keys"}')))
        runner.stdin.close()
        assert runner.stdout.read() == ""  # nothing but answers, one per line
        assert runner.wait(timeout=30) == 0
    finally:
        runner.kill()
    return seen


@pytest.mark.parametrize("kind", ["embedded", "remote"])
def test_conformance_runner_walks_the_plan(kind: str, home: str, fresh_server: Server) -> None:
    argv = (["embedded", home] if kind == "embedded" else
            ["remote", fresh_server.base_url, fresh_server.setup_key, fresh_server.workspace_id])
    seen = dict(run_plan(argv))
    assert seen["__catalog__"] == {"ok": allowly.catalog()}
    for step in PLAN["steps"]:
        got = seen[step["name"]]
        if "expect_error" in step:
            error = got["error"]
            assert error["kind"] == step["expect_error"], (step["name"], got)
            assert set(error) == {"kind", "code", "status", "class"}
            assert error["class"] in {"NotFoundError", "InvalidRequestError"}
        else:
            assert "ok" in got, (step["name"], got)
    assert seen["archive_policy"] == {"ok": None}
    assert seen["revoke_authorization_replayed"] == seen["revoke_authorization"]
    assert seen["missing_authorization"]["error"] == {"kind": "not_found", "code": "authorization_not_found",
                                                      "status": 404, "class": NotFoundError.__name__}
    assert seen["not json"]["error"]["kind"] == "invalid_request"
    assert "ok" in seen["no args"]


NAMESPACES = ["policies", "authorizations", "confirmations", "escalations", "receipts"]


def public_methods(cls: type) -> dict[str, Any]:
    return {name: member for name, member in vars(cls).items() if not name.startswith("_") and callable(member)}


def test_async_methods_are_the_sync_ones() -> None:
    sync_client = Allowly.in_memory()
    async_client = allowly.Allowly.in_memory()
    pairs = [(sync_client, async_client)] + [(getattr(sync_client, ns), getattr(async_client, ns)) for ns in NAMESPACES]
    for sync_obj, async_obj in pairs:
        methods = public_methods(type(sync_obj))
        assert methods, type(sync_obj)
        for name, method in methods.items():
            twin = getattr(async_obj, name)
            assert inspect.iscoroutinefunction(twin), name
            assert inspect.signature(twin) == inspect.signature(getattr(sync_obj, name)), name
            assert twin.__doc__ == method.__doc__, name
    assert inspect.signature(allowly.Allowly) == inspect.signature(allowly.sync.Allowly)
    assert inspect.signature(allowly.Allowly.embedded) == inspect.signature(allowly.sync.Allowly.embedded)


def test_an_async_class_cannot_leave_a_sync_method_out() -> None:
    with pytest.raises(TypeError, match="get_status"):
        class Partial(allowly.client._Derived):  # noqa: F841
            SYNC = allowly.sync._Escalations
            resolve = approve = reject = get = allowly.client._offloaded(allowly.sync._Escalations.resolve)
