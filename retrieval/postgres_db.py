"""What every process sharing one PostgreSQL database agrees on: the advisory-lock keys
(:func:`lock_key`: migrating, writing the knowledge base, running a retraining cycle) and
the ``schema_migrations`` table the hand-written migrations of :mod:`bot.store` record
their versions in (:func:`bot.store.postgres_db.apply_migrations`). The components on
Alembic only read that table, once, to adopt what those migrations built
(:func:`retrieval.database.run_migrations`).
"""

from __future__ import annotations

import zlib

CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " component TEXT NOT NULL, version INTEGER NOT NULL,"
    " applied_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (component, version))"
)


def lock_key(name: str) -> int:
    """A stable advisory-lock key for ``name`` (crc32, unlike hash(), is the same in every
    process)."""
    return zlib.crc32(f"supportbot:{name}".encode())
