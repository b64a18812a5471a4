"""Where the model registry and the retraining cycle log keep their rows: the home folder's
SQLite file (one box, the default) or the PostgreSQL database that replicas share
(``storage.database_url``), through :mod:`retrieval.records_db` (which the knowledge
base's store uses too). :func:`open_records` picks from :class:`GeneratorPaths`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval import records_db
from retrieval.records_db import PostgresRecords, Records, Row, SqliteRecords

if TYPE_CHECKING:
    from finetune.pipeline import GeneratorPaths

__all__ = [
    "PostgresRecords",
    "Records",
    "Row",
    "SqliteRecords",
    "open_records",
    "relative_to_home",
]


def open_records(
    paths: GeneratorPaths,
    component: str,
    *,
    sqlite_migrations: Sequence[str],
    postgres_migrations: Sequence[str],
) -> Records:
    """``component``'s tables, migrated: in PostgreSQL when ``paths.postgres_url`` is set,
    else in the SQLite file ``paths.database``."""
    return records_db.open_records(
        paths.database,
        component,
        postgres_url=paths.postgres_url,
        sqlite_migrations=sqlite_migrations,
        postgres_migrations=postgres_migrations,
    )


# Where the jobs write the folders a registry records, under the home (see GeneratorPaths).
_HOME_LAYOUT = (("models", "adapters"), ("models", "base"))


def relative_to_home(recorded: str, home: Path) -> str:
    """A folder as a SQLite registry recorded it, as the PostgreSQL registry records it
    (``supportbot migrate-db``): relative to ``home``, the folder holding the SQLite file;
    a path that is not the home's by location ends in the home's layout
    (``models/adapters/<version>``, ``models/base/<version>``: the leftover cleanup
    already matches folders by version name). See :func:`records_db.relative_to_home`."""
    return records_db.relative_to_home(recorded, home, _HOME_LAYOUT)
