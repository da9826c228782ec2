"""allowly.verify against the reference verifier allowly_receipt_format 5.0.0 on the same receipts
(conformance vectors, engine receipts, tampered variants): same verdict, same exception class."""

from __future__ import annotations

import base64
import copy
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import allowly_receipt_format as ref
import pytest

import allowly.verify as ours
from allowly.sync import Allowly

ROOT = Path(__file__).resolve().parents[2]
# Part of the repository: a missing file fails the collection of this module, never skips it
# (`ALLOWLY_WIRE5_VECTORS` names another file; scripts/python-test.sh proves a missing one fails).
VECTORS_PATH = Path(os.environ.get("ALLOWLY_WIRE5_VECTORS", ROOT / "tests" / "vectors" / "wire5.json"))
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - the class name is what is compared
        return (type(exc).__name__, None)


def both(receipt: Any, doc: dict[str, Any], workspace_id: str, trusted: list[str] | None, now: datetime) -> tuple[Any, Any]:
    def reference() -> Any:
        return ref.verify_receipt(
            receipt,
            ref.load_keys_from_json(doc),
            now=now,
            expected_workspace_id=workspace_id,
            trusted_key_fingerprints=None if trusted is None else set(trusted),
        )

    def mine() -> Any:
        return ours.verify_receipt(
            receipt,
            ours.load_keys_from_json(doc),
            expected_workspace_id=workspace_id,
            trusted_key_fingerprints=trusted,
            now=now,
        )

    return outcome(reference), outcome(mine)


def test_conformance_vectors_agree_with_the_reference() -> None:
    now = parse_time(VECTORS["now"])
    cases = [(v["name"], v["receipt"], "ok") for v in VECTORS["should_verify"]]
    cases += [(v["name"], v["receipt"], v["expected_class"]) for v in VECTORS["should_reject"]]
    for name, receipt, expected in cases:
        theirs, mine = both(receipt, VECTORS["keys"], VECTORS["workspace_id"], VECTORS["trusted_key_fingerprints"], now)
        assert theirs[0] == expected, f"{name}: the reference says {theirs[0]}"
        assert mine == theirs, f"{name}: allowly.verify {mine[0]}, reference {theirs[0]}"


def test_checkpoint_vectors_agree_with_the_reference() -> None:
    now = parse_time(VECTORS["now"])
    ws, trusted = VECTORS["workspace_id"], set(VECTORS["trusted_key_fingerprints"])
    for case in VECTORS["checkpoints"]:
        if case["checkpoint"] is None:
            continue  # a root-only case (the empty set): nothing signed to verify
        theirs = outcome(lambda: ref.verify_checkpoint(
            case["checkpoint"], case["members"], ref.load_keys_from_json(VECTORS["keys"]),
            expected_workspace_id=ws, previous_checkpoint=case["previous_checkpoint"], now=now,
            trusted_key_fingerprints=trusted))
        mine = outcome(lambda: ours.verify_checkpoint(
            case["checkpoint"], case["members"], VECTORS["keys"], expected_workspace_id=ws,
            previous_checkpoint=case["previous_checkpoint"], now=now, trusted_key_fingerprints=trusted))
        assert mine[0] == theirs[0], f"{case['name']}: allowly.verify {mine[0]}, reference {theirs[0]}"
        assert (mine[0] == "ok") == case["valid"], case["name"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def with_payload(receipt: dict[str, str], change: Callable[[dict[str, Any]], None]) -> dict[str, str]:
    payload = json.loads(unb64(receipt["payload"]))
    change(payload)
    out = dict(receipt)
    out["payload"] = b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return out


def with_header(receipt: dict[str, str], change: Callable[[dict[str, Any]], None]) -> dict[str, str]:
    header = json.loads(unb64(receipt["protected"]))
    change(header)
    out = dict(receipt)
    out["protected"] = b64(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())
    return out


def flip(text: str, at: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    c = text[at]
    return text[:at] + alphabet[(alphabet.index(c) + 1) % 64] + text[at + 1:]


@pytest.fixture(scope="module")
def engine_receipts(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, str]], dict[str, Any], str]:
    client = Allowly.embedded(str(tmp_path_factory.mktemp("parity")))
    body = json.loads((ROOT / "examples" / "policies" / "support-agent.json").read_text())
    policy_id = body.pop("policy_id")
    body.pop("description", None)
    client.policies.create(policy_id=policy_id, definition=body)
    auth = client.authorizations.create(user_id="u1", policy_id=policy_id, budget_limit_micros=10_000_000)
    receipts = [client.receipts.fetch_signed(auth.receipt.receipt_id)]
    for actions, context in [(["email.send"], {"recipient_domain": "example.com"}),
                             (["email.send"], {"recipient_domain": "x.org"}), (["refund.issue"], None),
                             (["account.delete"], None), (["nope"], None)]:
        response = client.check(authorization_id=auth.authorization_id, actions=actions, context=context)
        for result in response.results.values():
            assert isinstance(result.receipt, ours_types().ReceiptEnvelopeSigned)
            receipts.append(result.receipt.receipt)
    missing = client.check(authorization_id="auth_missing", actions=["x"]).results["x"]
    assert missing.receipt is not None
    receipts.append(missing.receipt.receipt)  # type: ignore[union-attr]
    revoked = client.authorizations.revoke(auth.authorization_id)
    receipts.append(client.receipts.fetch_signed(revoked.receipt.receipt_id))
    workspace_id = client.workspace_id
    assert workspace_id
    return receipts, client.keys(), workspace_id


def ours_types() -> Any:
    import allowly.types

    return allowly.types


def tampered(receipt: dict[str, str]) -> list[tuple[str, Any]]:
    return [
        ("signature bit", {**receipt, "signature": flip(receipt["signature"], 5)}),
        ("payload decision", with_payload(receipt, lambda p: p.update(decision="allow" if p["decision"] != "allow" else "deny"))),
        ("payload reason", with_payload(receipt, lambda p: p.update(reason="tampered"))),
        ("extra field", with_payload(receipt, lambda p: p.update(extra=1))),
        ("missing field", with_payload(receipt, lambda p: p.pop("user_id"))),
        ("unknown kid", with_header(receipt, lambda h: h.update(kid="key_unknown"))),
        ("wrong typ", with_header(receipt, lambda h: h.update(typ="JWT"))),
        ("schema version", with_payload(receipt, lambda p: p.update(schema_version="4"))),
        ("other workspace", with_payload(receipt, lambda p: p.update(workspace_id="ws_other"))),
        ("issued in the past", with_payload(receipt, lambda p: p.update(issued_at="2020-01-01T00:00:00.000Z"))),
        ("float in context", with_payload(receipt, lambda p: p["context"].update(x=1.5))),
        ("extra envelope member", {**receipt, "header": {}}),
        ("padded payload", {**receipt, "payload": receipt["payload"] + "="}),
        ("not an object", [receipt["protected"], receipt["payload"], receipt["signature"]]),
        ("segment not a string", {**receipt, "signature": 12}),
        ("segment a float", {**receipt, "signature": 1.5}),
        ("empty", {}),
        ("none", None),
    ]


def test_engine_receipts_and_tampered_variants_agree(engine_receipts: Any) -> None:
    receipts, doc, workspace_id = engine_receipts
    now = datetime.now(timezone.utc) + timedelta(seconds=1)
    fingerprints = [k["public_key_fingerprint"] for k in doc["keys"]]
    checked = 0
    for receipt in receipts:
        theirs, mine = both(receipt, doc, workspace_id, fingerprints, now)
        assert theirs[0] == "ok", theirs
        assert mine == theirs
        for label, variant in tampered(receipt):
            theirs, mine = both(variant, doc, workspace_id, fingerprints, now)
            assert mine[0] == theirs[0], f"{label}: allowly.verify {mine[0]}, reference {theirs[0]}"
            checked += 1
        # Trust, workspace, key window, clock: the configuration side.
        for trusted, ws, when in [([], workspace_id, now), (None, workspace_id, now), (fingerprints, "ws_other", now),
                                  (fingerprints, workspace_id, now - timedelta(days=1))]:
            theirs, mine = both(receipt, doc, ws, trusted, when)
            assert mine[0] == theirs[0], (trusted, ws, when, mine[0], theirs[0])
        late_key = copy.deepcopy(doc)
        late_key["keys"][0]["active_from"] = "2100-01-01T00:00:00.000Z"
        late_key["keys"][0].pop("public_key_fingerprint")
        theirs, mine = both(receipt, late_key, workspace_id, None, now)
        assert (mine[0], theirs[0]) == ("KeyOutsideActiveWindowError", "KeyOutsideActiveWindowError")
    assert checked >= 100


def test_exception_hierarchy_matches_the_reference() -> None:
    for name in ["SchemaError", "UnknownKeyError", "KeyOutsideActiveWindowError", "SignatureMismatchError"]:
        assert issubclass(getattr(ours, name), ours.VerificationError)
        assert getattr(ours, name).__name__ == getattr(ref, name).__name__


def test_bad_key_documents_agree() -> None:
    docs: list[Any] = [None, [], {}, {"workspace_id": "ws", "keys": "x"}, {"workspace_id": "", "keys": []},
                       {"workspace_id": "ws", "keys": [{"key_id": "k", "alg": "RSA", "public_key": "AA", "active_from": "x", "active_until": None}]},
                       {"workspace_id": "ws", "keys": [{"key_id": "k", "alg": "Ed25519", "public_key": "AA", "active_from": "2026-01-01T00:00:00.000Z", "active_until": None}]},
                       {"workspace_id": "ws", "keys": [{"key_id": 1.5}]}]
    for doc in docs:
        theirs = outcome(lambda: ref.load_keys_from_json(doc))
        mine = outcome(lambda: ours.load_keys_from_json(doc))
        assert mine[0] == theirs[0], (doc, mine[0], theirs[0])


def test_batch_verification_matches_single(engine_receipts: Any) -> None:
    receipts, doc, workspace_id = engine_receipts
    batch = receipts + [v for _, v in tampered(receipts[1])]
    keys = ours.load_keys_from_json(doc)
    results = ours.verify_receipts(batch, keys, expected_workspace_id=workspace_id)
    assert len(results) == len(batch)
    for receipt, result in zip(batch, results):
        single = outcome(lambda: ours.verify_receipt(receipt, keys, expected_workspace_id=workspace_id))
        if isinstance(result, Exception):
            assert type(result).__name__ == single[0]
        else:
            assert single == ("ok", result)
