"""The Slack adapter's tables, declared once for SQLite and PostgreSQL, and their history.

They reference the conversation store's ids but not its tables (no foreign keys), so the
adapter's state can live beside any conversation store. ``migrations/`` builds them
(Alembic, version table ``alembic_version_slack``); a database built by the hand-written
migrations before (``schema_migrations``, component ``slack``, version 1) holds exactly
these tables and is stamped with the first revision instead of built again.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from retrieval.database import SchemaHistory, Seconds

metadata = sa.MetaData()

# Handled event ids and message keys, each until it expires (Slack's retries).
seen = sa.Table(
    "slack_seen",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("expires_at", Seconds, nullable=False),
    sa.Index("slack_seen_expiry", "expires_at"),
)

# Which Slack thread is which conversation, and the user who started it with the bot.
threads = sa.Table(
    "slack_threads",
    metadata,
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("thread_ts", sa.Text, primary_key=True),
    sa.Column("conversation_id", sa.Text, nullable=False, unique=True),
    sa.Column("customer", sa.Text),
)

# Which bot message carries which reply turn (a reaction on it rates the turn).
replies = sa.Table(
    "slack_replies",
    metadata,
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("ts", sa.Text, primary_key=True),
    sa.Column("turn_id", sa.Text, nullable=False),
    sa.Column("conversation_id", sa.Text, nullable=False),
)

# Which hand-off post in the operators' channel belongs to which conversation.
handoff_posts = sa.Table(
    "slack_handoff_posts",
    metadata,
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("ts", sa.Text, primary_key=True),
    sa.Column("conversation_id", sa.Text, nullable=False),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Index("slack_handoff_posts_conversation", "conversation_id", "created_at"),
)

HISTORY = SchemaHistory(
    metadata,
    Path(__file__).with_name("migrations"),
    version_table="alembic_version_slack",
    legacy_component="slack",
    legacy_revisions={1: "slack_0001"},
)
