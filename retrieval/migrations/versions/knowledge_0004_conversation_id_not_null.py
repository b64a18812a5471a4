"""log_conversations.id NOT NULL in SQLite too.

Revision ID: knowledge_0004
Revises: knowledge_0003
Create Date: 2026-12-08

SQLite lets a PRIMARY KEY column that is not an INTEGER hold NULL unless it says NOT NULL,
and the hand-written schema did not say it; PostgreSQL has always refused. SQLite cannot
alter a column, so batch mode rebuilds the table there, copying its rows with their rowids
(the order conversations were stored in): it is given the table with SQLite's rowid named,
rather than reflecting it, which would leave the rowid behind.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "knowledge_0004"
down_revision = "knowledge_0003"
branch_labels = None
depends_on = None


def _as_built(id_nullable: bool) -> sa.Table:
    return sa.Table(
        "log_conversations",
        sa.MetaData(),
        sa.Column("id", sa.Text, primary_key=True, nullable=id_nullable),
        sa.Column("content_hash", sa.Text, nullable=False, unique=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("messages", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("ingested_at", sa.REAL, nullable=False),
        sa.Column("rowid", sa.Integer, nullable=False),
    )


def _alter(nullable: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("log_conversations", copy_from=_as_built(not nullable)) as table:
        table.alter_column("id", existing_type=sa.Text, nullable=nullable)


def upgrade() -> None:
    _alter(nullable=False)


def downgrade() -> None:
    _alter(nullable=True)
