"""slack_seen.key NOT NULL in SQLite too.

Revision ID: slack_0002
Revises: slack_0001
Create Date: 2026-11-01

SQLite lets a PRIMARY KEY column that is not an INTEGER hold NULL unless it says NOT NULL,
and the hand-written schema did not say it; PostgreSQL has always refused. SQLite cannot
alter a column, so batch mode rebuilds the table there (copying its rows); PostgreSQL
alters it in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "slack_0002"
down_revision = "slack_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slack_seen") as table:
        table.alter_column("key", existing_type=sa.Text, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("slack_seen") as table:
        table.alter_column("key", existing_type=sa.Text, nullable=True)
