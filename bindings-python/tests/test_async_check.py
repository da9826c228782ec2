"""The async client's check (a worker thread of the SDK's executor runs the sync check): many at
once each get their own signed answer, errors are the sync check's, cancellation and fork are safe."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

import allowly
from allowly import AllowlyAPIError, AllowlyTypeError
from allowly.sync import Allowly as SyncAllowly

from scenario import publish_policy

INTERNAL = {"recipient_domain": "example.com"}


def authorized(home: str) -> tuple[allowly.Allowly, str]:
    client = allowly.Allowly.embedded(home)
    publish_policy(client.sync)
    grant = client.sync.authorizations.create(user_id="user_42", policy_id="support_agent")
    return client, grant.authorization_id


def test_concurrent_async_checks_each_get_their_own_signed_answer_and_the_daily_cap_holds(home: str) -> None:
    client, authorization_id = authorized(home)

    async def main() -> list[Any]:
        return await asyncio.gather(*(
            client.check(authorization_id=authorization_id, actions=["email.send"], context=INTERNAL)
            for _ in range(260)
        ))

    answers = [answer.results["email.send"] for answer in asyncio.run(main())]
    decisions = [result.decision for result in answers]
    assert decisions.count("allow") == 200, "the policy's max_per_day, exactly"
    assert {result.reason for result in answers if result.decision == "deny"} == {"rate_limited"}
    receipt_ids = {result.receipt_id for result in answers}
    assert len(receipt_ids) == 260 and None not in receipt_ids, "one stored receipt per answer"
    for result in answers[:: len(answers) // 8]:
        assert result.receipt is not None
        report = client.sync.receipts.verify(result.receipt)
        assert report.valid, report


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"authorization_id": 7, "actions": ["email.send"]}, AllowlyTypeError),
        ({"authorization_id": "auth_x", "actions": ["a"], "context": {"amount": 1.5}}, AllowlyTypeError),
        ({"authorization_id": "auth_x", "actions": []}, AllowlyAPIError),
        ({"authorization_id": "auth_x", "actions": ["a"], "estimated_cost_micros": -1}, AllowlyAPIError),
        ({"authorization_id": "auth_x", "actions": ["a"], "bogus": 1}, TypeError),
    ],
)
def test_async_check_raises_what_the_sync_check_raises(home: str, kwargs: dict[str, Any], error: type) -> None:
    client = allowly.Allowly.embedded(home)
    with pytest.raises(error) as sync_raised:
        client.sync.check(**kwargs)
    with pytest.raises(error) as async_raised:
        asyncio.run(client.check(**kwargs))
    assert type(async_raised.value) is type(sync_raised.value)
    assert str(async_raised.value) == str(sync_raised.value)


def test_cancelled_checks_leave_the_client_working(home: str) -> None:
    client, authorization_id = authorized(home)

    async def main() -> str:
        tasks = [asyncio.create_task(client.check(authorization_id=authorization_id, actions=["email.send"],
                                                  context=INTERNAL)) for _ in range(40)]
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        answer = await client.check(authorization_id=authorization_id, actions=["email.send"], context=INTERNAL)
        return answer.results["email.send"].decision

    assert asyncio.run(main()) == "allow"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_async_checks_work_in_a_forked_child(home: str) -> None:
    client, authorization_id = authorized(home)

    async def decision() -> str:
        answer = await client.check(authorization_id=authorization_id, actions=["email.send"], context=INTERNAL)
        return answer.results["email.send"].decision

    assert asyncio.run(decision()) == "allow"  # the SDK's worker threads exist now
    child = os.fork()
    if child == 0:
        # The child inherits the pool object but none of its threads (a pre-forking server's
        # workers, with the app imported before the fork). It opens its own engine, as it should.
        code = 0
        try:
            client = allowly.Allowly.embedded(home)
            code = 0 if asyncio.run(asyncio.wait_for(decision(), 10)) == "allow" else 3
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_sync_and_async_answers_agree(home: str) -> None:
    client, authorization_id = authorized(home)
    sync_client: SyncAllowly = client.sync
    cases = [(["email.send"], INTERNAL), (["email.send"], {"recipient_domain": "partner.org"}),
             (["refund.issue"], None), (["account.delete"], None)]
    for actions, context in cases:
        by_sync = sync_client.check(authorization_id=authorization_id, actions=actions, context=context)
        by_async = asyncio.run(client.check(authorization_id=authorization_id, actions=actions, context=context))
        assert [(r.decision, r.reason) for r in by_async.results.values()] == \
               [(r.decision, r.reason) for r in by_sync.results.values()]
