"""The knowledge base's tables, as the hand-written migration (version 1) built them.

Revision ID: knowledge_0001
Revises:
Create Date: 2026-12-08

A database that migration built is stamped with this revision rather than upgraded
(:attr:`retrieval.tables.HISTORY`), so this must stay what it built: never edit it, add a
revision instead. A table already there is left as it is, with its rows.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "knowledge_0001"
down_revision = None
branch_labels = None
depends_on = None

Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Seconds: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def _log_conversations() -> None:
    op.create_table(
        "log_conversations",
        # As built by hand: in SQLite a TEXT PRIMARY KEY may hold NULL (knowledge_0004).
        sa.Column("id", sa.Text, primary_key=True, nullable=True),
        sa.Column("content_hash", sa.Text, nullable=False, unique=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("messages", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("ingested_at", Seconds, nullable=False),
        sa.Column("rowid", Id, sa.Identity(), nullable=False),  # SQLite's own there
    )


def _entries() -> None:
    op.create_table(
        "entries",
        sa.Column("id", Id, sa.Identity(), primary_key=True),
        sa.Column("source_id", sa.Text, nullable=False),
        sa.Column("conversation_id", sa.Text, nullable=False),
        sa.Column("turn_index", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("customer_text", sa.Text, nullable=False),
        sa.Column("agent_reply", sa.Text, nullable=False),
        sa.Column("embed_hash", sa.Text, nullable=False),
        sa.Column("reply_hash", sa.Text, nullable=False),
        sa.Column("created_at", Seconds, nullable=False),
        sa.Column("deleted_at", Seconds),
        sa.CheckConstraint("kind IN ('log', 'curated')"),
    )
    live = sa.text("deleted_at IS NULL")
    op.create_index(
        "entries_live_source",
        "entries",
        ["source_id"],
        unique=True,
        sqlite_where=live,
        postgresql_where=live,
    )
    op.create_index("entries_conversation", "entries", ["conversation_id"])


def _embeddings() -> None:
    op.create_table(
        "embeddings",
        sa.Column("text_hash", sa.Text, primary_key=True),
        sa.Column("model_id", sa.Text, primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )


def _index_versions() -> None:
    op.create_table(
        "index_versions",
        sa.Column("id", Id, sa.Identity(), primary_key=True),
        sa.Column("folder", sa.Text, nullable=False),
        sa.Column("embedder_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("entry_count", sa.Integer, nullable=False),
        sa.Column("max_entry_id", Id, nullable=False),
        sa.Column("created_at", Seconds, nullable=False),
        sa.Column("is_live", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    live = sa.text("is_live = 1")
    op.create_index(
        "index_versions_one_live",
        "index_versions",
        ["is_live"],
        unique=True,
        sqlite_where=live,
        postgresql_where=live,
    )


TABLES: dict[str, Callable[[], None]] = {
    "log_conversations": _log_conversations,
    "entries": _entries,
    "embeddings": _embeddings,
    "index_versions": _index_versions,
}


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
