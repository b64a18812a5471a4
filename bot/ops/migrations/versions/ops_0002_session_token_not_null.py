"""ops_sessions.token_hash NOT NULL in SQLite too.

Revision ID: ops_0002
Revises: ops_0001
Create Date: 2026-12-07

SQLite lets a PRIMARY KEY column that is not an INTEGER hold NULL unless it says NOT NULL,
and the hand-written schema did not say it; PostgreSQL has always refused. SQLite cannot
alter a column, so batch mode rebuilds the table there (copying its rows: the sessions
stay logged in); PostgreSQL alters it in place. The rebuild is given the table as
ops_0001 built it rather than reflecting it: SQLite's reflection loses the ON DELETE
CASCADE of the hand-written schema's inline REFERENCES.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ops_0002"
down_revision = "ops_0001"
branch_labels = None
depends_on = None


Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Seconds: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def _sessions(*, token_nullable: bool) -> sa.Table:
    return sa.Table(
        "ops_sessions",
        sa.MetaData(),
        sa.Column("token_hash", sa.Text, primary_key=True, nullable=token_nullable),
        sa.Column(
            "operator_id",
            Id,
            sa.ForeignKey("ops_operators.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("created_at", Seconds, nullable=False),
        sa.Column("expires_at", Seconds, nullable=False),
        sa.Index("ops_sessions_expiry", "expires_at"),
    )


def upgrade() -> None:
    with op.batch_alter_table("ops_sessions", copy_from=_sessions(token_nullable=True)) as table:
        table.alter_column("token_hash", existing_type=sa.Text, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("ops_sessions", copy_from=_sessions(token_nullable=False)) as table:
        table.alter_column("token_hash", existing_type=sa.Text, nullable=True)
