"""One error taxonomy: each of core's error kinds is one exception class (the same tree as the Node
SDK's), and the same failure raises the same class with the same `code`, `status` and `kind`
embedded and against `allowly serve`. Every exception carries `code`, `status`, `fields`,
`retry_after_seconds` and `kind`; its message is the human one."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
import socket
from typing import Any, Callable

import pytest

import allowly
from allowly import (
    AllowlyAPIError,
    AllowlyConnectionError,
    AllowlyError,
    AllowlyProtocolError,
    AllowlyTimeoutError,
    ConflictError,
    ForbiddenError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    UnauthorizedError,
    UnavailableError,
    VerificationError,
)
from allowly.sync import Allowly

from conftest import ROOT, Server

#: allowly_core::ErrorKind::ALL, and the class each kind raises.
CLASS_OF_KIND: dict[str, type[AllowlyError]] = {
    "invalid_request": InvalidRequestError,
    "unauthorized": UnauthorizedError,
    "forbidden": ForbiddenError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "rate_limited": RateLimitError,
    "unavailable": UnavailableError,
    "timeout": AllowlyTimeoutError,
    "unreachable": AllowlyConnectionError,
    "protocol": AllowlyProtocolError,
    "verification": VerificationError,
    "internal": InternalError,
}


def test_one_class_per_kind() -> None:
    from allowly._errors import error_of

    for kind, cls in CLASS_OF_KIND.items():
        exc = error_of(kind, "some_code", "what happened", 499, [allowly.FieldError("f", "bad")], 2.0)
        assert type(exc) is cls and isinstance(exc, AllowlyError)
        assert (exc.kind, exc.code, exc.status, exc.retry_after_seconds, str(exc)) == (
            kind, "some_code", 499, 2.0, "what happened")
        assert exc.fields == [allowly.FieldError("f", "bad")]
        for twin in (pickle.loads(pickle.dumps(exc)), copy.copy(exc)):
            assert type(twin) is cls and twin.__dict__ == exc.__dict__ and str(twin) == str(exc)
    api_kinds = {"invalid_request", "unauthorized", "forbidden", "not_found", "conflict", "rate_limited",
                 "unavailable", "internal"}
    assert {kind for kind, cls in CLASS_OF_KIND.items() if issubclass(cls, AllowlyAPIError)} == api_kinds
    assert issubclass(AllowlyTimeoutError, TimeoutError) and issubclass(AllowlyProtocolError, ValueError)
    assert all(getattr(allowly, cls.__name__) is cls for cls in CLASS_OF_KIND.values())


def test_the_official_constructors_still_work() -> None:
    exc = AllowlyAPIError(404, "policy_not_found", "no such policy", None, None)
    assert (exc.status, exc.code, exc.message, exc.fields, exc.retry_after_seconds) == (
        404, "policy_not_found", "no such policy", [], None)
    assert type(exc) is AllowlyAPIError and exc.kind == "not_found"  # core's kind of a 404 answer
    assert AllowlyAPIError(429, "rate_limited", "slow down", retry_after_seconds=3.0).kind == "rate_limited"
    assert AllowlyAPIError(418, "teapot", "?").kind == "protocol"
    typed = NotFoundError(404, "policy_not_found", "no such policy")
    assert typed.kind == "not_found" and isinstance(typed, AllowlyAPIError)
    assert pickle.loads(pickle.dumps(typed)).kind == "not_found"
    for exc2 in (AllowlyConnectionError("unreachable", "down"), AllowlyTimeoutError("timeout", "slow"),
                 allowly.AllowlyTypeError("`x` must be a string", "x"), allowly.AllowlyConfigError("bad"),
                 allowly.SchemaError("bad shape", "schema_error")):
        twin = pickle.loads(pickle.dumps(exc2))
        assert type(twin) is type(exc2) and twin.__dict__ == exc2.__dict__
        assert exc2.kind in CLASS_OF_KIND and exc2.status is None and exc2.fields == []


def policy_definition() -> tuple[str, dict[str, Any]]:
    definition = json.loads((ROOT / "examples/policies/support-agent.json").read_text())
    definition.pop("description", None)
    return definition.pop("policy_id"), definition


Failure = Callable[[Allowly, Allowly], object]

#: The same failures, embedded and remote (setup client, runtime client), and the class each raises.
FAILURES: dict[str, tuple[Failure, type[AllowlyError], str, int]] = {
    "missing authorization": (
        lambda setup, runtime: runtime.authorizations.get("auth_missing"),
        NotFoundError, "authorization_not_found", 404),
    "missing policy": (lambda setup, runtime: setup.policies.get("nope"), NotFoundError, "policy_not_found", 404),
    "missing escalation": (
        lambda setup, runtime: runtime.escalations.get_status("esc_missing"),
        NotFoundError, "escalation_not_found", 404),
    "no actions": (
        lambda setup, runtime: runtime.check(authorization_id="auth_x", actions=[]),
        InvalidRequestError, "invalid_request", 422),
    "page size out of range": (
        lambda setup, runtime: runtime.authorizations.list(limit=0), InvalidRequestError, "invalid_request", 422),
    "unknown resolution": (
        lambda setup, runtime: runtime.escalations.resolve("esc_x", resolution="maybe", resolved_by="x"),
        InvalidRequestError, "invalid_request", 422),
    "unknown operation": (
        lambda setup, runtime: runtime.call("launch_rocket", {}), InvalidRequestError, "invalid_request", 422),
    "unknown member": (
        lambda setup, runtime: runtime.call("settle_budget",
                                            {"check_receipt_id": "rcp_x", "actual_cost_micros": 1, "tip": 5}),
        InvalidRequestError, "invalid_request", 422),
    "key reused for another request": (
        lambda setup, runtime: [runtime.authorizations.create(user_id=user, policy_id="support_agent",
                                                              idempotency_key="grant-1") for user in ("u1", "u2")],
        ConflictError, "idempotency_key_reused", 409),
}


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_the_same_failure_raises_the_same_error_embedded_and_remote(
    name: str, home: str, server: Server
) -> None:
    call, cls, code, status = FAILURES[name]
    embedded = Allowly.embedded(home)
    remote_setup = Allowly(server.setup_key, base_url=server.base_url)
    remote_runtime = Allowly(server.runtime_key, base_url=server.base_url)
    policy_id, definition = policy_definition()
    seen = []
    for setup, runtime in ((embedded, embedded), (remote_setup, remote_runtime)):
        setup.policies.create(policy_id=policy_id, definition=definition)
        with pytest.raises(cls) as raised:
            call(setup, runtime)
        exc = raised.value
        assert type(exc) is cls, name
        assert "{" not in str(exc) and str(exc) == exc.message and exc.message, exc.message
        seen.append((type(exc), exc.kind, exc.code, exc.status, [f.field for f in exc.fields],
                     exc.retry_after_seconds))
    assert seen[0] == seen[1], seen
    assert seen[0][1:4] == (next(k for k, c in CLASS_OF_KIND.items() if c is cls), code, status)


def test_async_raises_what_sync_raises(home: str) -> None:
    async def missing() -> None:
        await allowly.Allowly.embedded(home).authorizations.get("auth_missing")

    with pytest.raises(NotFoundError) as raised:
        asyncio.run(missing())
    assert (raised.value.code, raised.value.status) == ("authorization_not_found", 404)


def test_refusals_only_a_runtime_gives(server: Server) -> None:
    runtime = Allowly(server.runtime_key, base_url=server.base_url)
    with pytest.raises(ForbiddenError) as forbidden:  # a runtime key on a setup call
        runtime.policies.list()
    assert (forbidden.value.kind, forbidden.value.status, forbidden.value.code) == ("forbidden", 403, "forbidden")
    with pytest.raises(ForbiddenError):
        runtime.call("rotate_signing_key")
    with pytest.raises(UnauthorizedError) as unauthorized:
        Allowly("allowly.runtime.ws_nope.ak_nope.secret", base_url=server.base_url).authorizations.list()
    assert (unauthorized.value.kind, unauthorized.value.status) == ("unauthorized", 401)


def test_a_runtime_that_does_not_answer() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    with pytest.raises(AllowlyConnectionError) as unreachable:
        Allowly("allowly.runtime.ws_x.ak_x.secret", base_url=refused).authorizations.get("auth_x")
    assert type(unreachable.value) is AllowlyConnectionError
    assert (unreachable.value.kind, unreachable.value.code, unreachable.value.status) == (
        "unreachable", "unreachable", None)

    blackhole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(8)
    try:
        url = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
        with pytest.raises(AllowlyTimeoutError) as slow:
            Allowly("allowly.runtime.ws_x.ak_x.secret", base_url=url, timeout=0.2).authorizations.get("auth_x")
        assert (slow.value.kind, slow.value.code, slow.value.status) == ("timeout", "timeout", None)
        assert isinstance(slow.value, TimeoutError) and isinstance(slow.value, AllowlyConnectionError)
    finally:
        blackhole.close()
