"""The guard as fastmcp 4 middleware: ``mcp.add_middleware(AllowlyMCPMiddleware(...))``."""

from __future__ import annotations

from typing import Any

import mcp_types as mt
from fastmcp.exceptions import DisabledError, FastMCPError, NotFoundError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import InputRequiredToolResult, ToolResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ._guard import (
    INPUT_KEY,
    NO_FIELDS,
    ConfirmationState,
    GuardedMiddleware,
    MCPAuthorizationContext,
    Verdict,
    prompt_of,
    refused,
)

__all__ = ["AllowlyMCPMiddleware"]


class AllowlyMCPMiddleware(GuardedMiddleware, Middleware):
    """Checks every fastmcp tool call with Allowly before the tool runs (docs/mcp.md).

    The public middleware's signature, plus ``client`` (an :class:`allowly.Allowly`, embedded or
    remote, instead of ``api_key`` + ``base_url``), ``check_timeout_ms`` (for the client made from
    ``api_key``) and ``elicit_confirmation`` (ask the user in the conversation on ``confirm``).
    ``user_id_fn`` names the user from trusted host context; ``authorization_id_fn`` their
    authorization; both may be sync or async. ``agent_token_fn`` is refused
    (:class:`AgentTokenUnsupportedError`): the engine does not verify agent tokens yet.
    """

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        message = context.message
        session_context = context.fastmcp_context
        call = MCPAuthorizationContext(
            tool_name=message.name,
            arguments=dict(message.arguments or {}),
            request=message,
            fastmcp_context=session_context,
        )
        try:
            verdict = await self._verdict(call, session_context)
        except Exception:
            # A bug of the guard or a host function outside its contract: never a reason to run.
            verdict = refused("guard_failed")
        if isinstance(verdict, InputRequiredToolResult):
            return verdict
        if not verdict.allowed:
            return ToolResult(content=[mt.TextContent(type="text", text=verdict.error_text())],
                              meta={"allowly": verdict.meta}, is_error=True)
        try:
            result = await call_next(context)
        except (NotFoundError, DisabledError):
            raise
        except FastMCPError as error:
            # The tool's own error (already masked by fastmcp), as fastmcp would answer it, plus the
            # decision that let it run.
            return ToolResult(content=[mt.TextContent(type="text", text=str(error))],
                              meta={"allowly": verdict.meta}, is_error=True)
        if isinstance(result, InputRequiredToolResult):
            return result  # the tool asks a question of its own: not a result yet
        return result.model_copy(update={"meta": {**(result.meta or {}), "allowly": verdict.meta}})

    async def _verdict(self, call: MCPAuthorizationContext, session_context: Any) -> Verdict | InputRequiredToolResult:
        guard = self._guard
        if guard.elicit_confirmation and session_context is not None:
            state = ConfirmationState.decode(session_context.request_state)
            if state is not None:
                responses = session_context.input_responses or {}
                return await guard.continued(call, state, responses.get(INPUT_KEY))
        verdict = await guard.decide(call)
        if not (verdict.is_confirm and guard.elicit_confirmation and _can_elicit(session_context)):
            return verdict
        message = prompt_of(verdict, call)
        if _protocol_version(session_context) in MODERN_PROTOCOL_VERSIONS:
            # MCP 2026-07-28 has no server-to-client requests: the question goes back as the
            # call's answer, and the client calls again with the user's answer.
            return InputRequiredToolResult(_ask(message, guard.state_of(verdict)))
        session = session_context.session
        if not session.can_send_request:
            return verdict
        try:
            answer = await session.elicit_form(message, NO_FIELDS, related_request_id=session_context.request_id)
        except Exception:
            return verdict  # the nonce stays pending, for another channel
        return await guard.resolve(verdict, answer.action)


def _ask(message: str, state: str) -> mt.InputRequiredResult:
    request = mt.ElicitRequest(params=mt.ElicitRequestFormParams(message=message, requested_schema=NO_FIELDS))
    return mt.InputRequiredResult(input_requests={INPUT_KEY: request}, request_state=state)


def _protocol_version(session_context: Any) -> str | None:
    request_context = session_context.request_context
    return None if request_context is None else request_context.protocol_version


def _can_elicit(session_context: Any) -> bool:
    """Whether the client declared the elicitation capability on this connection."""
    if session_context is None or session_context.request_context is None:
        return False
    capabilities = session_context.session.client_capabilities
    return capabilities is not None and capabilities.elicitation is not None
