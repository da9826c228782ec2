"""An MCP server written for the public Allowly middleware's documented signature
(`allowly.mcp.AllowlyMCPMiddleware(api_key, authorization_id_fn, *, base_url, user_id_fn,
agent_token_fn, check_input_fn)`), unchanged but for nothing: `from allowly.mcp import ...` is
the same line. test_remote.py runs it against `allowly serve`."""

from __future__ import annotations

from fastmcp import FastMCP

from allowly.mcp import AllowlyMCPMiddleware, MCPAuthorizationContext, MCPCheckInput

sent: list[str] = []


def build(api_key: str, base_url: str, authorizations: dict[str, str]) -> FastMCP:
    async def trusted_user_id(ctx: MCPAuthorizationContext) -> str | None:
        return "alice"

    def check_input(ctx: MCPAuthorizationContext) -> MCPCheckInput:
        return MCPCheckInput(context={"recipient_domain": ctx.arguments["to"].split("@")[1]})

    mcp = FastMCP("my-server")
    mcp.add_middleware(AllowlyMCPMiddleware(
        api_key=api_key,
        base_url=base_url,
        user_id_fn=trusted_user_id,
        authorization_id_fn=lambda user_id: authorizations.get(user_id),
        check_input_fn=check_input,
    ))

    @mcp.tool(name="email.send")
    def send(to: str, subject: str) -> str:
        sent.append(to)
        return "sent"

    return mcp
