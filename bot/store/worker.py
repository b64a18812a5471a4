"""A database that coroutines use through worker threads: each transaction is one hop.

A store method builds its statements, hands the whole transaction (a function of a
connection) to a worker thread, and awaits its result once. An asyncio driver would hop to
its thread for every statement instead; on SQLite that cost a chat message about 13 ms more
than the hand-written store it replaced (``python benchmarks/hardening.py``). SQLite gets
one thread and one connection, kept open, as it has one writer at a time anyway;
PostgreSQL gets a thread per pooled connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

import sqlalchemy as sa

from bot.store.compiled import CompiledStatement, Row
from bot.store.health import StorageHealth
from retrieval.database import (
    READ_ONLY,
    WRITING,
    SchemaHistory,
    describe,
    reading,
    sync_engine,
    upgrade,
)

_T = TypeVar("_T")
_C = TypeVar("_C")

Work = Callable[[sa.Connection], _T]


class DatabaseWorker:
    """The database at ``url`` with the tables of ``history``, for coroutines.

    Nothing is connected by the constructor: :meth:`open` (or the first call) migrates, so
    that a bad database fails at start-up. A write refused because the disk is full raises
    StorageUnavailable (its transaction rolled back), tracked by :attr:`health`.
    """

    def __init__(self, url: str, history: SchemaHistory, *, name: str, pool_size: int) -> None:
        sqlite = sa.make_url(url).get_backend_name() == "sqlite"
        threads = 1 if sqlite else pool_size
        self.engine = sync_engine(url, pool_size=threads)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._history = history
        self._name = name
        self._migrated = False
        self._migrating = asyncio.Lock()
        self._closed = False
        # SQLite's one thread keeps its one connection: a pool checkout and return for
        # every transaction cost ~60 us of the thread's time a message made several times.
        self._kept: sa.Connection | None = None
        self._keeps = sqlite
        self.health = StorageHealth(f"{name} {describe(url)}")

    async def open(self) -> None:
        """Connect and migrate now, so that a bad database fails at start-up."""
        async with self._migrating:
            if self._migrated:
                return
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, _within, self._writing, self._upgrade)
            self._migrated = True

    async def aclose(self) -> None:
        """Finish queued work, then close the connections; idempotent."""
        if not self._closed:
            self._closed = True
            self._executor.submit(self._let_go)  # after the work queued before it
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        self.engine.dispose()

    async def write(self, work: Work[_T]) -> _T:
        """``work`` in one transaction, committed when it returns; its success tells
        :attr:`health` there is room again. Raises RuntimeError once closed."""
        result = await self._run(self._writing, work)
        self.health.wrote()
        return result

    async def read(self, work: Work[_T]) -> _T:
        """``work`` in a transaction that only reads: its snapshot at once, behind no
        writer (a read succeeds on a full disk, so it tells :attr:`health` nothing)."""
        return await self._run(self._reading, work)

    async def first(self, statement: CompiledStatement, params: Mapping[str, Any]) -> Row | None:
        """The first row ``statement`` reads, read alone (see :meth:`rows`)."""
        return await self._run(self.connect, lambda conn: statement.first(conn, params))

    async def rows(self, statement: CompiledStatement, params: Mapping[str, Any]) -> list[Row]:
        """The rows ``statement`` reads, read alone: no transaction is begun around it.
        SQLite reads one statement on a snapshot of its own, so it is spared a BEGIN and a
        ROLLBACK; PostgreSQL's driver begins a read-only transaction all the same."""
        return await self._run(self.connect, lambda conn: statement.rows(conn, params))

    async def call(self, work: Callable[[], _T]) -> _T:
        """``work()`` in the worker thread, where it may use :meth:`begin` and :meth:`connect`
        as an engine's (a store written for an engine, run by coroutines)."""
        return await self._run(nullcontext, lambda _: work())

    async def _run(
        self, connection: Callable[[], AbstractContextManager[_C]], work: Callable[[_C], _T]
    ) -> _T:
        if self._closed:
            raise RuntimeError(f"{self._name} is closed")
        if not self._migrated:
            await self.open()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _within, connection, work)

    def _upgrade(self, conn: sa.Connection) -> None:
        upgrade(conn, self._history)

    # The connections below are for the worker thread only.
    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        with self.health.refusing_when_full(), self.begin() as conn:
            yield conn

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A transaction, committed when the block ends."""
        if self._keeps:
            conn = self._connection()
            with conn.begin():
                yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        # Begun whatever runs in it: a compiled statement alone would begin nothing.
        if self._keeps:
            conn = self._connection().execution_options(**READ_ONLY)
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.execution_options(**WRITING)
        else:
            with reading(self.engine) as conn, conn.begin():
                yield conn

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A connection for statements that only read (read only in PostgreSQL), begun by
        none: what a statement begins through SQLAlchemy is rolled back at the end."""
        if self._keeps:
            conn = self._connection()
            try:
                yield conn
            finally:
                if conn.in_transaction():  # begun by a statement that went through SQLAlchemy
                    conn.rollback()
        else:
            with reading(self.engine) as conn:
                yield conn

    def _connection(self) -> sa.Connection:
        """The kept connection (SQLite), connected again if it was lost."""
        conn = self._kept
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                conn.close()
            conn = self._kept = self.engine.connect()
        return conn

    def _let_go(self) -> None:
        if self._kept is not None:
            self._kept.close()
            self._kept = None


def _within(connection: Callable[[], AbstractContextManager[_C]], work: Callable[[_C], _T]) -> _T:
    with connection() as conn:
        return work(conn)
