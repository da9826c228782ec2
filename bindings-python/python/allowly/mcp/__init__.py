"""Allowly guards for MCP servers (docs/mcp.md): every ``tools/call`` is checked before the tool
runs, the tool runs only on ``allow``, and every result carries the decision and its signed receipt
in ``_meta["allowly"]``.

- fastmcp 4 (``pip install 'allowly[fastmcp]'``): ``mcp.add_middleware(AllowlyMCPMiddleware(...))``,
  the public Allowly middleware's names and signature;
- the official ``mcp`` 2.x ``MCPServer`` (``pip install 'allowly[mcp]'``):
  ``MCPServer(name, middleware=[mcpserver_middleware(...)])``, same arguments.

Each adapter imports its framework when first used, so either one works without the other.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from ._guard import (
    AgentTokenFn,
    AgentTokenUnsupportedError,
    AuthorizationIdFn,
    CheckInputFn,
    MCPAuthorizationContext,
    MCPCheckInput,
    UserIdFn,
)

if TYPE_CHECKING:
    from ._fastmcp import AllowlyMCPMiddleware
    from ._mcpserver import AllowlyServerMiddleware, mcpserver_middleware

_FASTMCP_HINT = "allowly.mcp.AllowlyMCPMiddleware needs fastmcp 4: pip install 'allowly[fastmcp]'"
_MCP_HINT = "allowly.mcp.mcpserver_middleware needs the official mcp 2.x SDK: pip install 'allowly[mcp]'"

if importlib.util.find_spec("fastmcp") is None and importlib.util.find_spec("mcp") is None:
    raise ImportError(
        "allowly.mcp needs an MCP server framework: pip install 'allowly[fastmcp]' "
        "(or 'allowly[mcp]' for the official mcp SDK's MCPServer)",
        name="fastmcp",
    )

__all__ = [
    "AllowlyMCPMiddleware",
    "AllowlyServerMiddleware",
    "mcpserver_middleware",
    "MCPAuthorizationContext",
    "MCPCheckInput",
    "AgentTokenUnsupportedError",
    "AuthorizationIdFn",
    "UserIdFn",
    "AgentTokenFn",
    "CheckInputFn",
]


def __getattr__(name: str) -> Any:
    # The adapters load on first use, each with its own framework.
    if name == "AllowlyMCPMiddleware":
        try:
            from ._fastmcp import AllowlyMCPMiddleware
        except ModuleNotFoundError as error:
            raise ImportError(_FASTMCP_HINT, name=error.name) from error
        return AllowlyMCPMiddleware
    if name in ("AllowlyServerMiddleware", "mcpserver_middleware"):
        try:
            from . import _mcpserver
        except ModuleNotFoundError as error:
            raise ImportError(_MCP_HINT, name=error.name) from error
        return getattr(_mcpserver, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
