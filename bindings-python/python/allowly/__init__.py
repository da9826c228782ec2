"""Allowly: decide and notarize what AI agents may do.

``Allowly(api_key, base_url=...)`` is the async client of an ``allowly serve`` runtime;
``Allowly.embedded()`` runs the same Rust engine in this process. ``allowly.sync.Allowly`` is the
synchronous twin. ``allowly.verify`` verifies signed receipts offline.
"""

from __future__ import annotations

from . import _native, sync, types, verify
from ._errors import (
    AllowlyAPIError,
    AllowlyConfigError,
    AllowlyConnectionError,
    AllowlyError,
    AllowlyProtocolError,
    AllowlyTimeoutError,
    AllowlyTypeError,
    FieldError,
    KeyOutsideActiveWindowError,
    SchemaError,
    SignatureMismatchError,
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

__all__ = [
    "Allowly",
    "sync",
    "types",
    "verify",
    "AllowlyError",
    "AllowlyAPIError",
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
