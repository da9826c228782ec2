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
