"""The shared quickstart scenario, embedded and against `allowly serve`, with the same results."""

from __future__ import annotations

import asyncio

import allowly
from allowly.sync import Allowly as SyncAllowly

from conftest import Server
from scenario import SCENARIO, run


def test_quickstart_embedded(home: str) -> None:
    client = SyncAllowly.embedded(home)
    observed = run(client, client)
    assert len(observed) == len(SCENARIO["steps"])


def test_quickstart_embedded_and_remote_agree(home: str, fresh_server: Server) -> None:
    embedded = SyncAllowly.embedded(home)
    setup = SyncAllowly(fresh_server.setup_key, base_url=fresh_server.base_url)
    runtime = SyncAllowly(fresh_server.runtime_key, base_url=fresh_server.base_url)
    assert run(embedded, embedded) == run(setup, runtime)


def test_async_check_does_not_block_the_loop(home: str) -> None:
    async def main() -> None:
        client = allowly.Allowly.embedded(home)
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        results = await asyncio.gather(
            *(client.check(authorization_id="auth_x", actions=["a"]) for _ in range(50))
        )
        stop = True
        await task
        assert all(r.results["a"].decision == "deny" for r in results)
        assert ticks > 10

    asyncio.run(main())


def test_publish_answers_alike_embedded_and_remote(home: str, server: Server) -> None:
    definition = {
        "profile": "allowly.policy.v1",
        "agent_id": "publisher_bot",
        "default_expiry_days": 30,
        "actions": [
            {
                "policy": {"profile": "allowly.basic.v1", "action": "docs.read", "decision": "allow",
                           "target": None, "fields": {}, "rules": []},
                "guards": {},
                "executable_operations": [],
            }
        ],
    }
    changed = {**definition, "default_expiry_days": 7}
    embedded = SyncAllowly.embedded(home)
    remote = SyncAllowly(server.setup_key, base_url=server.base_url)
    for client, created_by in ((embedded, "embedded"), (remote, "api_key:")):
        first = client.policies.publish(policy_id="published_py", definition=definition, idempotency_key="p-1")
        assert first.policy_ref["policy_version"] == 1
        assert first.agent_id == "publisher_bot"
        assert first.created_by.startswith(created_by)
        assert (first.authorization_migrations, first.archived_policy_ids, first.revoked_confirmation_count) == (
            [], [], 0,
        )
        # An unchanged definition is no new edition; a changed one is the next.
        assert client.policies.publish(policy_id="published_py", definition=definition).policy_ref == first.policy_ref
        assert client.policies.publish(bundle_id="published_py", definition=changed).policy_ref["policy_version"] == 2
        assert client.policies.get("published_py").definition["default_expiry_days"] == 7
