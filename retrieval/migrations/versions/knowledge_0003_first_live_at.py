"""When an index version was first served (hand-written version 3).

Revision ID: knowledge_0003
Revises: knowledge_0002
Create Date: 2026-12-08

A retraining cycle records its candidate version before the gate decides; only a version
that was served once is a place to roll back to. Every earlier row was live when it was
recorded. Stamped on a database the hand-written version 3 built: never edit it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "knowledge_0003"
down_revision = "knowledge_0002"
branch_labels = None
depends_on = None

Seconds: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    op.add_column("index_versions", sa.Column("first_live_at", Seconds))
    versions = sa.table("index_versions", sa.column("first_live_at"), sa.column("created_at"))
    op.execute(versions.update().values(first_live_at=versions.c.created_at))


def downgrade() -> None:
    op.drop_column("index_versions", "first_live_at")
