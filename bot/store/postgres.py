"""The conversation store in PostgreSQL (psycopg 3, async), behind the ``ConversationStore``
port; several server replicas can share it.

Same tables and versions as the SQLite store (:mod:`bot.store.postgres_schema`), the same
statements and records (:mod:`bot.store.sql`), the same domain errors. Where SQLite
serialises writers with one lock, this store locks only what two replicas could race on:
a conversation's row while a turn is numbered, and the ``(channel, external_ref)`` key
while a conversation is created.

A full disk (SQLSTATE 53100) refuses a write with StorageUnavailable, tracked by
:attr:`PostgresConversationStore.health` exactly as under SQLite.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from psycopg.rows import DictRow

from bot.core.errors import (
    ConversationNotFound,
    CorrectionNotFound,
    FlagNotFound,
    InvalidMessage,
    TurnNotFound,
)
from bot.core.types import (
    AttachedQuestion,
    Conversation,
    ConversationState,
    Correction,
    Flag,
    FlagReason,
    FlagStatus,
    Outcome,
    Rating,
    Source,
    StoreCounts,
    Turn,
)
from bot.store.health import StorageHealth
from bot.store.postgres_db import (
    Connection,
    apply_migrations,
    database_name,
    fetch_all,
    fetch_one,
    guarded_connection,
    open_pool,
)
from bot.store.postgres_schema import COMPONENT, CURATED_CHANNEL, MIGRATIONS
from bot.store.sql import (
    COUNTED_GROUPS,
    TEXT_COLUMNS,
    Sql,
    StoredText,
    attached_question_of,
    conversation_of,
    correction_of,
    correction_source_id,
    flag_of,
    flags_query,
    insert_turn_params,
    new_questions,
    new_turn,
    postgres_params,
    rating_of,
    store_counts,
    stored_text_of,
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
        self.health = StorageHealth(f"conversation store {database_name(url)}")

    # -- lifetime ----------------------------------------------------------------------------
    async def open(self) -> None:
        await self._pool.open(wait=True, timeout=30.0)
        async with self._connection() as conn:
            await apply_migrations(conn, COMPONENT, MIGRATIONS)

    async def aclose(self) -> None:
        """Close the pool; idempotent."""
        self._closed = True
        await self._pool.close()

    def _connection(self, *, writes: bool = False) -> AbstractAsyncContextManager[Connection]:
        """A pooled connection on which a full disk raises StorageUnavailable; ``writes``
        when the work writes. Raises RuntimeError once closed (as the SQLite store does)."""
        if self._closed:
            raise RuntimeError("conversation store is closed")
        return guarded_connection(self._pool, self.health, writes=writes)

    # -- conversations -----------------------------------------------------------------------
    async def create_conversation(
        self, channel: str, external_ref: str | None = None
    ) -> Conversation:
        now = self._clock()
        conversation_id = uuid.uuid4().hex
        async with self._connection(writes=True) as conn:
            # Two replicas may start the same Slack thread at once: one row wins, both see it.
            await conn.execute(
                _pg(Sql.INSERT_CONVERSATION),
                (conversation_id, channel, external_ref, ConversationState.BOT.value, now, now),
            )
            if external_ref is None:
                return Conversation(conversation_id, channel, ConversationState.BOT, now)
            row = await fetch_one(conn, _pg(Sql.CONVERSATION_BY_REF), (channel, external_ref))
        assert row is not None
        return conversation_of(row)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        async with self._connection() as conn:
            return conversation_of(await _conversation_row(conn, conversation_id))

    async def find_conversation(self, channel: str, external_ref: str) -> Conversation | None:
        async with self._connection() as conn:
            row = await fetch_one(conn, _pg(Sql.CONVERSATION_BY_REF), (channel, external_ref))
        return None if row is None else conversation_of(row)

    async def set_state(self, conversation_id: str, state: ConversationState) -> None:
        async with self._connection(writes=True) as conn:
            cursor = await conn.execute(
                _pg(Sql.SET_STATE),
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
        async with self._connection(writes=True) as conn, conn.transaction():
            turn = new_turn(
                conversation_id,
                role,
                text,
                self._clock(),
                outcome=outcome,
                confidence=confidence,
                sources=sources,
                latency_ms=latency_ms,
                index_version=index_version,
                model_version=model_version,
            )
            # The row lock numbers turns one at a time even when replicas add them at once.
            locked = await fetch_one(
                conn, _pg(Sql.CONVERSATION) + " FOR UPDATE", (conversation_id,)
            )
            if locked is None:
                raise ConversationNotFound(conversation_id)
            await conn.execute(_pg(Sql.INSERT_TURN), insert_turn_params(turn))
            await conn.execute(_pg(Sql.TOUCH_CONVERSATION), (turn.created_at, conversation_id))
        return turn

    async def get_turn(self, turn_id: str) -> Turn:
        async with self._connection() as conn:
            row = await fetch_one(conn, _pg(Sql.TURN), (turn_id,))
        if row is None:
            raise TurnNotFound(turn_id)
        return turn_of(row)

    async def list_turns(self, conversation_id: str) -> list[Turn]:
        async with self._connection() as conn:
            rows = await fetch_all(conn, _pg(Sql.TURNS), (conversation_id,))
        return [turn_of(row) for row in rows]

    # -- ratings -----------------------------------------------------------------------------
    async def add_rating(self, rating: Rating) -> None:
        async with self._connection(writes=True) as conn, conn.transaction():
            await _require_turn(conn, rating.turn_id)
            await conn.execute(
                _pg(Sql.UPSERT_RATING),
                (rating.turn_id, rating.value, rating.comment, rating.channel, self._clock()),
            )

    async def get_rating(self, turn_id: str) -> Rating | None:
        async with self._connection() as conn:
            row = await fetch_one(conn, _pg(Sql.RATING), (turn_id,))
        return None if row is None else rating_of(row)

    # -- flags -------------------------------------------------------------------------------
    async def add_flag(self, turn_id: str, reason: FlagReason, detail: str = "") -> None:
        async with self._connection(writes=True) as conn, conn.transaction():
            turn = await _require_turn(conn, turn_id)
            await conn.execute(
                _pg(Sql.INSERT_FLAG),
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
        sql, params = flags_query(status, reason, channel, since, until, limit)
        async with self._connection() as conn:
            rows = await fetch_all(conn, _pg(sql), params)
        return [flag_of(row) for row in rows]

    async def get_flag(self, flag_id: int) -> Flag:
        async with self._connection() as conn:
            return flag_of(await _flag_row(conn, flag_id))

    async def resolve_flag(self, flag_id: int, status: FlagStatus, resolved_by: str) -> Flag:
        """Set a flag's review outcome (any status; OPEN reopens it). Raises FlagNotFound."""
        status = FlagStatus(status)
        reopened = status is FlagStatus.OPEN
        async with self._connection(writes=True) as conn, conn.transaction():
            cursor = await conn.execute(
                _pg(Sql.RESOLVE_FLAG),
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
        async with self._connection(writes=True) as conn:
            cursor = await conn.execute(
                _pg(Sql.RESOLVE_TURN_FLAGS), (status.value, self._clock(), resolved_by, turn_id)
            )
            return cursor.rowcount

    # -- corrections -------------------------------------------------------------------------
    async def add_correction(
        self, question: str, answer: str, *, created_by: str, turn_id: str | None = None
    ) -> Correction:
        now = self._clock()
        async with self._connection(writes=True) as conn, conn.transaction():
            if turn_id is not None:
                await _require_turn(conn, turn_id)
            row = await fetch_one(
                conn,
                _pg(Sql.INSERT_CORRECTION) + " RETURNING id",
                (turn_id, question, answer, created_by, now),
            )
            assert row is not None
            correction_id = int(row["id"])
            source_id = correction_source_id(correction_id)
            await conn.execute(_pg(Sql.SET_CORRECTION_SOURCE), (source_id, correction_id))
        return Correction(correction_id, source_id, question, answer, created_by, now, turn_id)

    async def get_correction(self, correction_id: int) -> Correction:
        async with self._connection() as conn:
            return correction_of(await _correction_row(conn, correction_id))

    async def list_corrections(self, limit: int = 100, offset: int = 0) -> list[Correction]:
        """Newest first, withdrawn ones included."""
        async with self._connection() as conn:
            rows = await fetch_all(conn, _pg(Sql.CORRECTIONS), (limit, offset))
        return [correction_of(row) for row in rows]

    async def edit_correction(
        self, correction_id: int, question: str, answer: str, *, edited_by: str
    ) -> Correction:
        params = (question, answer, edited_by, self._clock(), correction_id)
        async with self._connection(writes=True) as conn, conn.transaction():
            cursor = await conn.execute(_pg(Sql.EDIT_CORRECTION), params)
            if cursor.rowcount == 0:
                await _correction_row(conn, correction_id)  # raises when there is none
                raise InvalidMessage("the correction was withdrawn")
            return correction_of(await _correction_row(conn, correction_id))

    async def withdraw_correction(self, correction_id: int, *, withdrawn_by: str) -> Correction:
        async with self._connection(writes=True) as conn, conn.transaction():
            await conn.execute(
                _pg(Sql.WITHDRAW_CORRECTION), (withdrawn_by, self._clock(), correction_id)
            )
            return correction_of(await _correction_row(conn, correction_id))

    async def attach_questions(
        self, correction_id: int, questions: Sequence[str], *, attached_by: str
    ) -> list[AttachedQuestion]:
        async with self._connection(writes=True) as conn, conn.transaction():
            # Locks the correction: two operators attaching at once get distinct positions.
            row = await fetch_one(conn, _pg(Sql.CORRECTION) + " FOR UPDATE", (correction_id,))
            if row is None:
                raise CorrectionNotFound(str(correction_id))
            if correction_of(row).withdrawn:
                raise InvalidMessage("the correction was withdrawn")
            rows = await fetch_all(conn, _pg(Sql.ATTACHED), (correction_id,))
            attached = [attached_question_of(r) for r in rows]
            position = max((a.position for a in attached), default=0)
            now = self._clock()
            added = []
            for question in new_questions(attached, questions):
                position += 1
                values = (correction_id, position, question, attached_by, now)
                await conn.execute(_pg(Sql.INSERT_ATTACHED), values)
                added.append(AttachedQuestion(*values))
            return added

    async def attached_questions(self, correction_id: int) -> list[AttachedQuestion]:
        async with self._connection() as conn:
            rows = await fetch_all(conn, _pg(Sql.ATTACHED), (correction_id,))
        return [attached_question_of(row) for row in rows]

    async def corrections_asking(self, question: str) -> list[Correction]:
        async with self._connection() as conn:
            rows = await fetch_all(conn, _pg(Sql.CORRECTIONS_ASKING), (question, question))
        return [correction_of(row) for row in rows]

    async def questions_answered_with(self, reply: str, limit: int) -> list[str]:
        async with self._connection() as conn:
            rows = await fetch_all(conn, _pg(Sql.QUESTIONS_ANSWERED_WITH), (reply, limit))
        return [row["text"] for row in rows]

    async def announce_curated(self, payload: str) -> None:
        """Tell every replica listening (:mod:`bot.replicas`) that a curated answer is
        served, replaced or withdrawn; ``payload`` is ``"<replica> <source id>"``."""
        async with self._connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (CURATED_CHANNEL, payload))

    # -- re-scrubbing (supportbot scrub) -----------------------------------------------------
    async def read_texts(self, column: str, after: str | int, limit: int) -> list[StoredText]:
        """Up to ``limit`` texts of :data:`bot.store.sql.TEXT_COLUMNS` ``column`` with keys
        above ``after``, in key order."""
        async with self._connection() as conn:
            rows = await fetch_all(conn, _pg(TEXT_COLUMNS[column].select), (after, limit))
        return [stored_text_of(row) for row in rows]

    async def write_texts(self, column: str, changes: Sequence[tuple[StoredText, str]]) -> int:
        """Replace each read text by its new text, in one transaction, where it was not
        changed since it was read; return how many were replaced."""
        sql = _pg(TEXT_COLUMNS[column].update)
        replaced = 0
        async with self._connection(writes=True) as conn, conn.transaction():
            for old, new in changes:
                replaced += (await conn.execute(sql, (new, old.key, old.text))).rowcount
        return replaced

    # -- metrics -----------------------------------------------------------------------------
    async def counts(self) -> StoreCounts:
        async with self._connection() as conn:
            corrections = await fetch_one(conn, Sql.COUNT_CORRECTIONS)
            assert corrections is not None
            groups = {
                name: [(row["key"], row["n"]) for row in await fetch_all(conn, sql)]
                for name, (sql, _) in COUNTED_GROUPS.items()
            }
        return store_counts(groups, corrections["n"])


_pg = postgres_params  # a shared statement with psycopg's placeholders


# -- lookups that raise the domain errors ----------------------------------------------------
async def _conversation_row(conn: Connection, conversation_id: str) -> DictRow:
    row = await fetch_one(conn, _pg(Sql.CONVERSATION), (conversation_id,))
    if row is None:
        raise ConversationNotFound(conversation_id)
    return row


async def _require_turn(conn: Connection, turn_id: str) -> DictRow:
    row = await fetch_one(conn, _pg(Sql.TURN_KEYS), (turn_id,))
    if row is None:
        raise TurnNotFound(turn_id)
    return row


async def _correction_row(conn: Connection, correction_id: int) -> DictRow:
    row = await fetch_one(conn, _pg(Sql.CORRECTION), (correction_id,))
    if row is None:
        raise CorrectionNotFound(str(correction_id))
    return row


async def _flag_row(conn: Connection, flag_id: int) -> DictRow:
    row = await fetch_one(conn, _pg(Sql.FLAG), (flag_id,))
    if row is None:
        raise FlagNotFound(str(flag_id))
    return row
