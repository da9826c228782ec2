"""Confirmation in the conversation (docs/mcp.md): with elicit_confirmation=True and a client that
can elicit, a `confirm` asks the user; accept approves and the tool runs, decline or cancel rejects
and it does not. Both MCP eras: 2026-07-28 (the question comes back as the call's answer, the
client calls again) and the handshake era (a server-to-client `elicitation/create`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.elicitation import ElicitResult

from allowly import Allowly
from allowly.mcp import AllowlyMCPMiddleware, MCPAuthorizationContext, MCPCheckInput
from allowly.verify import load_keys_from_json, verify_receipt

from support import USER, Runs, allowly_meta, payload, text, tools_server, workspace

OUTSIDE = {"to": "carol@partner.org", "subject": "offer"}
ERAS = ["auto", "legacy"]  # fastmcp.Client's default (2026-07-28) and the handshake era


def recipient_domain(call: MCPAuthorizationContext) -> MCPCheckInput:
    return MCPCheckInput(context={"recipient_domain": str(call.arguments["to"]).rpartition("@")[2]},
                         idempotency_key=call.arguments.get("idempotency_key"))


def guard(allowly: Allowly, authorization_id: str, elicit: bool = True) -> AllowlyMCPMiddleware:
    return AllowlyMCPMiddleware(None, {USER: authorization_id}.get, client=allowly, user_id_fn=lambda call: USER,
                                check_input_fn=recipient_domain, elicit_confirmation=elicit)


class User:
    """An elicitation handler that answers `action` and remembers what it was asked."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.asked: list[tuple[str, Any]] = []

    async def __call__(self, message: str, response_type: Any, params: Any, context: Any) -> Any:
        self.asked.append((message, params.requested_schema))
        if self.action == "fail":
            raise RuntimeError("the client's dialog crashed")
        return ElicitResult(action=self.action)


async def expected_question(allowly: Allowly, authorization_id: str) -> str:
    """What the user is asked about OUTSIDE: the prompt hint of a check of the test's own, and the arguments."""
    answer = await allowly.check(authorization_id=authorization_id, actions=["email.send"],
                                 context={"recipient_domain": "partner.org"})
    hint = answer.results["email.send"].confirm_prompt_hint or "email.send"
    return f"Allow {hint}? {json.dumps(OUTSIDE, separators=(',', ':'))}"


@pytest.mark.parametrize("mode", ERAS)
def test_accept_approves_and_the_tool_runs(home: str, mode: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        expected_prompt = await expected_question(allowly, authorization_id)
        runs, user = Runs(), User("accept")
        async with Client(tools_server(guard(allowly, authorization_id), runs), elicitation_handler=user,
                          mode=mode) as client:
            result = await client.call_tool("email.send", OUTSIDE)
        assert text(result) == "sent" and runs["email.send"] == 1
        assert user.asked == [(expected_prompt, {"type": "object", "properties": {}})]
        meta = allowly_meta(result)
        assert (meta["decision"], meta["is_fallback"]) == ("allow", False)
        confirmation = meta["confirmation"]
        assert confirmation["approved"] is True
        assert confirmation["receipt_id"].startswith("rcp_")
        assert confirmation["receipt"]["receipt_id"] == confirmation["receipt_id"]
        # The resolution's receipt exists, signed, and says what the user did.
        keys = load_keys_from_json(await allowly.keys())
        signed = await allowly.receipts.fetch_signed(confirmation["receipt_id"])
        evidence = verify_receipt(signed, keys, expected_workspace_id=allowly.workspace_id)
        assert (evidence["event"], evidence["reason"]) == ("confirmation.resolve", "user_approved_confirmation")
        # ... and the tool's allow carries a receipt of its own.
        assert meta["receipt_id"] not in (None, confirmation["receipt_id"])
        resolved = await allowly.receipts.list(event="confirmation.resolve")
        assert [r.receipt_id for r in resolved.items] == [confirmation["receipt_id"]]

    asyncio.run(main())


@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("action,word", [("decline", "declined"), ("cancel", "cancelled")])
def test_decline_or_cancel_rejects_and_the_tool_does_not_run(home: str, mode: str, action: str, word: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        runs, user = Runs(), User(action)
        async with Client(tools_server(guard(allowly, authorization_id), runs), elicitation_handler=user,
                          mode=mode) as client:
            result = await client.call_tool("email.send", OUTSIDE, raise_on_error=False)
        assert runs.total == 0 and len(user.asked) == 1
        body = payload(result)
        assert body == {"decision": "confirm", "reason": body["reason"], "confirmation": word}
        assert body["reason"] == "condition_requires_user_confirmation"
        meta = allowly_meta(result)
        assert meta["decision"] == "confirm" and meta["receipt"]["status"] == "signed"
        confirmation = meta["confirmation"]
        assert confirmation["approved"] is False
        signed = await allowly.receipts.fetch_signed(confirmation["receipt_id"])
        evidence = verify_receipt(signed, load_keys_from_json(await allowly.keys()),
                                  expected_workspace_id=allowly.workspace_id)
        assert (evidence["event"], evidence["reason"]) == ("confirmation.resolve", "user_rejected_confirmation")
        statuses = [c.status for c in (await allowly.confirmations.list()).items]
        assert statuses == ["rejected"]

    asyncio.run(main())


@pytest.mark.parametrize("mode", ERAS)
def test_without_the_capability_or_the_option_the_confirm_error_stands(home: str, mode: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        runs, user = Runs(), User("accept")
        # No elicitation handler: the client declares no elicitation capability.
        async with Client(tools_server(guard(allowly, authorization_id), runs), mode=mode) as client:
            no_capability = await client.call_tool("email.send", OUTSIDE, raise_on_error=False)
        async with Client(tools_server(guard(allowly, authorization_id, elicit=False), runs),
                          elicitation_handler=user, mode=mode) as client:
            not_asked = await client.call_tool("email.send", OUTSIDE, raise_on_error=False)
        assert runs.total == 0 and user.asked == []
        for result in (no_capability, not_asked):
            body = payload(result)
            assert body["decision"] == "confirm" and body["confirm_nonce"]
            assert "confirmation" not in allowly_meta(result)
            # The nonce stays pending: it can be approved elsewhere.
            assert (await allowly.confirmations.get(body["confirm_nonce"])).status == "pending"

    asyncio.run(main())


def test_a_failed_elicitation_leaves_the_confirmation_pending(home: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        runs, user = Runs(), User("fail")
        async with Client(tools_server(guard(allowly, authorization_id), runs), elicitation_handler=user,
                          mode="legacy") as client:
            result = await client.call_tool("email.send", OUTSIDE, raise_on_error=False)
        body = payload(result)
        assert runs.total == 0 and len(user.asked) == 1
        assert list(body) == ["decision", "reason", "confirm_nonce", "confirm_expires_at", "confirm_prompt_hint"]
        assert (await allowly.confirmations.get(body["confirm_nonce"])).status == "pending"

    asyncio.run(main())


@pytest.mark.parametrize("mode", ERAS)
def test_the_check_after_approval_is_made_without_the_idempotency_key(home: str, mode: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        runs = Runs()
        arguments = {**OUTSIDE, "idempotency_key": "send-1"}
        mcp = tools_server(guard(allowly, authorization_id), runs)

        @mcp.tool(name="email.send_once")
        def send_once(to: str, subject: str, idempotency_key: str) -> str:
            runs.add("email.send_once")
            return "sent"

        async def as_email(call: MCPAuthorizationContext) -> MCPCheckInput:
            return MCPCheckInput(action="email.send", context={"recipient_domain": "partner.org"},
                                 idempotency_key=call.arguments["idempotency_key"])

        mcp.middleware.clear()
        mcp.add_middleware(AllowlyMCPMiddleware(None, {USER: authorization_id}.get, client=allowly,
                                                user_id_fn=lambda call: USER, check_input_fn=as_email,
                                                elicit_confirmation=True))
        async with Client(mcp, elicitation_handler=User("accept"), mode=mode) as client:
            result = await client.call_tool("email.send_once", arguments)
        # With the key, the check after approval would replay the first answer (confirm).
        assert text(result) == "sent" and runs["email.send_once"] == 1

    asyncio.run(main())
