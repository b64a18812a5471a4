"""Where a component keeps its rows: the home folder's SQLite file (one box, the default)
or the PostgreSQL database that replicas share (``storage.database_url``).
:func:`open_records` is the one place that picks; the knowledge base's store
(:mod:`retrieval.store`) opens its tables through it.

Both backends run the same statements, written once with ``?`` parameters (SQLite's form;
PostgreSQL is given ``%s``), and return rows read by column name. Where the engines differ
the backend says so itself: how a new id comes back, how a transaction takes its lock, and
how a folder is recorded. SQLite records a folder as it was given, as it always has (a
relative home gives paths relative to the job's working directory). PostgreSQL records a
folder inside the home relative to the home and gives it back under the reader's own home,
so that replicas on several hosts, each naming the shared artifact folders where they are
mounted there, and jobs started from another working directory find the same folder.
psycopg is imported only when a PostgreSQL URL is opened.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from retrieval import sqlite_db
from retrieval.folders import inside_home

if TYPE_CHECKING:
    from retrieval.postgres_db import Connection as PostgresConnection


class Row(Protocol):
    """A row read by column name: sqlite3.Row, or a dict from psycopg (same columns)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Records(Protocol):
    """One component's tables in one database; the methods are safe to call from several
    threads, and a transaction's statements are not interleaved with another thread's."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute a statement; the number of rows it changed."""
        ...

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute an INSERT into a table with an integer ``id``; the new row's id."""
        ...

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Execute a statement once for each parameter row (in one round trip where the
        engine allows: a batch of cached vectors)."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Statements in the block commit together, or not at all; the component's
        transactions queue, one at a time (readers outside one see before or after)."""
        ...

    def recorded(self, folder: Path) -> str:
        """How ``folder`` is written into a row."""
        ...

    def folder(self, recorded: str) -> Path:
        """The folder a row names, as this process reaches it."""
        ...

    def close(self) -> None: ...


def open_records(
    database: Path,
    component: str,
    *,
    postgres_url: str | None,
    sqlite_migrations: Sequence[str],
    postgres_migrations: Sequence[str],
) -> Records:
    """``component``'s tables, migrated: in PostgreSQL when ``postgres_url`` is set, else in
    the SQLite file ``database``. The home is the folder that holds ``database``."""
    if postgres_url is not None:
        return PostgresRecords.open(
            postgres_url, component, postgres_migrations, home=database.parent
        )
    return SqliteRecords.open(database, component, sqlite_migrations)


class SqliteRecords:
    """A connection to the SQLite file it owns (``check_same_thread`` off, as everywhere),
    used by one thread at a time (a lock guards it, held for a whole transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.RLock()

    @classmethod
    def open(cls, database: Path, component: str, migrations: Sequence[str]) -> SqliteRecords:
        conn = sqlite_db.connect(database)
        sqlite_db.apply_migrations(conn, component, migrations)
        return cls(conn)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            return int(self._conn.execute(sql, params).lastrowid or 0)

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            self._conn.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # BEGIN IMMEDIATE: writers queue on busy_timeout, in every process of this host.
        with self._lock, sqlite_db.transaction(self._conn):
            yield

    def recorded(self, folder: Path) -> str:
        return str(folder)

    def folder(self, recorded: str) -> Path:
        return Path(recorded)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresRecords:
    """One autocommit connection it owns, used by one thread at a time (a lock guards it,
    held for a whole transaction). A connection that broke (the server restarted, the
    network dropped) is opened again for the next statement, and a read outside a
    transaction is tried once more on the new one: a serving knowledge base lives as long
    as its process, and must not fail every search from then on."""

    def __init__(
        self, conn: PostgresConnection, component: str, *, home: Path, url: str | None = None
    ) -> None:
        self._conn = conn
        self._component = component
        self._home = home
        self._url = url  # None: never reconnect
        self._lock = threading.RLock()
        self._transactions = 0  # open (nested) transactions

    @classmethod
    def open(
        cls, url: str, component: str, migrations: Sequence[str], *, home: Path
    ) -> PostgresRecords:
        from retrieval import postgres_db

        conn = postgres_db.connect(url)
        try:
            postgres_db.apply_migrations(conn, component, migrations)
        except BaseException:
            conn.close()
            raise
        return cls(conn, component, home=home, url=url)

    def _connection(self) -> PostgresConnection:
        if self._conn.broken and self._url is not None:
            from retrieval import postgres_db

            self._conn = postgres_db.connect(self._url)
        return self._conn

    def _read(self, sql: str, params: Sequence[Any]) -> list[Row]:
        import psycopg

        with self._lock:
            try:
                return list(self._connection().execute(_postgres(sql), params).fetchall())
            except psycopg.OperationalError:
                if self._transactions or not self._conn.broken or self._url is None:
                    raise
            return list(self._connection().execute(_postgres(sql), params).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self._read(sql, params)
        return rows[0] if rows else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._read(sql, params)

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            return self._connection().execute(_postgres(sql), params).rowcount

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            sql = _postgres(sql) + " RETURNING id"
            row = self._connection().execute(sql, params).fetchone()
        assert row is not None
        return int(row["id"])

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock, self._connection().cursor() as cursor:
            cursor.executemany(_postgres(sql), rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        from retrieval.postgres_db import lock_key

        with self._lock:
            conn = self._connection()
            with conn.transaction():
                # What BEGIN IMMEDIATE is to SQLite: the component's writers queue, in every
                # process on every host, until this one commits or rolls back.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s)", (lock_key(f"{self._component}:write"),)
                )
                self._transactions += 1
                try:
                    yield
                finally:
                    self._transactions -= 1

    def recorded(self, folder: Path) -> str:
        """Relative to the home when inside it (as this process names both), else absolute."""
        inside = inside_home(folder, self._home)
        return inside if inside is not None else os.path.abspath(folder)

    def folder(self, recorded: str) -> Path:
        path = Path(recorded)
        return path if path.is_absolute() else self._home / path

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _postgres(sql: str) -> str:
    """``sql`` with psycopg's ``%s`` for each ``?`` (the statements here hold no other ``?``
    and no ``%``)."""
    return sql.replace("?", "%s")
