"""What the Slack adapter remembers between events: in the bot's SQLite file on one box,
in PostgreSQL (:mod:`bot.slack.state_postgres`) when several replicas share it.

* event ids and message keys already handled, each until it expires, so that Slack's
  retries (and the second event Slack sends for a mention it also reports as a message)
  are answered once, across restarts too;
* which Slack thread is which conversation;
* which bot message carries which reply turn (reactions rate the turn);
* which hand-off post in the operators' channel belongs to which conversation.

The tables belong to the component ``slack`` (migrations via
:func:`retrieval.sqlite_db.apply_migrations`); they reference the conversation store's ids
but not its tables. In SQLite every query runs in one worker thread that owns the
connection.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.store.sqlite_worker import SqliteWorker

COMPONENT = "slack"
# Append a script to change the schema; never edit one that may have run somewhere.
MIGRATIONS = [
    """
    CREATE TABLE slack_seen (
        key TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
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
        created_at REAL NOT NULL,
        PRIMARY KEY (channel, ts)
    );
    CREATE INDEX slack_handoff_posts_conversation
        ON slack_handoff_posts(conversation_id, created_at);
    """,
]

_PURGE_EVERY_S = 60.0


@dataclass(frozen=True)
class Thread:
    """A Slack thread: the channel and the ts of its first message."""

    channel: str
    thread_ts: str

    @property
    def external_ref(self) -> str:
        """The conversation's key in the store, with channel ``slack``."""
        return f"{self.channel}:{self.thread_ts}"


@dataclass(frozen=True)
class KnownThread:
    """A thread that is a conversation, and the user who started it with the bot."""

    conversation_id: str
    customer: str | None


@dataclass(frozen=True)
class HandoffPost:
    channel: str
    ts: str
    conversation_id: str


class SlackState(Protocol):
    """What the Slack adapter remembers; :class:`SqliteSlackState` on one box,
    :class:`bot.slack.state_postgres.PostgresSlackState` when replicas share PostgreSQL."""

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def claim(self, key: str, ttl_s: float) -> bool:
        """True the first time ``key`` is claimed within ``ttl_s`` seconds, False after
        (atomically: of two replicas claiming at once, one gets True)."""
        ...

    async def remember_thread(
        self, thread: Thread, conversation_id: str, customer: str | None
    ) -> None: ...

    async def known_thread(self, thread: Thread) -> KnownThread | None: ...

    async def thread_of_conversation(self, conversation_id: str) -> Thread | None: ...

    async def remember_reply(
        self, channel: str, ts: str, turn_id: str, conversation_id: str
    ) -> None: ...

    async def turn_of_message(self, channel: str, ts: str) -> str | None: ...

    async def remember_handoff_post(self, post: HandoffPost) -> None: ...

    async def handoff_post_at(self, channel: str, ts: str) -> HandoffPost | None: ...

    async def latest_handoff_post(self, conversation_id: str) -> HandoffPost | None: ...


class Sql:
    """The queries, written once with ``?`` parameters; PostgreSQL runs them through
    :func:`bot.store.sql.postgres_params`. Both accept the same ``ON CONFLICT`` clauses."""

    PURGE_SEEN = "DELETE FROM slack_seen WHERE expires_at < ?"
    # Inserts a new key, or takes over an expired one; the row count says which happened.
    CLAIM = (
        "INSERT INTO slack_seen (key, expires_at) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at"
        " WHERE slack_seen.expires_at < ?"
    )
    REMEMBER_THREAD = (
        "INSERT INTO slack_threads (channel, thread_ts, conversation_id, customer)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
    )
    KNOWN_THREAD = (
        "SELECT conversation_id, customer FROM slack_threads WHERE channel = ? AND thread_ts = ?"
    )
    THREAD_OF_CONVERSATION = (
        "SELECT channel, thread_ts FROM slack_threads WHERE conversation_id = ?"
    )
    REMEMBER_REPLY = (
        "INSERT INTO slack_replies (channel, ts, turn_id, conversation_id)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (channel, ts) DO UPDATE SET"
        " turn_id = excluded.turn_id, conversation_id = excluded.conversation_id"
    )
    TURN_OF_MESSAGE = "SELECT turn_id FROM slack_replies WHERE channel = ? AND ts = ?"
    REMEMBER_HANDOFF_POST = (
        "INSERT INTO slack_handoff_posts (channel, ts, conversation_id, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
    )
    HANDOFF_POST_AT = (
        "SELECT channel, ts, conversation_id FROM slack_handoff_posts WHERE channel = ? AND ts = ?"
    )
    LATEST_HANDOFF_POST = (
        "SELECT channel, ts, conversation_id FROM slack_handoff_posts"
        " WHERE conversation_id = ? ORDER BY created_at DESC LIMIT 1"
    )


class SlackStateQueries(ABC):
    """:class:`SlackState` over two primitives a backend provides: run a query for one row,
    run a write for its row count. The queries are :class:`Sql`, the same for both."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._purged_at = 0.0

    @abstractmethod
    async def _one(self, sql: str, params: Sequence[Any]) -> Sequence[Any] | None: ...

    @abstractmethod
    async def _write(self, sql: str, params: Sequence[Any]) -> int: ...

    # -- deduplication ---------------------------------------------------------------------------
    async def claim(self, key: str, ttl_s: float) -> bool:
        """True the first time ``key`` is claimed within ``ttl_s`` seconds, False after
        (one statement: of two processes claiming at once, one gets True)."""
        now = self._clock()
        if now - self._purged_at > _PURGE_EVERY_S:
            self._purged_at = now
            await self._write(Sql.PURGE_SEEN, (now,))
        return await self._write(Sql.CLAIM, (key, now + ttl_s, now)) == 1

    # -- threads, replies, hand-off posts --------------------------------------------------------
    async def remember_thread(
        self, thread: Thread, conversation_id: str, customer: str | None
    ) -> None:
        params = (thread.channel, thread.thread_ts, conversation_id, customer)
        await self._write(Sql.REMEMBER_THREAD, params)

    async def known_thread(self, thread: Thread) -> KnownThread | None:
        row = await self._one(Sql.KNOWN_THREAD, (thread.channel, thread.thread_ts))
        return None if row is None else KnownThread(row[0], row[1])

    async def thread_of_conversation(self, conversation_id: str) -> Thread | None:
        row = await self._one(Sql.THREAD_OF_CONVERSATION, (conversation_id,))
        return None if row is None else Thread(row[0], row[1])

    async def remember_reply(
        self, channel: str, ts: str, turn_id: str, conversation_id: str
    ) -> None:
        await self._write(Sql.REMEMBER_REPLY, (channel, ts, turn_id, conversation_id))

    async def turn_of_message(self, channel: str, ts: str) -> str | None:
        row = await self._one(Sql.TURN_OF_MESSAGE, (channel, ts))
        return None if row is None else str(row[0])

    async def remember_handoff_post(self, post: HandoffPost) -> None:
        params = (post.channel, post.ts, post.conversation_id, self._clock())
        await self._write(Sql.REMEMBER_HANDOFF_POST, params)

    async def handoff_post_at(self, channel: str, ts: str) -> HandoffPost | None:
        return _handoff_post(await self._one(Sql.HANDOFF_POST_AT, (channel, ts)))

    async def latest_handoff_post(self, conversation_id: str) -> HandoffPost | None:
        return _handoff_post(await self._one(Sql.LATEST_HANDOFF_POST, (conversation_id,)))


def _handoff_post(row: Sequence[Any] | None) -> HandoffPost | None:
    return None if row is None else HandoffPost(row[0], row[1], row[2])


class SqliteSlackState(SlackStateQueries):
    """The adapter's tables in the home's SQLite file, queried from one worker thread that
    owns the connection; nothing is opened until :meth:`open` or the first call."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self.path = path
        self._db = SqliteWorker(path, COMPONENT, MIGRATIONS, name="Slack state")

    async def open(self) -> None:
        await self._db.open()

    async def aclose(self) -> None:
        await asyncio.to_thread(self._db.close)  # waits for queued work

    async def _one(self, sql: str, params: Sequence[Any]) -> Sequence[Any] | None:
        row: Sequence[Any] | None = await self._db.run(
            lambda conn: conn.execute(sql, params).fetchone()
        )
        return row

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        return await self._db.run(lambda conn: conn.execute(sql, params).rowcount)
