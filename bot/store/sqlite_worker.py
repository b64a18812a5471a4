"""One SQLite connection driven from one worker thread, for coroutines.

sqlite3 connections belong to the thread that uses them and every call blocks, so the
async stores hand their work to a single-thread executor that owns the connection. One
thread also serialises writes, which SQLite would serialise anyway.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from bot.store.health import StorageHealth
from retrieval.sqlite_db import apply_migrations, connect

_T = TypeVar("_T")


class SqliteWorker:
    """Runs ``work(connection)`` calls in order on a connection migrated for ``component``.

    A call that fails because the disk is full raises StorageUnavailable (the transaction
    was rolled back: nothing of it is stored, nothing earlier is lost); :attr:`health`
    tracks it until a write succeeds again.
    """

    def __init__(self, path: Path, component: str, migrations: Sequence[str], *, name: str) -> None:
        self.path = path
        self._component = component
        self._migrations = migrations
        self._name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self.health = StorageHealth(f"{name} {path}")

    async def open(self) -> None:
        """Connect and migrate now, so that a bad database fails at start-up."""
        await self.run(lambda conn: None)

    def close(self) -> None:
        """Wait for queued work, then close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self._disconnect).result()
        self._executor.shutdown(wait=True)

    async def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Raises RuntimeError once closed."""
        if self._closed:
            raise RuntimeError(f"{self._name} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._call, work))

    def _call(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return self.health.run_sqlite(self._connection, work)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect(self.path)
            try:
                apply_migrations(conn, self._component, self._migrations)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
