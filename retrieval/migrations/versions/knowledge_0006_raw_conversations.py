"""Conversations read by ingest, by a keyed hash of what was read.

Revision ID: knowledge_0006
Revises: knowledge_0005
Create Date: 2026-12-08

Ingest scrubbed every conversation it read before it could tell whether the scrubbed text
was already stored, so reading an unchanged log again took as long as the first time. The
table maps a keyed hash of a conversation as read to the content hash of what scrubbing
made of it. It starts empty: a database filled before is scrubbed once more by its next
ingest, which fills it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "knowledge_0006"
down_revision = "knowledge_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_conversations",
        sa.Column("raw_hash", sa.Text, primary_key=True),
        sa.Column("content_hash", sa.Text, nullable=False),
    )
    op.create_index("raw_conversations_content", "raw_conversations", ["content_hash"])


def downgrade() -> None:
    op.drop_index("raw_conversations_content", "raw_conversations")
    op.drop_table("raw_conversations")
