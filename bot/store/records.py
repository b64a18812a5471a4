"""What the conversation store reads and writes besides its tables' own statements: the
texts the re-scrub job rewrites, the counted groups, and the row-to-record mapping."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa

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
from bot.store.tables import OPEN, conversations, corrections, flags, ratings, turns

# A row as read: SQLAlchemy's RowMapping, or a compiled statement's dict by column name.
StoredRow = Mapping[Any, Any]


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

    key: sa.Column[Any]
    text: sa.Column[str]
    where: sa.ColumnElement[bool]
    conversation: sa.ColumnElement[Any]  # the conversation the row belongs to
    first_key: str | int  # below every key

    def page(self, after: str | int, limit: int) -> sa.Select[Any]:
        """(key, text, conversation_id) rows after ``after``, in key order."""
        return (
            sa.select(
                self.key.label("key"),
                self.text.label("text"),
                self.conversation.label("conversation_id"),
            )
            .where(self.where, self.key > after)
            .order_by(self.key)
            .limit(limit)
        )

    def replace(self, old: StoredText, new: str) -> sa.Update:
        """``new`` in place of ``old``, where the row still holds it."""
        table = self.key.table
        assert isinstance(table, sa.Table)
        return (
            table.update()
            .where(self.key == old.key, self.text == old.text)
            .values({self.text.name: new})
        )


def _conversation_of_turn(turn_id: sa.Column[Any]) -> sa.ColumnElement[Any]:
    return sa.select(turns.c.conversation_id).where(turns.c.id == turn_id).scalar_subquery()


_t, _r, _f, _k = turns.c, ratings.c, flags.c, corrections.c

# Every column of the conversation store holding text that a customer, an operator or the
# bot wrote, under the name the re-scrub job knows it by.
TEXT_COLUMNS: dict[str, TextColumn] = {
    "customer_turns": TextColumn(_t.id, _t.text, _t.role == "customer", _t.conversation_id, ""),
    "bot_turns": TextColumn(_t.id, _t.text, _t.role == "bot", _t.conversation_id, ""),
    "turn_sources": TextColumn(_t.id, _t.sources, _t.sources != "[]", _t.conversation_id, ""),
    "rating_comments": TextColumn(
        _r.turn_id, _r.comment, _r.comment.is_not(None), _conversation_of_turn(_r.turn_id), ""
    ),
    "flag_details": TextColumn(_f.id, _f.detail, _f.detail != "", _f.conversation_id, 0),
    "correction_questions": TextColumn(
        _k.id, _k.question, sa.true(), _conversation_of_turn(_k.turn_id), 0
    ),
    "correction_answers": TextColumn(
        _k.id, _k.answer, sa.true(), _conversation_of_turn(_k.turn_id), 0
    ),
}


def stored_text_of(row: StoredRow) -> StoredText:
    return StoredText(row["key"], row["text"], row["conversation_id"])


# StoreCounts field -> (query giving (key, n) rows, every key counted, 0 when absent).
def _counted(column: sa.Column[Any], *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(column, sa.func.count()).where(*where).group_by(column)


COUNTED_GROUPS: dict[str, tuple[sa.Select[Any], Sequence[str]]] = {
    "conversations_by_state": (
        _counted(conversations.c.state),
        [s.value for s in ConversationState],
    ),
    "turns_by_role": (_counted(_t.role), ["customer", "bot", "agent"]),
    "replies_by_outcome": (
        _counted(_t.outcome, _t.outcome.is_not(None)),
        [o.value for o in Outcome],
    ),
    "ratings_by_value": (_counted(_r.value), ["up", "down"]),
    "open_flags_by_reason": (_counted(_f.reason, OPEN), [r.value for r in FlagReason]),
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
def conversation_of(row: StoredRow) -> Conversation:
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


def turn_values(turn: Turn) -> dict[str, object]:
    """``turn``'s row, but for its position (the conversation's next, found when stored)."""
    return {
        "id": turn.id,
        "conversation_id": turn.conversation_id,
        "role": turn.role,
        "text": turn.text,
        "outcome": None if turn.outcome is None else Outcome(turn.outcome).value,
        "confidence": turn.confidence,
        "sources": sources_json(turn.sources),
        "latency_ms": turn.latency_ms,
        "index_version": turn.index_version,
        "model_version": turn.model_version,
        "created_at": turn.created_at,
    }


def turn_of(row: StoredRow) -> Turn:
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


def rating_of(row: StoredRow) -> Rating:
    return Rating(row["turn_id"], row["value"], row["comment"], row["channel"])


def flag_of(row: StoredRow) -> Flag:
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


def correction_of(row: StoredRow) -> Correction:
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


def attached_question_of(row: StoredRow) -> AttachedQuestion:
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
