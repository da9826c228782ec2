"""The guard with a remote client: against `allowly serve`, written for the public middleware's
signature; and against a runtime that never answers (fallback: the tool never runs)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Iterator

import pytest
from fastmcp import Client

from allowly import Allowly
from allowly.mcp import AllowlyMCPMiddleware
from allowly.verify import load_keys_from_json, verify_receipt

import official_server
from conftest import Server
from support import POLICY, USER, Runs, allowly_meta, payload, text, tools_server


@pytest.fixture
def silent_runtime() -> Iterator[str]:
    """A socket that accepts connections (kernel backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.mark.parametrize("timeout_ms", [200, 500])
def test_a_silent_runtime_is_a_fallback_deny_within_the_check_timeout(silent_runtime: str, timeout_ms: int) -> None:
    async def main() -> None:
        runs = Runs()
        guard = AllowlyMCPMiddleware("allowly.runtime.ws_x.secret", lambda user_id: "auth_1", base_url=silent_runtime,
                                     user_id_fn=lambda call: USER, check_timeout_ms=timeout_ms)
        async with Client(tools_server(guard, runs)) as client:
            await client.list_tools()  # connected before the clock starts
            started = time.perf_counter()
            result = await client.call_tool("email.send", {"to": "bob@example.com"}, raise_on_error=False)
            elapsed_ms = (time.perf_counter() - started) * 1000
        await guard.aclose()
        assert payload(result) == {"decision": "deny", "reason": "fallback_closed_timeout"}
        assert allowly_meta(result) == {"decision": "deny", "reason": "fallback_closed_timeout", "receipt_id": None,
                                        "receipt": None, "is_fallback": True}
        assert runs.total == 0
        assert elapsed_ms <= timeout_ms + 100, elapsed_ms

    asyncio.run(main())


def test_a_fallback_never_runs_the_tool_even_mapped_to_fail_open(silent_runtime: str) -> None:
    async def main() -> None:
        runs = Runs()
        client = Allowly("allowly.runtime.ws_x.secret", base_url=silent_runtime, check_timeout_ms=200,
                         fallback_by_action={"email.send": "fail_open"})
        guard = AllowlyMCPMiddleware(None, lambda user_id: "auth_1", client=client, user_id_fn=lambda call: USER)
        async with Client(tools_server(guard, runs)) as mcp_client:
            result = await mcp_client.call_tool("email.send", {"to": "bob@example.com"}, raise_on_error=False)
        assert payload(result) == {"decision": "deny", "reason": "fallback_open_timeout"}
        assert allowly_meta(result)["is_fallback"] is True and allowly_meta(result)["receipt"] is None
        assert runs.total == 0

    asyncio.run(main())


def test_a_server_written_for_the_public_middleware_runs_against_allowly_serve(fresh_server: Server) -> None:
    async def main() -> None:
        setup = Allowly(fresh_server.setup_key, base_url=fresh_server.base_url, workspace_id=fresh_server.workspace_id)
        definition = {k: v for k, v in POLICY.items() if k not in ("policy_id", "description")}
        await setup.policies.publish(policy_id=POLICY["policy_id"], definition=definition)
        created = await setup.authorizations.create(user_id=USER, policy_id=POLICY["policy_id"])

        mcp = official_server.build(fresh_server.runtime_key, fresh_server.base_url,
                                    {USER: created.authorization_id})
        official_server.sent.clear()
        async with Client(mcp) as client:
            inside = await client.call_tool("email.send", {"to": "bob@example.com", "subject": "hi"})
            outside = await client.call_tool("email.send", {"to": "carol@partner.org", "subject": "hi"},
                                             raise_on_error=False)
        assert text(inside) == "sent" and official_server.sent == ["bob@example.com"]
        meta = allowly_meta(inside)
        keys = load_keys_from_json(await setup.keys())
        evidence = verify_receipt(meta["receipt"]["receipt"], keys, expected_workspace_id=fresh_server.workspace_id)
        assert (evidence["receipt_id"], evidence["decision"]) == (meta["receipt_id"], "allow")
        body = payload(outside)
        assert body["decision"] == "confirm" and body["confirm_nonce"]
        status = await setup.confirmations.get(body["confirm_nonce"])
        assert (status.action, status.status) == ("email.send", "pending")
        await setup.aclose()

    asyncio.run(main())
