"""What the Slack adapter remembers between events: in the bot's SQLite file on one box,
in PostgreSQL when several replicas share it.

* event ids and message keys already handled, each until it expires, so that Slack's
  retries (and the second event Slack sends for a mention it also reports as a message)
  are answered once, across restarts too;
* which Slack thread is which conversation;
* which bot message carries which reply turn (reactions rate the turn);
* which hand-off post in the operators' channel belongs to which conversation.

The tables (:mod:`bot.slack.tables`) reference the conversation store's ids but not its
tables. The same statements run on SQLite and PostgreSQL, each in a worker thread
(:mod:`bot.store.worker`): no query blocks the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Executable, Row, Select, Table
from sqlalchemy.dialects import postgresql, sqlite

from bot.slack import tables
from bot.store.health import StorageHealth
from bot.store.worker import DatabaseWorker
from retrieval.database import insert

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


class SlackState:
    """What the Slack adapter remembers, in the database at ``url``: the home's SQLite file
    on one box, the PostgreSQL database when replicas share it (:mod:`bot.slack.tables`).

    :meth:`open` (or the first call) migrates the tables. A write refused because the disk
    is full raises StorageUnavailable, tracked by :attr:`health`.
    """

    def __init__(
        self, url: str, *, pool_size: int = 4, clock: Callable[[], float] = time.time
    ) -> None:
        self.database = DatabaseWorker(url, tables.HISTORY, name="Slack state", pool_size=pool_size)
        self._clock = clock
        self._purged_at = 0.0

    @property
    def health(self) -> StorageHealth:
        return self.database.health

    async def open(self) -> None:
        """Connect and migrate now, so that a bad database fails at start-up."""
        await self.database.open()

    async def aclose(self) -> None:
        await self.database.aclose()

    async def _write(self, statement: Executable) -> int:
        """Run ``statement``; the number of rows it inserted, changed or deleted (kept for
        an INSERT too, which the psycopg dialect leaves at -1 otherwise)."""
        counted = statement.execution_options(preserve_rowcount=True)
        return await self.database.write(lambda conn: conn.execute(counted).rowcount)

    async def _one(self, statement: Select[Any]) -> Row[Any] | None:
        return await self.database.read(lambda conn: conn.execute(statement.limit(1)).first())

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        return insert(self.database.engine.dialect, table)

    # -- deduplication ---------------------------------------------------------------------------
    async def claim(self, key: str, ttl_s: float) -> bool:
        """True the first time ``key`` is claimed within ``ttl_s`` seconds, False after
        (one statement: of two processes claiming at once, one gets True)."""
        seen = tables.seen
        now = self._clock()
        if now - self._purged_at > _PURGE_EVERY_S:
            self._purged_at = now
            await self._write(seen.delete().where(seen.c.expires_at < now))
        # Inserts a new key, or takes over an expired one; the row count says which happened.
        statement = self._insert(seen).values(key=key, expires_at=now + ttl_s)
        statement = statement.on_conflict_do_update(
            index_elements=[seen.c.key],
            set_={"expires_at": statement.excluded.expires_at},
            where=seen.c.expires_at < now,
        )
        return await self._write(statement) == 1

    # -- threads, replies, hand-off posts --------------------------------------------------------
    async def remember_thread(
        self, thread: Thread, conversation_id: str, customer: str | None
    ) -> None:
        values = {
            "channel": thread.channel,
            "thread_ts": thread.thread_ts,
            "conversation_id": conversation_id,
            "customer": customer,
        }
        await self._write(self._insert(tables.threads).values(values).on_conflict_do_nothing())

    async def known_thread(self, thread: Thread) -> KnownThread | None:
        t = tables.threads
        row = await self._one(
            sa.select(t.c.conversation_id, t.c.customer).where(
                t.c.channel == thread.channel, t.c.thread_ts == thread.thread_ts
            )
        )
        return None if row is None else KnownThread(row.conversation_id, row.customer)

    async def thread_of_conversation(self, conversation_id: str) -> Thread | None:
        t = tables.threads
        row = await self._one(
            sa.select(t.c.channel, t.c.thread_ts).where(t.c.conversation_id == conversation_id)
        )
        return None if row is None else Thread(row.channel, row.thread_ts)

    async def remember_reply(
        self, channel: str, ts: str, turn_id: str, conversation_id: str
    ) -> None:
        r = tables.replies
        statement = self._insert(r).values(
            channel=channel, ts=ts, turn_id=turn_id, conversation_id=conversation_id
        )
        statement = statement.on_conflict_do_update(
            index_elements=[r.c.channel, r.c.ts],
            set_={
                "turn_id": statement.excluded.turn_id,
                "conversation_id": statement.excluded.conversation_id,
            },
        )
        await self._write(statement)

    async def turn_of_message(self, channel: str, ts: str) -> str | None:
        r = tables.replies
        row = await self._one(sa.select(r.c.turn_id).where(r.c.channel == channel, r.c.ts == ts))
        return None if row is None else str(row.turn_id)

    async def remember_handoff_post(self, post: HandoffPost) -> None:
        statement = self._insert(tables.handoff_posts).values(
            channel=post.channel,
            ts=post.ts,
            conversation_id=post.conversation_id,
            created_at=self._clock(),
        )
        await self._write(statement.on_conflict_do_nothing())

    async def handoff_post_at(self, channel: str, ts: str) -> HandoffPost | None:
        h = tables.handoff_posts
        return _handoff_post(await self._one(_POSTS.where(h.c.channel == channel, h.c.ts == ts)))

    async def latest_handoff_post(self, conversation_id: str) -> HandoffPost | None:
        h = tables.handoff_posts
        latest = _POSTS.where(h.c.conversation_id == conversation_id).order_by(
            h.c.created_at.desc()
        )
        return _handoff_post(await self._one(latest))


_POSTS = sa.select(
    tables.handoff_posts.c.channel,
    tables.handoff_posts.c.ts,
    tables.handoff_posts.c.conversation_id,
)


def _handoff_post(row: Row[Any] | None) -> HandoffPost | None:
    return None if row is None else HandoffPost(row.channel, row.ts, row.conversation_id)
