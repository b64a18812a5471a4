"""What the bot hands the retraining cycle: operator feedback as plain records.

:func:`export_feedback` reads the conversation store's tables: bot replies an operator
approved or rejected (the latest review of a turn wins) and every correction not
withdrawn (as last edited), each with the conversation before it. ``supportbot retrain``
gives them to :func:`finetune.learning.run_learning_cycle`, which never imports the bot.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from bot.store.tables import HISTORY, corrections, flags, turns
from finetune.retrain import FeedbackKind, FeedbackRecord
from retrieval.database import database_url, migrated_engine, reading
from retrieval.pii import scrub
from retrieval.records import LogMessage, Role


def export_feedback(database: Path, *, postgres_url: str | None = None) -> list[FeedbackRecord]:
    """Approved, rejected and corrected replies, oldest first; [] before the bot has run.

    Read from PostgreSQL instead of ``database`` when ``postgres_url`` is given. The
    tables are brought to their latest revision first, as the server would on starting:
    a job may run before the server that migrates them has.
    """
    engine = migrated_engine(database_url(database, postgres_url), HISTORY, pool_size=None)
    try:
        with reading(engine) as conn:
            return _reviewed_replies(conn) + _corrections(conn)
    finally:
        engine.dispose()


# -- reading the store ---------------------------------------------------------------------

_ROLE: dict[str, Role] = {"customer": "customer", "bot": "agent", "agent": "agent"}
_t, _f, _k = turns.c, flags.c, corrections.c


def _reviewed_replies(conn: sa.Connection) -> list[FeedbackRecord]:
    # The latest review of each bot turn; a corrected turn is exported as its correction.
    reviews = conn.execute(
        sa.select(_f.turn_id, _f.status, _f.resolved_at)
        .join_from(flags, turns)
        .where(_t.role == "bot", _f.status.in_(("approved", "corrected", "rejected")))
        .order_by(_f.resolved_at, _f.id)
    )
    latest = {turn_id: (status, float(at or 0.0)) for turn_id, status, at in reviews}
    records = []
    for turn_id, (status, resolved_at) in latest.items():
        if status not in ("approved", "rejected"):
            continue  # a corrected turn is exported as its correction
        found = _exchange(conn, turn_id)
        if found is None:
            continue
        history, customer_text, reply = found
        kind: FeedbackKind = "approved" if status == "approved" else "rejected"
        records.append(
            FeedbackRecord(kind, f"turn:{turn_id}", history, customer_text, reply, resolved_at)
        )
    return records


def _corrections(conn: sa.Connection) -> list[FeedbackRecord]:
    # A withdrawn correction was a mistake (or a test): nothing learns from it.
    served = sa.select(corrections).where(_k.withdrawn_at.is_(None))
    records = []
    for row in conn.execute(served.order_by(_k.created_at, _k.id)).mappings():
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


def _trainable(role: str, text: str) -> str:
    """A turn's text as training may read it. An operator's message is stored as typed (it
    may rightly give the shop's own phone number), and it greets and answers the customer
    by name ("Hi Dana, ..."): scrubbed here, by the rules (greetings, sign-offs, e-mails,
    phones, cards), so that no customer's name or number is trained on. Customers' and the
    bot's turns were scrubbed when stored."""
    return scrub(text).text if role == "agent" else text


def _exchange(conn: sa.Connection, turn_id: str) -> tuple[tuple[LogMessage, ...], str, str] | None:
    """(history before the customer's message, that message, the reply) for a bot turn."""
    turn = conn.execute(
        sa.select(_t.conversation_id, _t.position, _t.text).where(_t.id == turn_id)
    ).first()
    if turn is None:
        return None
    earlier = conn.execute(
        sa.select(_t.role, _t.text)
        .where(_t.conversation_id == turn.conversation_id, _t.position < turn.position)
        .order_by(_t.position)
    ).all()
    start = len(earlier)
    while start > 0 and earlier[start - 1].role == "customer":
        start -= 1
    if start == len(earlier):
        return None  # the bot spoke first: no question to learn from
    history = tuple(LogMessage(_ROLE[r.role], _trainable(r.role, r.text)) for r in earlier[:start])
    question = "\n".join(r.text for r in earlier[start:])
    return history, question, str(turn.text)
