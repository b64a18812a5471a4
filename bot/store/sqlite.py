"""The conversation store in SQLite (WAL), behind the ``ConversationStore`` port.

Every query runs in one worker thread owned by the store, so coroutines never block on
the database and the connection is only ever used by one thread. The statements and the
row mapping are the PostgreSQL store's too (:mod:`bot.store.sql`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

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
    rating_of,
    store_counts,
    stored_text_of,
    turn_of,
)
from bot.store.sqlite_schema import COMPONENT, MIGRATIONS
from bot.store.sqlite_worker import SqliteWorker
from retrieval.sqlite_db import transaction

_T = TypeVar("_T")


class SqliteConversationStore:
    """Conversations, turns, ratings, flags and corrections in one SQLite file.

    Nothing is opened by the constructor: the connection is made (and the schema
    migrated) in the worker thread by :meth:`open` or the first call. Call :meth:`close`
    when done; it waits for queued work.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._db = SqliteWorker(path, COMPONENT, MIGRATIONS, name="conversation store")

    @property
    def health(self) -> StorageHealth:
        """Whether writes succeed (a full disk refuses them); for the health check."""
        return self._db.health

    # -- lifetime ----------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and migrate now, so that a bad database fails at start-up."""
        await self._db.open()

    def close(self) -> None:
        """Wait for queued writes, then close. Idempotent."""
        self._db.close()

    async def aclose(self) -> None:
        """:meth:`close` off the event loop (the PostgreSQL store's way of closing)."""
        await asyncio.to_thread(self._db.close)

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._db.run(work)

    # -- conversations -----------------------------------------------------------------------
    async def create_conversation(
        self, channel: str, external_ref: str | None = None
    ) -> Conversation:
        conversation_id = uuid.uuid4().hex

        def work(conn: sqlite3.Connection) -> Conversation:
            now = self._clock()
            with transaction(conn):
                conn.execute(
                    Sql.INSERT_CONVERSATION,
                    (conversation_id, channel, external_ref, ConversationState.BOT, now, now),
                )
                if external_ref is None:
                    return Conversation(conversation_id, channel, ConversationState.BOT, now)
                return conversation_of(
                    conn.execute(Sql.CONVERSATION_BY_REF, (channel, external_ref)).fetchone()
                )

        return await self._run(work)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        def work(conn: sqlite3.Connection) -> Conversation:
            return conversation_of(_conversation_row(conn, conversation_id))

        return await self._run(work)

    async def find_conversation(self, channel: str, external_ref: str) -> Conversation | None:
        def work(conn: sqlite3.Connection) -> Conversation | None:
            row = conn.execute(Sql.CONVERSATION_BY_REF, (channel, external_ref)).fetchone()
            return None if row is None else conversation_of(row)

        return await self._run(work)

    async def set_state(self, conversation_id: str, state: ConversationState) -> None:
        def work(conn: sqlite3.Connection) -> None:
            params = (ConversationState(state).value, self._clock(), conversation_id)
            if conn.execute(Sql.SET_STATE, params).rowcount == 0:
                raise ConversationNotFound(conversation_id)

        await self._run(work)

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
        def work(conn: sqlite3.Connection) -> Turn:
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
            # One writer at a time (the worker thread, IMMEDIATE): positions cannot race.
            with transaction(conn):
                _conversation_row(conn, conversation_id)
                conn.execute(Sql.INSERT_TURN, insert_turn_params(turn))
                conn.execute(Sql.TOUCH_CONVERSATION, (turn.created_at, conversation_id))
            return turn

        return await self._run(work)

    async def get_turn(self, turn_id: str) -> Turn:
        def work(conn: sqlite3.Connection) -> Turn:
            row = conn.execute(Sql.TURN, (turn_id,)).fetchone()
            if row is None:
                raise TurnNotFound(turn_id)
            return turn_of(row)

        return await self._run(work)

    async def list_turns(self, conversation_id: str) -> list[Turn]:
        def work(conn: sqlite3.Connection) -> list[Turn]:
            return [turn_of(row) for row in conn.execute(Sql.TURNS, (conversation_id,))]

        return await self._run(work)

    # -- ratings -----------------------------------------------------------------------------
    async def add_rating(self, rating: Rating) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                _require_turn(conn, rating.turn_id)
                conn.execute(
                    Sql.UPSERT_RATING,
                    (rating.turn_id, rating.value, rating.comment, rating.channel, self._clock()),
                )

        await self._run(work)

    async def get_rating(self, turn_id: str) -> Rating | None:
        def work(conn: sqlite3.Connection) -> Rating | None:
            row = conn.execute(Sql.RATING, (turn_id,)).fetchone()
            return None if row is None else rating_of(row)

        return await self._run(work)

    # -- flags -------------------------------------------------------------------------------
    async def add_flag(self, turn_id: str, reason: FlagReason, detail: str = "") -> None:
        def work(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                turn = _require_turn(conn, turn_id)
                conn.execute(
                    Sql.INSERT_FLAG,
                    (
                        turn_id,
                        turn["conversation_id"],
                        FlagReason(reason).value,
                        detail,
                        self._clock(),
                    ),
                )

        await self._run(work)

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

        def work(conn: sqlite3.Connection) -> list[Flag]:
            return [flag_of(row) for row in conn.execute(sql, params)]

        return await self._run(work)

    async def get_flag(self, flag_id: int) -> Flag:
        def work(conn: sqlite3.Connection) -> Flag:
            return flag_of(_flag_row(conn, flag_id))

        return await self._run(work)

    async def resolve_flag(self, flag_id: int, status: FlagStatus, resolved_by: str) -> Flag:
        """Set a flag's review outcome (any status; OPEN reopens it). Raises FlagNotFound."""
        status = FlagStatus(status)
        reopened = status is FlagStatus.OPEN

        def work(conn: sqlite3.Connection) -> Flag:
            with transaction(conn):
                cursor = conn.execute(
                    Sql.RESOLVE_FLAG,
                    (
                        status.value,
                        None if reopened else self._clock(),
                        None if reopened else resolved_by,
                        flag_id,
                    ),
                )
                if cursor.rowcount == 0:
                    raise FlagNotFound(str(flag_id))
                return flag_of(_flag_row(conn, flag_id))

        return await self._run(work)

    async def resolve_turn_flags(self, turn_id: str, status: FlagStatus, resolved_by: str) -> int:
        status = FlagStatus(status)
        if status is FlagStatus.OPEN:
            raise ValueError("resolve_turn_flags needs a closing status, not OPEN")

        def work(conn: sqlite3.Connection) -> int:
            params = (status.value, self._clock(), resolved_by, turn_id)
            return conn.execute(Sql.RESOLVE_TURN_FLAGS, params).rowcount

        return await self._run(work)

    # -- corrections -------------------------------------------------------------------------
    async def add_correction(
        self, question: str, answer: str, *, created_by: str, turn_id: str | None = None
    ) -> Correction:
        def work(conn: sqlite3.Connection) -> Correction:
            now = self._clock()
            with transaction(conn):
                if turn_id is not None:
                    _require_turn(conn, turn_id)
                cursor = conn.execute(
                    Sql.INSERT_CORRECTION, (turn_id, question, answer, created_by, now)
                )
                correction_id = int(cursor.lastrowid or 0)
                source_id = correction_source_id(correction_id)
                conn.execute(Sql.SET_CORRECTION_SOURCE, (source_id, correction_id))
            return Correction(correction_id, source_id, question, answer, created_by, now, turn_id)

        return await self._run(work)

    async def get_correction(self, correction_id: int) -> Correction:
        def work(conn: sqlite3.Connection) -> Correction:
            return correction_of(_correction_row(conn, correction_id))

        return await self._run(work)

    async def list_corrections(self, limit: int = 100, offset: int = 0) -> list[Correction]:
        """Newest first, withdrawn ones included."""

        def work(conn: sqlite3.Connection) -> list[Correction]:
            rows = conn.execute(Sql.CORRECTIONS, (limit, offset))
            return [correction_of(row) for row in rows]

        return await self._run(work)

    async def edit_correction(
        self, correction_id: int, question: str, answer: str, *, edited_by: str
    ) -> Correction:
        def work(conn: sqlite3.Connection) -> Correction:
            with transaction(conn):
                params = (question, answer, edited_by, self._clock(), correction_id)
                if conn.execute(Sql.EDIT_CORRECTION, params).rowcount == 0:
                    _correction_row(conn, correction_id)  # raises when there is none
                    raise InvalidMessage("the correction was withdrawn")
                return correction_of(_correction_row(conn, correction_id))

        return await self._run(work)

    async def withdraw_correction(self, correction_id: int, *, withdrawn_by: str) -> Correction:
        def work(conn: sqlite3.Connection) -> Correction:
            with transaction(conn):
                conn.execute(Sql.WITHDRAW_CORRECTION, (withdrawn_by, self._clock(), correction_id))
                return correction_of(_correction_row(conn, correction_id))

        return await self._run(work)

    async def attach_questions(
        self, correction_id: int, questions: Sequence[str], *, attached_by: str
    ) -> list[AttachedQuestion]:
        def work(conn: sqlite3.Connection) -> list[AttachedQuestion]:
            with transaction(conn):
                if correction_of(_correction_row(conn, correction_id)).withdrawn:
                    raise InvalidMessage("the correction was withdrawn")
                attached = [
                    attached_question_of(r) for r in conn.execute(Sql.ATTACHED, (correction_id,))
                ]
                position = max((a.position for a in attached), default=0)
                now = self._clock()
                added = []
                for question in new_questions(attached, questions):
                    position += 1
                    row = (correction_id, position, question, attached_by, now)
                    conn.execute(Sql.INSERT_ATTACHED, row)
                    added.append(AttachedQuestion(*row))
                return added

        return await self._run(work)

    async def attached_questions(self, correction_id: int) -> list[AttachedQuestion]:
        def work(conn: sqlite3.Connection) -> list[AttachedQuestion]:
            rows = conn.execute(Sql.ATTACHED, (correction_id,))
            return [attached_question_of(row) for row in rows]

        return await self._run(work)

    async def corrections_asking(self, question: str) -> list[Correction]:
        def work(conn: sqlite3.Connection) -> list[Correction]:
            rows = conn.execute(Sql.CORRECTIONS_ASKING, (question, question))
            return [correction_of(row) for row in rows]

        return await self._run(work)

    async def questions_answered_with(self, reply: str, limit: int) -> list[str]:
        def work(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(Sql.QUESTIONS_ANSWERED_WITH, (reply, limit))
            return [row["text"] for row in rows]

        return await self._run(work)

    # -- re-scrubbing (supportbot scrub) -----------------------------------------------------
    async def read_texts(self, column: str, after: str | int, limit: int) -> list[StoredText]:
        """Up to ``limit`` texts of :data:`bot.store.sql.TEXT_COLUMNS` ``column`` with keys
        above ``after``, in key order."""
        sql = TEXT_COLUMNS[column].select

        def work(conn: sqlite3.Connection) -> list[StoredText]:
            return [stored_text_of(row) for row in conn.execute(sql, (after, limit))]

        return await self._run(work)

    async def write_texts(self, column: str, changes: Sequence[tuple[StoredText, str]]) -> int:
        """Replace each read text by its new text, in one transaction, where it was not
        changed since it was read; return how many were replaced."""
        sql = TEXT_COLUMNS[column].update

        def work(conn: sqlite3.Connection) -> int:
            with transaction(conn):
                return sum(
                    conn.execute(sql, (new, old.key, old.text)).rowcount for old, new in changes
                )

        return await self._run(work)

    # -- metrics -----------------------------------------------------------------------------
    async def counts(self) -> StoreCounts:
        def work(conn: sqlite3.Connection) -> StoreCounts:
            (corrections,) = conn.execute(Sql.COUNT_CORRECTIONS).fetchone()
            groups = {
                name: conn.execute(sql).fetchall() for name, (sql, _) in COUNTED_GROUPS.items()
            }
            return store_counts(groups, corrections)

        return await self._run(work)


# -- lookups that raise the domain errors ----------------------------------------------------
def _conversation_row(conn: sqlite3.Connection, conversation_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(Sql.CONVERSATION, (conversation_id,)).fetchone()
    if row is None:
        raise ConversationNotFound(conversation_id)
    return row


def _require_turn(conn: sqlite3.Connection, turn_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(Sql.TURN_KEYS, (turn_id,)).fetchone()
    if row is None:
        raise TurnNotFound(turn_id)
    return row


def _correction_row(conn: sqlite3.Connection, correction_id: int) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(Sql.CORRECTION, (correction_id,)).fetchone()
    if row is None:
        raise CorrectionNotFound(str(correction_id))
    return row


def _flag_row(conn: sqlite3.Connection, flag_id: int) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(Sql.FLAG, (flag_id,)).fetchone()
    if row is None:
        raise FlagNotFound(str(flag_id))
    return row
