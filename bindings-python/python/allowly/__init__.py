"""Allowly: decide and notarize what AI agents may do.

``Allowly(api_key, base_url=...)`` is the async client of an ``allowly serve`` runtime;
``Allowly.embedded()`` runs the same Rust engine in this process. ``allowly.sync.Allowly`` is the
synchronous twin. ``allowly.verify`` verifies signed receipts offline. ``catalog()`` lists every
operation, which ``Allowly.call`` runs by name.
"""

from __future__ import annotations

import json
from typing import Any

from . import _native, sync, types, verify
from ._errors import (
    AllowlyAPIError,
    AllowlyConfigError,
    AllowlyConnectionError,
    AllowlyError,
    AllowlyProtocolError,
    AllowlyTimeoutError,
    AllowlyTypeError,
    ConflictError,
    FieldError,
    ForbiddenError,
    InternalError,
    InvalidRequestError,
    KeyOutsideActiveWindowError,
    NotFoundError,
    RateLimitError,
    SchemaError,
    SignatureMismatchError,
    UnauthorizedError,
    UnavailableError,
    UnknownKeyError,
    VerificationError,
)
from .client import Allowly
from .types import (
    ActionCheckResult,
    ActionResult,
    Authorization,
    AuthorizationCreateResponse,
    AuthorizationList,
    AuthorizationRevokeResponse,
    BudgetInfo,
    BudgetSettlementResponse,
    CheckResponse,
    ConfirmationApproveResponse,
    ConfirmationStatus,
    Decision,
    EscalationInfo,
    EscalationResolveResponse,
    EscalationStatus,
    FallbackMode,
    JwsReceipt,
    PolicyEvalInfo,
    PolicyListResponse,
    PolicyPreviewResponse,
    PolicyPublishResponse,
    PolicyReference,
    PolicyResponse,
    ProvisionalPolicyResult,
    ReceiptEnvelope,
    ReceiptEnvelopePending,
    ReceiptEnvelopeSigned,
)

__version__: str = _native.__version__
#: ``sha256:<hex>`` of the embedded engine's manifest (stamped on every receipt it signs).
ENGINE_VERSION: str = _native.ENGINE_VERSION


def catalog() -> list[dict[str, Any]]:
    """Every operation of the API, in core's catalog order: its name (``operation``, what
    ``Allowly.call`` takes), HTTP ``method`` and ``path`` (``path_field`` fills ``{id}``),
    ``access`` (``public``, ``runtime`` or ``setup`` key), ``idempotency``, ``body`` and success
    ``status``."""
    operations: list[dict[str, Any]] = json.loads(_native.catalog())
    return operations


__all__ = [
    "Allowly",
    "sync",
    "types",
    "verify",
    "catalog",
    "AllowlyError",
    "AllowlyAPIError",
    "InvalidRequestError",
    "UnauthorizedError",
    "ForbiddenError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "UnavailableError",
    "InternalError",
    "AllowlyConfigError",
    "AllowlyConnectionError",
    "AllowlyProtocolError",
    "AllowlyTimeoutError",
    "AllowlyTypeError",
    "FieldError",
    "VerificationError",
    "SchemaError",
    "UnknownKeyError",
    "KeyOutsideActiveWindowError",
    "SignatureMismatchError",
    "ActionCheckResult",
    "ActionResult",
    "Authorization",
    "AuthorizationCreateResponse",
    "AuthorizationList",
    "AuthorizationRevokeResponse",
    "BudgetInfo",
    "BudgetSettlementResponse",
    "CheckResponse",
    "ConfirmationApproveResponse",
    "ConfirmationStatus",
    "Decision",
    "EscalationInfo",
    "EscalationResolveResponse",
    "EscalationStatus",
    "FallbackMode",
    "JwsReceipt",
    "PolicyEvalInfo",
    "PolicyListResponse",
    "PolicyPreviewResponse",
    "PolicyPublishResponse",
    "PolicyReference",
    "PolicyResponse",
    "ProvisionalPolicyResult",
    "ReceiptEnvelope",
    "ReceiptEnvelopePending",
    "ReceiptEnvelopeSigned",
    "ENGINE_VERSION",
]
