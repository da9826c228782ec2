"""An `idempotency_key` the SDK accepts is sent, not dropped: a retry of revoke, approve or archive
under the same key gets the first answer, embedded and against `allowly serve` alike (the SDK once
accepted the key on these three and silently dropped it, so a retry answered 409 or 404)."""

from __future__ import annotations

import json

import pytest

from allowly import AllowlyAPIError
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
