"""Copy a home's SQLite file into PostgreSQL (``supportbot migrate-db``): the tables of
each component declared with SQLAlchemy that the caller names (the conversation store's,
the Slack adapter's, the model registry's and the retraining cycles', the dashboard's, the
knowledge base's: :func:`retrieval.database.copy_tables` copies any of them). The replicas
keep those in PostgreSQL too, so that a Slack thread started before the move continues
after it, every replica serves the same adapter and the same index version, a curated
answer keeps its FAISS id, and the operators keep their accounts, sessions and review log.

The copy is an upsert in primary-key order, batch by batch, so it can be stopped and run
again: rows already there are brought up to date (a conversation handed to a human since,
a rating replaced, a flag resolved), new rows are added, nothing is duplicated. Ids are
kept, so a correction keeps the ``correction:<id>`` its curated answer is served under and
the live adapter's pointer, a cycle's adapter ids and the entry ids a published FAISS index
holds stay valid, and the identity sequences are moved past the copied ids. At the end
every table is counted on both sides; :class:`CountMismatch` says which differ (the source
kept taking writes: run it again once the old server is stopped).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.store.tables import conversations
from retrieval.database import (
    SchemaHistory,
    copy_tables,
    count_rows,
    sqlite_reader,
    sqlite_url,
    sync_engine,
    upgrade,
    upgrade_database,
)


@dataclass(frozen=True)
class TableCount:
    table: str
    source: int
    target: int

    @property
    def matches(self) -> bool:
        return self.source == self.target


class CountMismatch(RuntimeError):
    def __init__(self, counts: Sequence[TableCount]) -> None:
        self.counts = list(counts)
        differing = ", ".join(
            f"{c.table}: {c.source} in the source, {c.target} in PostgreSQL"
            for c in counts
            if not c.matches
        )
        super().__init__(f"row counts differ after the copy ({differing})")


class SourceNotFound(FileNotFoundError):
    pass


def migrate_sqlite_to_postgres(
    source: Path,
    target_url: str,
    *,
    declared: Iterable[SchemaHistory] = (),
    on_batch: Callable[[str, int], None] = lambda table, rows: None,
) -> list[TableCount]:
    """Copy the tables of each ``declared`` component that ``source`` has into
    ``target_url``; return the counts.

    Creates (migrates) the PostgreSQL schema first. ``on_batch(table, rows)`` is called
    after each committed batch. Raises SourceNotFound, CountMismatch.
    """
    if not source.is_file():
        raise SourceNotFound(f"no SQLite database at {source}")
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if not _sqlite_has_table(reader, conversations.name):
            raise SourceNotFound(f"{source} holds no conversation store ({conversations.name})")
    finally:
        reader.close()
    counts = _copy_declared(list(declared), source, target_url, on_batch)
    if not all(c.matches for c in counts):
        raise CountMismatch(counts)
    return counts


def _copy_declared(
    declared: Sequence[SchemaHistory],
    source: Path,
    target_url: str,
    on_batch: Callable[[str, int], None],
) -> list[TableCount]:
    """The components whose tables are declared (SQLAlchemy) and migrated (Alembic): each
    history brought up to date in both databases (as any command of this release does on
    first use: a home an earlier release wrote may keep rows the way that release did),
    then its tables copied."""
    for history in declared:
        upgrade_database(sqlite_url(source), history)
    reader, writer = sqlite_reader(source), sync_engine(target_url, pool_size=1)
    try:
        counts = []
        for history in declared:
            with writer.begin() as conn:
                upgrade(conn, history)
            copied = copy_tables(history.metadata, reader, writer, on_batch=on_batch)
            counts += [
                TableCount(name, count_rows(reader, table), count_rows(writer, table))
                for name, table in history.metadata.tables.items()
                if name in copied
            ]
        return counts
    finally:
        reader.dispose()
        writer.dispose()


def _sqlite_has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None
