"""Index version folders recorded relative to the home in SQLite too.

Revision ID: knowledge_0005
Revises: knowledge_0004
Create Date: 2026-12-08

SQLite kept an index version's folder (and its tuned embedder's) as the job that wrote it
was given it: absolute, or relative to that job's working directory. PostgreSQL has always
kept it relative to the home, so that any process finds it under its own home; now both do
(the home is the folder of the SQLite file), and a home can move. The rule is the one
``supportbot migrate-db`` applied on the way to PostgreSQL, as the model registry's
finetune_0002.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import op

from retrieval.folders import relative_to_home

revision = "knowledge_0005"
down_revision = "knowledge_0004"
branch_labels = None
depends_on = None

# The folders the jobs write under the home: a relative path whose parent ends so is the
# home's, whatever working directory it was relative to.
_LAYOUT = (("indexes",), ("models", "embedders"))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    home = Path(bind.engine.url.database or "").parent
    versions = sa.table(
        "index_versions", sa.column("id"), sa.column("folder"), sa.column("embedder_location")
    )
    rows = bind.execute(sa.select(versions).order_by(versions.c.id)).all()
    for id_, folder, location in rows:
        bind.execute(
            versions.update()
            .where(versions.c.id == id_)
            .values(
                folder=relative_to_home(folder, home, _LAYOUT),
                embedder_location=None
                if location is None
                else relative_to_home(location, home, _LAYOUT),
            )
        )


def downgrade() -> None:
    pass  # not undone: which spelling each row had is not kept
