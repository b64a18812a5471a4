"""The dashboard's tables, as the hand-written migration (version 1) built them.

Revision ID: ops_0001
Revises:
Create Date: 2026-12-07

A database that migration built is stamped with this revision rather than upgraded
(:attr:`bot.ops.tables.HISTORY`), so this must stay what it built: never edit it, add a
revision instead.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ops_0001"
down_revision = None
branch_labels = None
depends_on = None

Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Seconds: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ops_operators",
        sa.Column("id", Id, sa.Identity(), primary_key=True),
        sa.Column(
            "name", sa.Text().with_variant(sa.Text(collation="NOCASE"), "sqlite"), nullable=False
        ),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", Seconds, nullable=False),
        sa.Column("last_login_at", Seconds),
        sa.UniqueConstraint("name").ddl_if(dialect="sqlite"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ops_operators_name", "ops_operators", [sa.text("lower(name)")], unique=True
        )
    op.create_table(
        "ops_sessions",
        # As built by hand: in SQLite a TEXT PRIMARY KEY may hold NULL (ops_0002 fixes it).
        sa.Column("token_hash", sa.Text, primary_key=True, nullable=True),
        sa.Column(
            "operator_id",
            Id,
            sa.ForeignKey("ops_operators.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("created_at", Seconds, nullable=False),
        sa.Column("expires_at", Seconds, nullable=False),
    )
    op.create_index("ops_sessions_expiry", "ops_sessions", ["expires_at"])
    op.create_table(
        "ops_actions",
        sa.Column("id", Id, sa.Identity(), primary_key=True),
        sa.Column("operator", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("conversation_id", sa.Text, nullable=False),
        sa.Column("turn_id", sa.Text),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", Seconds, nullable=False),
    )
    op.create_index("ops_actions_conversation", "ops_actions", ["conversation_id", "created_at"])


def downgrade() -> None:
    for table in ("ops_actions", "ops_sessions", "ops_operators"):
        op.drop_table(table)
