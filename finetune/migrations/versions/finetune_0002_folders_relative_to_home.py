"""Folders recorded relative to the home in SQLite too.

Revision ID: finetune_0002
Revises: finetune_0001
Create Date: 2026-12-07

SQLite kept an adapter's (and a bootstrapped base's) folder as the job that wrote it was
given it: absolute, or relative to that job's working directory. PostgreSQL has always
kept it relative to the home, so that any process finds it under its own home; now both
do (the home is the folder of the SQLite file), and a home can move. The rule is the one
``supportbot migrate-db`` applied on the way to PostgreSQL, which is left as it is.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import op

from retrieval.folders import relative_to_home

revision = "finetune_0002"
down_revision = "finetune_0001"
branch_labels = None
depends_on = None

# The folders the jobs write under the home: a relative path whose parent ends so is the
# home's, whatever working directory it was relative to.
_LAYOUT = (("models", "adapters"), ("models", "base"))


def _rewrite(table: sa.TableClause, columns: tuple[str, ...], home: Path) -> None:
    bind = op.get_bind()
    query = sa.select(table.c.id, *(table.c[c] for c in columns)).order_by(table.c.id)
    if "source" in table.c:  # a pretrained base names a hub id or the settings' folder
        query = query.where(table.c.source == "bootstrap")
    rows = bind.execute(query).all()
    taken = set(bind.execute(sa.select(table.c.folder)).scalars())
    for id_, *recorded in rows:
        values = {
            c: relative_to_home(r, home, _LAYOUT) for c, r in zip(columns, recorded, strict=True)
        }
        if values["folder"] != recorded[0] and values["folder"] in taken:
            continue  # two spellings of one folder were two rows: the first gets the name
        taken.discard(recorded[0])
        taken.add(values["folder"])
        bind.execute(table.update().where(table.c.id == id_).values(values))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    home = Path(bind.engine.url.database or "").parent
    adapters = sa.table("finetune_adapters", sa.column("id"), sa.column("folder"))
    bases = sa.table(
        "finetune_base_models",
        sa.column("id"),
        sa.column("folder"),
        sa.column("source"),
        sa.column("model_ref"),
    )
    _rewrite(adapters, ("folder",), home)
    _rewrite(bases, ("folder", "model_ref"), home)


def downgrade() -> None:
    pass  # not undone: which spelling each row had is not kept
