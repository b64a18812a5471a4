"""The conversation store's tables (conversations, turns, ratings, flags, corrections, the
questions attached to them and the details scrubbed from customers' messages), declared
once for SQLite and PostgreSQL, and their history.

``migrations/`` builds them (Alembic, version table ``alembic_version_conversations``); a
database built by the hand-written migrations before (``schema_migrations``, component
``bot``, versions 1 to 3) is stamped with the revision of the version it reached instead of
being built again, keeping its rows. Table names carry the ``bot_`` prefix: every
component shares the database.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from retrieval.database import SchemaHistory

metadata = sa.MetaData()

# An integer key: INTEGER in SQLite (a rowid alias, the id SQLite picks), BIGINT from an
# identity sequence in PostgreSQL.
Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# An 8-byte float in both (PostgreSQL's REAL has 4 bytes): epoch seconds, confidences,
# latencies.
Double: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def _text_key(name: str) -> sa.Column[str]:
    """A TEXT primary key. SQLite lets one hold NULL unless it says NOT NULL, and the
    hand-written schema did not say it; saying it now would rebuild the parents of every
    turn, flag and rating with their foreign keys switched off, which a migration inside a
    transaction cannot. No statement writes NULL there, so SQLite's tables stay as built
    (``schema_differences`` in tests/support/schema.py reads this mark)."""
    return sa.Column(name, sa.Text, primary_key=True, info={"sqlite_key_may_be_null": True})


# How a bot reply was produced (bot.core.types.Outcome); conversations_0004 added small talk.
OUTCOMES = "outcome IN ('generated', 'copied', 'handoff', 'small_talk')"

conversations = sa.Table(
    "bot_conversations",
    metadata,
    _text_key("id"),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("external_ref", sa.Text),  # the channel's own id (a Slack thread)
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("created_at", Double, nullable=False),
    sa.Column("updated_at", Double, nullable=False),
    sa.CheckConstraint("state IN ('bot', 'human', 'closed')"),
    sa.UniqueConstraint("channel", "external_ref"),
)

# A turn's sources are JSON text (bot.store.records.sources_json).
turns = sa.Table(
    "bot_turns",
    metadata,
    _text_key("id"),
    sa.Column("conversation_id", sa.Text, sa.ForeignKey("bot_conversations.id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text),
    sa.Column("confidence", Double),
    sa.Column("sources", sa.Text, nullable=False, server_default="[]"),
    sa.Column("latency_ms", Double),
    sa.Column("index_version", sa.Text),
    sa.Column("model_version", sa.Text),
    sa.Column("created_at", Double, nullable=False),
    sa.CheckConstraint("role IN ('customer', 'bot', 'agent')"),
    sa.CheckConstraint(OUTCOMES, name="bot_turns_outcome_check"),
    sa.UniqueConstraint("conversation_id", "position"),
)

ratings = sa.Table(
    "bot_ratings",
    metadata,
    sa.Column(
        "turn_id",
        sa.Text,
        sa.ForeignKey("bot_turns.id"),
        primary_key=True,
        info={"sqlite_key_may_be_null": True},  # as _text_key says
    ),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("created_at", Double, nullable=False),
    sa.CheckConstraint("value IN ('up', 'down')"),
)

FLAG_STATUSES = "('open', 'approved', 'corrected', 'rejected', 'resolved')"

flags = sa.Table(
    "bot_flags",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column("turn_id", sa.Text, sa.ForeignKey("bot_turns.id"), nullable=False),
    sa.Column("conversation_id", sa.Text, sa.ForeignKey("bot_conversations.id"), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    sa.Column("created_at", Double, nullable=False),
    sa.Column("resolved_at", Double),
    sa.Column("resolved_by", sa.Text),
    sa.CheckConstraint(f"status IN {FLAG_STATUSES}"),
)
OPEN = flags.c.status == "open"
# As the partial index below says it, with no parameter: PostgreSQL matches an ON CONFLICT
# to the index by its predicate, and a prepared statement's would not match.
OPEN_LITERALLY = sa.text("status = 'open'")
# The same open flag is not queued twice (an INSERT names this index's columns and WHERE).
sa.Index(
    "bot_flags_one_open",
    flags.c.turn_id,
    flags.c.reason,
    unique=True,
    sqlite_where=OPEN_LITERALLY,
    postgresql_where=OPEN_LITERALLY,
)
sa.Index("bot_flags_queue", flags.c.status, flags.c.created_at)

# The id is the curated answer's: retrieval serves it as source_id correction:<id>.
corrections = sa.Table(
    "bot_corrections",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column("turn_id", sa.Text, sa.ForeignKey("bot_turns.id")),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("source_id", sa.Text, unique=True),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", Double, nullable=False),
    sa.Column("edited_by", sa.Text),
    sa.Column("edited_at", Double),
    sa.Column("withdrawn_by", sa.Text),
    sa.Column("withdrawn_at", Double),
)

# Each is served as one more curated entry, correction:<id>:<position>, with the answer.
correction_questions = sa.Table(
    "bot_correction_questions",
    metadata,
    sa.Column(
        "correction_id",
        Id,
        sa.ForeignKey("bot_corrections.id"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("attached_by", sa.Text, nullable=False),
    sa.Column("attached_at", Double, nullable=False),
    sa.UniqueConstraint("correction_id", "question"),
    sa.Index("bot_correction_questions_text", "question"),
)

# What was scrubbed from a customer's own message (bot.core.types.CustomerDetail), kept
# apart from the turn for that conversation's operators only, and deleted after
# ops.customer_details_days; ``position`` is its order among the turn's.
customer_details = sa.Table(
    "bot_customer_details",
    metadata,
    sa.Column("turn_id", sa.Text, sa.ForeignKey("bot_turns.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("conversation_id", sa.Text, sa.ForeignKey("bot_conversations.id"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("created_at", Double, nullable=False),
    sa.CheckConstraint("kind IN ('email', 'phone', 'name')"),
    sa.Index("bot_customer_details_conversation", "conversation_id"),
    sa.Index("bot_customer_details_age", "created_at"),
)

HISTORY = SchemaHistory(
    metadata,
    Path(__file__).with_name("migrations"),
    version_table="alembic_version_conversations",
    legacy_component="bot",
    legacy_revisions={1: "conversations_0001", 2: "conversations_0002", 3: "conversations_0003"},
)
