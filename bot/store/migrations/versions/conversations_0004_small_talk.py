"""Replies to small talk: a turn's outcome may be ``small_talk`` (retrieval.small_talk).

Revision ID: conversations_0004
Revises: conversations_0003
Create Date: 2026-12-07

Only the CHECK on ``bot_turns.outcome`` changes. PostgreSQL replaces the constraint.
SQLite cannot alter a CHECK, and rebuilding ``bot_turns`` would need the foreign keys of
its ratings and flags switched off, which a migration inside a transaction cannot do
(see bot.store.tables._text_key). So the table's declaration is edited in place, in the
way SQLite documents for loosening a constraint ("Making Other Kinds Of Table Schema
Changes", https://www.sqlite.org/lang_altertable.html): every stored row satisfied the
narrower CHECK, so it satisfies the wider one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "conversations_0004"
down_revision = "conversations_0003"
branch_labels = None
depends_on = None

_BEFORE = "outcome IN ('generated', 'copied', 'handoff')"
_AFTER = "outcome IN ('generated', 'copied', 'handoff', 'small_talk')"


def upgrade() -> None:
    _replace_check(_BEFORE, _AFTER)


def downgrade() -> None:
    # A set reply sent as it is: the nearest outcome the narrower CHECK allows.
    op.execute("UPDATE bot_turns SET outcome = 'copied' WHERE outcome = 'small_talk'")
    _replace_check(_AFTER, _BEFORE)


def _replace_check(before: str, after: str) -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        # Named by PostgreSQL (bot_turns_outcome_check) when the table was built, but
        # found by what it checks, whoever built it.
        names = conn.scalars(
            sa.text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'bot_turns'::regclass"
                " AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%outcome%'"
            )
        ).all()
        for name in names:
            op.drop_constraint(name, "bot_turns", type_="check")
        op.create_check_constraint("bot_turns_outcome_check", "bot_turns", after)
        return
    declared = conn.scalar(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'bot_turns'")
    )
    if declared is None or declared.count(before) != 1:
        raise RuntimeError(f"bot_turns is not declared as expected (looked for {before!r})")
    version = int(conn.exec_driver_sql("PRAGMA schema_version").scalar_one())
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        conn.execute(
            sa.text(
                "UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'bot_turns'"
            ),
            {"sql": declared.replace(before, after)},
        )
        # A new schema version makes every connection read the declaration again.
        conn.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    finally:
        conn.exec_driver_sql("PRAGMA writable_schema = OFF")
