"""The conversation store's tables, as the hand-written migration (version 1) built them.

Revision ID: conversations_0001
Revises:
Create Date: 2026-12-08

A database that migration built is stamped with this revision rather than upgraded
(:attr:`bot.store.tables.HISTORY`), so this must stay what it built: never edit it, add a
revision instead. It builds only the tables that are missing, so a database holding some
of them keeps them with their rows.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "conversations_0001"
down_revision = None
branch_labels = None
depends_on = None

Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Double: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def _text_key(name: str, *references: str) -> sa.Column[str]:
    # As built by hand: in SQLite a TEXT PRIMARY KEY may hold NULL.
    return sa.Column(
        name, sa.Text, *map(sa.ForeignKey, references), primary_key=True, nullable=True
    )


def _conversations() -> None:
    op.create_table(
        "bot_conversations",
        _text_key("id"),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("external_ref", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("created_at", Double, nullable=False),
        sa.Column("updated_at", Double, nullable=False),
        sa.CheckConstraint("state IN ('bot', 'human', 'closed')"),
        sa.UniqueConstraint("channel", "external_ref"),
    )


def _turns() -> None:
    op.create_table(
        "bot_turns",
        _text_key("id"),
        sa.Column(
            "conversation_id", sa.Text, sa.ForeignKey("bot_conversations.id"), nullable=False
        ),
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
        sa.CheckConstraint("outcome IN ('generated', 'copied', 'handoff')"),
        sa.UniqueConstraint("conversation_id", "position"),
    )


def _ratings() -> None:
    op.create_table(
        "bot_ratings",
        _text_key("turn_id", "bot_turns.id"),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("created_at", Double, nullable=False),
        sa.CheckConstraint("value IN ('up', 'down')"),
    )


def _flags() -> None:
    op.create_table(
        "bot_flags",
        sa.Column("id", Id, sa.Identity(), primary_key=True),
        sa.Column("turn_id", sa.Text, sa.ForeignKey("bot_turns.id"), nullable=False),
        sa.Column(
            "conversation_id", sa.Text, sa.ForeignKey("bot_conversations.id"), nullable=False
        ),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("created_at", Double, nullable=False),
        sa.Column("resolved_at", Double),
        sa.Column("resolved_by", sa.Text),
        sa.CheckConstraint("status IN ('open', 'approved', 'corrected', 'rejected', 'resolved')"),
    )
    is_open = sa.text("status = 'open'")
    op.create_index(
        "bot_flags_one_open",
        "bot_flags",
        ["turn_id", "reason"],
        unique=True,
        sqlite_where=is_open,
        postgresql_where=is_open,
    )
    op.create_index("bot_flags_queue", "bot_flags", ["status", "created_at"])


def _corrections() -> None:
    op.create_table(
        "bot_corrections",
        sa.Column("id", Id, sa.Identity(), primary_key=True),
        sa.Column("turn_id", sa.Text, sa.ForeignKey("bot_turns.id")),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("source_id", sa.Text, unique=True),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", Double, nullable=False),
    )


# Parents before children (foreign keys).
TABLES: dict[str, Callable[[], None]] = {
    "bot_conversations": _conversations,
    "bot_turns": _turns,
    "bot_ratings": _ratings,
    "bot_flags": _flags,
    "bot_corrections": _corrections,
}


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
