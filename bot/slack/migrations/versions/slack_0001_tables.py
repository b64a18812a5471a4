"""The Slack adapter's tables, as the hand-written migration (version 1) built them.

Revision ID: slack_0001
Revises:
Create Date: 2026-11-01

A database that migration built is stamped with this revision rather than upgraded
(:attr:`bot.slack.tables.HISTORY`), so this must stay what it built: never edit it, add a
revision instead.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "slack_0001"
down_revision = None
branch_labels = None
depends_on = None

Seconds: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "slack_seen",
        # As built by hand: in SQLite a TEXT PRIMARY KEY may hold NULL (slack_0002 fixes it).
        sa.Column("key", sa.Text, primary_key=True, nullable=True),
        sa.Column("expires_at", Seconds, nullable=False),
    )
    op.create_index("slack_seen_expiry", "slack_seen", ["expires_at"])
    op.create_table(
        "slack_threads",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("thread_ts", sa.Text, primary_key=True),
        sa.Column("conversation_id", sa.Text, nullable=False, unique=True),
        sa.Column("customer", sa.Text),
    )
    op.create_table(
        "slack_replies",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("ts", sa.Text, primary_key=True),
        sa.Column("turn_id", sa.Text, nullable=False),
        sa.Column("conversation_id", sa.Text, nullable=False),
    )
    op.create_table(
        "slack_handoff_posts",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("ts", sa.Text, primary_key=True),
        sa.Column("conversation_id", sa.Text, nullable=False),
        sa.Column("created_at", Seconds, nullable=False),
    )
    op.create_index(
        "slack_handoff_posts_conversation", "slack_handoff_posts", ["conversation_id", "created_at"]
    )


def downgrade() -> None:
    for table in ("slack_handoff_posts", "slack_replies", "slack_threads", "slack_seen"):
        op.drop_table(table)
