"""The SQLite schema of the bot's tables (component ``bot``) and the row-to-record mapping
that the PostgreSQL store (:mod:`bot.store.postgres`) shares."""

from __future__ import annotations

import json
from typing import Any, Protocol

from bot.core.types import (
    Conversation,
    ConversationState,
    Correction,
    Flag,
    FlagReason,
    FlagStatus,
    Outcome,
    Source,
    Turn,
)

COMPONENT = "bot"
# Append a script to change the schema; never edit one that may have run somewhere. Table
# names carry the component's prefix because all components share one database file.
MIGRATIONS = [
    """
    CREATE TABLE bot_conversations (
        id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        external_ref TEXT,
        state TEXT NOT NULL CHECK (state IN ('bot', 'human', 'closed')),
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (channel, external_ref)
    );
    CREATE TABLE bot_turns (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES bot_conversations(id),
        position INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('customer', 'bot', 'agent')),
        text TEXT NOT NULL,
        outcome TEXT CHECK (outcome IN ('generated', 'copied', 'handoff')),
        confidence REAL,
        sources TEXT NOT NULL DEFAULT '[]',
        latency_ms REAL,
        index_version TEXT,
        model_version TEXT,
        created_at REAL NOT NULL,
        UNIQUE (conversation_id, position)
    );
    CREATE TABLE bot_ratings (
        turn_id TEXT PRIMARY KEY REFERENCES bot_turns(id),
        value TEXT NOT NULL CHECK (value IN ('up', 'down')),
        comment TEXT,
        channel TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE bot_flags (
        id INTEGER PRIMARY KEY,
        turn_id TEXT NOT NULL REFERENCES bot_turns(id),
        conversation_id TEXT NOT NULL REFERENCES bot_conversations(id),
        reason TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'open'
            CHECK (status IN ('open', 'approved', 'corrected', 'rejected', 'resolved')),
        created_at REAL NOT NULL,
        resolved_at REAL,
        resolved_by TEXT
    );
    CREATE UNIQUE INDEX bot_flags_one_open ON bot_flags(turn_id, reason) WHERE status = 'open';
    CREATE INDEX bot_flags_queue ON bot_flags(status, created_at);
    CREATE TABLE bot_corrections (
        id INTEGER PRIMARY KEY,
        turn_id TEXT REFERENCES bot_turns(id),
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        source_id TEXT UNIQUE,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
]


class Row(Protocol):
    """A row read by column name: sqlite3.Row, or a dict from psycopg (same columns)."""

    def __getitem__(self, key: str, /) -> Any: ...


FLAG_COLUMNS = (
    "f.id, f.turn_id, f.conversation_id, c.channel, f.reason, f.detail, f.status,"
    " f.created_at, f.resolved_at, f.resolved_by"
)


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
    )
