"""A PostgreSQL connection pool (psycopg 3, async) and schema migrations per component.

:func:`guarded_connection` hands out a pooled connection through which a full disk
(SQLSTATE 53100) is the domain error StorageUnavailable, tracked by the same
:class:`bot.store.health.StorageHealth` as a full disk under SQLite.

The bookkeeping mirrors :mod:`retrieval.sqlite_db`: a ``schema_migrations`` table records
which of a component's ordered scripts ran, so a PostgreSQL database and a SQLite file of
the same release carry the same schema versions. Several replicas may start at once: the
migrations run under a transaction-scoped advisory lock, so only one of them migrates. The
table and the lock are those of :mod:`retrieval.postgres_db`, which migrates the model
registry and the cycle log from jobs and worker threads (synchronous code).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from bot.store.health import StorageHealth
from retrieval.postgres_db import CREATE_MIGRATIONS_TABLE, lock_key

Connection = AsyncConnection[DictRow]


def open_pool(url: str, *, max_size: int, name: str) -> AsyncConnectionPool[Connection]:
    """A pool of autocommit connections returning rows as dicts; not opened yet."""
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "row_factory": dict_row},
        name=name,
        open=False,
        connection_class=AsyncConnection[DictRow],
    )


def database_name(url: str) -> str:
    """``database on host:port`` for logs: the URL without its user and password."""
    params = conninfo_to_dict(url)
    where = params.get("host") or "localhost"
    if params.get("port"):
        where = f"{where}:{params['port']}"
    return f"database {params.get('dbname') or params.get('user') or '?'} on {where}"


@asynccontextmanager
async def guarded_connection(
    pool: AsyncConnectionPool[Connection], health: StorageHealth, *, writes: bool
) -> AsyncIterator[Connection]:
    """A pooled connection whose full-disk errors raise StorageUnavailable.

    The work done on it (and its transaction, if it opens one) is complete when the block
    ends; ``writes`` says that it wrote, so that a success tells ``health`` there is room
    again. A read succeeds on a full disk and so tells nothing.
    """
    with health.refusing_when_full():
        async with pool.connection() as conn:
            yield conn
    if writes:
        health.wrote()


async def apply_migrations(conn: Connection, component: str, migrations: Sequence[str]) -> int:
    """Run the migrations of ``component`` that have not run yet; return the schema version.

    Each migration runs in one transaction with its bookkeeping row.
    """
    for version, script in enumerate(migrations, start=1):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("migrations"),))
            await conn.execute(CREATE_MIGRATIONS_TABLE)
            cursor = await conn.execute(
                "SELECT 1 FROM schema_migrations WHERE component = %s AND version = %s",
                (component, version),
            )
            if await cursor.fetchone() is not None:
                continue
            await conn.execute(script)  # several statements: allowed without parameters
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, applied_at)"
                " VALUES (%s, %s, %s)",
                (component, version, time.time()),
            )
    return len(migrations)


async def fetch_one(conn: Connection, sql: str, params: Sequence[Any] = ()) -> DictRow | None:
    cursor = await conn.execute(sql, params)
    return await cursor.fetchone()


async def fetch_all(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[DictRow]:
    cursor = await conn.execute(sql, params)
    return await cursor.fetchall()
