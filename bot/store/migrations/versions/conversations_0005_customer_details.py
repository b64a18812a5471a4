"""The details scrubbed from a customer's own messages, kept for operators (issue 18).

Revision ID: conversations_0005
Revises: conversations_0004
Create Date: 2026-12-07

E-mails, phone numbers and names a live customer wrote are scrubbed from the turn as
before; this table keeps them apart, per turn, for that conversation's operators, until
ops.customer_details_days have passed. A new table only: every existing row stays as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "conversations_0005"
down_revision = "conversations_0004"
branch_labels = None
depends_on = None

Double: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bot_customer_details",
        sa.Column("turn_id", sa.Text, sa.ForeignKey("bot_turns.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column(
            "conversation_id", sa.Text, sa.ForeignKey("bot_conversations.id"), nullable=False
        ),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", Double, nullable=False),
        sa.PrimaryKeyConstraint("turn_id", "position"),
        sa.CheckConstraint("kind IN ('email', 'phone', 'name')"),
    )
    op.create_index(
        "bot_customer_details_conversation", "bot_customer_details", ["conversation_id"]
    )
    op.create_index("bot_customer_details_age", "bot_customer_details", ["created_at"])


def downgrade() -> None:
    op.drop_table("bot_customer_details")
