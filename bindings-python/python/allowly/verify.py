"""Offline receipt verification (wire 5), by the engine's own verifier.

Names and exception classes are those of the reference verifier ``allowly_receipt_format`` 5.0.0
and of the official client's ``allowly.verify``, so verification code ports unchanged::

    from allowly.verify import load_keys_from_json, verify_receipt

    keys = load_keys_from_json(keys_doc)
    payload = verify_receipt(receipt, keys, expected_workspace_id="ws_...",
                             trusted_key_fingerprints={"sha256:..."})
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Union

from . import _native
from .types import JwsReceipt
from ._errors import (
    AllowlyConfigError,
    KeyOutsideActiveWindowError,
    SchemaError,
    SignatureMismatchError,
    UnknownKeyError,
    VerificationError,
)

__all__ = [
    "KeySet",
    "ExportLine",
    "ExportReport",
    "VerificationError",
    "SchemaError",
    "UnknownKeyError",
    "KeyOutsideActiveWindowError",
    "SignatureMismatchError",
    "load_keys_from_json",
    "decode_receipt",
    "verify_receipt",
    "verify_receipts",
    "verify_checkpoint",
    "verify_export",
    "fetch_keys_doc",
]

KeySet = _native.KeySet
#: What the ``keys`` argument accepts: a loaded key set or a key document.
Keys = Union[_native.KeySet, dict[str, Any]]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def _now_ms(now: datetime | None) -> int | None:
    if now is None:
        return None
    if type(now) is not datetime or now.utcoffset() is None:
        raise SchemaError("now must be an aware datetime", "schema_error")
    return (now - _EPOCH) // _MS


def _keys(keys: Keys) -> _native.KeySet:
    if isinstance(keys, _native.KeySet):
        return keys
    return _native.load_keys_from_json(keys)


def _trusted(fingerprints: Iterable[str] | None) -> list[str] | None:
    if fingerprints is None:
        return None
    if isinstance(fingerprints, str):
        raise SchemaError("trusted_key_fingerprints must be a set of strings, not a string", "schema_error")
    return [str(f) for f in fingerprints]


def load_keys_from_json(doc: dict[str, Any]) -> _native.KeySet:
    """Parses a ``GET /v1/workspaces/{id}/keys`` document; raises ``SchemaError`` when malformed."""
    return _native.load_keys_from_json(doc)


def decode_receipt(receipt: JwsReceipt | dict[str, Any]) -> dict[str, Any]:
    """Strict decode with schema checks and no signature check: for display, never for trust."""
    payload: dict[str, Any] = _native.decode_receipt(receipt)
    return payload


def verify_receipt(
    receipt: JwsReceipt | dict[str, Any],
    keys: Keys,
    *,
    expected_workspace_id: str,
    trusted_key_fingerprints: Iterable[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Verifies one receipt and returns its payload. ``trusted_key_fingerprints=None`` trusts every
    key of ``keys`` (as the reference does); pass your configured fingerprints to pin them."""
    payload: dict[str, Any] = _native.verify_receipt(
        receipt, _keys(keys), expected_workspace_id, _trusted(trusted_key_fingerprints), _now_ms(now)
    )
    return payload


def verify_receipts(
    receipts: Iterable[JwsReceipt | dict[str, Any]],
    keys: Keys,
    *,
    expected_workspace_id: str,
    trusted_key_fingerprints: Iterable[str] | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any] | VerificationError]:
    """Verifies many receipts at once (GIL released, on every core). Returns, per receipt in
    order, its payload or the exception ``verify_receipt`` would have raised."""
    results: list[dict[str, Any] | VerificationError] = _native.verify_receipts(
        receipts, _keys(keys), expected_workspace_id, _trusted(trusted_key_fingerprints), _now_ms(now)
    )
    return results


def verify_checkpoint(
    checkpoint: JwsReceipt | dict[str, Any],
    receipts: Iterable[JwsReceipt | dict[str, Any]],
    keys: Keys,
    *,
    expected_workspace_id: str,
    previous_checkpoint: JwsReceipt | dict[str, Any] | None = None,
    now: datetime | None = None,
    trusted_key_fingerprints: Iterable[str] | None = None,
) -> None:
    """Verifies a checkpoint and recomputes it from exactly the presented members."""
    _native.verify_checkpoint(
        checkpoint,
        receipts,
        _keys(keys),
        expected_workspace_id,
        previous_checkpoint,
        _trusted(trusted_key_fingerprints),
        _now_ms(now),
    )


@dataclass(frozen=True)
class ExportLine:
    line: int
    receipt_id: str | None
    label: str | None
    decision: str | None
    error: VerificationError | None


@dataclass(frozen=True)
class ExportReport:
    lines: list[ExportLine]
    ok: int
    invalid: int
    #: (checkpoint receipt_id, period_start, member count) of each verified checkpoint.
    checkpoints: list[tuple[str, str, int]]
    evidence_error: VerificationError | None
    #: The reference CLI's exit status 0: no invalid line, evidence verified, something checked.
    valid: bool


def verify_export(
    export_path: str | os.PathLike[str],
    keys: Keys,
    *,
    expected_workspace_id: str,
    checkpoint_evidence_path: str | os.PathLike[str] | None = None,
    trusted_key_fingerprints: Iterable[str] | None = None,
    now: datetime | None = None,
) -> ExportReport:
    """Verifies a JSONL (or ``.jsonl.gz``) export like ``allowly-receipt-verify --export``."""
    raw = _native.verify_export(
        os.fspath(export_path),
        _keys(keys),
        expected_workspace_id,
        None if checkpoint_evidence_path is None else os.fspath(checkpoint_evidence_path),
        _trusted(trusted_key_fingerprints),
        _now_ms(now),
    )
    return ExportReport(
        lines=[ExportLine(*line) for line in raw["lines"]],
        ok=raw["ok"],
        invalid=raw["invalid"],
        checkpoints=[tuple(c) for c in raw["checkpoints"]],
        evidence_error=raw["evidence_error"],
        valid=raw["valid"],
    )


def fetch_keys_doc(
    workspace_id: str, *, base_url: str, dangerously_allow_insecure_base_url: bool = False, timeout: float = 10.0
) -> dict[str, Any]:
    """``GET {base_url}/v1/workspaces/{workspace_id}/keys`` (no credentials needed)."""
    if type(workspace_id) is not str or not workspace_id:
        raise AllowlyConfigError("`workspace_id` must be a non-empty string")
    engine = _native.Engine.remote(
        base_url,
        "public",
        1000,
        max(1, int(timeout * 1000)),
        {},
        workspace_id,
        dangerously_allow_insecure_base_url,
    )
    doc: dict[str, Any] = engine.call("get_key_document", {"workspace_id": workspace_id})
    return doc
