"""The model registry's and the retraining cycles' tables, declared once for SQLite and
PostgreSQL, and their history.

``migrations/`` builds them (Alembic, version table ``alembic_version_finetune``). Its
first revision takes over a database that the hand-written migrations (components
``finetune`` and ``retrain``, version 1 each) built in part or in full: it adds only the
tables missing there, so their rows stay as they are.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from retrieval.database import Id, SchemaHistory, Seconds

metadata = sa.MetaData()


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, sa.Identity(), primary_key=True)


def _slot() -> sa.Column[int]:
    """The key of a table of one row."""
    return sa.Column(
        "slot", sa.Integer, sa.CheckConstraint("slot = 1"), primary_key=True, autoincrement=False
    )


# Folders are recorded relative to the home when inside it (retrieval.folders.recorded);
# metrics, data and figures are JSON objects.
base_models = sa.Table(
    "finetune_base_models",
    metadata,
    _id(),
    sa.Column("folder", sa.Text, nullable=False, unique=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("model_ref", sa.Text, nullable=False),
    sa.Column("metrics", sa.Text, nullable=False, server_default="{}"),
    sa.Column("created_at", Seconds, nullable=False),
    sa.CheckConstraint("source IN ('bootstrap', 'pretrained')"),
)

adapters = sa.Table(
    "finetune_adapters",
    metadata,
    _id(),
    sa.Column("folder", sa.Text, nullable=False, unique=True),
    sa.Column("base_id", Id, sa.ForeignKey("finetune_base_models.id"), nullable=False),
    sa.Column("parent_id", Id, sa.ForeignKey("finetune_adapters.id")),
    sa.Column("metrics", sa.Text, nullable=False, server_default="{}"),
    sa.Column("created_at", Seconds, nullable=False),
)

# The live adapter: one row, replaced in one statement, so a reader never sees none.
live = sa.Table(
    "finetune_live",
    metadata,
    _slot(),
    sa.Column("adapter_id", Id, sa.ForeignKey("finetune_adapters.id"), nullable=False),
    sa.Column("switched_at", Seconds, nullable=False),
)

live_history = sa.Table(
    "finetune_live_history",
    metadata,
    _id(),
    sa.Column("adapter_id", Id, sa.ForeignKey("finetune_adapters.id"), nullable=False),
    sa.Column("previous_id", Id, sa.ForeignKey("finetune_adapters.id")),
    sa.Column("switched_at", Seconds, nullable=False),
)

# Who holds the retraining lock of the home (finetune.cycles.CycleLock, always in the home's
# SQLite file: replicas sharing PostgreSQL hold an advisory lock besides).
retrain_lock = sa.Table(
    "retrain_lock",
    metadata,
    _slot(),
    sa.Column("owner_pid", sa.Integer, nullable=False),
    sa.Column("owner_host", sa.Text, nullable=False),
    sa.Column("owner_start", sa.Text, nullable=False, server_default=""),
    sa.Column("acquired_at", Seconds, nullable=False),
    sa.Column("heartbeat_at", Seconds, nullable=False),
)

retrain_cycles = sa.Table(
    "retrain_cycles",
    metadata,
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
    sa.Index("retrain_cycles_started", "started_at"),
)

HISTORY = SchemaHistory(
    metadata, Path(__file__).with_name("migrations"), version_table="alembic_version_finetune"
)
