"""The typed methods of the audit operations, on an embedded engine: `receipts.list` (the audit
lookup, filters and pages), `receipts.verify` (what a person pastes), `confirmations.list` and
`escalations.list` (by status), sync and async."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest

import allowly
from allowly import AllowlyTypeError, InvalidRequestError
from allowly.sync import Allowly
from allowly.types import ConfirmationItem, EscalationItem, ReceiptSummary

from conftest import ROOT


def publish(client: Allowly) -> None:
    body = json.loads((ROOT / "examples" / "policies" / "support-agent.json").read_text())
    client.policies.create(policy_id=body.pop("policy_id"), definition=body, description=body.pop("description"))


def flipped(signature: str) -> str:
    """The signature with its first character changed (still base64url)."""
    return ("B" if signature[0] == "A" else "A") + signature[1:]


def test_audit_methods(home: str) -> None:
    client = Allowly.embedded(home)
    publish(client)
    authorization_id = client.authorizations.create(user_id="user_42", policy_id="support_agent").authorization_id
    allowed = client.check(authorization_id=authorization_id, actions=["email.send"],
                           context={"recipient_domain": "example.com"})
    confirm = client.check(authorization_id=authorization_id, actions=["email.send"],
                           context={"recipient_domain": "partner.org"}).results["email.send"]
    escalate = client.check(authorization_id=authorization_id, actions=["refund.issue"]).results["refund.issue"]
    denied = client.check(authorization_id=authorization_id, actions=["account.delete"])
    assert (confirm.decision, escalate.decision, denied.results["account.delete"].decision) == (
        "confirm", "escalate", "deny")

    # confirmations.list: the one pending confirmation, for its action and user; none approved yet.
    pending = client.confirmations.list(status="pending")
    assert [(c.confirmation_id, c.action, c.status, c.user_id) for c in pending.items] == [
        (confirm.confirmation_id, "email.send", "pending", "user_42")]
    assert isinstance(pending.items[0], ConfirmationItem) and not pending.has_more
    assert client.confirmations.list(status="approved").items == []
    assert confirm.confirm_nonce is not None
    client.confirmations.approve(confirm.confirm_nonce)
    assert client.confirmations.list(status="pending").items == []
    assert [c.confirmation_id for c in client.confirmations.list(status="approved").items] == [confirm.confirmation_id]

    # escalations.list: the pending escalation, routed where the check said.
    escalations = client.escalations.list(status="pending").items
    assert [(e.escalation_id, e.action, e.escalation_to) for e in escalations] == [
        (escalate.escalation_id, "refund.issue", escalate.escalation_to)]
    assert isinstance(escalations[0], EscalationItem) and escalations[0].resolved_by is None
    assert client.escalations.list(status="rejected").items == []

    # receipts.list: a decision filter returns only that decision; pages follow the cursor.
    denies = client.receipts.list(decision="deny")
    assert denies.items and all(r.decision == "deny" for r in denies.items)
    assert denies.items[0].receipt_id == denied.results["account.delete"].receipt_id
    assert (denies.items[0].action, denies.items[0].user_id, denies.items[0].authorization_id) == (
        "account.delete", "user_42", authorization_id)
    assert isinstance(denies.items[0], ReceiptSummary) and denies.items[0].receipt["signature"]
    everything = client.receipts.list()
    assert len(everything.items) > len(denies.items) and not everything.has_more
    first = client.receipts.list(limit=1)
    assert len(first.items) == 1 and first.has_more and first.next_cursor == first.items[0].receipt_id
    second = client.receipts.list(limit=1, cursor=first.next_cursor)
    assert [r.receipt_id for r in first.items + second.items] == [r.receipt_id for r in everything.items[:2]]
    assert client.receipts.list(action="refund.issue", decision="allow").items == []
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert client.receipts.list(since=future).items == []
    assert len(client.receipts.list(until=future).items) == len(everything.items)
    with pytest.raises(AllowlyTypeError):
        client.receipts.list(decision=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError) as bad_since:
        client.receipts.list(since="yesterday")
    assert bad_since.value.fields[0].field == "since"

    # receipts.verify: a receipt verifies (as text, as an envelope, in a check response) ...
    envelope = allowed.results["email.send"].receipt
    assert isinstance(envelope, allowly.ReceiptEnvelopeSigned)
    report = client.receipts.verify(json.dumps(envelope.receipt))
    assert (report.valid, report.input, report.ok, report.invalid) == (True, "receipt", 1, 0)
    verdict = report.receipts[0]
    assert (verdict.valid, verdict.receipt_id, verdict.kind, verdict.subject, verdict.decision, verdict.error) == (
        True, allowed.results["email.send"].receipt_id, "decision", "email.send", "allow", None)
    assert client.receipts.verify(envelope).input == "receipt_envelope"
    whole = client.receipts.verify(denied)
    assert (whole.valid, whole.input, whole.ok) == (True, "check_response", 1)
    # ... one changed character of its signature does not ...
    forged = {**envelope.receipt, "signature": flipped(envelope.receipt["signature"])}
    tampered = client.receipts.verify(json.dumps(forged))
    assert (tampered.valid, tampered.ok, tampered.invalid) == (False, 0, 1)
    error = tampered.receipts[0].error
    assert error is not None and (error["class"], error["code"]) == ("SignatureMismatchError", "signature_mismatch")
    # ... and the trusted fingerprints are the ones given.
    assert verdict.key_fingerprint is not None
    trusted = client.receipts.verify(envelope.receipt, trusted_key_fingerprints=[verdict.key_fingerprint])
    assert trusted.valid
    untrusted = client.receipts.verify(envelope.receipt, trusted_key_fingerprints=["sha256:" + "0" * 64])
    assert not untrusted.valid and untrusted.receipts[0].error is not None

    # The async twins answer the same.
    async_client = allowly.Allowly.embedded(home)
    assert asyncio.run(async_client.receipts.list(decision="deny")) == client.receipts.list(decision="deny")
    assert asyncio.run(async_client.escalations.list(status="pending")) == client.escalations.list(status="pending")


def test_authorizations_list_by_user_agent_and_status(home: str) -> None:
    client = Allowly.embedded(home)
    publish(client)
    mine = client.authorizations.create(user_id="user_42", policy_id="support_agent").authorization_id
    theirs = client.authorizations.create(user_id="user_7", policy_id="support_agent").authorization_id
    client.authorizations.revoke(theirs)

    listed = client.authorizations.list(user_id="user_42")
    assert [a.authorization_id for a in listed.items] == [mine] and not listed.has_more
    revoked = client.authorizations.list(status="revoked").items
    assert [(a.authorization_id, a.status) for a in revoked] == [(theirs, "revoked")]
    assert [a.authorization_id for a in client.authorizations.list(user_id="user_7", status="active").items] == []
    agent = client.authorizations.list(agent_id=listed.items[0].agent_id, status="active", limit=1)
    assert [a.authorization_id for a in agent.items] == [mine]
    assert client.authorizations.list(agent_id="nobody").items == []
    with pytest.raises(InvalidRequestError) as bad_status:
        client.authorizations.list(status="frozen")
    assert bad_status.value.fields[0].field == "status"
    with pytest.raises(AllowlyTypeError):
        client.authorizations.list(user_id=42)  # type: ignore[arg-type]

    async_client = allowly.Allowly.embedded(home)
    assert asyncio.run(async_client.authorizations.list(status="revoked")) == client.authorizations.list(
        status="revoked")
