"""What the bot hands the retraining cycle: operator feedback as plain records.

:func:`export_feedback` reads the conversation store's tables: bot replies an operator
approved or rejected (the latest review of a turn wins) and every correction not
withdrawn (as last edited), each with the conversation before it. ``supportbot retrain``
gives them to :func:`finetune.learning.run_learning_cycle`, which never imports the bot.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Protocol

from finetune.retrain import FeedbackRecord
from retrieval.records import LogMessage, Role
from retrieval.sqlite_db import connect


def export_feedback(database: Path, *, postgres_url: str | None = None) -> list[FeedbackRecord]:
    """Approved, rejected and corrected replies, oldest first; [] before the bot has run.

    Read from PostgreSQL instead of ``database`` when ``postgres_url`` is given.
    """
    if postgres_url is not None:
        # Imported here to keep psycopg out of the jobs of a home without PostgreSQL.
        from bot.store.postgres_sync import QmarkConnection

        shared = QmarkConnection.connect(postgres_url, read_only=True)
        try:
            return _reviewed_replies(shared) + _corrections(shared)
        finally:
            shared.close()
    conn = connect(database)
    try:
        if not _has_tables(conn, "bot_turns", "bot_flags", "bot_corrections"):
            return []
        return _reviewed_replies(conn) + _corrections(conn)
    finally:
        conn.close()


# -- reading the store ---------------------------------------------------------------------

_ROLE: dict[str, Role] = {"customer": "customer", "bot": "agent", "agent": "agent"}


class _Queryable(Protocol):
    """A sqlite3 connection, or a PostgreSQL one that reads like it (QmarkConnection)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


def _reviewed_replies(conn: _Queryable) -> list[FeedbackRecord]:
    # The latest review of each bot turn; a corrected turn is exported as its correction.
    rows = conn.execute(
        "SELECT f.turn_id, f.status, f.resolved_at FROM bot_flags f"
        " JOIN bot_turns t ON t.id = f.turn_id"
        " WHERE t.role = 'bot' AND f.status IN ('approved', 'corrected', 'rejected')"
        " ORDER BY f.resolved_at, f.id"
    ).fetchall()
    latest: dict[str, tuple[str, float]] = {}
    for row in rows:
        latest[row["turn_id"]] = (row["status"], float(row["resolved_at"] or 0.0))
    records = []
    for turn_id, (status, resolved_at) in latest.items():
        if status not in ("approved", "rejected"):
            continue  # a corrected turn is exported as its correction
        found = _exchange(conn, turn_id)
        if found is None:
            continue
        history, customer_text, reply = found
        records.append(
            FeedbackRecord(
                "approved" if status == "approved" else "rejected",
                f"turn:{turn_id}",
                history,
                customer_text,
                reply,
                resolved_at,
            )
        )
    return records


def _corrections(conn: _Queryable) -> list[FeedbackRecord]:
    records = []
    for row in conn.execute("SELECT * FROM bot_corrections ORDER BY created_at, id"):
        # A withdrawn correction was a mistake (or a test): nothing learns from it. Read
        # from the row, which a database the server has not migrated yet reads without.
        # keys(): `in` on a sqlite3.Row looks through its values, not its column names.
        if "withdrawn_at" in row.keys() and row["withdrawn_at"] is not None:  # noqa: SIM118
            continue
        history: tuple[LogMessage, ...] = ()
        if row["turn_id"] is not None:
            found = _exchange(conn, row["turn_id"])
            history = found[0] if found is not None else ()
        records.append(
            FeedbackRecord(
                "corrected",
                str(row["source_id"] or f"correction:{row['id']}"),
                history,
                str(row["question"]),
                str(row["answer"]),
                float(row["created_at"]),
            )
        )
    return records


def _exchange(conn: _Queryable, turn_id: str) -> tuple[tuple[LogMessage, ...], str, str] | None:
    """(history before the customer's message, that message, the reply) for a bot turn."""
    turn = conn.execute(
        "SELECT conversation_id, position, text FROM bot_turns WHERE id = ?", (turn_id,)
    ).fetchone()
    if turn is None:
        return None
    earlier = conn.execute(
        "SELECT role, text FROM bot_turns WHERE conversation_id = ? AND position < ?"
        " ORDER BY position",
        (turn["conversation_id"], turn["position"]),
    ).fetchall()
    start = len(earlier)
    while start > 0 and earlier[start - 1]["role"] == "customer":
        start -= 1
    if start == len(earlier):
        return None  # the bot spoke first: no question to learn from
    history = tuple(LogMessage(_ROLE[r["role"]], r["text"]) for r in earlier[:start])
    question = "\n".join(r["text"] for r in earlier[start:])
    return history, question, str(turn["text"])


def _has_tables(conn: sqlite3.Connection, *names: str) -> bool:
    placeholders = ", ".join("?" for _ in names)
    (found,) = conn.execute(
        f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ({placeholders})",
        names,
    ).fetchone()
    return int(found) == len(names)
