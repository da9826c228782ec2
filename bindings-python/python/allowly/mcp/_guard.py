"""What a guarded MCP tool call does (docs/mcp.md), written once for every MCP framework.

The adapters (:mod:`allowly.mcp._fastmcp`, :mod:`allowly.mcp._mcpserver`) only read the call out
of their framework and turn a :class:`Verdict` into that framework's tool result. The decision is
the engine's: this module resolves the check's input from the host's functions, checks through an
:class:`allowly.Allowly` client and shapes the answer as the MCP payload and ``_meta["allowly"]``.
Nothing here imports an MCP package.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Literal, Mapping, Optional, Union

from .._errors import AllowlyConfigError, AllowlyError, AllowlyTypeError
from ..client import Allowly
from ..types import ActionResult, ConfirmationApproveResponse

__all__ = [
    "MCPAuthorizationContext",
    "MCPCheckInput",
    "AgentTokenUnsupportedError",
    "AuthorizationIdFn",
    "UserIdFn",
    "AgentTokenFn",
    "CheckInputFn",
]


@dataclass(frozen=True)
class MCPAuthorizationContext:
    """One tool call, as the host's functions see it. ``request`` is the framework's request
    (fastmcp: the ``tools/call`` params; ``mcp`` 2.x: the ``ServerRequestContext``), and
    ``fastmcp_context`` fastmcp's ``Context`` (``None`` elsewhere)."""

    tool_name: str
    arguments: dict[str, Any]
    request: Any | None = None
    fastmcp_context: Any | None = None


@dataclass(frozen=True)
class MCPCheckInput:
    """What ``check_input_fn`` adds to the check. Tool arguments reach the check only through it:
    the guard never copies them on its own."""

    action: str | None = None
    resource: str | None = None
    context: dict[str, Any] | None = None
    client_timestamp: datetime | str | None = None
    estimated_cost_micros: int | None = None
    idempotency_key: str | None = None


class AgentTokenUnsupportedError(AllowlyConfigError):
    """``agent_token_fn`` was given, but the engine does not verify agent identity tokens yet: a
    guard that took one would promise a check that does not happen."""

    def __init__(self) -> None:
        AllowlyError.__init__(
            self,
            "this Allowly engine does not verify agent identity tokens yet: remove `agent_token_fn`",
            "agent_token_unsupported",
        )


_Maybe = Union[Any, Awaitable[Any]]
AuthorizationIdFn = Callable[[str], Union[Optional[str], Awaitable[Optional[str]]]]
UserIdFn = Callable[[MCPAuthorizationContext], Union[Optional[str], Awaitable[Optional[str]]]]
AgentTokenFn = Callable[[MCPAuthorizationContext], Union[Optional[str], Awaitable[Optional[str]]]]
CheckInputFn = Callable[[MCPAuthorizationContext], Union[MCPCheckInput, Awaitable[MCPCheckInput]]]

#: How much of a call's arguments (JSON) a confirmation question shows.
MAX_SHOWN_ARGUMENTS = 1000
#: Elicitation asks a yes or no: no fields to fill.
NO_FIELDS: dict[str, Any] = {"type": "object", "properties": {}}
#: The key of the guard's elicitation among a multi-round-trip call's input requests.
INPUT_KEY = "allowly_confirmation"
#: Marks the request state of a multi-round-trip confirmation as the guard's own.
_STATE_MARK = "allowly.confirmation.v1"

ElicitAnswer = Literal["accept", "decline", "cancel"]


@dataclass(slots=True)
class Verdict:
    """The guard's answer on one call: whether the tool may run, the tool error's JSON payload and
    ``_meta["allowly"]``. ``check`` is the check made (its arguments), to make it again after an
    approval; ``None`` when the call stopped before any check."""

    allowed: bool
    payload: dict[str, Any]
    meta: dict[str, Any]
    check: dict[str, Any] | None = None

    @property
    def is_confirm(self) -> bool:
        return self.payload.get("decision") == "confirm" and bool(self.payload.get("confirm_nonce"))

    def error_text(self) -> str:
        return json.dumps(self.payload)


@dataclass(slots=True)
class ConfirmationState:
    """A confirmation asked across rounds (MCP 2026-07-28 multi-round-trip): what the next round
    needs to resolve it. Carried in the call's request state, which the MCP framework seals."""

    nonce: str
    authorization_id: str
    action: str
    payload: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps({_STATE_MARK: {"nonce": self.nonce, "authorization_id": self.authorization_id,
                                         "action": self.action, "payload": self.payload, "meta": self.meta}})

    @classmethod
    def decode(cls, text: object) -> ConfirmationState | None:
        """The guard's state in ``text``; ``None`` when it is not the guard's."""
        if not isinstance(text, str):
            return None
        try:
            raw = json.loads(text)
            state = raw[_STATE_MARK]
            return cls(str(state["nonce"]), str(state["authorization_id"]), str(state["action"]),
                       dict(state["payload"]), dict(state["meta"]))
        except (ValueError, TypeError, KeyError):
            return None


def refused(reason: str) -> Verdict:
    """A call stopped by the guard before or instead of a check: deny, no receipt."""
    return Verdict(
        allowed=False,
        payload={"decision": "deny", "reason": reason},
        meta={"decision": "deny", "reason": reason, "receipt_id": None, "receipt": None, "is_fallback": False},
    )


async def _answer(value: _Maybe) -> Any:
    """A host function's answer, sync or async."""
    return await value if inspect.isawaitable(value) else value


class Guard:
    """The configuration and the steps of a guarded call (docs/mcp.md, "What a guarded call does")."""

    def __init__(
        self,
        api_key: str | None,
        authorization_id_fn: AuthorizationIdFn,
        *,
        base_url: str | None,
        user_id_fn: UserIdFn | None,
        agent_token_fn: AgentTokenFn | None,
        check_input_fn: CheckInputFn | None,
        client: Allowly | None,
        check_timeout_ms: int,
        elicit_confirmation: bool,
    ) -> None:
        if agent_token_fn is not None:
            raise AgentTokenUnsupportedError()
        if not callable(authorization_id_fn):
            raise AllowlyTypeError("`authorization_id_fn` must be callable", "authorization_id_fn")
        for name, fn in (("user_id_fn", user_id_fn), ("check_input_fn", check_input_fn)):
            if fn is not None and not callable(fn):
                raise AllowlyTypeError(f"`{name}` must be callable", name)
        if client is not None:
            if not isinstance(client, Allowly):
                raise AllowlyTypeError(
                    f"`client` must be an allowly.Allowly client, not {type(client).__name__}", "client"
                )
            if api_key is not None or base_url is not None:
                raise AllowlyConfigError("pass either `client` or `api_key` and `base_url`, not both")
            self.client = client
            self._owns_client = False
        else:
            if api_key is None or base_url is None:
                # No default runtime: this SDK calls the `allowly serve` it is told to.
                raise AllowlyConfigError("give `api_key` and `base_url`, or an allowly.Allowly as `client`")
            self.client = Allowly(api_key, base_url=base_url, check_timeout_ms=check_timeout_ms)
            self._owns_client = True
        self.authorization_id_fn = authorization_id_fn
        self.user_id_fn = user_id_fn
        self.check_input_fn = check_input_fn
        self.elicit_confirmation = bool(elicit_confirmation)

    async def aclose(self) -> None:
        """Closes the client the guard made (a client given as ``client`` stays its owner's)."""
        if self._owns_client:
            await self.client.aclose()

    async def decide(self, call: MCPAuthorizationContext) -> Verdict:
        """The verdict on one call: its check input resolved from the host, then the check."""
        prepared = await self.prepare(call)
        if isinstance(prepared, Verdict):
            return prepared
        return await self.check(prepared)

    async def prepare(self, call: MCPAuthorizationContext) -> dict[str, Any] | Verdict:
        """The check's arguments for ``call``, or the verdict that stops it before any check."""
        user_id: Any = None
        if self.user_id_fn is not None:
            try:
                user_id = await _answer(self.user_id_fn(call))
            except Exception:
                return refused("authorization_unavailable")
        if not user_id:
            return refused("authorization_not_found")
        try:
            authorization_id = await _answer(self.authorization_id_fn(user_id))
        except Exception:
            return refused("authorization_unavailable")
        if not isinstance(authorization_id, str) or not authorization_id:
            return refused("authorization_not_found")

        check_input = MCPCheckInput()
        if self.check_input_fn is not None:
            try:
                check_input = await _answer(self.check_input_fn(call))
            except Exception:
                return refused("check_input_unavailable")
            if not isinstance(check_input, MCPCheckInput):
                return refused("check_input_invalid")
        action = check_input.action if check_input.action is not None else call.tool_name
        if not isinstance(action, str) or not action.strip():
            return refused("check_action_invalid")
        return {
            "authorization_id": authorization_id,
            "actions": [action],
            "resource": check_input.resource,
            "context": check_input.context,
            "client_timestamp": check_input.client_timestamp,
            "estimated_cost_micros": check_input.estimated_cost_micros,
            "idempotency_key": check_input.idempotency_key,
        }

    async def check(self, args: dict[str, Any]) -> Verdict:
        """One check through the client, as a verdict."""
        try:
            answer = await self.client.check(**args)
        except AllowlyError as error:
            return refused(error.code)
        result = answer.results.get(args["actions"][0])
        if result is None:
            return refused("missing_result")
        return _verdict_of(result, args)

    async def resolve(self, verdict: Verdict, answer: ElicitAnswer) -> Verdict:
        """The user's answer to a ``confirm`` verdict: approve (and check again) or reject. A
        resolution that fails leaves the ``confirm`` verdict as it was: the nonce stays pending."""
        nonce = str(verdict.payload["confirm_nonce"])
        approved = answer == "accept"
        try:
            resolution = await (
                self.client.confirmations.approve(nonce) if approved else self.client.confirmations.reject(nonce)
            )
        except AllowlyError:
            return verdict
        confirmation = _confirmation_meta(approved, resolution)
        if not approved:
            return Verdict(
                allowed=False,
                payload={
                    "decision": verdict.payload["decision"],
                    "reason": verdict.payload["reason"],
                    "confirmation": "declined" if answer == "decline" else "cancelled",
                },
                meta={**verdict.meta, "confirmation": confirmation},
                check=verdict.check,
            )
        if verdict.check is None:
            return verdict
        # Without the idempotency key, which would replay the first (confirm) answer.
        again = await self.check({**verdict.check, "idempotency_key": None})
        again.meta = {**again.meta, "confirmation": confirmation}
        return again

    async def continued(self, call: MCPAuthorizationContext, state: ConfirmationState, response: Any) -> Verdict:
        """The round after the guard asked for a confirmation (multi-round-trip): the call is
        prepared again, and when it is still the call the nonce was issued for, the user's
        ``response`` (an ``ElicitResult``-like object; anything else is a failed elicitation)
        resolves the confirmation. Otherwise the call is checked afresh."""
        prepared = await self.prepare(call)
        if isinstance(prepared, Verdict):
            return prepared
        if (prepared["authorization_id"], prepared["actions"][0]) != (state.authorization_id, state.action):
            return await self.check(prepared)
        pending = Verdict(allowed=False, payload=state.payload, meta=state.meta, check=prepared)
        action = getattr(response, "action", None)
        if action not in ("accept", "decline", "cancel"):
            return pending
        return await self.resolve(pending, action)

    def state_of(self, verdict: Verdict) -> str:
        """The request state that carries a ``confirm`` verdict to the next round."""
        assert verdict.check is not None
        return ConfirmationState(
            nonce=str(verdict.payload["confirm_nonce"]),
            authorization_id=verdict.check["authorization_id"],
            action=verdict.check["actions"][0],
            payload=verdict.payload,
            meta=verdict.meta,
        ).encode()


class GuardedMiddleware:
    """The public middleware's constructor, shared by the framework adapters: the reference
    signature plus ``client``, ``check_timeout_ms`` and ``elicit_confirmation``."""

    def __init__(
        self,
        api_key: str | None,
        authorization_id_fn: AuthorizationIdFn,
        *,
        base_url: str | None = None,
        user_id_fn: UserIdFn | None = None,
        agent_token_fn: AgentTokenFn | None = None,
        check_input_fn: CheckInputFn | None = None,
        client: Allowly | None = None,
        check_timeout_ms: int = 1000,
        elicit_confirmation: bool = False,
    ) -> None:
        self._guard = Guard(
            api_key,
            authorization_id_fn,
            base_url=base_url,
            user_id_fn=user_id_fn,
            agent_token_fn=agent_token_fn,
            check_input_fn=check_input_fn,
            client=client,
            check_timeout_ms=check_timeout_ms,
            elicit_confirmation=elicit_confirmation,
        )

    @property
    def client(self) -> Allowly:
        """The client the guard checks with."""
        return self._guard.client

    async def aclose(self) -> None:
        """Closes the client the guard made (a ``client`` given to it stays its owner's)."""
        await self._guard.aclose()


def prompt_of(verdict: Verdict, call: MCPAuthorizationContext) -> str:
    """The elicitation's message: ``Allow <hint>? <arguments>``, the policy's prompt hint (the
    tool's name without one) and the call's arguments as compact JSON, so the user sees what they
    allow (the TypeScript guard asks the same)."""
    hint = verdict.payload.get("confirm_prompt_hint")
    shown_hint = hint if isinstance(hint, str) and hint else call.tool_name
    if not call.arguments:
        return f"Allow {shown_hint}?"
    shown = json.dumps(call.arguments, separators=(",", ":"), ensure_ascii=False, default=str)
    if len(shown) > MAX_SHOWN_ARGUMENTS:
        shown = shown[:MAX_SHOWN_ARGUMENTS] + "…"
    return f"Allow {shown_hint}? {shown}"


def _verdict_of(result: ActionResult, check: dict[str, Any]) -> Verdict:
    raw = result._raw
    is_fallback = raw.is_fallback
    receipt = raw.receipt
    # A fallback has no receipt and never runs a tool, even when mapped to fail_open.
    decision = "deny" if is_fallback else raw.decision
    meta = {
        "decision": decision,
        "reason": raw.reason,
        "receipt_id": None if receipt is None else result.receipt_id,
        "receipt": receipt,
        "is_fallback": is_fallback,
    }
    payload: dict[str, Any] = {"decision": decision, "reason": raw.reason}
    if decision == "confirm":
        payload["confirm_nonce"] = raw.confirm_nonce
        payload["confirm_expires_at"] = raw.confirm_expires_at
        payload["confirm_prompt_hint"] = raw.confirm_prompt_hint
    elif decision == "escalate":
        payload["escalation_id"] = raw.escalation_id
        payload["escalation_to"] = raw.escalation_to
        payload["escalation_expires_at"] = raw.escalation_expires_at
    return Verdict(allowed=decision == "allow" and receipt is not None, payload=payload, meta=meta, check=check)


def _confirmation_meta(approved: bool, resolution: ConfirmationApproveResponse) -> dict[str, Any]:
    """``_meta["allowly"]["confirmation"]``: the resolution's receipt as the resolution answered it."""
    receipt = resolution.receipt
    return {
        "approved": approved,
        "receipt_id": None if receipt is None else receipt.receipt_id,
        "receipt": None if receipt is None else {
            "status": receipt.status,
            "receipt_id": receipt.receipt_id,
            "ready_at_estimate": receipt.ready_at_estimate,
            "url": receipt.url,
        },
    }


def elicit_answer(response: Mapping[str, Any] | Any) -> Any:
    """A raw input response (a JSON object) as an object with ``action``; anything else as is."""
    if isinstance(response, Mapping):
        return _Answer(response.get("action"))
    return response


@dataclass(frozen=True, slots=True)
class _Answer:
    action: Any
