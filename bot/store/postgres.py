"""The conversation store in PostgreSQL (psycopg 3, async), behind the ``ConversationStore``
port; several server replicas can share it.

Same tables and versions as the SQLite store (:mod:`bot.store.postgres_schema`), same
records, same domain errors. Where SQLite serialises writers with one lock, this store
locks only what two replicas could race on: a conversation's row while a turn is numbered,
and the ``(channel, external_ref)`` key while a conversation is created.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import cast

from psycopg.rows import DictRow

from bot.core.errors import ConversationNotFound, FlagNotFound, TurnNotFound
from bot.core.types import (
    Conversation,
    ConversationState,
    Correction,
    Flag,
    FlagReason,
    FlagStatus,
    Outcome,
    Rating,
    Role,
    Source,
    StoreCounts,
    Turn,
)
from bot.store.postgres_db import Connection, apply_migrations, fetch_all, fetch_one, open_pool
from bot.store.postgres_schema import COMPONENT, CURATED_CHANNEL, MIGRATIONS
from bot.store.sqlite_schema import (
    FLAG_COLUMNS,
    conversation_of,
    correction_of,
    flag_of,
    source_json,
    turn_of,
)


class PostgresConversationStore:
    """Conversations, turns, ratings, flags and corrections in a PostgreSQL database.

    Nothing is opened by the constructor: :meth:`open` connects and migrates, so that a bad
    URL fails at start-up; :meth:`aclose` closes the pool.
    """

    def __init__(
        self, url: str, *, pool_size: int = 10, clock: Callable[[], float] = time.time
    ) -> None:
        self.url = url
        self._clock = clock
        self._pool = open_pool(url, max_size=pool_size, name="conversation-store")
        self._closed = False

    # -- lifetime ----------------------------------------------------------------------------
    async def open(self) -> None:
        await self._pool.open(wait=True, timeout=30.0)
        async with self._connection() as conn:
            await apply_migrations(conn, COMPONENT, MIGRATIONS)

    async def aclose(self) -> None:
        """Close the pool; idempotent."""
        self._closed = True
        await self._pool.close()

    def _connection(self) -> AbstractAsyncContextManager[Connection]:
        """A pooled connection; raises RuntimeError once closed (as the SQLite store does)."""
        if self._closed:
            raise RuntimeError("conversation store is closed")
        return self._pool.connection()

    # -- conversations -----------------------------------------------------------------------
    async def create_conversation(
        self, channel: str, external_ref: str | None = None
    ) -> Conversation:
        now = self._clock()
        conversation_id = uuid.uuid4().hex
        async with self._connection() as conn:
            if external_ref is None:
                await conn.execute(
                    "INSERT INTO bot_conversations"
                    " (id, channel, external_ref, state, created_at, updated_at)"
                    " VALUES (%s, %s, NULL, %s, %s, %s)",
                    (conversation_id, channel, ConversationState.BOT.value, now, now),
                )
                return Conversation(conversation_id, channel, ConversationState.BOT, now, None)
            # Two replicas may start the same Slack thread at once: one row wins, both see it.
            await conn.execute(
                "INSERT INTO bot_conversations"
                " (id, channel, external_ref, state, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (channel, external_ref) DO NOTHING",
                (conversation_id, channel, external_ref, ConversationState.BOT.value, now, now),
            )
            row = await fetch_one(
                conn,
                "SELECT * FROM bot_conversations WHERE channel = %s AND external_ref = %s",
                (channel, external_ref),
            )
        assert row is not None
        return conversation_of(row)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        async with self._connection() as conn:
            return conversation_of(await _conversation_row(conn, conversation_id))

    async def find_conversation(self, channel: str, external_ref: str) -> Conversation | None:
        async with self._connection() as conn:
            row = await fetch_one(
                conn,
                "SELECT * FROM bot_conversations WHERE channel = %s AND external_ref = %s",
                (channel, external_ref),
            )
        return None if row is None else conversation_of(row)

    async def set_state(self, conversation_id: str, state: ConversationState) -> None:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "UPDATE bot_conversations SET state = %s, updated_at = %s WHERE id = %s",
                (ConversationState(state).value, self._clock(), conversation_id),
            )
            if cursor.rowcount == 0:
                raise ConversationNotFound(conversation_id)

    # -- turns -------------------------------------------------------------------------------
    async def add_turn(
        self,
        conversation_id: str,
        role: str,
        text: str,
        *,
        outcome: Outcome | None = None,
        confidence: float | None = None,
        sources: Sequence[Source] = (),
        latency_ms: float | None = None,
        index_version: str | None = None,
        model_version: str | None = None,
    ) -> Turn:
        turn_id = uuid.uuid4().hex
        sources = tuple(sources)
        payload = json.dumps([source_json(s) for s in sources], ensure_ascii=False)
        async with self._connection() as conn, conn.transaction():
            now = self._clock()
            # The row lock numbers turns one at a time even when replicas add them at once.
            locked = await fetch_one(
                conn,
                "SELECT id FROM bot_conversations WHERE id = %s FOR UPDATE",
                (conversation_id,),
            )
            if locked is None:
                raise ConversationNotFound(conversation_id)
            await conn.execute(
                "INSERT INTO bot_turns (id, conversation_id, position, role, text, outcome,"
                " confidence, sources, latency_ms, index_version, model_version, created_at)"
                " SELECT %s, %s, COALESCE(MAX(position), 0) + 1, %s, %s, %s, %s, %s, %s, %s,"
                " %s, %s FROM bot_turns WHERE conversation_id = %s",
                (
                    turn_id,
                    conversation_id,
                    role,
                    text,
                    None if outcome is None else Outcome(outcome).value,
                    confidence,
                    payload,
                    latency_ms,
                    index_version,
                    model_version,
                    now,
                    conversation_id,
                ),
            )
            await conn.execute(
                "UPDATE bot_conversations SET updated_at = %s WHERE id = %s",
                (now, conversation_id),
            )
        return Turn(
            turn_id,
            conversation_id,
            cast(Role, role),  # the table's CHECK constraint rejected any other
            text,
            now,
            outcome,
            confidence,
            sources,
            latency_ms,
            index_version,
            model_version,
        )

    async def get_turn(self, turn_id: str) -> Turn:
        async with self._connection() as conn:
            row = await fetch_one(conn, "SELECT * FROM bot_turns WHERE id = %s", (turn_id,))
        if row is None:
            raise TurnNotFound(turn_id)
        return turn_of(row)

    async def list_turns(self, conversation_id: str) -> list[Turn]:
        async with self._connection() as conn:
            rows = await fetch_all(
                conn,
                "SELECT * FROM bot_turns WHERE conversation_id = %s ORDER BY position",
                (conversation_id,),
            )
        return [turn_of(row) for row in rows]

    # -- ratings -----------------------------------------------------------------------------
    async def add_rating(self, rating: Rating) -> None:
        async with self._connection() as conn, conn.transaction():
            await _require_turn(conn, rating.turn_id)
            await conn.execute(
                "INSERT INTO bot_ratings (turn_id, value, comment, channel, created_at)"
                " VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (turn_id) DO UPDATE SET value = excluded.value,"
                " comment = excluded.comment, channel = excluded.channel,"
                " created_at = excluded.created_at",
                (rating.turn_id, rating.value, rating.comment, rating.channel, self._clock()),
            )

    async def get_rating(self, turn_id: str) -> Rating | None:
        async with self._connection() as conn:
            row = await fetch_one(conn, "SELECT * FROM bot_ratings WHERE turn_id = %s", (turn_id,))
        if row is None:
            return None
        return Rating(row["turn_id"], row["value"], row["comment"], row["channel"])

    # -- flags -------------------------------------------------------------------------------
    async def add_flag(self, turn_id: str, reason: FlagReason, detail: str = "") -> None:
        async with self._connection() as conn, conn.transaction():
            turn = await _require_turn(conn, turn_id)
            # Partial-index conflict: the same open flag is not queued twice.
            await conn.execute(
                "INSERT INTO bot_flags (turn_id, conversation_id, reason, detail, status,"
                " created_at) VALUES (%s, %s, %s, %s, 'open', %s)"
                " ON CONFLICT (turn_id, reason) WHERE status = 'open' DO NOTHING",
                (turn_id, turn["conversation_id"], FlagReason(reason).value, detail, self._clock()),
            )

    async def list_flags(
        self,
        status: FlagStatus | None = FlagStatus.OPEN,
        *,
        reason: FlagReason | None = None,
        channel: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[Flag]:
        """Flags oldest first, filtered; ``since`` inclusive, ``until`` exclusive."""
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        for clause, value in (
            ("f.status = %s", None if status is None else FlagStatus(status).value),
            ("f.reason = %s", None if reason is None else FlagReason(reason).value),
            ("c.channel = %s", channel),
            ("f.created_at >= %s", since),
            ("f.created_at < %s", until),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        async with self._connection() as conn:
            rows = await fetch_all(
                conn,
                f"SELECT {FLAG_COLUMNS} FROM bot_flags f"
                " JOIN bot_conversations c ON c.id = f.conversation_id"
                f" WHERE {' AND '.join(where)} ORDER BY f.created_at, f.id LIMIT %s",
                (*params, limit),
            )
        return [flag_of(row) for row in rows]

    async def get_flag(self, flag_id: int) -> Flag:
        async with self._connection() as conn:
            return flag_of(await _flag_row(conn, flag_id))

    async def resolve_flag(self, flag_id: int, status: FlagStatus, resolved_by: str) -> Flag:
        """Set a flag's review outcome (any status; OPEN reopens it). Raises FlagNotFound."""
        status = FlagStatus(status)
        reopened = status is FlagStatus.OPEN
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "UPDATE bot_flags SET status = %s, resolved_at = %s, resolved_by = %s"
                " WHERE id = %s",
                (
                    status.value,
                    None if reopened else self._clock(),
                    None if reopened else resolved_by,
                    flag_id,
                ),
            )
            if cursor.rowcount == 0:
                raise FlagNotFound(str(flag_id))
            return flag_of(await _flag_row(conn, flag_id))

    async def resolve_turn_flags(self, turn_id: str, status: FlagStatus, resolved_by: str) -> int:
        status = FlagStatus(status)
        if status is FlagStatus.OPEN:
            raise ValueError("resolve_turn_flags needs a closing status, not OPEN")
        async with self._connection() as conn:
            cursor = await conn.execute(
                "UPDATE bot_flags SET status = %s, resolved_at = %s, resolved_by = %s"
                " WHERE turn_id = %s AND status = 'open'",
                (status.value, self._clock(), resolved_by, turn_id),
            )
            return cursor.rowcount

    # -- corrections -------------------------------------------------------------------------
    async def add_correction(
        self, question: str, answer: str, *, created_by: str, turn_id: str | None = None
    ) -> Correction:
        now = self._clock()
        async with self._connection() as conn, conn.transaction():
            if turn_id is not None:
                await _require_turn(conn, turn_id)
            row = await fetch_one(
                conn,
                "INSERT INTO bot_corrections (turn_id, question, answer, created_by, created_at)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (turn_id, question, answer, created_by, now),
            )
            assert row is not None
            correction_id = int(row["id"])
            # The id retrieval knows the curated entry by (see retrieval.records).
            source_id = f"correction:{correction_id}"
            await conn.execute(
                "UPDATE bot_corrections SET source_id = %s WHERE id = %s",
                (source_id, correction_id),
            )
        return Correction(correction_id, source_id, question, answer, created_by, now, turn_id)

    async def list_corrections(self, limit: int = 100) -> list[Correction]:
        """Newest first."""
        async with self._connection() as conn:
            rows = await fetch_all(
                conn,
                "SELECT * FROM bot_corrections ORDER BY created_at DESC, id DESC LIMIT %s",
                (limit,),
            )
        return [correction_of(row) for row in rows]

    async def announce_curated(self, payload: str) -> None:
        """Tell every replica listening (:mod:`bot.replicas`) that a curated answer is
        served; ``payload`` is ``"<replica> <source id>"``."""
        async with self._connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (CURATED_CHANNEL, payload))

    # -- metrics -----------------------------------------------------------------------------
    async def counts(self) -> StoreCounts:
        async with self._connection() as conn:

            async def grouped(sql: str, keys: Sequence[str]) -> dict[str, int]:
                counts = dict.fromkeys(keys, 0)
                for row in await fetch_all(conn, sql):
                    counts[str(row["key"])] = int(row["n"])
                return counts

            corrections = await fetch_one(conn, "SELECT COUNT(*) AS n FROM bot_corrections")
            assert corrections is not None
            return StoreCounts(
                conversations_by_state=await grouped(
                    "SELECT state AS key, COUNT(*) AS n FROM bot_conversations GROUP BY state",
                    [s.value for s in ConversationState],
                ),
                turns_by_role=await grouped(
                    "SELECT role AS key, COUNT(*) AS n FROM bot_turns GROUP BY role",
                    ["customer", "bot", "agent"],
                ),
                replies_by_outcome=await grouped(
                    "SELECT outcome AS key, COUNT(*) AS n FROM bot_turns"
                    " WHERE outcome IS NOT NULL GROUP BY outcome",
                    [o.value for o in Outcome],
                ),
                ratings_by_value=await grouped(
                    "SELECT value AS key, COUNT(*) AS n FROM bot_ratings GROUP BY value",
                    ["up", "down"],
                ),
                open_flags_by_reason=await grouped(
                    "SELECT reason AS key, COUNT(*) AS n FROM bot_flags WHERE status = 'open'"
                    " GROUP BY reason",
                    [r.value for r in FlagReason],
                ),
                corrections=int(corrections["n"]),
            )


# -- lookups that raise the domain errors ----------------------------------------------------
async def _conversation_row(conn: Connection, conversation_id: str) -> DictRow:
    row = await fetch_one(conn, "SELECT * FROM bot_conversations WHERE id = %s", (conversation_id,))
    if row is None:
        raise ConversationNotFound(conversation_id)
    return row


async def _require_turn(conn: Connection, turn_id: str) -> DictRow:
    row = await fetch_one(
        conn, "SELECT id, conversation_id FROM bot_turns WHERE id = %s", (turn_id,)
    )
    if row is None:
        raise TurnNotFound(turn_id)
    return row


async def _flag_row(conn: Connection, flag_id: int) -> DictRow:
    row = await fetch_one(
        conn,
        f"SELECT {FLAG_COLUMNS} FROM bot_flags f"
        " JOIN bot_conversations c ON c.id = f.conversation_id WHERE f.id = %s",
        (flag_id,),
    )
    if row is None:
        raise FlagNotFound(str(flag_id))
    return row
