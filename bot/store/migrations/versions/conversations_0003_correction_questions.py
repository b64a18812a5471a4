"""Questions attached to a correction (issue 20).

Revision ID: conversations_0003
Revises: conversations_0002
Create Date: 2026-12-08

Each is served as one more curated entry, correction:<id>:<position>, with the
correction's answer. The hand-written migration version 3; a database it built is stamped
with this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "conversations_0003"
down_revision = "conversations_0002"
branch_labels = None
depends_on = None

Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Double: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bot_correction_questions",
        sa.Column("correction_id", Id, sa.ForeignKey("bot_corrections.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("attached_by", sa.Text, nullable=False),
        sa.Column("attached_at", Double, nullable=False),
        sa.PrimaryKeyConstraint("correction_id", "position"),
        sa.UniqueConstraint("correction_id", "question"),
    )
    op.create_index("bot_correction_questions_text", "bot_correction_questions", ["question"])


def downgrade() -> None:
    op.drop_table("bot_correction_questions")
