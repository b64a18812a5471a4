"""The dashboard's tables (operators, their sessions, the review log), declared once for
SQLite and PostgreSQL, and their history.

They live in the same database as the conversations they review. ``migrations/`` builds
them (Alembic, version table ``alembic_version_ops``); a database built by the
hand-written migrations before (``schema_migrations``, component ``ops``, version 1) holds
exactly what the first revision builds and is stamped with it instead, keeping its rows.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from retrieval.database import Id, SchemaHistory, Seconds

metadata = sa.MetaData()

# A name is unique whatever its case: SQLite compares the column NOCASE, PostgreSQL has a
# unique index on lower(name). The statements compare lower(name), which both cover.
operators = sa.Table(
    "ops_operators",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column(
        "name", sa.Text().with_variant(sa.Text(collation="NOCASE"), "sqlite"), nullable=False
    ),
    sa.Column("password_hash", sa.Text, nullable=False),  # scrypt (bot.ops.passwords)
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("last_login_at", Seconds),
    sa.UniqueConstraint("name").ddl_if(dialect="sqlite"),
    sa.Index("ops_operators_name", sa.func.lower(sa.text("name")), unique=True).ddl_if(
        dialect="postgresql"
    ),
)

# A session's cookie token is kept only as its SHA-256 hash.
sessions = sa.Table(
    "ops_sessions",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column(
        "operator_id", Id, sa.ForeignKey("ops_operators.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("expires_at", Seconds, nullable=False),
    sa.Index("ops_sessions_expiry", "expires_at"),
)

# What operators did (bot.ops.storage.ReviewAction), by name: the log outlives accounts.
actions = sa.Table(
    "ops_actions",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column("operator", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("conversation_id", sa.Text, nullable=False),
    sa.Column("turn_id", sa.Text),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Index("ops_actions_conversation", "conversation_id", "created_at"),
)

HISTORY = SchemaHistory(
    metadata,
    Path(__file__).with_name("migrations"),
    version_table="alembic_version_ops",
    legacy_component="ops",
    legacy_revisions={1: "ops_0001"},
)
