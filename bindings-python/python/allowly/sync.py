"""The synchronous client, for scripts and sync frameworks: the same constructor, ``embedded``
and methods as the async :class:`allowly.Allowly`, without ``await``.

Every engine call releases the GIL; one client may be shared by many threads.
"""

from __future__ import annotations

import time
from datetime import datetime
from types import TracebackType
from typing import Any, cast

from . import _args, _native
from ._args import _MISSING
from ._errors import AllowlyAPIError, AllowlyConfigError, AllowlyConnectionError
from .types import (
    AuthorizationCreateResponse,
    Authorization,
    AuthorizationList,
    AuthorizationRevokeResponse,
    BudgetSettlementResponse,
    CheckResponse,
    ConfirmationApproveResponse,
    ConfirmationStatus,
    EscalationResolveResponse,
    EscalationStatus,
    JwsReceipt,
    PolicyListResponse,
    PolicyPreviewResponse,
    PolicyPublishResponse,
    PolicyResponse,
    ReceiptEnvelope,
    ReceiptEnvelopeSigned,
    _authorization,
    _authorization_created,
    _authorization_list,
    _authorization_revoked,
    _check_response,
    _confirmation_resolved,
    _escalation_resolved,
    _policy,
    _policy_list,
    _preview,
    _settlement,
)

__all__ = ["Allowly"]


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
        raw = self._engine.settle_budget(
            _args.text(check_receipt_id, "check_receipt_id"),
            _args.integer(actual_cost_micros, "actual_cost_micros"),
            _args.opt_text(idempotency_key, "idempotency_key"),
        )
        return _settlement(raw)

    def readiness(self) -> bool:
        """Whether the workspace can serve requests now (``GET /readyz``); False when unreachable."""
        try:
            return self._engine.readiness()
        except AllowlyConnectionError:
            return False

    def keys(self) -> dict[str, Any]:
        """The workspace's public key document (remote: needs ``workspace_id``)."""
        result: dict[str, Any] = self._engine.key_document()
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


class _Policies:
    def __init__(self, engine: _native.Engine) -> None:
        self._engine = engine

    def create(
        self,
        *,
        policy_id: str = _MISSING,
        definition: dict[str, Any],
        description: str | None = None,
        bundle_id: str = _MISSING,
    ) -> PolicyResponse:
        return _policy(self._engine.create_policy(_policy_body(policy_id, bundle_id, definition, description)))

    def get(self, policy_id: str) -> PolicyResponse:
        return _policy(self._engine.get_policy(_args.text(policy_id, "policy_id")))

    def list(self, *, limit: int = 100, cursor: str | None = None) -> PolicyListResponse:
        limit = _args.integer(limit, "limit")
        if limit < 0:
            raise AllowlyConfigError("`limit` must not be negative")
        return _policy_list(self._engine.list_policies(limit, _args.opt_text(cursor, "cursor")))

    def archive(self, policy_id: str, *, idempotency_key: str | None = None) -> None:
        self._engine.archive_policy(
            _args.text(policy_id, "policy_id"), _args.opt_text(idempotency_key, "idempotency_key")
        )

    def preview(self, *, definition: dict[str, Any], action: str, context: dict[str, Any]) -> PolicyPreviewResponse:
        raw = self._engine.preview_policy(
            _args.mapping(definition, "definition"), _args.text(action, "action"), _args.mapping(context, "context")
        )
        return _preview(raw)

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
        key = _args.opt_text(idempotency_key, "idempotency_key")
        return PolicyPublishResponse(**self._engine.publish_policy(body, key))


def _policy_body(policy_id: str, bundle_id: str, definition: dict[str, Any], description: str | None) -> dict[str, Any]:
    """The create/publish body: the definition's members and ``policy_id`` (``description`` if given)."""
    body = dict(_args.mapping(definition, "definition") or {})
    body["policy_id"] = _args.text(_args.alias(policy_id, bundle_id, "policy_id", "bundle_id"), "policy_id")
    if description is not None:
        body["description"] = _args.text(description, "description")
    return body


class _Authorizations:
    def __init__(self, engine: _native.Engine) -> None:
        self._engine = engine

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
        raw = self._engine.create_authorization(
            _args.text(user_id, "user_id"),
            _args.text(_args.alias(policy_id, bundle_id, "policy_id", "bundle_id"), "policy_id"),
            _args.opt_integer(policy_version, "policy_version"),
            None if chosen is None else _args.strings(chosen, "actions"),
            _args.timestamp(expires_at, "expires_at"),
            _args.opt_integer(budget_limit_micros, "budget_limit_micros"),
            _args.mapping(metadata, "metadata"),
            _args.opt_text(replaces, "replaces"),
            _args.opt_text(idempotency_key, "idempotency_key"),
        )
        return _authorization_created(raw)

    def revoke(
        self,
        authorization_id: str,
        *,
        revoked_by: str | None = None,
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> AuthorizationRevokeResponse:
        raw = self._engine.revoke_authorization(
            _args.text(authorization_id, "authorization_id"),
            _args.opt_text(revoked_by, "revoked_by"),
            _args.opt_text(notes, "notes"),
            _args.opt_text(idempotency_key, "idempotency_key"),
        )
        return _authorization_revoked(raw)

    def list(self, *, limit: int = 100, cursor: str | None = None) -> AuthorizationList:
        limit = _args.integer(limit, "limit")
        if limit < 0:
            raise AllowlyConfigError("`limit` must not be negative")
        return _authorization_list(self._engine.list_authorizations(limit, _args.opt_text(cursor, "cursor")))

    def get(self, authorization_id: str) -> Authorization:
        return _authorization(self._engine.get_authorization(_args.text(authorization_id, "authorization_id")))


class _Confirmations:
    def __init__(self, engine: _native.Engine) -> None:
        self._engine = engine

    def approve(
        self,
        nonce: str,
        *,
        approved: bool = True,
        ttl_seconds: int = 60,
        idempotency_key: str | None = None,
    ) -> ConfirmationApproveResponse:
        """Resolves a pending confirmation by its nonce (``approved=False`` rejects it)."""
        raw = self._engine.resolve_confirmation(
            _args.text(nonce, "nonce"),
            _args.boolean(approved, "approved"),
            _args.integer(ttl_seconds, "ttl_seconds"),
            _args.opt_text(idempotency_key, "idempotency_key"),
        )
        return _confirmation_resolved(raw)

    def reject(self, nonce: str) -> ConfirmationApproveResponse:
        return self.approve(nonce, approved=False)

    def get_status(self, confirmation_id: str) -> ConfirmationStatus:
        return ConfirmationStatus(**self._engine.confirmation_status(_args.text(confirmation_id, "confirmation_id")))

    get = get_status


class _Escalations:
    def __init__(self, engine: _native.Engine) -> None:
        self._engine = engine

    def resolve(
        self, escalation_id: str, *, resolution: str, resolved_by: str, note: str | None = None
    ) -> EscalationResolveResponse:
        raw = self._engine.resolve_escalation(
            _args.text(escalation_id, "escalation_id"),
            _args.text(resolution, "resolution"),
            _args.text(resolved_by, "resolved_by"),
            _args.opt_text(note, "note"),
        )
        return _escalation_resolved(raw)

    def approve(self, escalation_id: str, *, resolved_by: str, note: str | None = None) -> EscalationResolveResponse:
        return self.resolve(escalation_id, resolution="approved", resolved_by=resolved_by, note=note)

    def reject(self, escalation_id: str, *, resolved_by: str, note: str | None = None) -> EscalationResolveResponse:
        return self.resolve(escalation_id, resolution="rejected", resolved_by=resolved_by, note=note)

    def get_status(self, escalation_id: str) -> EscalationStatus:
        return EscalationStatus(**self._engine.escalation_status(_args.text(escalation_id, "escalation_id")))

    get = get_status


class _Receipts:
    def __init__(self, engine: _native.Engine) -> None:
        self._engine = engine

    def get(self, receipt_id: str) -> ReceiptEnvelope:
        """The receipt's envelope: always ``signed`` (receipts are signed before answers return)."""
        receipt = cast(JwsReceipt, self._engine.receipt(_args.text(receipt_id, "receipt_id")))
        return ReceiptEnvelopeSigned(receipt=receipt)

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
