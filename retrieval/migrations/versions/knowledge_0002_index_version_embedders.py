"""An index version names the embedder that serves it (hand-written version 2).

Revision ID: knowledge_0002
Revises: knowledge_0001
Create Date: 2026-12-08

embedder_location: a tuned embedder folder, or NULL for the configured one;
base_embedder: the configured embedder it derives from. The pair is always served together,
and a change of configured model is still detected. Stamped on a database the hand-written
version 2 built: never edit it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "knowledge_0002"
down_revision = "knowledge_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("index_versions", sa.Column("embedder_location", sa.Text))
    op.add_column("index_versions", sa.Column("base_embedder", sa.Text))


def downgrade() -> None:
    op.drop_column("index_versions", "base_embedder")
    op.drop_column("index_versions", "embedder_location")
