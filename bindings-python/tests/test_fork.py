"""A process that forks after using the embedded engine: the child opens its own engine on the same
home and gets answers, whatever the engine's background thread was doing at the fork."""

from __future__ import annotations

import os
import signal
import time

import pytest

import allowly

from scenario import publish_policy

INTERNAL = {"recipient_domain": "example.com"}

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def wait_or_kill(child: int, seconds: float) -> int | None:
    """The child's exit code, or None if it was still running after `seconds` (it is killed)."""
    deadline = time.monotonic() + seconds
    while (done := os.waitpid(child, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            return None
        time.sleep(0.01)
    return os.waitstatus_to_exitcode(done[1])


def answered(answer: allowly.types.CheckResponse) -> bool:
    """Allowed, or denied by the policy's daily cap (the rounds make more checks than it admits)."""
    result = answer.results["email.send"]
    return result.decision == "allow" or (result.decision, result.reason) == ("deny", "rate_limited")


def test_children_forked_right_after_checks_never_hang(home: str) -> None:
    # Each fork follows a burst of checks, while the write-ahead-log checkpointer thread is busy
    # with them and holds its lock: a child forked at such a moment once waited forever to open a
    # store. (A fork while another thread is inside a call is SQLite's "don't", and not tested.)
    client = allowly.Allowly.embedded(home)
    publish_policy(client.sync)
    authorization_id = client.sync.authorizations.create(user_id="user_42", policy_id="support_agent").authorization_id
    for _ in range(25):
        for _ in range(10):
            client.sync.check(authorization_id=authorization_id, actions=["email.send"], context=INTERNAL)
        child = os.fork()
        if child == 0:
            code = 4
            try:
                own = allowly.Allowly.embedded(home)
                answer = own.sync.check(authorization_id=authorization_id, actions=["email.send"], context=INTERNAL)
                code = 0 if answered(answer) else 3
            finally:
                os._exit(code)
        code = wait_or_kill(child, 10)
        assert code is not None, "a forked child hung opening its store"
        assert code == 0
    # The parent's engine goes on after the forks: its checkpointer was only paused.
    assert answered(client.sync.check(authorization_id=authorization_id, actions=["email.send"], context=INTERNAL))
