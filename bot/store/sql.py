"""What the SQLite and the PostgreSQL conversation stores share: the statements, the flag
filter, the counted groups and the row-to-record mapping.

The statements are written once with ``?`` parameters, which SQLite takes as they are and
PostgreSQL through :func:`postgres_params`; the tables, columns and versions are the same
in both (:mod:`bot.store.sqlite_schema`, :mod:`bot.store.postgres_schema`). Where the two
engines differ (how a turn's position is locked, how a new id comes back) the stores say
so themselves.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

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
    Role,
    Source,
    StoreCounts,
    Turn,
)


def postgres_params(sql: str) -> str:
    """``sql`` with psycopg's ``%s`` for each ``?`` (our statements hold no other ``?`` and
    no ``%``)."""
    return sql.replace("?", "%s")


FLAG_COLUMNS = (
    "f.id, f.turn_id, f.conversation_id, c.channel, f.reason, f.detail, f.status,"
    " f.created_at, f.resolved_at, f.resolved_by"
)


class Sql:
    """Every statement both stores run."""

    # Several processes may start the same external conversation (a Slack thread) at once:
    # one row wins and every one of them reads it back.
    INSERT_CONVERSATION = (
        "INSERT INTO bot_conversations (id, channel, external_ref, state, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel, external_ref) DO NOTHING"
    )
    CONVERSATION = "SELECT * FROM bot_conversations WHERE id = ?"
    CONVERSATION_BY_REF = "SELECT * FROM bot_conversations WHERE channel = ? AND external_ref = ?"
    SET_STATE = "UPDATE bot_conversations SET state = ?, updated_at = ? WHERE id = ?"
    TOUCH_CONVERSATION = "UPDATE bot_conversations SET updated_at = ? WHERE id = ?"

    # The position is the conversation's next; the caller holds the conversation (SQLite's
    # one writer, PostgreSQL's row lock) so two turns never get the same one.
    INSERT_TURN = (
        "INSERT INTO bot_turns (id, conversation_id, position, role, text, outcome,"
        " confidence, sources, latency_ms, index_version, model_version, created_at)"
        " SELECT ?, ?, COALESCE(MAX(position), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?, ?"
        " FROM bot_turns WHERE conversation_id = ?"
    )
    TURN = "SELECT * FROM bot_turns WHERE id = ?"
    TURN_KEYS = "SELECT id, conversation_id FROM bot_turns WHERE id = ?"
    TURNS = "SELECT * FROM bot_turns WHERE conversation_id = ? ORDER BY position"

    UPSERT_RATING = (
        "INSERT INTO bot_ratings (turn_id, value, comment, channel, created_at)"
        " VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (turn_id) DO UPDATE SET value = excluded.value,"
        " comment = excluded.comment, channel = excluded.channel,"
        " created_at = excluded.created_at"
    )
    RATING = "SELECT * FROM bot_ratings WHERE turn_id = ?"

    # Partial-index conflict: the same open flag is not queued twice.
    INSERT_FLAG = (
        "INSERT INTO bot_flags (turn_id, conversation_id, reason, detail, status, created_at)"
        " VALUES (?, ?, ?, ?, 'open', ?)"
        " ON CONFLICT (turn_id, reason) WHERE status = 'open' DO NOTHING"
    )
    FLAGS = (
        f"SELECT {FLAG_COLUMNS} FROM bot_flags f"
        " JOIN bot_conversations c ON c.id = f.conversation_id"
    )
    FLAG = f"{FLAGS} WHERE f.id = ?"
    RESOLVE_FLAG = "UPDATE bot_flags SET status = ?, resolved_at = ?, resolved_by = ? WHERE id = ?"
    RESOLVE_TURN_FLAGS = (
        "UPDATE bot_flags SET status = ?, resolved_at = ?, resolved_by = ?"
        " WHERE turn_id = ? AND status = 'open'"
    )

    INSERT_CORRECTION = (
        "INSERT INTO bot_corrections (turn_id, question, answer, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?)"
    )
    SET_CORRECTION_SOURCE = "UPDATE bot_corrections SET source_id = ? WHERE id = ?"
    CORRECTION = "SELECT * FROM bot_corrections WHERE id = ?"
    CORRECTIONS = "SELECT * FROM bot_corrections ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    # A withdrawn correction is history: it is neither edited nor withdrawn again.
    EDIT_CORRECTION = (
        "UPDATE bot_corrections SET question = ?, answer = ?, edited_by = ?, edited_at = ?"
        " WHERE id = ? AND withdrawn_at IS NULL"
    )
    WITHDRAW_CORRECTION = (
        "UPDATE bot_corrections SET withdrawn_by = ?, withdrawn_at = ?"
        " WHERE id = ? AND withdrawn_at IS NULL"
    )
    ATTACHED = "SELECT * FROM bot_correction_questions WHERE correction_id = ? ORDER BY position"
    INSERT_ATTACHED = (
        "INSERT INTO bot_correction_questions"
        " (correction_id, position, question, attached_by, attached_at) VALUES (?, ?, ?, ?, ?)"
    )
    CORRECTIONS_ASKING = (
        "SELECT * FROM bot_corrections WHERE withdrawn_at IS NULL AND (question = ? OR id IN"
        " (SELECT correction_id FROM bot_correction_questions WHERE question = ?)) ORDER BY id"
    )
    # The customer's message is the turn just before the bot's reply to it.
    QUESTIONS_ANSWERED_WITH = (
        "SELECT c.text AS text FROM bot_turns b JOIN bot_turns c"
        " ON c.conversation_id = b.conversation_id AND c.position = b.position - 1"
        " WHERE b.role = 'bot' AND b.text = ? AND c.role = 'customer'"
        " ORDER BY b.created_at DESC LIMIT ?"
    )
    COUNT_CORRECTIONS = "SELECT COUNT(*) AS n FROM bot_corrections WHERE withdrawn_at IS NULL"


@dataclass(frozen=True)
class StoredText:
    """One stored text the re-scrub job reads (``supportbot scrub``): its row's key, the
    text, and the conversation it belongs to (None for a correction made without one)."""

    key: str | int
    text: str
    conversation_id: str | None


@dataclass(frozen=True)
class TextColumn:
    """A column of stored text, read a page at a time in key order and rewritten only
    where it still holds what was read (an operator may edit it meanwhile)."""

    select: str  # (key, text, conversation_id) rows: after a key, in key order, at most n
    update: str  # parameters: the new text, the key, the text as it was read
    first_key: str | int  # below every key


def _text_column(
    table: str, key: str, column: str, where: str, first_key: str | int, conversation: str
) -> TextColumn:
    return TextColumn(
        select=f"SELECT {key} AS key, {column} AS text, {conversation} AS conversation_id"
        f" FROM {table} WHERE {where} AND {key} > ? ORDER BY {key} LIMIT ?",
        update=f"UPDATE {table} SET {column} = ? WHERE {key} = ? AND {column} = ?",
        first_key=first_key,
    )


def _conversation_of_turn(table: str) -> str:
    return f"(SELECT t.conversation_id FROM bot_turns t WHERE t.id = {table}.turn_id)"


# Every column of the conversation store holding text that a customer, an operator or the
# bot wrote, under the name the re-scrub job knows it by.
TEXT_COLUMNS: dict[str, TextColumn] = {
    "customer_turns": _text_column(
        "bot_turns", "id", "text", "role = 'customer'", "", "conversation_id"
    ),
    "bot_turns": _text_column("bot_turns", "id", "text", "role = 'bot'", "", "conversation_id"),
    "turn_sources": _text_column(
        "bot_turns", "id", "sources", "sources <> '[]'", "", "conversation_id"
    ),
    "rating_comments": _text_column(
        "bot_ratings",
        "turn_id",
        "comment",
        "comment IS NOT NULL",
        "",
        _conversation_of_turn("bot_ratings"),
    ),
    "flag_details": _text_column("bot_flags", "id", "detail", "detail <> ''", 0, "conversation_id"),
    "correction_questions": _text_column(
        "bot_corrections", "id", "question", "1 = 1", 0, _conversation_of_turn("bot_corrections")
    ),
    "correction_answers": _text_column(
        "bot_corrections", "id", "answer", "1 = 1", 0, _conversation_of_turn("bot_corrections")
    ),
}


def stored_text_of(row: Row) -> StoredText:
    return StoredText(row["key"], row["text"], row["conversation_id"])


def flags_query(
    status: FlagStatus | None,
    reason: FlagReason | None,
    channel: str | None,
    since: float | None,
    until: float | None,
    limit: int,
) -> tuple[str, list[object]]:
    """The statement and parameters of ``list_flags``: oldest first, ``since`` inclusive,
    ``until`` exclusive, every filter that is not None."""
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
    sql = f"{Sql.FLAGS} WHERE {' AND '.join(where)} ORDER BY f.created_at, f.id LIMIT ?"
    return sql, [*params, limit]


# StoreCounts field -> (statement giving (key, n) rows, every key counted, 0 when absent).
COUNTED_GROUPS: dict[str, tuple[str, Sequence[str]]] = {
    "conversations_by_state": (
        "SELECT state AS key, COUNT(*) AS n FROM bot_conversations GROUP BY state",
        [s.value for s in ConversationState],
    ),
    "turns_by_role": (
        "SELECT role AS key, COUNT(*) AS n FROM bot_turns GROUP BY role",
        ["customer", "bot", "agent"],
    ),
    "replies_by_outcome": (
        "SELECT outcome AS key, COUNT(*) AS n FROM bot_turns"
        " WHERE outcome IS NOT NULL GROUP BY outcome",
        [o.value for o in Outcome],
    ),
    "ratings_by_value": (
        "SELECT value AS key, COUNT(*) AS n FROM bot_ratings GROUP BY value",
        ["up", "down"],
    ),
    "open_flags_by_reason": (
        "SELECT reason AS key, COUNT(*) AS n FROM bot_flags WHERE status = 'open' GROUP BY reason",
        [r.value for r in FlagReason],
    ),
}


def store_counts(groups: Mapping[str, Iterable[Sequence[Any]]], corrections: int) -> StoreCounts:
    """The counts from the ``(key, n)`` rows of each of :data:`COUNTED_GROUPS`."""
    counted: dict[str, dict[str, int]] = {}
    for name, (_, keys) in COUNTED_GROUPS.items():
        counts = dict.fromkeys(keys, 0)
        counts.update({str(key): int(n) for key, n in groups[name]})
        counted[name] = counts
    return StoreCounts(**counted, corrections=int(corrections))


# -- rows to records ---------------------------------------------------------------------------
class Row(Protocol):
    """A row read by column name: sqlite3.Row, or a dict from psycopg (same columns)."""

    def __getitem__(self, key: str, /) -> Any: ...


def conversation_of(row: Row) -> Conversation:
    return Conversation(
        id=row["id"],
        channel=row["channel"],
        state=ConversationState(row["state"]),
        created_at=row["created_at"],
        external_ref=row["external_ref"],
    )


def source_json(source: Source) -> dict[str, Any]:
    return {
        "source_id": source.source_id,
        "score": source.score,
        "kind": source.kind,
        "customer_text": source.customer_text,
        "agent_reply": source.agent_reply,
        "support": source.support,
    }


def sources_json(sources: Sequence[Source]) -> str:
    """A turn's sources as stored (JSON text in both databases)."""
    return json.dumps([source_json(s) for s in sources], ensure_ascii=False)


def new_turn(
    conversation_id: str,
    role: str,
    text: str,
    now: float,
    *,
    outcome: Outcome | None,
    confidence: float | None,
    sources: Sequence[Source],
    latency_ms: float | None,
    index_version: str | None,
    model_version: str | None,
) -> Turn:
    """The record of a turn about to be stored, with a new id."""
    return Turn(
        uuid.uuid4().hex,
        conversation_id,
        cast(Role, role),  # the table's CHECK constraint rejects any other
        text,
        now,
        outcome,
        confidence,
        tuple(sources),
        latency_ms,
        index_version,
        model_version,
    )


def insert_turn_params(turn: Turn) -> tuple[object, ...]:
    """The parameters of :attr:`Sql.INSERT_TURN` for ``turn``."""
    return (
        turn.id,
        turn.conversation_id,
        turn.role,
        turn.text,
        None if turn.outcome is None else Outcome(turn.outcome).value,
        turn.confidence,
        sources_json(turn.sources),
        turn.latency_ms,
        turn.index_version,
        turn.model_version,
        turn.created_at,
        turn.conversation_id,
    )


def turn_of(row: Row) -> Turn:
    return Turn(
        id=row["id"],
        conversation_id=row["conversation_id"],
        role=row["role"],
        text=row["text"],
        created_at=row["created_at"],
        outcome=None if row["outcome"] is None else Outcome(row["outcome"]),
        confidence=row["confidence"],
        sources=tuple(Source(**item) for item in json.loads(row["sources"])),
        latency_ms=row["latency_ms"],
        index_version=row["index_version"],
        model_version=row["model_version"],
    )


def rating_of(row: Row) -> Rating:
    return Rating(row["turn_id"], row["value"], row["comment"], row["channel"])


def flag_of(row: Row) -> Flag:
    return Flag(
        id=row["id"],
        turn_id=row["turn_id"],
        conversation_id=row["conversation_id"],
        channel=row["channel"],
        reason=FlagReason(row["reason"]),
        detail=row["detail"],
        status=FlagStatus(row["status"]),
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
        resolved_by=row["resolved_by"],
    )


def correction_of(row: Row) -> Correction:
    return Correction(
        id=row["id"],
        source_id=row["source_id"],
        question=row["question"],
        answer=row["answer"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        turn_id=row["turn_id"],
        edited_by=row["edited_by"],
        edited_at=row["edited_at"],
        withdrawn_by=row["withdrawn_by"],
        withdrawn_at=row["withdrawn_at"],
    )


def attached_question_of(row: Row) -> AttachedQuestion:
    return AttachedQuestion(
        correction_id=row["correction_id"],
        position=row["position"],
        question=row["question"],
        attached_by=row["attached_by"],
        attached_at=row["attached_at"],
    )


def new_questions(attached: Sequence[AttachedQuestion], questions: Sequence[str]) -> list[str]:
    """``questions`` not yet attached, each once, in the order given."""
    seen = {a.question for a in attached}
    fresh: list[str] = []
    for question in questions:
        if question not in seen:
            seen.add(question)
            fresh.append(question)
    return fresh


def correction_source_id(correction_id: int) -> str:
    """The id retrieval knows a correction's curated entry by (see retrieval.records)."""
    return f"correction:{correction_id}"
