"""The registry's and the cycles' tables, as the hand-written migrations (version 1) built them.

Revision ID: finetune_0001
Revises:
Create Date: 2026-12-07

Those migrations were two components (``finetune``: the registry; ``retrain``: the cycles
and, in SQLite only, the lock), and a database may hold either or both: a home that
trained but never ran a cycle, or the SQLite file that holds only the lock of a home whose
registry is in PostgreSQL. So this revision builds each table that is missing, as they
built it, and leaves those there with their rows (PostgreSQL gets the lock table too, so
that one declaration holds for both: unused there, where cycles take an advisory lock).
Never edit it: add a revision instead.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "finetune_0001"
down_revision = None
branch_labels = None
depends_on = None

Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Seconds: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, sa.Identity(), primary_key=True)


def _slot() -> sa.Column[int]:
    return sa.Column(
        "slot", sa.Integer, sa.CheckConstraint("slot = 1"), primary_key=True, autoincrement=False
    )


def _base_models() -> None:
    op.create_table(
        "finetune_base_models",
        _id(),
        sa.Column("folder", sa.Text, nullable=False, unique=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("model_ref", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", Seconds, nullable=False),
        sa.CheckConstraint("source IN ('bootstrap', 'pretrained')"),
    )


def _adapters() -> None:
    op.create_table(
        "finetune_adapters",
        _id(),
        sa.Column("folder", sa.Text, nullable=False, unique=True),
        sa.Column("base_id", Id, sa.ForeignKey("finetune_base_models.id"), nullable=False),
        sa.Column("parent_id", Id, sa.ForeignKey("finetune_adapters.id")),
        sa.Column("metrics", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", Seconds, nullable=False),
    )


def _live() -> None:
    op.create_table(
        "finetune_live",
        _slot(),
        sa.Column("adapter_id", Id, sa.ForeignKey("finetune_adapters.id"), nullable=False),
        sa.Column("switched_at", Seconds, nullable=False),
    )


def _live_history() -> None:
    op.create_table(
        "finetune_live_history",
        _id(),
        sa.Column("adapter_id", Id, sa.ForeignKey("finetune_adapters.id"), nullable=False),
        sa.Column("previous_id", Id, sa.ForeignKey("finetune_adapters.id")),
        sa.Column("switched_at", Seconds, nullable=False),
    )


def _retrain_lock() -> None:
    op.create_table(
        "retrain_lock",
        _slot(),
        sa.Column("owner_pid", sa.Integer, nullable=False),
        sa.Column("owner_host", sa.Text, nullable=False),
        sa.Column("owner_start", sa.Text, nullable=False, server_default=""),
        sa.Column("acquired_at", Seconds, nullable=False),
        sa.Column("heartbeat_at", Seconds, nullable=False),
    )


def _retrain_cycles() -> None:
    op.create_table(
        "retrain_cycles",
        _id(),
        sa.Column("kind", sa.Text, nullable=False, server_default="cycle"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", Seconds, nullable=False),
        sa.Column("finished_at", Seconds),
        sa.Column("owner", sa.Text, nullable=False, server_default=""),
        sa.Column("live_adapter_id", Id),
        sa.Column("candidate_adapter_id", Id),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
        sa.Column("figures", sa.Text, nullable=False, server_default="{}"),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint("kind IN ('cycle', 'rollback')"),
        sa.CheckConstraint(
            "status IN ('running', 'promoted', 'kept', 'failed', 'abandoned', 'rolled_back')"
        ),
    )
    op.create_index("retrain_cycles_started", "retrain_cycles", ["started_at"])


# Parents before children (foreign keys).
TABLES: dict[str, Callable[[], None]] = {
    "finetune_base_models": _base_models,
    "finetune_adapters": _adapters,
    "finetune_live": _live,
    "finetune_live_history": _live_history,
    "retrain_lock": _retrain_lock,
    "retrain_cycles": _retrain_cycles,
}


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
