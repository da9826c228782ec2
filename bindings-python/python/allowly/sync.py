"""The synchronous client, for scripts and sync frameworks: the same constructor, ``embedded``
and methods as the async :class:`allowly.Allowly`, without ``await``.

Every engine call releases the GIL; one client may be shared by many threads.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from types import TracebackType
from typing import Any

from . import _args, _native
from ._args import _MISSING
from ._errors import (
    AllowlyAPIError,
    AllowlyConfigError,
    AllowlyConnectionError,
    AllowlyProtocolError,
    AllowlyTypeError,
)
from .types import (
    AuthorizationCreateResponse,
    Authorization,
    AuthorizationList,
    AuthorizationRevokeResponse,
    BudgetSettlementResponse,
    CheckResponse,
    ConfirmationApproveResponse,
    ConfirmationList,
    ConfirmationStatus,
    EscalationList,
    EscalationResolveResponse,
    EscalationStatus,
    JwsReceipt,
    PolicyListResponse,
    PolicyPreviewResponse,
    PolicyPublishResponse,
    PolicyResponse,
    ReceiptEnvelope,
    ReceiptEnvelopeSigned,
    ReceiptList,
    VerifyReport,
    _authorization,
    _authorization_created,
    _authorization_list,
    _authorization_revoked,
    _check_response,
    _confirmation_list,
    _confirmation_resolved,
    _envelope,
    _escalation_list,
    _escalation_resolved,
    _policy,
    _policy_list,
    _preview,
    _receipt_list,
    _settlement,
    _verify_report,
)

__all__ = ["Allowly"]

# A child forked while the engine's background thread (it keeps SQLite's write-ahead logs short) is
# mid-call would inherit its lock held, and hang when it opens a store. The engine holds the thread
# still across the fork and gives the child a fresh start. (Other threads must not be inside a call
# at the fork: SQLite's rule.)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_native.before_fork,
        after_in_parent=_native.after_fork_in_parent,
        after_in_child=_native.after_fork_in_child,
    )


class Allowly:
    """One Allowly workspace: a remote ``allowly serve`` runtime, or (``Allowly.embedded()``) the
    engine in this process. Both answer through the same core code path and the same types."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str,
        check_timeout_ms: int = 1000,
        fallback_by_action: dict[str, str] | None = None,
        timeout: float = 10.0,
        workspace_id: str | None = None,
        dangerously_allow_insecure_base_url: bool = False,
    ) -> None:
        self._engine = _native.Engine.remote(
            _args.text(base_url, "base_url"),
            _args.text(api_key, "api_key"),
            _positive(check_timeout_ms, "check_timeout_ms"),
            _args.timeout_ms(timeout, "timeout"),
            _args.fallback_modes(fallback_by_action),
            _args.opt_text(workspace_id, "workspace_id"),
            _args.boolean(dangerously_allow_insecure_base_url, "dangerously_allow_insecure_base_url"),
        )
        self._setup()

    @classmethod
    def embedded(cls, home: str | None = None) -> Allowly:
        """The engine in this process on the SQLite workspace in ``home`` (default
        ``$ALLOWLY_HOME`` or ``./.allowly``), created with its signing key on first use."""
        self = cls.__new__(cls)
        self._engine = _native.Engine.embedded(_args.default_home() if home is None else _args.text(home, "home"))
        self._setup()
        return self

    @classmethod
    def in_memory(cls) -> Allowly:
        """An embedded engine whose workspace lives in memory only (tests)."""
        self = cls.__new__(cls)
        self._engine = _native.Engine.in_memory()
        self._setup()
        return self

    def _setup(self) -> None:
        self.policies = _Policies(self._engine)
        self.authorizations = _Authorizations(self._engine)
        self.confirmations = _Confirmations(self._engine)
        self.escalations = _Escalations(self._engine)
        self.receipts = _Receipts(self._engine)

    @property
    def is_embedded(self) -> bool:
        return not self._engine.is_remote

    @property
    def workspace_id(self) -> str | None:
        """Always known when embedded; when remote, the ``workspace_id`` given to the constructor."""
        return self._engine.workspace_id()

    @property
    def engine_version(self) -> str | None:
        return self._engine.engine_version()

    def check(
        self,
        *,
        authorization_id: str,
        actions: list[str] = _MISSING,
        resource: str | None = None,
        session_id: str | None = None,
        estimated_cost_micros: int | None = None,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        client_timestamp: datetime | str | None = None,
        scopes: list[str] = _MISSING,
    ) -> CheckResponse:
        """One decision per action. Never raises for an unreachable runtime or a failed store:
        the answer is then the local fallback (``is_fallback``; deny unless mapped to
        ``fail_open``; no receipt)."""
        # The hot path: plain type checks inline (the helpers in _args cost a microsecond or two).
        if scopes is not _MISSING:
            actions = _args.alias(actions, scopes, "actions", "scopes")
        elif actions is _MISSING:
            actions = _args.alias(actions, scopes, "actions", "scopes")
        if type(actions) is not list or any(type(a) is not str for a in actions):
            actions = _args.strings(actions, "actions")
        if type(authorization_id) is not str:
            _args.text(authorization_id, "authorization_id")
        if context is not None and type(context) is not dict:
            _args.mapping(context, "context")
        if estimated_cost_micros is not None:
            _args.integer(estimated_cost_micros, "estimated_cost_micros")
        if resource is not None and type(resource) is not str:
            _args.text(resource, "resource")
        if session_id is not None and type(session_id) is not str:
            _args.text(session_id, "session_id")
        if idempotency_key is not None and type(idempotency_key) is not str:
            _args.text(idempotency_key, "idempotency_key")
        raw = self._engine.check(
            authorization_id,
            actions,
            resource,
            session_id,
            estimated_cost_micros,
            context,
            idempotency_key,
            None if client_timestamp is None else _args.timestamp(client_timestamp, "client_timestamp"),
        )
        return _check_response(raw)

    def settle_budget(
        self, *, check_receipt_id: str, actual_cost_micros: int, idempotency_key: str | None = None
    ) -> BudgetSettlementResponse:
        """Settles the actual cost of a checked, metered action against its reservation."""
        args = {
            "check_receipt_id": _args.text(check_receipt_id, "check_receipt_id"),
            "actual_cost_micros": _args.integer(actual_cost_micros, "actual_cost_micros"),
        }
        return _settlement(_call(self._engine, "settle_budget", args, idempotency_key=idempotency_key))

    def call(self, operation: str, args: dict[str, Any] | None = None) -> Any:
        """Any operation of the catalog (:func:`allowly.catalog`) by name: ``args`` are the HTTP
        API's JSON for it (the path's id, the query or body members, and ``idempotency_key``), the
        answer is the HTTP API's JSON answer (``None`` for the operations answered with 204).
        ``call("check", ...)`` falls back as :meth:`check` does."""
        return self._engine.call(_args.text(operation, "operation"), _args.mapping(args, "args"))

    def readiness(self) -> bool:
        """Whether the workspace can serve requests now (``GET /readyz``); False when unreachable."""
        try:
            return self._engine.readiness()
        except AllowlyConnectionError:
            return False

    def keys(self) -> dict[str, Any]:
        """The workspace's public key document (remote: needs ``workspace_id``)."""
        workspace_id = self._engine.workspace_id()
        if workspace_id is None:
            raise AllowlyConfigError("the key document needs the workspace id: pass `workspace_id` to the client")
        result: dict[str, Any] = self._engine.call("get_key_document", {"workspace_id": workspace_id})
        return result

    def close(self) -> None:
        """Nothing to release eagerly; connections close with the client."""

    def __enter__(self) -> Allowly:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _positive(value: Any, name: str) -> int:
    number = _args.integer(value, name)
    if number <= 0:
        raise AllowlyConfigError(f"`{name}` must be positive")
    return number


def _call(engine: _native.Engine, operation: str, args: dict[str, Any], **optional: Any) -> Any:
    """``engine.call(operation, args)`` with the ``optional`` arguments that are not ``None``
    (checked as text: every optional argument of these calls is an id, a key or a note)."""
    for name, value in optional.items():
        if value is not None:
            args[name] = _args.text(value, name)
    return engine.call(operation, args)


def _page(limit: int | None, cursor: str | None) -> dict[str, Any]:
    """The arguments of a list call: no ``limit`` means the engine's default page (100)."""
    args: dict[str, Any] = {}
    if limit is not None:
        args["limit"] = _args.integer(limit, "limit")
    if cursor is not None:
        args["cursor"] = _args.text(cursor, "cursor")
    return args


def _status_page(status: str | None, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """The arguments of a list by status (authorizations, confirmations, escalations): a page, and
    ``status`` if given."""
    args = _page(limit, cursor)
    if status is not None:
        args["status"] = _args.text(status, "status")
    return args


class _Namespace:
    def __init__(self, engine: _native.Engine) -> None:
        self._engine = engine


class _Policies(_Namespace):
    def create(
        self,
        *,
        policy_id: str = _MISSING,
        definition: dict[str, Any],
        description: str | None = None,
        idempotency_key: str | None = None,
        bundle_id: str = _MISSING,
    ) -> PolicyResponse:
        """Publishes a new edition of the policy (``POST /v1/policies``)."""
        body = _policy_body(policy_id, bundle_id, definition, description)
        return _policy(_call(self._engine, "create_policy", body, idempotency_key=idempotency_key))

    def get(self, policy_id: str) -> PolicyResponse:
        """The newest active edition of the policy."""
        return _policy(self._engine.call("get_policy", {"policy_id": _args.text(policy_id, "policy_id")}))

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> PolicyListResponse:
        """One page of the active policies (``limit`` 1 to 100; the default page is the largest)."""
        return _policy_list(self._engine.call("list_policies", _page(limit, cursor)))

    def archive(self, policy_id: str, *, idempotency_key: str | None = None) -> None:
        """Archives every edition of the policy."""
        args = {"policy_id": _args.text(policy_id, "policy_id")}
        _call(self._engine, "archive_policy", args, idempotency_key=idempotency_key)

    def preview(self, *, definition: dict[str, Any], action: str, context: dict[str, Any]) -> PolicyPreviewResponse:
        """A provisional evaluation of ``definition`` for ``action`` on ``context`` (nothing is stored)."""
        args = {
            "definition": _args.mapping(definition, "definition"),
            "action": _args.text(action, "action"),
            "context": _args.mapping(context, "context"),
        }
        return _preview(self._engine.call("preview_policy", args))

    def publish(
        self,
        *,
        policy_id: str = _MISSING,
        definition: dict[str, Any],
        idempotency_key: str | None = None,
        description: str | None = None,
        bundle_id: str = _MISSING,
    ) -> PolicyPublishResponse:
        """Publishes a new edition (the official client's ``publish``), or keeps the newest one if it
        has this definition. Against a server ``idempotency_key`` is sent (one is made up if absent)."""
        body = _policy_body(policy_id, bundle_id, definition, description)
        return PolicyPublishResponse(**_call(self._engine, "publish_policy", body, idempotency_key=idempotency_key))


def _policy_body(policy_id: str, bundle_id: str, definition: dict[str, Any], description: str | None) -> dict[str, Any]:
    """The create/publish body: the definition's members and ``policy_id`` (``description`` if given)."""
    body = dict(_args.mapping(definition, "definition") or {})
    body["policy_id"] = _args.text(_args.alias(policy_id, bundle_id, "policy_id", "bundle_id"), "policy_id")
    if description is not None:
        body["description"] = _args.text(description, "description")
    return body


class _Authorizations(_Namespace):
    def create(
        self,
        *,
        user_id: str,
        policy_id: str = _MISSING,
        policy_version: int | None = None,
        actions: list[str] | None = _MISSING,
        expires_at: datetime | str | None = None,
        budget_limit_micros: int | None = None,
        replaces: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        bundle_id: str = _MISSING,
        scopes: list[str] | None = _MISSING,
    ) -> AuthorizationCreateResponse:
        """Grants ``user_id``'s authorization to the policy's agent, frozen from one edition
        (``policy_version``; the newest when omitted), for all of its actions or a subset."""
        chosen = _args.alias(actions, scopes, "actions", "scopes", required=False)
        args: dict[str, Any] = {
            "user_id": _args.text(user_id, "user_id"),
            "policy_id": _args.text(_args.alias(policy_id, bundle_id, "policy_id", "bundle_id"), "policy_id"),
        }
        for name, value in (
            ("policy_version", _args.opt_integer(policy_version, "policy_version")),
            ("actions", None if chosen is None else _args.strings(chosen, "actions")),
            ("expires_at", _args.timestamp(expires_at, "expires_at")),
            ("budget_limit_micros", _args.opt_integer(budget_limit_micros, "budget_limit_micros")),
            ("metadata", _args.mapping(metadata, "metadata")),
        ):
            if value is not None:
                args[name] = value
        raw = _call(self._engine, "create_authorization", args, replaces=replaces, idempotency_key=idempotency_key)
        return _authorization_created(raw)

    def revoke(
        self,
        authorization_id: str,
        *,
        revoked_by: str | None = None,
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> AuthorizationRevokeResponse:
        """Revokes the authorization (its pending confirmations too)."""
        args = {"authorization_id": _args.text(authorization_id, "authorization_id")}
        raw = _call(
            self._engine, "revoke_authorization", args,
            revoked_by=revoked_by, notes=notes, idempotency_key=idempotency_key,
        )
        return _authorization_revoked(raw)

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AuthorizationList:
        """One page of the authorizations in creation order (``limit`` 1 to 100; the default page is
        the largest), each given argument a filter that must match. ``status`` (``"active"``,
        ``"revoked"`` or ``"expired"``) is the status as it stands now; a page of a status may hold
        fewer than ``limit``: follow ``next_cursor`` while ``has_more``."""
        args = _status_page(status, limit, cursor)
        for name, value in (("user_id", user_id), ("agent_id", agent_id)):
            if value is not None:
                args[name] = _args.text(value, name)
        return _authorization_list(self._engine.call("list_authorizations", args))

    def get(self, authorization_id: str) -> Authorization:
        args = {"authorization_id": _args.text(authorization_id, "authorization_id")}
        return _authorization(self._engine.call("get_authorization", args))


class _Confirmations(_Namespace):
    def approve(
        self,
        nonce: str,
        *,
        approved: bool = True,
        ttl_seconds: int = 60,
        idempotency_key: str | None = None,
    ) -> ConfirmationApproveResponse:
        """Resolves a pending confirmation by its nonce (``approved=False`` rejects it)."""
        args = {
            "nonce": _args.text(nonce, "nonce"),
            "approved": _args.boolean(approved, "approved"),
            "ttl_seconds": _args.integer(ttl_seconds, "ttl_seconds"),
        }
        raw = _call(self._engine, "resolve_confirmation", args, idempotency_key=idempotency_key)
        return _confirmation_resolved(raw)

    def reject(self, nonce: str, *, idempotency_key: str | None = None) -> ConfirmationApproveResponse:
        return self.approve(nonce, approved=False, idempotency_key=idempotency_key)

    def get_status(self, confirmation_id: str) -> ConfirmationStatus:
        """The confirmation by its id or its nonce."""
        args = {"confirmation_id": _args.text(confirmation_id, "confirmation_id")}
        return ConfirmationStatus(**self._engine.call("confirmation_status", args))

    get = get_status

    def list(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> ConfirmationList:
        """One page of the confirmations, newest first (setup key), by ``status`` as it stands now
        (``pending``, ``approved``, ``rejected`` or ``expired``). A page may hold fewer than
        ``limit``: follow ``next_cursor`` while ``has_more``."""
        return _confirmation_list(self._engine.call("list_confirmations", _status_page(status, limit, cursor)))


class _Escalations(_Namespace):
    def resolve(
        self,
        escalation_id: str,
        *,
        resolution: str,
        resolved_by: str,
        note: str | None = None,
        idempotency_key: str | None = None,
    ) -> EscalationResolveResponse:
        """Resolves a pending escalation: ``resolution`` is ``"approved"`` or ``"rejected"``."""
        args = {
            "escalation_id": _args.text(escalation_id, "escalation_id"),
            "resolution": _args.text(resolution, "resolution"),
            "resolved_by": _args.text(resolved_by, "resolved_by"),
        }
        raw = _call(self._engine, "resolve_escalation", args, note=note, idempotency_key=idempotency_key)
        return _escalation_resolved(raw)

    def approve(
        self, escalation_id: str, *, resolved_by: str, note: str | None = None, idempotency_key: str | None = None
    ) -> EscalationResolveResponse:
        return self.resolve(
            escalation_id, resolution="approved", resolved_by=resolved_by, note=note, idempotency_key=idempotency_key
        )

    def reject(
        self, escalation_id: str, *, resolved_by: str, note: str | None = None, idempotency_key: str | None = None
    ) -> EscalationResolveResponse:
        return self.resolve(
            escalation_id, resolution="rejected", resolved_by=resolved_by, note=note, idempotency_key=idempotency_key
        )

    def get_status(self, escalation_id: str) -> EscalationStatus:
        args = {"escalation_id": _args.text(escalation_id, "escalation_id")}
        return EscalationStatus(**self._engine.call("escalation_status", args))

    get = get_status

    def list(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> EscalationList:
        """One page of the escalations, newest first (setup key), by ``status`` as it stands now
        (``pending``: waiting for an approver). Pages as ``confirmations.list()``."""
        return _escalation_list(self._engine.call("list_escalations", _status_page(status, limit, cursor)))


class _Receipts(_Namespace):
    def get(self, receipt_id: str) -> ReceiptEnvelope:
        """The receipt's envelope: always ``signed`` (receipts are signed before answers return)."""
        envelope = _envelope(self._engine.call("get_receipt", {"receipt_id": _args.text(receipt_id, "receipt_id")}))
        if envelope is None:
            raise AllowlyProtocolError("protocol_error", f"no receipt envelope for `{receipt_id}`")
        return envelope

    def fetch_signed(self, receipt_id: str, *, poll_interval: float = 1.0, timeout: float = 120.0) -> JwsReceipt:
        """The signed receipt (the JWS object). Retries 408/429/5xx and unreachable runtimes
        until ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                envelope = self.get(receipt_id)
                if isinstance(envelope, ReceiptEnvelopeSigned):
                    return envelope.receipt
            except AllowlyAPIError as exc:
                if exc.status not in (408, 429) and exc.status < 500:
                    raise
            except AllowlyConnectionError:
                pass
            if time.monotonic() + poll_interval > deadline:
                raise TimeoutError(f"receipt {receipt_id} not signed after {timeout}s")
            time.sleep(poll_interval)

    def verify(
        self,
        input: str | dict[str, Any] | ReceiptEnvelopeSigned | CheckResponse,
        *,
        key_document: dict[str, Any] | None = None,
        trusted_key_fingerprints: list[str] | None = None,
        checkpoint_evidence: dict[str, Any] | None = None,
    ) -> VerifyReport:
        """Verifies what a person pasted (no key needed): ``input`` is the text as pasted (one
        receipt, its ``{"status": "signed", "receipt": ...}`` envelope, a check response or a
        JSON Lines export), that document as a dict, a signed receipt envelope or a check response.
        Against this workspace's key document and keys unless ``key_document`` /
        ``trusted_key_fingerprints`` say otherwise; ``checkpoint_evidence`` is an export's evidence
        document. A receipt that does not verify is a verdict with an ``error``, not an exception."""
        args: dict[str, Any] = {"input": _verify_input(input)}
        if key_document is not None:
            args["key_document"] = _args.mapping(key_document, "key_document")
        if trusted_key_fingerprints is not None:
            args["trusted_key_fingerprints"] = _args.strings(trusted_key_fingerprints, "trusted_key_fingerprints")
        if checkpoint_evidence is not None:
            args["checkpoint_evidence"] = _args.mapping(checkpoint_evidence, "checkpoint_evidence")
        return _verify_report(self._engine.call("verify_receipts", args))

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        action: str | None = None,
        event: str | None = None,
        decision: str | None = None,
        reason: str | None = None,
        authorization_id: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ReceiptList:
        """The audit lookup (setup key): one page of the workspace's receipts, newest first, each
        given argument a filter that must match. ``since`` (inclusive) and ``until`` (exclusive)
        are datetimes (naive means UTC) or RFC 3339 strings."""
        args = _page(limit, cursor)
        for name, value in (
            ("user_id", user_id),
            ("agent_id", agent_id),
            ("action", action),
            ("event", event),
            ("decision", decision),
            ("reason", reason),
            ("authorization_id", authorization_id),
        ):
            if value is not None:
                args[name] = _args.text(value, name)
        for name, instant in (("since", since), ("until", until)):
            if instant is not None:
                args[name] = _args.timestamp(instant, name)
        return _receipt_list(self._engine.call("list_receipts", args))


def _verify_input(value: Any) -> str | dict[str, Any]:
    """``receipts.verify``'s input as the wire takes it: text, or a JSON document."""
    if type(value) is str or isinstance(value, dict):
        return value
    if isinstance(value, ReceiptEnvelopeSigned):
        return {"status": "signed", "receipt": value.receipt}
    if isinstance(value, CheckResponse):
        return {"results": {action: result.to_dict() for action, result in value.results.items()}}
    raise AllowlyTypeError(
        f"`input` must be a string, a dict, a signed receipt envelope or a check response, not {type(value).__name__}",
        "input",
    )
