"""The guard on fastmcp 4, called through the real fastmcp.Client in memory, on an embedded
workspace with the example's policy (docs/mcp.md, "What a guarded call does")."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from fastmcp import Client, FastMCP

from allowly import Allowly
from allowly.mcp import AgentTokenUnsupportedError, AllowlyMCPMiddleware, MCPAuthorizationContext, MCPCheckInput
from allowly.verify import load_keys_from_json, verify_receipt

from support import USER, Runs, allowly_meta, payload, text, tools_server, workspace


def recipient_domain(call: MCPAuthorizationContext) -> MCPCheckInput:
    if call.tool_name == "email.send":
        return MCPCheckInput(context={"recipient_domain": str(call.arguments["to"]).rpartition("@")[2]})
    return MCPCheckInput()


def guard(allowly: Allowly, authorization_id: str, **options: Any) -> AllowlyMCPMiddleware:
    options.setdefault("user_id_fn", lambda call: USER)
    options.setdefault("check_input_fn", recipient_domain)
    return AllowlyMCPMiddleware(None, {USER: authorization_id}.get, client=allowly, **options)


def run(main: Callable[[], Any]) -> Any:
    return asyncio.run(main())


def test_an_allowed_call_runs_once_and_its_receipt_verifies(home: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        runs = Runs()
        async with Client(tools_server(guard(allowly, authorization_id), runs)) as client:
            result = await client.call_tool("email.send", {"to": "bob@example.com", "subject": "hi"})
        assert runs["email.send"] == 1 and runs.total == 1
        assert text(result) == "sent"
        assert result.meta["outbox_line"] == 1  # the tool's own _meta is kept
        meta = allowly_meta(result)
        assert set(meta) == {"decision", "reason", "receipt_id", "receipt", "is_fallback"}
        assert (meta["decision"], meta["is_fallback"]) == ("allow", False)
        assert meta["receipt"]["status"] == "signed"
        assert set(meta["receipt"]["receipt"]) == {"protected", "payload", "signature"}
        keys = load_keys_from_json(await allowly.keys())
        evidence = verify_receipt(meta["receipt"]["receipt"], keys, expected_workspace_id=allowly.workspace_id)
        assert evidence["receipt_id"] == meta["receipt_id"]
        assert (evidence["action"], evidence["decision"], evidence["reason"]) == ("email.send", "allow", meta["reason"])
        assert evidence["user_id"] == USER

    run(main)


def test_confirm_is_a_tool_error_with_the_nonce_and_approving_it_lets_the_next_call_run(home: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        runs = Runs()
        arguments = {"to": "carol@partner.org", "subject": "offer"}
        async with Client(tools_server(guard(allowly, authorization_id), runs)) as client:
            first = await client.call_tool("email.send", arguments, raise_on_error=False)
            body = payload(first)
            assert list(body) == ["decision", "reason", "confirm_nonce", "confirm_expires_at", "confirm_prompt_hint"]
            assert body["decision"] == "confirm" and body["confirm_nonce"]
            assert runs.total == 0
            meta = allowly_meta(first)
            assert (meta["decision"], meta["reason"]) == ("confirm", body["reason"])
            assert meta["receipt"]["status"] == "signed" and meta["receipt_id"].startswith("rcp_")

            await allowly.confirmations.approve(body["confirm_nonce"])
            second = await client.call_tool("email.send", arguments)
        assert text(second) == "sent" and runs["email.send"] == 1
        assert allowly_meta(second)["decision"] == "allow"

    run(main)


def test_escalate_and_deny_are_tool_errors_and_the_tools_do_not_run(home: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        runs = Runs()
        async with Client(tools_server(guard(allowly, authorization_id), runs)) as client:
            refund = await client.call_tool("billing.refund", {"order_id": "o_1", "amount_cents": 500},
                                            raise_on_error=False)
            delete = await client.call_tool("files.delete", {"path": "/tmp/x"}, raise_on_error=False)
        escalated = payload(refund)
        assert list(escalated) == ["decision", "reason", "escalation_id", "escalation_to", "escalation_expires_at"]
        assert escalated["decision"] == "escalate"
        assert escalated["escalation_id"].startswith("esc_")
        assert escalated["escalation_to"] == "member:finance_lead"
        status = await allowly.escalations.get(escalated["escalation_id"])
        assert (status.action, status.status) == ("billing.refund", "pending")
        denied = payload(delete)
        assert list(denied) == ["decision", "reason"] and denied["decision"] == "deny"
        assert allowly_meta(delete)["reason"] == denied["reason"] and allowly_meta(delete)["receipt"] is not None
        assert runs.total == 0

    run(main)


def _raise(_: object) -> Any:
    raise RuntimeError("host lookup failed")


@pytest.mark.parametrize(
    "options,reason",
    [
        ({"user_id_fn": lambda call: "mallory"}, "authorization_not_found"),  # no authorization for them
        ({"user_id_fn": None}, "authorization_not_found"),
        ({"user_id_fn": lambda call: ""}, "authorization_not_found"),
        ({"user_id_fn": _raise}, "authorization_unavailable"),
        ({"check_input_fn": _raise}, "check_input_unavailable"),
        ({"check_input_fn": lambda call: {"context": {}}}, "check_input_invalid"),
        ({"check_input_fn": lambda call: None}, "check_input_invalid"),
        ({"check_input_fn": lambda call: MCPCheckInput(action="  ")}, "check_action_invalid"),
        # An error the client raises: its code.
        ({"check_input_fn": lambda call: MCPCheckInput(context={"budget": 1})}, "invalid_request"),
        ({"check_input_fn": lambda call: MCPCheckInput(context={"amount": 1.5})}, "invalid_type"),
    ],
)
def test_calls_stopped_before_the_check(home: str, options: dict[str, Any], reason: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        runs = Runs()
        async with Client(tools_server(guard(allowly, authorization_id, **options), runs)) as client:
            result = await client.call_tool("email.send", {"to": "bob@example.com"}, raise_on_error=False)
        assert payload(result) == {"decision": "deny", "reason": reason}
        assert allowly_meta(result) == {"decision": "deny", "reason": reason, "receipt_id": None, "receipt": None,
                                        "is_fallback": False}
        assert runs.total == 0

    run(main)


def test_async_host_functions_and_a_renamed_action(home: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        seen: list[MCPAuthorizationContext] = []

        async def user_of(call: MCPAuthorizationContext) -> str:
            seen.append(call)
            return USER

        async def authorization_of(user_id: str) -> str:
            return authorization_id

        async def as_email(call: MCPAuthorizationContext) -> MCPCheckInput:
            # A tool whose action has another name in the policy.
            return MCPCheckInput(action="email.send", context={"recipient_domain": "example.com"})

        runs = Runs()
        mcp = tools_server(AllowlyMCPMiddleware(None, authorization_of, client=allowly, user_id_fn=user_of,
                                                check_input_fn=as_email), runs)

        @mcp.tool(name="mail.compose")
        def compose(to: str) -> str:
            runs.add("mail.compose")
            return "composed"

        async with Client(mcp) as client:
            result = await client.call_tool("mail.compose", {"to": "x@elsewhere.org"})
        assert text(result) == "composed" and runs["mail.compose"] == 1
        assert allowly_meta(result)["decision"] == "allow"
        assert seen[0].tool_name == "mail.compose" and seen[0].arguments == {"to": "x@elsewhere.org"}
        assert seen[0].fastmcp_context is not None and seen[0].request.name == "mail.compose"

    run(main)


def test_agent_tokens_are_refused_when_the_guard_is_built(home: str) -> None:
    with pytest.raises(AgentTokenUnsupportedError) as info:
        AllowlyMCPMiddleware(None, lambda user_id: "auth_x", client=Allowly.in_memory(),
                             agent_token_fn=lambda call: "token")
    assert info.value.code == "agent_token_unsupported"


def test_resource_from_an_argument_is_held_to_the_policy_resource_pattern(home: str) -> None:
    definition = {
        "profile": "allowly.policy.v1",
        "agent_id": "files_bot",
        "default_expiry_days": 30,
        "actions": [{
            "policy": {"profile": "allowly.basic.v1", "action": "files.delete", "decision": "allow",
                       "target": None, "fields": {}, "rules": []},
            "guards": {"resource_pattern": "file:/srv/scratch/*"},
            "executable_operations": [],
        }],
    }

    async def main() -> None:
        allowly = Allowly.embedded(home)
        await allowly.policies.publish(policy_id="files_bot", definition=definition)
        authorization_id = (await allowly.authorizations.create(user_id=USER, policy_id="files_bot")).authorization_id
        runs = Runs()
        as_resource = lambda call: MCPCheckInput(resource=f"file:{call.arguments['path']}")  # noqa: E731
        async with Client(tools_server(guard(allowly, authorization_id, check_input_fn=as_resource), runs)) as client:
            inside = await client.call_tool("files.delete", {"path": "/srv/scratch/old.log"})
            outside = await client.call_tool("files.delete", {"path": "/etc/passwd"}, raise_on_error=False)
        assert text(inside) == "deleted" and allowly_meta(inside)["decision"] == "allow"
        assert payload(outside) == {"decision": "deny", "reason": "resource_not_allowed"}
        assert runs["files.delete"] == 1
        receipts = await allowly.receipts.list(action="files.delete")
        assert sorted(r.resource or "" for r in receipts.items) == ["file:/etc/passwd", "file:/srv/scratch/old.log"]

    run(main)


def test_a_tool_error_keeps_the_decision_that_let_it_run(home: str) -> None:
    async def main() -> None:
        allowly, authorization_id = await workspace(home)
        mcp = FastMCP("failing")
        inside = MCPCheckInput(context={"recipient_domain": "example.com"})
        mcp.add_middleware(guard(allowly, authorization_id, check_input_fn=lambda call: inside))

        @mcp.tool(name="email.send")
        def send(to: str) -> str:
            raise ValueError("smtp down")

        async with Client(mcp) as client:
            result = await client.call_tool("email.send", {"to": "bob@example.com"}, raise_on_error=False)
            invalid = await client.call_tool("email.send", {"to": 5}, raise_on_error=False)
        assert result.is_error and "smtp down" in result.content[0].text
        assert allowly_meta(result)["decision"] == "allow"
        # Arguments fastmcp refuses after an allow: its own error, with the decision.
        assert invalid.is_error and allowly_meta(invalid)["decision"] == "allow"

    run(main)
