"""Typed results. Same class and attribute names as the official client's where they overlap, so
code written for it keeps working (``result.results["email.send"].decision``,
``isinstance(env, ReceiptEnvelopeSigned)``, ``created.policy_ref["policy_id"]``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, Union

from . import _native
from ._errors import AllowlyProtocolError

__all__ = [
    "Decision",
    "FallbackMode",
    "JwsReceipt",
    "PolicyReference",
    "ReceiptEnvelope",
    "ReceiptEnvelopePending",
    "ReceiptEnvelopeSigned",
    "BudgetInfo",
    "EscalationInfo",
    "ProvisionalPolicyResult",
    "PolicyEvalInfo",
    "ActionResult",
    "ActionCheckResult",
    "CheckResponse",
    "AuthorizationCreateResponse",
    "AuthorizationRevokeResponse",
    "Authorization",
    "AuthorizationList",
    "ConfirmationApproveResponse",
    "ConfirmationStatus",
    "ConfirmationItem",
    "ConfirmationList",
    "EscalationStatus",
    "EscalationItem",
    "EscalationList",
    "EscalationResolveResponse",
    "BudgetSettlementResponse",
    "PolicyResponse",
    "PolicyListResponse",
    "PolicyPreviewResponse",
    "PolicyPublishResponse",
    "ReceiptSummary",
    "ReceiptList",
    "VerifyFailure",
    "ReceiptVerdict",
    "CheckpointVerdict",
    "VerifyReport",
]

Decision = Literal["allow", "deny", "confirm", "escalate"]
FallbackMode = Literal["fail_open", "fail_closed"]


class JwsReceipt(TypedDict):
    """A signed receipt: flattened JWS, wire 5."""

    protected: str
    payload: str
    signature: str


class PolicyReference(TypedDict):
    policy_id: str
    policy_version: int
    definition_sha256: str


Raw = dict[str, Any]


@dataclass(slots=True)
class ReceiptEnvelopeSigned:
    receipt: JwsReceipt
    status: Literal["signed"] = "signed"

    @property
    def receipt_id(self) -> str:
        return str(_native.decode_receipt(self.receipt)["receipt_id"])


@dataclass(slots=True)
class ReceiptEnvelopePending:
    receipt_id: str
    ready_at_estimate: str | None
    url: str
    status: Literal["pending"] = "pending"


ReceiptEnvelope = Union[ReceiptEnvelopeSigned, ReceiptEnvelopePending]


def _envelope(raw: Any) -> ReceiptEnvelope | None:
    if raw is None:
        return None
    if raw.get("status") == "signed":
        return ReceiptEnvelopeSigned(receipt=raw["receipt"])
    return ReceiptEnvelopePending(
        receipt_id=raw["receipt_id"], ready_at_estimate=raw.get("ready_at_estimate"), url=raw["url"]
    )


def _pending(raw: Any) -> ReceiptEnvelopePending:
    envelope = _envelope(raw)
    if not isinstance(envelope, ReceiptEnvelopePending):
        raise AllowlyProtocolError("protocol_error", "expected a pending receipt envelope")
    return envelope


@dataclass(slots=True)
class BudgetInfo:
    limit_micros: int
    spent_micros: int
    estimated_cost_micros: int
    spent_after_micros: int | None = None


@dataclass(slots=True)
class EscalationInfo:
    escalation_id: str
    status: str
    escalation_to: str | None = None
    expires_at: str | None = None


@dataclass(slots=True)
class ProvisionalPolicyResult:
    profile: str
    status: str
    decision: Decision
    target: str | None
    matched_rule_id: str | None
    evaluated_fields: dict[str, Any]


@dataclass(slots=True)
class PolicyEvalInfo:
    input_sha256: str
    result: ProvisionalPolicyResult


def _policy_eval(raw: Any) -> PolicyEvalInfo | None:
    if raw is None:
        return None
    result = raw["result"]
    return PolicyEvalInfo(
        input_sha256=raw["input_sha256"],
        result=ProvisionalPolicyResult(
            profile=result["profile"],
            status=result["status"],
            decision=result["decision"],
            target=result.get("target"),
            matched_rule_id=result.get("matched_rule_id"),
            evaluated_fields=result.get("evaluated_fields") or {},
        ),
    )


class ActionResult:
    """One action's decision. A local fallback result (``is_fallback``) has no receipt.

    A read-only view over the engine's answer (``_native.ActionAnswer``): nested objects (receipt
    envelope, budget, policy evaluation) are converted on first access, which keeps a check cheap."""

    # The cached conversions stay unset until first read (AttributeError): creating a result sets
    # one slot only.
    __slots__ = ("_raw", "_receipt", "_budget", "_policy_eval")
    _raw: _native.ActionAnswer
    _receipt: ReceiptEnvelope | None
    _budget: BudgetInfo | None
    _policy_eval: PolicyEvalInfo | None

    def __init__(self, raw: _native.ActionAnswer) -> None:
        self._raw = raw

    @property
    def decision(self) -> Decision:
        return self._raw.decision

    @property
    def reason(self) -> str:
        return self._raw.reason

    @property
    def receipt(self) -> ReceiptEnvelope | None:
        try:
            return self._receipt
        except AttributeError:
            self._receipt = _envelope(self._raw.receipt)
            return self._receipt

    @property
    def is_fallback(self) -> bool:
        return self._raw.is_fallback

    @property
    def fallback_mode(self) -> FallbackMode | None:
        return self._raw.fallback_mode

    @property
    def budget(self) -> BudgetInfo | None:
        try:
            return self._budget
        except AttributeError:
            raw = self._raw.budget
            self._budget = None if raw is None else BudgetInfo(**raw)
            return self._budget

    @property
    def escalation(self) -> EscalationInfo | None:
        raw = self._raw.escalation
        return None if raw is None else EscalationInfo(**raw)

    @property
    def policy_eval(self) -> PolicyEvalInfo | None:
        try:
            return self._policy_eval
        except AttributeError:
            self._policy_eval = _policy_eval(self._raw.policy_eval)
            return self._policy_eval

    @property
    def confirm_nonce(self) -> str | None:
        return self._raw.confirm_nonce

    @property
    def confirm_expires_at(self) -> str | None:
        return self._raw.confirm_expires_at

    @property
    def confirm_prompt_hint(self) -> str | None:
        return self._raw.confirm_prompt_hint

    @property
    def confirmation_id(self) -> str | None:
        return self._raw.confirmation_id

    @property
    def escalation_id(self) -> str | None:
        return self._raw.escalation_id

    @property
    def escalation_to(self) -> str | None:
        return self._raw.escalation_to

    @property
    def escalation_expires_at(self) -> str | None:
        return self._raw.escalation_expires_at

    @property
    def superseded_by(self) -> str | None:
        return self._raw.superseded_by

    @property
    def allowed(self) -> bool:
        return self._raw.decision == "allow"

    @property
    def receipt_id(self) -> str | None:
        """The id of this decision's receipt (``None`` for a fallback result)."""
        receipt = self.receipt
        if receipt is None:
            return None
        return receipt.receipt_id

    def to_dict(self) -> dict[str, Any]:
        """The result as the HTTP API's JSON object."""
        return self._raw.to_dict()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionResult) and other._raw == self._raw

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        extra = "".join(
            f", {name}={getattr(self._raw, name)!r}"
            for name in ("is_fallback", "confirm_nonce", "escalation_id")
            if getattr(self._raw, name)
        )
        return f"ActionResult(decision={self.decision!r}, reason={self.reason!r}{extra})"


#: The official client's name for a check result.
ActionCheckResult = ActionResult


@dataclass(slots=True)
class CheckResponse:
    authorization_id: str
    user_id: str | None
    agent_id: str | None
    authorization_expires_at: str | None
    engine_version: str
    results: dict[str, ActionResult]
    billing_warning: str | None = None

    @property
    def is_fallback(self) -> bool:
        return any(result.is_fallback for result in self.results.values())


def _check_response(
    answer: tuple[str, str | None, str | None, str | None, str, list[tuple[str, _native.ActionAnswer]]],
) -> CheckResponse:
    authorization_id, user_id, agent_id, expires_at, engine_version, results = answer
    return CheckResponse(
        authorization_id,
        user_id,
        agent_id,
        expires_at,
        engine_version,
        {action: ActionResult(result) for action, result in results},
    )


@dataclass(slots=True)
class AuthorizationCreateResponse:
    authorization_id: str
    policy_ref: PolicyReference
    actions: list[str]
    created_at: str
    expires_at: str
    receipt: ReceiptEnvelopePending
    authorization_provenance: dict[str, Any]
    budget_limit_micros: int | None = None
    budget_spent_micros: int | None = None
    replaced_authorization_id: str | None = None
    revocation_receipt: ReceiptEnvelopePending | None = None
    billing_warning: str | None = None


def _authorization_created(raw: Raw) -> AuthorizationCreateResponse:
    revocation = raw.get("revocation_receipt")
    return AuthorizationCreateResponse(
        authorization_id=raw["authorization_id"],
        policy_ref=raw["policy_ref"],
        actions=raw["actions"],
        created_at=raw["created_at"],
        expires_at=raw["expires_at"],
        receipt=_pending(raw["receipt"]),
        authorization_provenance=raw.get("authorization_provenance") or {},
        budget_limit_micros=raw.get("budget_limit_micros"),
        budget_spent_micros=raw.get("budget_spent_micros"),
        replaced_authorization_id=raw.get("replaced_authorization_id"),
        revocation_receipt=None if revocation is None else _pending(revocation),
    )


@dataclass(slots=True)
class AuthorizationRevokeResponse:
    authorization_id: str
    revoked_at: str
    receipt: ReceiptEnvelopePending
    revoked_confirmations: list[str] = field(default_factory=list)


def _authorization_revoked(raw: Raw) -> AuthorizationRevokeResponse:
    return AuthorizationRevokeResponse(
        authorization_id=raw["authorization_id"],
        revoked_at=raw["revoked_at"],
        receipt=_pending(raw["receipt"]),
        revoked_confirmations=raw.get("revoked_confirmations") or [],
    )


@dataclass(slots=True)
class Authorization:
    authorization_id: str
    user_id: str
    agent_id: str
    policy_ref: PolicyReference
    actions: list[str]
    status: Literal["active", "revoked", "expired"]
    created_at: str
    expires_at: str
    revoked_at: str | None
    budget_limit_micros: int | None
    budget_spent_micros: int
    metadata: dict[str, Any]
    replaces: str | None
    superseded_by: str | None


@dataclass(slots=True)
class AuthorizationList:
    items: list[Authorization]
    has_more: bool
    next_cursor: str | None


def _authorization(raw: Raw) -> Authorization:
    return Authorization(**raw)


def _authorization_list(raw: Raw) -> AuthorizationList:
    return AuthorizationList([_authorization(item) for item in raw["items"]], raw["has_more"], raw.get("next_cursor"))


@dataclass(slots=True)
class ConfirmationApproveResponse:
    decision: Literal["approved", "not_approved"]
    authorization_id: str | None = None
    expires_at: str | None = None
    receipt: ReceiptEnvelopePending | None = None


def _confirmation_resolved(raw: Raw) -> ConfirmationApproveResponse:
    receipt = raw.get("receipt")
    return ConfirmationApproveResponse(
        decision=raw["decision"],
        authorization_id=raw.get("authorization_id"),
        expires_at=raw.get("expires_at"),
        receipt=None if receipt is None else _pending(receipt),
    )


@dataclass(slots=True)
class ConfirmationStatus:
    confirmation_id: str
    authorization_id: str
    action: str
    resource: str | None
    status: Literal["pending", "approved", "rejected", "expired"]
    expires_at: str
    resolved_at: str | None
    source_receipt_id: str | None
    resolution_receipt_id: str | None
    child_authorization_id: str | None
    authority_status: str
    authority_expires_at: str | None


@dataclass(slots=True)
class EscalationStatus:
    escalation_id: str
    authorization_id: str
    action: str
    resource: str | None
    status: Literal["pending", "approved", "rejected", "expired"]
    expires_at: str
    resolved_at: str | None
    source_receipt_id: str | None
    resolution_receipt_id: str | None
    authority_status: str
    consumed_at: str | None


@dataclass(slots=True)
class ConfirmationItem(ConfirmationStatus):
    """A confirmation in ``confirmations.list()``: its status, and who it is for (``None`` when its
    authorization cannot be read)."""

    user_id: str | None
    agent_id: str | None
    created_at: str


@dataclass(slots=True)
class ConfirmationList:
    items: list[ConfirmationItem]
    has_more: bool
    next_cursor: str | None


def _confirmation_list(raw: Raw) -> ConfirmationList:
    items = [ConfirmationItem(**item) for item in raw["items"]]
    return ConfirmationList(items, raw["has_more"], raw.get("next_cursor"))


@dataclass(slots=True)
class EscalationItem(EscalationStatus):
    """An escalation in ``escalations.list()``: its status, who it is for and who decides."""

    user_id: str | None
    agent_id: str | None
    created_at: str
    escalation_to: str | None
    resolved_by: str | None
    note: str | None


@dataclass(slots=True)
class EscalationList:
    items: list[EscalationItem]
    has_more: bool
    next_cursor: str | None


def _escalation_list(raw: Raw) -> EscalationList:
    return EscalationList([EscalationItem(**item) for item in raw["items"]], raw["has_more"], raw.get("next_cursor"))


@dataclass(slots=True)
class EscalationResolveResponse:
    escalation_id: str
    status: Literal["approved", "rejected"]
    resolved_by: str | None = None
    resolved_at: str | None = None
    receipt: ReceiptEnvelopePending | None = None


def _escalation_resolved(raw: Raw) -> EscalationResolveResponse:
    receipt = raw.get("receipt")
    return EscalationResolveResponse(
        escalation_id=raw["escalation_id"],
        status=raw["status"],
        resolved_by=raw.get("resolved_by"),
        resolved_at=raw.get("resolved_at"),
        receipt=None if receipt is None else _pending(receipt),
    )


@dataclass(slots=True)
class BudgetSettlementResponse:
    check_receipt_id: str
    authorization_id: str
    estimated_cost_micros: int
    actual_cost_micros: int
    delta_micros: int
    spent_before_micros: int
    spent_after_micros: int
    receipt: ReceiptEnvelope


def _settlement(raw: Raw) -> BudgetSettlementResponse:
    envelope = _envelope(raw["receipt"])
    if envelope is None:
        raise AllowlyProtocolError("protocol_error", "a budget settlement without a receipt")
    return BudgetSettlementResponse(**{**raw, "receipt": envelope})


@dataclass(slots=True)
class PolicyResponse:
    policy_ref: PolicyReference
    definition: dict[str, Any]
    description: str | None
    created_by: str | None
    created_at: str | None
    deleted_at: str | None


@dataclass(slots=True)
class PolicyListResponse:
    items: list[PolicyResponse]
    has_more: bool
    next_cursor: str | None


def _policy(raw: Raw) -> PolicyResponse:
    return PolicyResponse(**raw)


def _policy_list(raw: Raw) -> PolicyListResponse:
    return PolicyListResponse([_policy(item) for item in raw["items"]], raw["has_more"], raw.get("next_cursor"))


@dataclass(slots=True)
class PolicyPreviewResponse:
    provisional: bool
    definition_sha256: str
    action: str
    policy_eval: PolicyEvalInfo


def _preview(raw: Raw) -> PolicyPreviewResponse:
    evaluation = _policy_eval(raw["policy_eval"])
    if evaluation is None:
        raise AllowlyProtocolError("protocol_error", "a policy preview without an evaluation")
    return PolicyPreviewResponse(raw["provisional"], raw["definition_sha256"], raw["action"], evaluation)


@dataclass(slots=True)
class PolicyPublishResponse:
    policy_ref: PolicyReference
    agent_id: str
    created_by: str
    created_at: str
    authorization_migrations: list[dict[str, str]]
    archived_policy_ids: list[str]
    revoked_confirmation_count: int


@dataclass(slots=True)
class ReceiptSummary:
    """A receipt in ``receipts.list()``: what it says, and the signed receipt (``action`` is
    ``None`` for a lifecycle receipt, ``event`` for a decision)."""

    receipt_id: str
    issued_at: str
    action: str | None
    event: str | None
    decision: str
    reason: str
    user_id: str
    agent_id: str
    authorization_id: str | None
    resource: str | None
    receipt: JwsReceipt


@dataclass(slots=True)
class ReceiptList:
    items: list[ReceiptSummary]
    has_more: bool
    next_cursor: str | None


def _receipt_list(raw: Raw) -> ReceiptList:
    return ReceiptList([ReceiptSummary(**item) for item in raw["items"]], raw["has_more"], raw.get("next_cursor"))


#: Why a receipt (or the checkpoint evidence) did not verify: ``class`` is the reference
#: verifier's exception class (``SignatureMismatchError``, ``UnknownKeyError``, ...), ``code``
#: the stable code.
VerifyFailure = TypedDict("VerifyFailure", {"class": str, "code": str, "message": str})


@dataclass(slots=True)
class ReceiptVerdict:
    """The verdict on one receipt of a ``receipts.verify()`` input (``line``: 1-based, in an export)."""

    valid: bool
    line: int | None
    receipt_id: str | None
    kind: str | None
    subject: str | None
    decision: str | None
    issued_at: str | None
    key_id: str | None
    key_fingerprint: str | None
    error: VerifyFailure | None


@dataclass(slots=True)
class CheckpointVerdict:
    receipt_id: str
    period_start: str
    members: int


@dataclass(slots=True)
class VerifyReport:
    """The answer to ``receipts.verify()``: ``valid`` when every receipt verified, there was at
    least one, and the checkpoint evidence (if any) verified. ``input`` says what the input was
    read as: ``receipt``, ``receipt_envelope``, ``check_response`` or ``export``."""

    valid: bool
    input: str
    ok: int
    invalid: int
    receipts: list[ReceiptVerdict]
    checkpoints: list[CheckpointVerdict]
    evidence_error: VerifyFailure | None


def _verify_report(raw: Raw) -> VerifyReport:
    return VerifyReport(
        valid=raw["valid"],
        input=raw["input"],
        ok=raw["ok"],
        invalid=raw["invalid"],
        receipts=[ReceiptVerdict(**verdict) for verdict in raw["receipts"]],
        checkpoints=[CheckpointVerdict(**checkpoint) for checkpoint in raw["checkpoints"]],
        evidence_error=raw.get("evidence_error"),
    )
