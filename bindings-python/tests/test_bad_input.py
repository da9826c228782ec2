"""Bad input raises typed exceptions and changes nothing; no input crashes the interpreter."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

import allowly
import allowly.verify
from allowly import AllowlyAPIError, AllowlyConfigError, AllowlyError, AllowlyTypeError
from allowly.sync import Allowly

from conftest import Server


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Allowly:
    return Allowly.embedded(str(tmp_path_factory.mktemp("bad-input")))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"authorization_id": None, "actions": ["a"]},
        {"authorization_id": 5, "actions": ["a"]},
        {"authorization_id": "auth_x", "actions": "email.send"},
        {"authorization_id": "auth_x", "actions": [1]},
        {"authorization_id": "auth_x", "actions": None},
        {"authorization_id": "auth_x"},
        {"authorization_id": "auth_x", "actions": ["a"], "scopes": ["a"]},
        {"authorization_id": "auth_x", "actions": ["a"], "context": {"amount": 1.5}},
        {"authorization_id": "auth_x", "actions": ["a"], "context": {"nested": [{"deep": 0.1}]}},
        {"authorization_id": "auth_x", "actions": ["a"], "context": {"x": object()}},
        {"authorization_id": "auth_x", "actions": ["a"], "context": {1: "non-string key"}},
        {"authorization_id": "auth_x", "actions": ["a"], "context": {"b": b"bytes"}},
        {"authorization_id": "auth_x", "actions": ["a"], "context": {"huge": 2**80}},
        {"authorization_id": "auth_x", "actions": ["a"], "context": "not a dict"},
        {"authorization_id": "auth_x", "actions": ["a"], "estimated_cost_micros": 1.5},
        {"authorization_id": "auth_x", "actions": ["a"], "estimated_cost_micros": True},
        {"authorization_id": "auth_x", "actions": ["a"], "estimated_cost_micros": 2**70},
        {"authorization_id": "auth_x", "actions": ["a"], "resource": 7},
    ],
)
def test_wrong_types_raise_allowly_type_error(client: Allowly, kwargs: dict[str, Any]) -> None:
    with pytest.raises(AllowlyTypeError) as info:
        client.check(**kwargs)
    assert isinstance(info.value, TypeError) and isinstance(info.value, AllowlyError)
    assert info.value.code == "invalid_type"


def test_type_errors_name_the_member(client: Allowly) -> None:
    with pytest.raises(AllowlyTypeError) as info:
        client.check(authorization_id="auth_x", actions=["a"], context={"ok": 1, "a": [1, {"b": 1.5}]})
    assert info.value.field == "context.a[1].b" and "`context.a[1].b`" in str(info.value)
    keys = allowly.verify.load_keys_from_json({"workspace_id": "ws_x", "keys": []})
    results = allowly.verify.verify_receipts([{}, {"x": [object()]}], keys, expected_workspace_id="ws_x")
    assert [type(r).__name__ for r in results] == ["SchemaError", "SchemaError"]
    assert "`receipts[1].x[0]`" in str(results[1]) and "receipts[0]" not in str(results[0])


def test_unknown_kwargs_raise_type_error(client: Allowly) -> None:
    with pytest.raises(TypeError):
        client.check(authorization_id="auth_x", actions=["a"], bogus=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        client.authorizations.create(user_id="u", policy_id="p", color="red")  # type: ignore[call-arg]


def test_self_referential_and_deep_context_do_not_crash(client: Allowly) -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(AllowlyTypeError):
        client.check(authorization_id="auth_x", actions=["a"], context=loop)
    deep: Any = "leaf"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(AllowlyTypeError):
        client.check(authorization_id="auth_x", actions=["a"], context={"deep": deep})


def test_engine_rejects_invalid_values_with_api_errors(client: Allowly) -> None:
    for kwargs in [
        {"authorization_id": "auth_x", "actions": []},
        {"authorization_id": "auth_x", "actions": [f"a{i}" for i in range(26)]},
        {"authorization_id": "auth_x", "actions": ["a"], "context": {"big": "x" * 5000}},
        {"authorization_id": "auth_x", "actions": ["a"], "estimated_cost_micros": -1},
        {"authorization_id": "", "actions": ["a"]},
    ]:
        with pytest.raises(AllowlyAPIError) as info:
            client.check(**kwargs)
        assert info.value.status == 422 and info.value.code == "invalid_request", kwargs


def test_remote_and_embedded_raise_the_same_errors(client: Allowly, server: Server) -> None:
    remote = Allowly(server.runtime_key, base_url=server.base_url)
    for call in [
        lambda c: c.check(authorization_id="auth_x", actions=[]),
        lambda c: c.authorizations.create(user_id="u", policy_id="does_not_exist", policy_version=1),
        lambda c: c.confirmations.approve("not-a-nonce"),
        lambda c: c.escalations.get_status("esc_missing"),
        lambda c: c.settle_budget(check_receipt_id="rcp_missing", actual_cost_micros=1),
    ]:
        got = []
        for target in (client, remote):
            try:
                call(target)
                got.append(None)
            except AllowlyAPIError as exc:
                got.append((exc.status, exc.code))
        assert got[0] == got[1] and got[0] is not None, got


def test_bad_settings_raise_config_errors() -> None:
    with pytest.raises(AllowlyConfigError):
        Allowly("k", base_url="http://127.0.0.1:1", check_timeout_ms=0)
    with pytest.raises(AllowlyConfigError):
        Allowly("k", base_url="ftp://example")
    with pytest.raises(AllowlyConfigError):
        Allowly("k", base_url="http://127.0.0.1:1", fallback_by_action={"a": "sometimes"})
    with pytest.raises(AllowlyTypeError):
        Allowly("k", base_url="http://127.0.0.1:1", check_timeout_ms="1000")  # type: ignore[arg-type]
    with pytest.raises(AllowlyConfigError):
        Allowly("", base_url="http://127.0.0.1:1")


def random_value(rng: random.Random, depth: int = 0) -> Any:
    choices: list[Any] = [None, True, False, 0, -1, 2**53, 2**63, -(2**63) - 1, 1.5, float("nan"), "", "é\u0000",
                          "\ud800", b"x", object(), (1, 2), {1, 2}, 3j, Ellipsis]
    if depth < 4:
        choices += [[random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))],
                    {rng.choice(["a", "b", "c", 1, None]): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}]
    return rng.choice(choices)


def test_fuzzed_inputs_raise_only_typed_errors(client: Allowly) -> None:
    rng = random.Random(4)
    for _ in range(3000):
        kwargs = {"authorization_id": rng.choice(["auth_x", random_value(rng)]),
                  "actions": rng.choice([["a"], random_value(rng)]),
                  "context": rng.choice([{"k": random_value(rng)}, random_value(rng)]),
                  "estimated_cost_micros": rng.choice([None, random_value(rng)])}
        try:
            client.check(**kwargs)
        except (AllowlyError, TypeError, ValueError):
            pass
    for _ in range(1000):
        try:
            allowly.verify.verify_receipt(random_value(rng), {"workspace_id": "ws", "keys": []}, expected_workspace_id="ws")
        except (allowly.VerificationError, TypeError, ValueError):
            pass


def test_one_client_shared_by_threads(client: Allowly) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                response = client.check(authorization_id="auth_missing", actions=["a", "b"])
                assert response.results["a"].reason == "authorization_not_found"
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
