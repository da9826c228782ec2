"""An MCP server (fastmcp, stdio) whose three tools are guarded by Allowly, on an embedded workspace.

    pip install 'allowly[fastmcp]'
    python examples/mcp/server.py

The policy is policy.json beside this file: `email.send` is allowed inside example.com and needs
the user's yes outside it, `billing.refund` goes to the finance lead, `files.delete` is denied.
Environment: ALLOWLY_HOME (the workspace, default ./.allowly-mcp), ALLOWLY_MCP_USER (the user this
server acts for, default demo_user). What the tools do is appended to <home>/outbox.jsonl.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastmcp import FastMCP

from allowly import Allowly
from allowly.mcp import AllowlyMCPMiddleware, MCPAuthorizationContext, MCPCheckInput

HOME = Path(os.environ.get("ALLOWLY_HOME", ".allowly-mcp"))
USER = os.environ.get("ALLOWLY_MCP_USER", "demo_user")
POLICY = json.loads(Path(__file__).with_name("policy.json").read_text())


def authorization_for(allowly: Allowly, user_id: str) -> str:
    """The user's active authorization for the policy's agent, made on first start."""
    policies, authorizations = allowly.sync.policies, allowly.sync.authorizations
    definition = {k: v for k, v in POLICY.items() if k not in ("policy_id", "description")}
    # Publishing an unchanged policy keeps its newest edition.
    policies.publish(policy_id=POLICY["policy_id"], definition=definition, description=POLICY["description"])
    page = authorizations.list(user_id=user_id, agent_id=POLICY["agent_id"], status="active")
    while not page.items and page.has_more:
        page = authorizations.list(user_id=user_id, agent_id=POLICY["agent_id"], status="active",
                                   cursor=page.next_cursor)
    if page.items:
        return page.items[0].authorization_id
    return authorizations.create(user_id=user_id, policy_id=POLICY["policy_id"]).authorization_id


def check_input(call: MCPAuthorizationContext) -> MCPCheckInput:
    """What the policy decides on, taken from the arguments the server's author trusts for it."""
    if call.tool_name == "email.send":
        return MCPCheckInput(context={"recipient_domain": str(call.arguments.get("to", "")).rpartition("@")[2]})
    if call.tool_name == "files.delete":
        return MCPCheckInput(resource=f"file:{call.arguments.get('path', '')}")
    return MCPCheckInput()


def record(tool: str, **arguments: Any) -> None:
    with (HOME / "outbox.jsonl").open("a") as outbox:
        outbox.write(json.dumps({"tool": tool, **arguments}) + "\n")


HOME.mkdir(parents=True, exist_ok=True)
allowly = Allowly.embedded(str(HOME))
authorizations = {USER: authorization_for(allowly, USER)}

mcp = FastMCP("allowly-assistant-tools")
mcp.add_middleware(AllowlyMCPMiddleware(
    None,
    authorizations.get,                 # the user's authorization; None for anyone else
    client=allowly,
    user_id_fn=lambda call: USER,       # a stdio server acts for the one user who started it
    check_input_fn=check_input,
    elicit_confirmation=True,           # ask in the conversation when the client can
))


@mcp.tool(name="email.send")
def send_email(to: str, subject: str, body: str) -> str:
    """Sends an email."""
    record("email.send", to=to, subject=subject, body=body)
    return "sent"


@mcp.tool(name="billing.refund")
def refund(order_id: str, amount_cents: int) -> str:
    """Refunds an order."""
    record("billing.refund", order_id=order_id, amount_cents=amount_cents)
    return "refunded"


@mcp.tool(name="files.delete")
def delete_file(path: str) -> str:
    """Deletes a file."""
    record("files.delete", path=path)
    return "deleted"


if __name__ == "__main__":
    mcp.run()  # stdio
