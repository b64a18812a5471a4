"""The conversation store in SQLite (WAL), behind the ``ConversationStore`` port.

Every query runs in one worker thread owned by the store, so coroutines never block on
the database and the connection is only ever used by one thread. The SQL sticks to what
PostgreSQL also accepts (``ON CONFLICT``, partial unique indexes, parameters only), so a
psycopg implementation can reuse the schema with its own id and JSON types.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar, cast

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
from bot.store.sqlite_schema import (
    COMPONENT,
    FLAG_COLUMNS,
    MIGRATIONS,
    conversation_of,
    correction_of,
    flag_of,
    source_json,
    turn_of,
)
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
        def work(conn: sqlite3.Connection) -> Conversation:
            now = self._clock()
            with transaction(conn):
                if external_ref is not None:
                    existing = conn.execute(
                        "SELECT * FROM bot_conversations WHERE channel = ? AND external_ref = ?",
                        (channel, external_ref),
                    ).fetchone()
                    if existing is not None:
                        return conversation_of(existing)
                conversation_id = uuid.uuid4().hex
                conn.execute(
                    "INSERT INTO bot_conversations"
                    " (id, channel, external_ref, state, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (conversation_id, channel, external_ref, ConversationState.BOT, now, now),
                )
            return Conversation(conversation_id, channel, ConversationState.BOT, now, external_ref)

        return await self._run(work)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        def work(conn: sqlite3.Connection) -> Conversation:
            return conversation_of(_conversation_row(conn, conversation_id))

        return await self._run(work)

    async def find_conversation(self, channel: str, external_ref: str) -> Conversation | None:
        def work(conn: sqlite3.Connection) -> Conversation | None:
            row = conn.execute(
                "SELECT * FROM bot_conversations WHERE channel = ? AND external_ref = ?",
                (channel, external_ref),
            ).fetchone()
            return None if row is None else conversation_of(row)

        return await self._run(work)

    async def set_state(self, conversation_id: str, state: ConversationState) -> None:
        def work(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE bot_conversations SET state = ?, updated_at = ? WHERE id = ?",
                (ConversationState(state).value, self._clock(), conversation_id),
            )
            if cursor.rowcount == 0:
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
        turn_id = uuid.uuid4().hex
        sources = tuple(sources)
        payload = json.dumps([source_json(s) for s in sources], ensure_ascii=False)

        def work(conn: sqlite3.Connection) -> Turn:
            now = self._clock()
            with transaction(conn):
                _conversation_row(conn, conversation_id)
                (position,) = conn.execute(
                    "SELECT COALESCE(MAX(position), 0) + 1 FROM bot_turns"
                    " WHERE conversation_id = ?",
                    (conversation_id,),
                ).fetchone()
                conn.execute(
                    "INSERT INTO bot_turns (id, conversation_id, position, role, text, outcome,"
                    " confidence, sources, latency_ms, index_version, model_version, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        turn_id,
                        conversation_id,
                        position,
                        role,
                        text,
                        None if outcome is None else Outcome(outcome).value,
                        confidence,
                        payload,
                        latency_ms,
                        index_version,
                        model_version,
                        now,
                    ),
                )
                conn.execute(
                    "UPDATE bot_conversations SET updated_at = ? WHERE id = ?",
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

        return await self._run(work)

    async def get_turn(self, turn_id: str) -> Turn:
        def work(conn: sqlite3.Connection) -> Turn:
            row = conn.execute("SELECT * FROM bot_turns WHERE id = ?", (turn_id,)).fetchone()
            if row is None:
                raise TurnNotFound(turn_id)
            return turn_of(row)

        return await self._run(work)

    async def list_turns(self, conversation_id: str) -> list[Turn]:
        def work(conn: sqlite3.Connection) -> list[Turn]:
            rows = conn.execute(
                "SELECT * FROM bot_turns WHERE conversation_id = ? ORDER BY position",
                (conversation_id,),
            ).fetchall()
            return [turn_of(row) for row in rows]

        return await self._run(work)

    # -- ratings -----------------------------------------------------------------------------
    async def add_rating(self, rating: Rating) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                _require_turn(conn, rating.turn_id)
                conn.execute(
                    "INSERT INTO bot_ratings (turn_id, value, comment, channel, created_at)"
                    " VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (turn_id) DO UPDATE SET value = excluded.value,"
                    " comment = excluded.comment, channel = excluded.channel,"
                    " created_at = excluded.created_at",
                    (rating.turn_id, rating.value, rating.comment, rating.channel, self._clock()),
                )

        await self._run(work)

    async def get_rating(self, turn_id: str) -> Rating | None:
        def work(conn: sqlite3.Connection) -> Rating | None:
            row = conn.execute("SELECT * FROM bot_ratings WHERE turn_id = ?", (turn_id,)).fetchone()
            if row is None:
                return None
            return Rating(row["turn_id"], row["value"], row["comment"], row["channel"])

        return await self._run(work)

    # -- flags -------------------------------------------------------------------------------
    async def add_flag(self, turn_id: str, reason: FlagReason, detail: str = "") -> None:
        def work(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                turn = _require_turn(conn, turn_id)
                # Partial-index conflict: the same open flag is not queued twice.
                conn.execute(
                    "INSERT INTO bot_flags (turn_id, conversation_id, reason, detail, status,"
                    " created_at) VALUES (?, ?, ?, ?, 'open', ?)"
                    " ON CONFLICT (turn_id, reason) WHERE status = 'open' DO NOTHING",
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
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        for clause, value in (
            ("f.status = ?", None if status is None else FlagStatus(status).value),
            ("f.reason = ?", None if reason is None else FlagReason(reason).value),
            ("c.channel = ?", channel),
            ("f.created_at >= ?", since),
            ("f.created_at < ?", until),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)

        def work(conn: sqlite3.Connection) -> list[Flag]:
            rows = conn.execute(
                f"SELECT {FLAG_COLUMNS} FROM bot_flags f"
                " JOIN bot_conversations c ON c.id = f.conversation_id"
                f" WHERE {' AND '.join(where)} ORDER BY f.created_at, f.id LIMIT ?",
                (*params, limit),
            ).fetchall()
            return [flag_of(row) for row in rows]

        return await self._run(work)

    async def get_flag(self, flag_id: int) -> Flag:
        def work(conn: sqlite3.Connection) -> Flag:
            return flag_of(_flag_row(conn, flag_id))

        return await self._run(work)

    async def resolve_flag(self, flag_id: int, status: FlagStatus, resolved_by: str) -> Flag:
        """Set a flag's review outcome (any status; OPEN reopens it). Raises FlagNotFound."""
        status = FlagStatus(status)

        def work(conn: sqlite3.Connection) -> Flag:
            with transaction(conn):
                _flag_row(conn, flag_id)
                reopened = status is FlagStatus.OPEN
                conn.execute(
                    "UPDATE bot_flags SET status = ?, resolved_at = ?, resolved_by = ?"
                    " WHERE id = ?",
                    (
                        status.value,
                        None if reopened else self._clock(),
                        None if reopened else resolved_by,
                        flag_id,
                    ),
                )
                return flag_of(_flag_row(conn, flag_id))

        return await self._run(work)

    async def resolve_turn_flags(self, turn_id: str, status: FlagStatus, resolved_by: str) -> int:
        status = FlagStatus(status)
        if status is FlagStatus.OPEN:
            raise ValueError("resolve_turn_flags needs a closing status, not OPEN")

        def work(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "UPDATE bot_flags SET status = ?, resolved_at = ?, resolved_by = ?"
                " WHERE turn_id = ? AND status = 'open'",
                (status.value, self._clock(), resolved_by, turn_id),
            )
            return cursor.rowcount

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
                    "INSERT INTO bot_corrections (turn_id, question, answer, created_by,"
                    " created_at) VALUES (?, ?, ?, ?, ?)",
                    (turn_id, question, answer, created_by, now),
                )
                correction_id = int(cursor.lastrowid or 0)
                # The id retrieval knows the curated entry by (see retrieval.records).
                source_id = f"correction:{correction_id}"
                conn.execute(
                    "UPDATE bot_corrections SET source_id = ? WHERE id = ?",
                    (source_id, correction_id),
                )
            return Correction(correction_id, source_id, question, answer, created_by, now, turn_id)

        return await self._run(work)

    async def list_corrections(self, limit: int = 100) -> list[Correction]:
        """Newest first."""

        def work(conn: sqlite3.Connection) -> list[Correction]:
            rows = conn.execute(
                "SELECT * FROM bot_corrections ORDER BY created_at DESC, id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [correction_of(row) for row in rows]

        return await self._run(work)

    # -- metrics -----------------------------------------------------------------------------
    async def counts(self) -> StoreCounts:
        def grouped(conn: sqlite3.Connection, sql: str, keys: Sequence[str]) -> dict[str, int]:
            counts = dict.fromkeys(keys, 0)
            counts.update({str(key): int(n) for key, n in conn.execute(sql).fetchall()})
            return counts

        def work(conn: sqlite3.Connection) -> StoreCounts:
            (corrections,) = conn.execute("SELECT COUNT(*) FROM bot_corrections").fetchone()
            return StoreCounts(
                conversations_by_state=grouped(
                    conn,
                    "SELECT state, COUNT(*) FROM bot_conversations GROUP BY state",
                    [s.value for s in ConversationState],
                ),
                turns_by_role=grouped(
                    conn,
                    "SELECT role, COUNT(*) FROM bot_turns GROUP BY role",
                    ["customer", "bot", "agent"],
                ),
                replies_by_outcome=grouped(
                    conn,
                    "SELECT outcome, COUNT(*) FROM bot_turns"
                    " WHERE outcome IS NOT NULL GROUP BY outcome",
                    [o.value for o in Outcome],
                ),
                ratings_by_value=grouped(
                    conn, "SELECT value, COUNT(*) FROM bot_ratings GROUP BY value", ["up", "down"]
                ),
                open_flags_by_reason=grouped(
                    conn,
                    "SELECT reason, COUNT(*) FROM bot_flags WHERE status = 'open' GROUP BY reason",
                    [r.value for r in FlagReason],
                ),
                corrections=int(corrections),
            )

        return await self._run(work)


# -- lookups that raise the domain errors ----------------------------------------------------
def _conversation_row(conn: sqlite3.Connection, conversation_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM bot_conversations WHERE id = ?", (conversation_id,)
    ).fetchone()
    if row is None:
        raise ConversationNotFound(conversation_id)
    return row


def _require_turn(conn: sqlite3.Connection, turn_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, conversation_id FROM bot_turns WHERE id = ?", (turn_id,)
    ).fetchone()
    if row is None:
        raise TurnNotFound(turn_id)
    return row


def _flag_row(conn: sqlite3.Connection, flag_id: int) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {FLAG_COLUMNS} FROM bot_flags f"
        " JOIN bot_conversations c ON c.id = f.conversation_id WHERE f.id = ?",
        (flag_id,),
    ).fetchone()
    if row is None:
        raise FlagNotFound(str(flag_id))
    return row
