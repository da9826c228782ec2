"""An `idempotency_key` the SDK accepts is sent, not dropped: a retry of revoke, approve, reject,
archive or an escalation's resolution under the same key gets the first answer, embedded and against
`allowly serve` alike (the SDK once accepted the key on three of these and silently dropped it, so a
retry answered 409 or 404, and had no key to give on the others)."""

from __future__ import annotations

import asyncio
import json

import pytest

import allowly
from allowly import AllowlyAPIError, ConflictError
from allowly.sync import Allowly as SyncAllowly

from conftest import ROOT, Server


def clients(kind: str, home: str, server: Server) -> tuple[SyncAllowly, SyncAllowly]:
    if kind == "embedded":
        client = SyncAllowly.embedded(home)
        return client, client
    return (SyncAllowly(server.setup_key, base_url=server.base_url),
            SyncAllowly(server.runtime_key, base_url=server.base_url))


@pytest.mark.parametrize("kind", ["embedded", "remote"])
def test_retries_under_one_key_replay_the_first_answer(kind: str, home: str, fresh_server: Server) -> None:
    setup, runtime = clients(kind, home, fresh_server)
    definition = json.loads((ROOT / "examples/policies/support-agent.json").read_text())
    policy_id = definition.pop("policy_id")
    definition.pop("description", None)
    setup.policies.create(policy_id=policy_id, definition=definition)
    grant = runtime.authorizations.create(user_id="user_1", policy_id="support_agent")

    answer = runtime.check(authorization_id=grant.authorization_id, actions=["email.send"],
                           context={"recipient_domain": "customer.org"})
    nonce = answer.results["email.send"].confirm_nonce
    first = runtime.confirmations.approve(nonce, idempotency_key="approve-1")
    again = runtime.confirmations.approve(nonce, idempotency_key="approve-1")
    assert again == first
    with pytest.raises(AllowlyAPIError) as refused:
        runtime.confirmations.approve(nonce)
    assert (refused.value.status, refused.value.code) == (409, "confirmation_already_resolved")

    revoked = runtime.authorizations.revoke(grant.authorization_id, idempotency_key="revoke-1")
    assert runtime.authorizations.revoke(grant.authorization_id, idempotency_key="revoke-1") == revoked
    with pytest.raises(AllowlyAPIError) as reused:
        runtime.authorizations.revoke(grant.authorization_id, notes="another request", idempotency_key="revoke-1")
    assert (reused.value.status, reused.value.code) == (409, "idempotency_key_reused")

    setup.policies.archive("support_agent", idempotency_key="archive-1")
    setup.policies.archive("support_agent", idempotency_key="archive-1")
    with pytest.raises(AllowlyAPIError) as gone:
        setup.policies.archive("support_agent")
    assert (gone.value.status, gone.value.code) == (404, "policy_not_found")


@pytest.mark.parametrize("kind", ["embedded", "remote"])
def test_every_resolution_honours_its_key(kind: str, home: str, fresh_server: Server) -> None:
    """reject and the escalation calls take the key too (the SDK had none to give), and a key is
    bound to its request: the same key for another request is 409 idempotency_key_reused."""
    setup, runtime = clients(kind, home, fresh_server)
    definition = json.loads((ROOT / "examples/policies/support-agent.json").read_text())
    policy_id = definition.pop("policy_id")
    definition.pop("description", None)
    setup.policies.create(policy_id=policy_id, definition=definition)
    grant = runtime.authorizations.create(user_id="user_1", policy_id=policy_id)
    answer = runtime.check(authorization_id=grant.authorization_id, actions=["email.send", "refund.issue"],
                           context={"recipient_domain": "customer.org"})
    nonce = answer.results["email.send"].confirm_nonce
    escalation_id = answer.results["refund.issue"].escalation_id
    assert nonce and escalation_id

    rejected = runtime.confirmations.reject(nonce, idempotency_key="reject-1")
    assert rejected.decision == "not_approved"
    assert runtime.confirmations.reject(nonce, idempotency_key="reject-1") == rejected
    with pytest.raises(ConflictError) as reused:
        runtime.confirmations.approve(nonce, idempotency_key="reject-1")
    assert (reused.value.status, reused.value.code) == (409, "idempotency_key_reused")

    approved = runtime.escalations.approve(escalation_id, resolved_by="finance_lead", idempotency_key="escalate-1")
    assert approved.status == "approved"
    again = runtime.escalations.resolve(escalation_id, resolution="approved", resolved_by="finance_lead",
                                        idempotency_key="escalate-1")
    assert again == approved
    with pytest.raises(ConflictError) as reused:
        runtime.escalations.reject(escalation_id, resolved_by="finance_lead", idempotency_key="escalate-1")
    assert (reused.value.status, reused.value.code) == (409, "idempotency_key_reused")
    with pytest.raises(ConflictError) as resolved:
        runtime.escalations.approve(escalation_id, resolved_by="finance_lead")
    assert resolved.value.status == 409 and resolved.value.code != "idempotency_key_reused"

    # The async client passes the key as the sync one does (its methods are the sync ones').
    async def archive_twice() -> None:
        async_setup = allowly.Allowly.embedded(home) if kind == "embedded" else allowly.Allowly(
            fresh_server.setup_key, base_url=fresh_server.base_url)
        await async_setup.policies.archive(policy_id, idempotency_key="archive-1")
        await async_setup.policies.archive(policy_id, idempotency_key="archive-1")

    asyncio.run(archive_twice())
    with pytest.raises(ConflictError) as reused:
        setup.policies.archive("another_policy", idempotency_key="archive-1")
    assert (reused.value.status, reused.value.code) == (409, "idempotency_key_reused")
