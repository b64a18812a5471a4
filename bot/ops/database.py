"""The dashboard's database work, off the event loop, in one worker thread it owns.

One engine on the shared database (:func:`retrieval.database.migrated_engine`, held by
the :class:`DashboardStore` of the ``ops_*`` tables: operators, sessions, the review log)
serves both the dashboard's own tables and the reads of the other components' tables
(:mod:`bot.ops.queries`). When the conversations live in PostgreSQL (replicas), it goes
there: the ``ops_*`` tables too, so that a login on one replica is valid on every other,
on any host.

A write to the ``ops_*`` tables that finds the disk full raises StorageUnavailable, as the
conversation store's do (:class:`bot.store.health.StorageHealth`, which logs it once).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import sqlalchemy as sa

from bot.ops.storage import DashboardStore
from bot.ops.tables import HISTORY
from bot.store.health import StorageHealth
from retrieval.database import describe, migrated_engine, reading

_T = TypeVar("_T")


class DashboardDatabase:
    """The database at ``url`` (``sqlite:///`` or ``postgresql://``). Nothing is opened by
    the constructor; :meth:`open` connects (and migrates) in the worker thread,
    :meth:`close` waits for queued work and disconnects."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ops-db")
        self._store: DashboardStore | None = None
        self._closed = False
        self.health = StorageHealth(f"dashboard {describe(url)}")

    async def open(self) -> None:
        await self.run(lambda store: None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self._disconnect).result()
        self._executor.shutdown(wait=True)

    async def run(self, work: Callable[[DashboardStore], _T]) -> _T:
        """``work(store)`` in the worker thread: the dashboard's own tables.

        Raises StorageUnavailable when it had to write and the disk is full."""
        return await self._submit(lambda: self._guarded(work))

    def _guarded(self, work: Callable[[DashboardStore], _T]) -> _T:
        with self.health.refusing_when_full():
            store = self._own()
            writes = store.writes
            result = work(store)
        if store.writes != writes:  # a read succeeds on a full disk and so tells nothing
            self.health.wrote()
        return result

    async def read(self, work: Callable[[sa.Connection], _T]) -> _T:
        """``work(connection)`` in the worker thread, on a connection of the same engine:
        the queries of :mod:`bot.ops.queries`, which only read."""
        return await self._submit(lambda: self._reading(work))

    def _reading(self, work: Callable[[sa.Connection], _T]) -> _T:
        with reading(self._own().engine) as conn:
            return work(conn)

    async def _submit(self, call: Callable[[], _T]) -> _T:
        if self._closed:
            raise RuntimeError("the dashboard database is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(call))

    def _own(self) -> DashboardStore:
        if self._store is None:
            engine = migrated_engine(self.url, HISTORY)
            self._store = DashboardStore(engine, clock=self._clock)
        return self._store

    def _disconnect(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
