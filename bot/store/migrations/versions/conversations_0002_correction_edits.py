"""Corrections can be edited and withdrawn (issue 18): who did it and when.

Revision ID: conversations_0002
Revises: conversations_0001
Create Date: 2026-12-08

The hand-written migration version 2; a database it built is stamped with this revision.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "conversations_0002"
down_revision = "conversations_0001"
branch_labels = None
depends_on = None

Double: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")

COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "edited_by": sa.Text(),
    "edited_at": Double,
    "withdrawn_by": sa.Text(),
    "withdrawn_at": Double,
}


def upgrade() -> None:
    for name, type_ in COLUMNS.items():
        op.add_column("bot_corrections", sa.Column(name, type_))


def downgrade() -> None:
    with op.batch_alter_table("bot_corrections") as table:
        for name in COLUMNS:
            table.drop_column(name)
