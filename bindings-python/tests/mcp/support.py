"""What the MCP guard's tests share: the example's policy on a fresh embedded workspace, a fastmcp
server with the example's three tools (each counting its runs), and readers of a tool result."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.middleware import Middleware
from fastmcp.tools.base import ToolResult

from allowly import Allowly

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "mcp"
POLICY = json.loads((EXAMPLE / "policy.json").read_text())
USER = "alice"


async def workspace(home: str) -> tuple[Allowly, str]:
    """An embedded workspace with the example's policy published and USER's authorization."""
    allowly = Allowly.embedded(home)
    definition = {k: v for k, v in POLICY.items() if k not in ("policy_id", "description")}
    await allowly.policies.publish(policy_id=POLICY["policy_id"], definition=definition)
    created = await allowly.authorizations.create(user_id=USER, policy_id=POLICY["policy_id"])
    return allowly, created.authorization_id


@dataclass
class Runs:
    """How many times each tool body ran (the side effect a guard must prevent)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, tool: str) -> int:
        self.counts[tool] = self.counts.get(tool, 0) + 1
        return self.counts[tool]

    def __getitem__(self, tool: str) -> int:
        return self.counts.get(tool, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def tools_server(guard: Middleware, runs: Runs) -> FastMCP:
    mcp = FastMCP("guarded-tools")
    mcp.add_middleware(guard)

    @mcp.tool(name="email.send")
    def send(to: str, subject: str = "", body: str = "") -> ToolResult:
        # The tool's own _meta, which the guard must keep.
        return ToolResult("sent", meta={"outbox_line": runs.add("email.send")})

    @mcp.tool(name="billing.refund")
    def refund(order_id: str, amount_cents: int) -> str:
        runs.add("billing.refund")
        return "refunded"

    @mcp.tool(name="files.delete")
    def delete(path: str) -> str:
        runs.add("files.delete")
        return "deleted"

    return mcp


def payload(result: Any) -> dict[str, Any]:
    """A guard's tool error: its one text block as JSON."""
    assert result.is_error is True, result
    assert len(result.content) == 1
    decoded: dict[str, Any] = json.loads(result.content[0].text)
    return decoded


def allowly_meta(result: Any) -> dict[str, Any]:
    meta = result.meta or {}
    assert "allowly" in meta, result
    decoded: dict[str, Any] = meta["allowly"]
    return decoded


def text(result: Any) -> str:
    """The text of a successful result's one content block."""
    assert result.is_error is False, result
    assert len(result.content) == 1
    value: str = result.content[0].text
    return value
