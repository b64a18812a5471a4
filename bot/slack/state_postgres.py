"""The Slack adapter's tables in PostgreSQL, shared by every replica.

Slack delivers an event to whichever replica the load balancer picks, and retries it
(same ``event_id``, a new signature) on any of them; an operator may answer a hand-off
through another replica than the one that posted it. So the handled event ids, the
thread-to-conversation map, the reply turns and the hand-off posts live here, next to the
conversations, rather than in one replica's home folder. A claim is one
``INSERT ... ON CONFLICT`` statement, atomic across replicas.

Same tables, queries and schema versions as :class:`bot.slack.state.SqliteSlackState`,
and the same StorageUnavailable when the disk is full.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from bot.slack.state import COMPONENT, SlackStateQueries
from bot.store.health import StorageHealth
from bot.store.postgres_db import (
    Connection,
    apply_migrations,
    database_name,
    guarded_connection,
    open_pool,
)
from bot.store.sql import postgres_params

# Version n here is version n of bot.slack.state.MIGRATIONS: change both together.
MIGRATIONS = [
    """
    CREATE TABLE slack_seen (
        key TEXT PRIMARY KEY,
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX slack_seen_expiry ON slack_seen(expires_at);
    CREATE TABLE slack_threads (
        channel TEXT NOT NULL,
        thread_ts TEXT NOT NULL,
        conversation_id TEXT NOT NULL UNIQUE,
        customer TEXT,
        PRIMARY KEY (channel, thread_ts)
    );
    CREATE TABLE slack_replies (
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        turn_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        PRIMARY KEY (channel, ts)
    );
    CREATE TABLE slack_handoff_posts (
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (channel, ts)
    );
    CREATE INDEX slack_handoff_posts_conversation
        ON slack_handoff_posts(conversation_id, created_at);
    """,
]


class PostgresSlackState(SlackStateQueries):
    """:class:`bot.slack.state.SlackState` in PostgreSQL; :meth:`open` connects and migrates."""

    def __init__(
        self, url: str, *, pool_size: int = 4, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock)
        self._pool = open_pool(url, max_size=pool_size, name="slack-state")
        self._closed = False
        self.health = StorageHealth(f"Slack state {database_name(url)}")

    async def open(self) -> None:
        await self._pool.open(wait=True, timeout=30.0)
        async with self._connection() as conn:
            await apply_migrations(conn, COMPONENT, MIGRATIONS)

    async def aclose(self) -> None:
        self._closed = True
        await self._pool.close()

    def _connection(self, *, writes: bool = False) -> AbstractAsyncContextManager[Connection]:
        if self._closed:
            raise RuntimeError("Slack state is closed")
        return guarded_connection(self._pool, self.health, writes=writes)

    async def _one(self, sql: str, params: Sequence[Any]) -> Sequence[Any] | None:
        async with self._connection() as conn:
            cursor = await conn.execute(postgres_params(sql), params)
            row = await cursor.fetchone()
        return None if row is None else list(row.values())  # dict rows, in column order

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        async with self._connection(writes=True) as conn:
            cursor = await conn.execute(postgres_params(sql), params)
            return cursor.rowcount
