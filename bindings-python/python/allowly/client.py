"""The async client: same constructor, names and shapes as the official ``allowly`` client.

Each call runs the (GIL-releasing) engine call on a worker thread, so the event loop never
blocks, whether the engine is embedded or remote.
"""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import Any, Callable, TypeVar

from . import sync as _sync
from ._args import _MISSING
from .types import (
    Authorization,
    AuthorizationCreateResponse,
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
)

__all__ = ["Allowly"]

T = TypeVar("T")

_EXECUTOR: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="allowly")
    return _EXECUTOR


async def _offload(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(fn, *args, **kwargs))


class Allowly:
    """One Allowly workspace, async. ``Allowly(api_key, base_url=...)`` talks to an ``allowly serve``
    runtime; ``Allowly.embedded()`` runs the engine in this process. Same methods either way."""

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
        self._wrap(
            _sync.Allowly(
                api_key,
                base_url=base_url,
                check_timeout_ms=check_timeout_ms,
                fallback_by_action=fallback_by_action,
                timeout=timeout,
                workspace_id=workspace_id,
                dangerously_allow_insecure_base_url=dangerously_allow_insecure_base_url,
            )
        )

    @classmethod
    def embedded(cls, home: str | None = None) -> Allowly:
        """The engine in this process on the SQLite workspace in ``home`` (default
        ``$ALLOWLY_HOME`` or ``./.allowly``)."""
        self = cls.__new__(cls)
        self._wrap(_sync.Allowly.embedded(home))
        return self

    @classmethod
    def in_memory(cls) -> Allowly:
        self = cls.__new__(cls)
        self._wrap(_sync.Allowly.in_memory())
        return self

    def _wrap(self, inner: _sync.Allowly) -> None:
        self._sync = inner
        self.policies = _Policies(inner.policies)
        self.authorizations = _Authorizations(inner.authorizations)
        self.confirmations = _Confirmations(inner.confirmations)
        self.escalations = _Escalations(inner.escalations)
        self.receipts = _Receipts(inner.receipts)

    @property
    def sync(self) -> _sync.Allowly:
        """The synchronous twin on the same engine."""
        return self._sync

    @property
    def is_embedded(self) -> bool:
        return self._sync.is_embedded

    @property
    def workspace_id(self) -> str | None:
        return self._sync.workspace_id

    @property
    def engine_version(self) -> str | None:
        return self._sync.engine_version

    async def check(
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
        """One decision per action; never raises for an unreachable runtime (local fallback)."""
        return await _offload(
            self._sync.check,
            authorization_id=authorization_id,
            actions=actions,
            resource=resource,
            session_id=session_id,
            estimated_cost_micros=estimated_cost_micros,
            context=context,
            idempotency_key=idempotency_key,
            client_timestamp=client_timestamp,
            scopes=scopes,
        )

    async def settle_budget(
        self, *, check_receipt_id: str, actual_cost_micros: int, idempotency_key: str | None = None
    ) -> BudgetSettlementResponse:
        return await _offload(
            self._sync.settle_budget,
            check_receipt_id=check_receipt_id,
            actual_cost_micros=actual_cost_micros,
            idempotency_key=idempotency_key,
        )

    async def readiness(self) -> bool:
        return await _offload(self._sync.readiness)

    async def keys(self) -> dict[str, Any]:
        return await _offload(self._sync.keys)

    async def aclose(self) -> None:
        self._sync.close()

    async def close(self) -> None:
        self._sync.close()

    async def __aenter__(self) -> Allowly:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class _Policies:
    def __init__(self, inner: _sync._Policies) -> None:
        self._inner = inner

    async def create(
        self,
        *,
        policy_id: str = _MISSING,
        definition: dict[str, Any],
        description: str | None = None,
        bundle_id: str = _MISSING,
    ) -> PolicyResponse:
        return await _offload(
            self._inner.create, policy_id=policy_id, definition=definition, description=description, bundle_id=bundle_id
        )

    async def get(self, policy_id: str) -> PolicyResponse:
        return await _offload(self._inner.get, policy_id)

    async def list(self, *, limit: int = 100, cursor: str | None = None) -> PolicyListResponse:
        return await _offload(self._inner.list, limit=limit, cursor=cursor)

    async def archive(self, policy_id: str, *, idempotency_key: str | None = None) -> None:
        await _offload(self._inner.archive, policy_id, idempotency_key=idempotency_key)

    async def preview(
        self, *, definition: dict[str, Any], action: str, context: dict[str, Any]
    ) -> PolicyPreviewResponse:
        return await _offload(self._inner.preview, definition=definition, action=action, context=context)

    async def publish(
        self,
        *,
        policy_id: str = _MISSING,
        definition: dict[str, Any],
        idempotency_key: str | None = None,
        description: str | None = None,
        bundle_id: str = _MISSING,
    ) -> PolicyPublishResponse:
        return await _offload(
            self._inner.publish,
            policy_id=policy_id,
            definition=definition,
            idempotency_key=idempotency_key,
            description=description,
            bundle_id=bundle_id,
        )


class _Authorizations:
    def __init__(self, inner: _sync._Authorizations) -> None:
        self._inner = inner

    async def create(
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
        return await _offload(
            self._inner.create,
            user_id=user_id,
            policy_id=policy_id,
            policy_version=policy_version,
            actions=actions,
            expires_at=expires_at,
            budget_limit_micros=budget_limit_micros,
            replaces=replaces,
            metadata=metadata,
            idempotency_key=idempotency_key,
            bundle_id=bundle_id,
            scopes=scopes,
        )

    async def revoke(
        self,
        authorization_id: str,
        *,
        revoked_by: str | None = None,
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> AuthorizationRevokeResponse:
        return await _offload(
            self._inner.revoke, authorization_id, revoked_by=revoked_by, notes=notes, idempotency_key=idempotency_key
        )

    async def list(self, *, limit: int = 100, cursor: str | None = None) -> AuthorizationList:
        return await _offload(self._inner.list, limit=limit, cursor=cursor)

    async def get(self, authorization_id: str) -> Authorization:
        return await _offload(self._inner.get, authorization_id)


class _Confirmations:
    def __init__(self, inner: _sync._Confirmations) -> None:
        self._inner = inner

    async def approve(
        self, nonce: str, *, approved: bool = True, ttl_seconds: int = 60, idempotency_key: str | None = None
    ) -> ConfirmationApproveResponse:
        return await _offload(
            self._inner.approve, nonce, approved=approved, ttl_seconds=ttl_seconds, idempotency_key=idempotency_key
        )

    async def reject(self, nonce: str) -> ConfirmationApproveResponse:
        return await _offload(self._inner.reject, nonce)

    async def get_status(self, confirmation_id: str) -> ConfirmationStatus:
        return await _offload(self._inner.get_status, confirmation_id)

    get = get_status


class _Escalations:
    def __init__(self, inner: _sync._Escalations) -> None:
        self._inner = inner

    async def resolve(
        self, escalation_id: str, *, resolution: str, resolved_by: str, note: str | None = None
    ) -> EscalationResolveResponse:
        return await _offload(
            self._inner.resolve, escalation_id, resolution=resolution, resolved_by=resolved_by, note=note
        )

    async def approve(
        self, escalation_id: str, *, resolved_by: str, note: str | None = None
    ) -> EscalationResolveResponse:
        return await _offload(self._inner.approve, escalation_id, resolved_by=resolved_by, note=note)

    async def reject(
        self, escalation_id: str, *, resolved_by: str, note: str | None = None
    ) -> EscalationResolveResponse:
        return await _offload(self._inner.reject, escalation_id, resolved_by=resolved_by, note=note)

    async def get_status(self, escalation_id: str) -> EscalationStatus:
        return await _offload(self._inner.get_status, escalation_id)

    get = get_status


class _Receipts:
    def __init__(self, inner: _sync._Receipts) -> None:
        self._inner = inner

    async def get(self, receipt_id: str) -> ReceiptEnvelope:
        return await _offload(self._inner.get, receipt_id)

    async def fetch_signed(self, receipt_id: str, *, poll_interval: float = 1.0, timeout: float = 120.0) -> JwsReceipt:
        return await _offload(self._inner.fetch_signed, receipt_id, poll_interval=poll_interval, timeout=timeout)
