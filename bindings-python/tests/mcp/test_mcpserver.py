"""The guard on the official `mcp` 2.x MCPServer (`allowly.mcp.mcpserver_middleware`), called
through the SDK's own in-memory Client: allow, deny, confirm in the conversation, and every other
method left alone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from mcp import Client
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp_types import ElicitResult

from allowly import Allowly
from allowly.mcp import AllowlyServerMiddleware, MCPAuthorizationContext, MCPCheckInput, mcpserver_middleware
from allowly.verify import load_keys_from_json, verify_receipt

from support import USER, Runs, workspace


def recipient_domain(call: MCPAuthorizationContext) -> MCPCheckInput:
    if call.tool_name == "email.send":
        return MCPCheckInput(context={"recipient_domain": str(call.arguments["to"]).rpartition("@")[2]})
    return MCPCheckInput()


def server(allowly: Allowly, authorization_id: str, runs: Runs, **options: Any) -> MCPServer:
    def user_of(call: MCPAuthorizationContext) -> str:
        # The host reads the user from the SDK's request context (its transport, its session).
        assert isinstance(call.request, ServerRequestContext) and call.fastmcp_context is None
        return USER

    guard = mcpserver_middleware(None, {USER: authorization_id}.get, client=allowly, user_id_fn=user_of,
                                 check_input_fn=recipient_domain, **options)
    assert isinstance(guard, AllowlyServerMiddleware)
    mcp = MCPServer("guarded-official", middleware=[guard])

    @mcp.tool(name="email.send")
    def send(to: str) -> str:
        runs.add("email.send")
        return "sent"

    @mcp.tool(name="files.delete")
    def delete(path: str) -> str:
        runs.add("files.delete")
        return "deleted"

    return mcp


def test_allow_runs_the_tool_with_the_receipt_and_deny_does_not(home: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        runs = Runs()
        async with Client(server(allowly, authorization_id, runs)) as client:
            tools = await client.list_tools()  # not a tools/call: not checked
            allowed = await client.call_tool("email.send", {"to": "bob@example.com"})
            denied = await client.call_tool("files.delete", {"path": "/tmp/x"})
        assert sorted(t.name for t in tools.tools) == ["email.send", "files.delete"]
        assert runs.counts == {"email.send": 1}
        assert allowed.is_error is False and allowed.content[0].text == "sent"
        meta = allowed.meta["allowly"]
        assert (meta["decision"], meta["is_fallback"]) == ("allow", False)
        evidence = verify_receipt(meta["receipt"]["receipt"], load_keys_from_json(await allowly.keys()),
                                  expected_workspace_id=allowly.workspace_id)
        assert (evidence["receipt_id"], evidence["action"]) == (meta["receipt_id"], "email.send")
        assert denied.is_error is True
        body = json.loads(denied.content[0].text)
        assert list(body) == ["decision", "reason"] and body["decision"] == "deny"
        assert denied.meta["allowly"]["reason"] == body["reason"]
        assert (await allowly.receipts.list(action="files.delete")).items[0].decision == "deny"

    asyncio.run(main())


def test_unknown_user_is_authorization_not_found(home: str) -> None:
    async def main() -> None:
        allowly, _ = await workspace(home)
        runs = Runs()
        mcp = MCPServer("nobody", middleware=[mcpserver_middleware(None, lambda user_id: None, client=allowly,
                                                                   user_id_fn=lambda call: "mallory")])

        @mcp.tool(name="email.send")
        def send(to: str) -> str:
            runs.add("email.send")
            return "sent"

        async with Client(mcp) as client:
            result = await client.call_tool("email.send", {"to": "bob@example.com"})
        assert result.is_error is True and runs.total == 0
        assert json.loads(result.content[0].text) == {"decision": "deny", "reason": "authorization_not_found"}
        assert result.meta["allowly"]["receipt"] is None

    asyncio.run(main())


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_confirm_in_the_conversation(home: str, action: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        runs = Runs()
        asked: list[str] = []

        async def elicitation(context: Any, params: Any) -> ElicitResult:
            asked.append(params.message)
            return ElicitResult(action=action)

        async with Client(server(allowly, authorization_id, runs, elicit_confirmation=True),
                          elicitation_callback=elicitation) as client:
            result = await client.call_tool("email.send", {"to": "carol@partner.org"})
        assert len(asked) == 1
        confirmation = result.meta["allowly"]["confirmation"]
        if action == "accept":
            assert result.is_error is False and runs["email.send"] == 1
            assert confirmation["approved"] is True
        else:
            assert result.is_error is True and runs.total == 0
            assert json.loads(result.content[0].text)["confirmation"] == "declined"
            assert confirmation["approved"] is False
        assert (await allowly.receipts.get(confirmation["receipt_id"])).status == "signed"

    asyncio.run(main())
