"""A list call that names no page size gets core's default page (`DEFAULT_PAGE_SIZE`, 100: the HTTP
API's), embedded and remote, from every way of calling it: the method without `limit`, `limit=None`,
the async client and the generic `call`. The SDK once wrote its own default (and refused `None`)."""

from __future__ import annotations

import asyncio

import pytest

import allowly
from allowly.sync import Allowly as SyncAllowly

from conftest import Server

DEFAULT_PAGE_SIZE = 100  # allowly_core::api::DEFAULT_PAGE_SIZE

DEFINITION = {
    "profile": "allowly.policy.v1",
    "agent_id": "pager",
    "default_expiry_days": 30,
    "actions": [{"policy": {"profile": "allowly.basic.v1", "action": "docs.read", "decision": "allow",
                            "target": None, "fields": {}, "rules": []},
                 "guards": {}, "executable_operations": []}],
}


@pytest.mark.parametrize("kind", ["embedded", "remote"])
def test_list_calls_default_to_the_engine_page(kind: str, home: str, fresh_server: Server) -> None:
    if kind == "embedded":
        setup = runtime = SyncAllowly.embedded(home)
        async_client = allowly.Allowly.embedded(home)
    else:
        setup = SyncAllowly(fresh_server.setup_key, base_url=fresh_server.base_url)
        runtime = SyncAllowly(fresh_server.runtime_key, base_url=fresh_server.base_url)
        async_client = allowly.Allowly(fresh_server.runtime_key, base_url=fresh_server.base_url)
    setup.policies.create(policy_id="pager", definition=DEFINITION)
    for n in range(DEFAULT_PAGE_SIZE + 1):
        runtime.authorizations.create(user_id=f"user_{n}", policy_id="pager")

    pages = [runtime.authorizations.list(), runtime.authorizations.list(limit=None),
             asyncio.run(async_client.authorizations.list())]
    for page in pages:
        assert len(page.items) == DEFAULT_PAGE_SIZE and page.has_more and page.next_cursor
    raw = runtime.call("list_authorizations")
    assert len(raw["items"]) == DEFAULT_PAGE_SIZE and raw["has_more"]
    rest = runtime.authorizations.list(cursor=pages[0].next_cursor)
    assert len(rest.items) == 1 and not rest.has_more
    assert len(runtime.authorizations.list(limit=7).items) == 7
    assert len(setup.policies.list().items) == 1
    assert setup.policies.list(limit=None).has_more is False
