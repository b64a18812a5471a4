"""PostgreSQL connections and schema migrations for the components' synchronous code (the
model registry and the retraining cycle log, in worker threads and jobs), when replicas
on several hosts share one PostgreSQL database.

The bookkeeping is :mod:`retrieval.sqlite_db`'s: a ``schema_migrations`` table records
which of a component's ordered scripts ran. The bot's asynchronous stores migrate through
:func:`bot.store.postgres_db.apply_migrations` with the same table and the same advisory
lock (:func:`lock_key`), so a job and a replica starting at once never both migrate.
psycopg is imported only by whoever imports this module, that is only for a PostgreSQL URL.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence

import psycopg
from psycopg.rows import DictRow, dict_row

Connection = psycopg.Connection[DictRow]

CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " component TEXT NOT NULL, version INTEGER NOT NULL,"
    " applied_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (component, version))"
)


def lock_key(name: str) -> int:
    """A stable advisory-lock key for ``name`` (crc32, unlike hash(), is the same in every
    process)."""
    return zlib.crc32(f"supportbot:{name}".encode())


def connect(url: str) -> Connection:
    """An autocommit connection returning rows as dicts (read by column name, like
    ``sqlite3.Row``)."""
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def apply_migrations(conn: Connection, component: str, migrations: Sequence[str]) -> int:
    """Run the migrations of ``component`` that have not run yet; return the schema version.

    Each migration runs in one transaction with its bookkeeping row, under the advisory
    lock every process migrating this database takes. An up-to-date schema (every opening
    of the registry after the first: a replica checks for a new adapter every few seconds)
    is seen without taking that lock.
    """
    if _current_version(conn, component) >= len(migrations):
        return len(migrations)
    for version, script in enumerate(migrations, start=1):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("migrations"),))
            conn.execute(CREATE_MIGRATIONS_TABLE)
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE component = %s AND version = %s",
                (component, version),
            ).fetchone()
            if done is not None:
                continue
            conn.execute(script)  # several statements: allowed without parameters
            conn.execute(
                "INSERT INTO schema_migrations (component, version, applied_at)"
                " VALUES (%s, %s, %s)",
                (component, version, time.time()),
            )
    return len(migrations)


def _current_version(conn: Connection, component: str) -> int:
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present").fetchone()
    if row is None or not row["present"]:
        return 0
    row = conn.execute(
        "SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations WHERE component = %s",
        (component,),
    ).fetchone()
    return 0 if row is None else int(row["version"])
