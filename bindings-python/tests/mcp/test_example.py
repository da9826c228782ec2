"""examples/mcp/server.py, spawned as an MCP host would (stdio), on a fresh workspace."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from support import EXAMPLE, allowly_meta, payload, text


def test_the_stdio_example_allows_asks_and_denies(tmp_path: Path) -> None:
    home = tmp_path / "workspace"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLOWLY_")}
    env["ALLOWLY_HOME"] = str(home)
    outbox = home / "outbox.jsonl"

    def sent() -> list[dict[str, object]]:
        return [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.exists() else []

    async def session() -> None:
        transport = StdioTransport(sys.executable, [str(EXAMPLE / "server.py")], env=env, cwd=str(tmp_path))
        async with Client(transport) as client:
            assert sorted(t.name for t in await client.list_tools()) == ["billing.refund", "email.send",
                                                                          "files.delete"]
            inside = await client.call_tool("email.send", {"to": "bob@example.com", "subject": "s", "body": "b"})
            assert text(inside) == "sent" and allowly_meta(inside)["decision"] == "allow"
            outside = await client.call_tool("email.send", {"to": "eve@partner.org", "subject": "s", "body": "b"},
                                             raise_on_error=False)
            assert payload(outside)["decision"] == "confirm"
            refund = await client.call_tool("billing.refund", {"order_id": "o_1", "amount_cents": 100},
                                            raise_on_error=False)
            assert payload(refund)["escalation_to"] == "member:finance_lead"
            delete = await client.call_tool("files.delete", {"path": "notes.txt"}, raise_on_error=False)
            assert payload(delete)["decision"] == "deny"

    asyncio.run(session())
    assert [line["to"] for line in sent()] == ["bob@example.com"]
    # A second start finds the workspace's policy and the user's authorization again.
    asyncio.run(session())
    assert [line["to"] for line in sent()] == ["bob@example.com", "bob@example.com"]
    assert not (tmp_path / ".allowly-mcp").exists()
