"""The guard as middleware of the official ``mcp`` 2.x ``MCPServer`` (or its low-level ``Server``):
``MCPServer(..., middleware=[mcpserver_middleware(None, authorization_for, client=...)])``.

``mcp`` 2.x middleware runs for every request before its params are validated: the guard looks at
``tools/call`` only and reads the call from the raw params. A malformed call goes on to the SDK,
which rejects it before any tool runs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import mcp_types as mt
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ._guard import (
    INPUT_KEY,
    NO_FIELDS,
    ConfirmationState,
    GuardedMiddleware,
    MCPAuthorizationContext,
    Verdict,
    elicit_answer,
    prompt_of,
    refused,
)

__all__ = ["AllowlyServerMiddleware", "mcpserver_middleware"]


class AllowlyServerMiddleware(GuardedMiddleware):
    """Checks every ``tools/call`` of an ``mcp`` 2.x server with Allowly before the tool runs
    (docs/mcp.md); a ``ServerMiddleware``. Same arguments as
    :class:`allowly.mcp.AllowlyMCPMiddleware`; the context's ``request`` is the SDK's
    ``ServerRequestContext`` (``fastmcp_context`` is ``None``)."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        params = ctx.params
        if ctx.method != "tools/call" or ctx.request_id is None or params is None:
            return await call_next(ctx)
        name, arguments = params.get("name"), params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(name, str) or not isinstance(arguments, Mapping):
            return await call_next(ctx)  # the SDK's params validation refuses it
        call = MCPAuthorizationContext(tool_name=name, arguments=dict(arguments), request=ctx)
        try:
            verdict, ctx = await self._verdict(call, ctx)
        except Exception:
            # A bug of the guard or a host function outside its contract: never a reason to run.
            verdict = refused("guard_failed")
        if isinstance(verdict, mt.InputRequiredResult):
            return verdict
        if not verdict.allowed:
            return mt.CallToolResult.model_validate({
                "content": [{"type": "text", "text": verdict.error_text()}],
                "isError": True,
                "_meta": {"allowly": verdict.meta},
            })
        return _with_meta(await call_next(ctx), verdict.meta)

    async def _verdict(
        self, call: MCPAuthorizationContext, ctx: ServerRequestContext[Any, Any]
    ) -> tuple[Verdict | mt.InputRequiredResult, ServerRequestContext[Any, Any]]:
        guard = self._guard
        params = ctx.params or {}
        if guard.elicit_confirmation:
            state = ConfirmationState.decode(params.get("requestState"))
            if state is not None:
                responses = params.get("inputResponses")
                response = responses.get(INPUT_KEY) if isinstance(responses, Mapping) else None
                # The round's answer is the guard's: the tool sees the call as first made.
                rest = {k: v for k, v in params.items() if k not in ("requestState", "inputResponses")}
                verdict = await guard.continued(call, state, elicit_answer(response))
                return verdict, replace(ctx, params=rest)
        verdict = await guard.decide(call)
        capabilities = ctx.session.client_capabilities
        if not (verdict.is_confirm and guard.elicit_confirmation
                and capabilities is not None and capabilities.elicitation is not None):
            return verdict, ctx
        message = prompt_of(verdict, call)
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            # MCP 2026-07-28 has no server-to-client requests: the question goes back as the
            # call's answer, and the client calls again with the user's answer.
            request = mt.ElicitRequest(params=mt.ElicitRequestFormParams(message=message, requested_schema=NO_FIELDS))
            asked = mt.InputRequiredResult(input_requests={INPUT_KEY: request}, request_state=guard.state_of(verdict))
            return asked, ctx
        if not ctx.session.can_send_request:
            return verdict, ctx
        try:
            answer = await ctx.session.elicit_form(message, NO_FIELDS, related_request_id=ctx.request_id)
        except Exception:
            return verdict, ctx  # the nonce stays pending, for another channel
        return await guard.resolve(verdict, answer.action), ctx


#: The guard for an ``mcp`` 2.x ``MCPServer``: ``MCPServer(name, middleware=[mcpserver_middleware(...)])``
#: (or ``server.middleware.append(...)``), with the arguments of :class:`allowly.mcp.AllowlyMCPMiddleware`.
mcpserver_middleware = AllowlyServerMiddleware


def _with_meta(result: HandlerResult, meta: dict[str, Any]) -> HandlerResult:
    """The tool's result with ``_meta["allowly"]``, its own ``_meta`` members kept."""
    if isinstance(result, mt.CallToolResult):
        return result.model_copy(update={"meta": {**(result.meta or {}), "allowly": meta}})
    if isinstance(result, Mapping) and result.get("resultType", "complete") == "complete" and "content" in result:
        own = result.get("_meta")
        return {**result, "_meta": {**(own if isinstance(own, Mapping) else {}), "allowly": meta}}
    return result  # a question of the tool's own (input required): not a result yet
