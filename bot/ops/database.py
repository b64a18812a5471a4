"""The dashboard's database work, off the event loop, in one worker thread it owns.

One :class:`bot.store.worker.DatabaseWorker` on the shared database serves both the
dashboard's own tables (the :class:`DashboardStore` of the ``ops_*`` tables: operators,
sessions, the review log) and the reads of the other components' tables
(:mod:`bot.ops.queries`, through :meth:`DatabaseWorker.read`). When the conversations live
in PostgreSQL (replicas), it goes there: the ``ops_*`` tables too, so that a login on one
replica is valid on every other, on any host.

A write to the ``ops_*`` tables that finds the disk full raises StorageUnavailable, as the
conversation store's do (:class:`bot.store.health.StorageHealth`, which logs it once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from bot.ops.storage import DashboardStore
from bot.ops.tables import HISTORY
from bot.store.worker import DatabaseWorker

_T = TypeVar("_T")


class DashboardDatabase(DatabaseWorker):
    """The database at ``url`` (``sqlite:///`` or ``postgresql://``), on one thread and
    one connection. Nothing is opened by the constructor (see :class:`DatabaseWorker`)."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(url, HISTORY, name="dashboard", pool_size=1)
        # Its statements run on the worker's connections, in the worker's thread.
        self._store = DashboardStore(self, clock=clock)

    async def run(self, work: Callable[[DashboardStore], _T]) -> _T:
        """``work(store)`` in the worker thread: the dashboard's own tables.

        Raises StorageUnavailable when it had to write and the disk is full."""
        return await self.call(lambda: self._guarded(work))

    def _guarded(self, work: Callable[[DashboardStore], _T]) -> _T:
        with self.health.refusing_when_full():
            writes = self._store.writes
            result = work(self._store)
        if self._store.writes != writes:  # a read succeeds on a full disk and so tells nothing
            self.health.wrote()
        return result
