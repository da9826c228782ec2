"""The async client: same constructor, names and shapes as the official ``allowly`` client.

It is derived from the synchronous client (:mod:`allowly.sync`), where every method is written
once: each async method runs the sync method of the same name on a worker thread (the engine
releases the GIL), so the event loop never blocks, whether the engine is embedded or remote. The
async methods keep the sync ones' parameters, docstrings and ``inspect.signature``, and type
checkers see the same parameters (``ParamSpec``) with the answer awaited.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Callable, ClassVar, Concatenate, Coroutine, ParamSpec, TypeVar

from . import sync as _sync

__all__ = ["Allowly"]

P = ParamSpec("P")
R = TypeVar("R")

_EXECUTOR: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="allowly")
    return _EXECUTOR


def _forget_executor() -> None:
    """A forked child inherits the pool object but none of its threads: work submitted to it would
    never run, and every awaited call would hang. The child makes a pool of its own."""
    global _EXECUTOR
    _EXECUTOR = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor)


def _offloaded(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]:
    """The async twin of the sync method ``method``: it runs ``method`` on the sync object the async
    one wraps (``self._inner``), on a worker thread of the SDK's own pool (contextvars copied, as
    ``asyncio.to_thread`` does). Same name, docstring and signature."""

    # `functools.wraps` gives `inspect.signature` the sync method's signature (`__wrapped__`);
    # its return annotation is right for an async method too: the type its coroutine answers.
    @functools.wraps(method)
    async def offloaded(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        call = functools.partial(method, self._inner, *args, **kwargs)
        return await loop.run_in_executor(_executor(), functools.partial(contextvars.copy_context().run, call))

    return offloaded


def _same_parameters(
    model: Callable[Concatenate[Any, P], Any],
) -> Callable[[Callable[..., R]], Callable[Concatenate[Any, P], R]]:
    """Gives the decorated method the parameters of ``model`` (for type checkers and ``inspect``)."""

    def decorate(method: Callable[..., R]) -> Callable[Concatenate[Any, P], R]:
        return functools.wraps(model)(method)

    return decorate


class _Derived:
    """An async view of a sync object (``_inner``). A subclass names its sync class (``SYNC``) and
    declares each public method of it as ``name = _offloaded(SyncClass.name)`` (or as its own
    coroutine); a sync method left out is an error when the subclass is defined, so the two
    cannot drift apart."""

    SYNC: ClassVar[type]

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [
            name
            for name, member in vars(cls.SYNC).items()
            if not name.startswith("_") and callable(member) and name not in vars(cls)
        ]
        if missing:
            raise TypeError(f"{cls.__qualname__} lacks the async twins of {cls.SYNC.__qualname__}.{missing}")


class _Policies(_Derived):
    SYNC = _sync._Policies
    create = _offloaded(_sync._Policies.create)
    get = _offloaded(_sync._Policies.get)
    list = _offloaded(_sync._Policies.list)
    archive = _offloaded(_sync._Policies.archive)
    preview = _offloaded(_sync._Policies.preview)
    publish = _offloaded(_sync._Policies.publish)


class _Authorizations(_Derived):
    SYNC = _sync._Authorizations
    create = _offloaded(_sync._Authorizations.create)
    revoke = _offloaded(_sync._Authorizations.revoke)
    list = _offloaded(_sync._Authorizations.list)
    get = _offloaded(_sync._Authorizations.get)


class _Confirmations(_Derived):
    SYNC = _sync._Confirmations
    approve = _offloaded(_sync._Confirmations.approve)
    reject = _offloaded(_sync._Confirmations.reject)
    get_status = _offloaded(_sync._Confirmations.get_status)
    get = get_status
    list = _offloaded(_sync._Confirmations.list)


class _Escalations(_Derived):
    SYNC = _sync._Escalations
    resolve = _offloaded(_sync._Escalations.resolve)
    approve = _offloaded(_sync._Escalations.approve)
    reject = _offloaded(_sync._Escalations.reject)
    get_status = _offloaded(_sync._Escalations.get_status)
    get = get_status
    list = _offloaded(_sync._Escalations.list)


class _Receipts(_Derived):
    SYNC = _sync._Receipts
    get = _offloaded(_sync._Receipts.get)
    fetch_signed = _offloaded(_sync._Receipts.fetch_signed)
    verify = _offloaded(_sync._Receipts.verify)
    list = _offloaded(_sync._Receipts.list)


class Allowly(_Derived):
    """One Allowly workspace, async. ``Allowly(api_key, base_url=...)`` talks to an ``allowly serve``
    runtime; ``Allowly.embedded()`` runs the engine in this process. Same methods either way, and
    the same as :class:`allowly.sync.Allowly`'s, awaited."""

    SYNC = _sync.Allowly

    _inner: _sync.Allowly

    @_same_parameters(_sync.Allowly.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._wrap(_sync.Allowly(*args, **kwargs))

    @classmethod
    def embedded(cls, home: str | None = None) -> Allowly:
        """The engine in this process on the SQLite workspace in ``home`` (default
        ``$ALLOWLY_HOME`` or ``./.allowly``), created with its signing key on first use."""
        self = cls.__new__(cls)
        self._wrap(_sync.Allowly.embedded(home))
        return self

    @classmethod
    def in_memory(cls) -> Allowly:
        """An embedded engine whose workspace lives in memory only (tests)."""
        self = cls.__new__(cls)
        self._wrap(_sync.Allowly.in_memory())
        return self

    def _wrap(self, inner: _sync.Allowly) -> None:
        self._inner = inner
        self.policies = _Policies(inner.policies)
        self.authorizations = _Authorizations(inner.authorizations)
        self.confirmations = _Confirmations(inner.confirmations)
        self.escalations = _Escalations(inner.escalations)
        self.receipts = _Receipts(inner.receipts)

    check = _offloaded(_sync.Allowly.check)
    settle_budget = _offloaded(_sync.Allowly.settle_budget)
    call = _offloaded(_sync.Allowly.call)
    readiness = _offloaded(_sync.Allowly.readiness)
    keys = _offloaded(_sync.Allowly.keys)

    @property
    def sync(self) -> _sync.Allowly:
        """The synchronous twin on the same engine."""
        return self._inner

    @property
    def is_embedded(self) -> bool:
        return self._inner.is_embedded

    @property
    def workspace_id(self) -> str | None:
        """Always known when embedded; when remote, the ``workspace_id`` given to the constructor."""
        return self._inner.workspace_id

    @property
    def engine_version(self) -> str | None:
        return self._inner.engine_version

    close = _offloaded(_sync.Allowly.close)
    aclose = close

    async def __aenter__(self) -> Allowly:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
