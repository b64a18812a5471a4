"""Copy a home's SQLite file into PostgreSQL (``supportbot migrate-db``): the tables of
each component declared with SQLAlchemy that the caller names (the conversation store's,
the Slack adapter's, the model registry's and the retraining cycles', the dashboard's:
:func:`retrieval.database.copy_tables` copies any of them) and the knowledge base's when
the installation has them (the replicas keep those in PostgreSQL too, so that a Slack
thread started before the move continues after it, every replica serves the same adapter
and the same index version, a curated answer keeps its FAISS id, and the operators keep
their accounts, sessions and review log).

The copy is an upsert in primary-key order, batch by batch, so it can be stopped and run
again: rows already there are brought up to date (a conversation handed to a human since,
a rating replaced, a flag resolved), new rows are added, nothing is duplicated. Ids are
kept, so a correction keeps the ``correction:<id>`` its curated answer is served under and
the live adapter's pointer, a cycle's adapter ids and the entry ids a published FAISS index
holds stay valid, and the identity sequences are moved past the copied ids. An index
version's folder is recorded relative to the home folder that holds the SQLite file, as
PostgreSQL records it (:func:`retrieval.store.relative_to_home`; the model registry's
tables already record theirs so in both). At the end every table is
counted on both sides; :class:`CountMismatch` says which differ (the source kept taking
writes: run it again once the old server is stopped).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bot.store.tables import conversations
from retrieval import postgres_db
from retrieval import store as knowledge
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

# A row as it is read from SQLite and written to PostgreSQL; a table may rewrite it on
# the way, given the home folder that holds the SQLite file.
Values = tuple[object, ...]

_BATCH = 1000


@dataclass(frozen=True)
class CopiedTable:
    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    integer_key: bool = False  # every key column holds integers
    rewrite: Callable[[Values, Path], Values] | None = None
    # Run in PostgreSQL before the copy: what a partial unique index needs when a row
    # already copied changed since (another index version made live).
    prepare: str | None = None


def _index_version_folders(row: Values, home: Path) -> Values:
    id_, folder, *middle, location, base, first_live = row
    if location is not None:
        location = knowledge.relative_to_home(str(location), home)
    return (id_, knowledge.relative_to_home(str(folder), home), *middle, location, base, first_live)


# The knowledge base's tables, copied when the source has them. Parents before children
# (foreign keys); every column is copied as it is.
TABLES = [
    # log_conversations' rowid keeps the order conversations were
    # stored in; an entry's id is its id in every published FAISS index.
    CopiedTable(
        "log_conversations",
        ("id",),
        ("id", "content_hash", "source", "messages", "metadata", "ingested_at", "rowid"),
    ),
    CopiedTable(
        "entries",
        ("id",),
        (
            "id",
            "source_id",
            "conversation_id",
            "turn_index",
            "kind",
            "context",
            "customer_text",
            "agent_reply",
            "embed_hash",
            "reply_hash",
            "created_at",
            "deleted_at",
        ),
        integer_key=True,
    ),
    CopiedTable(
        "embeddings",
        ("text_hash", "model_id"),
        ("text_hash", "model_id", "vector"),
    ),
    CopiedTable(
        "index_versions",
        ("id",),
        (
            "id",
            "folder",
            "embedder_id",
            "kind",
            "entry_count",
            "max_entry_id",
            "created_at",
            "is_live",
            "embedder_location",
            "base_embedder",
            "first_live_at",
        ),
        integer_key=True,
        rewrite=_index_version_folders,
        prepare="UPDATE index_versions SET is_live = 0 WHERE is_live = 1",
    ),
]


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
    ``target_url``, and the knowledge base's; return the counts.

    Creates (migrates) the PostgreSQL schema first. ``on_batch(table, rows)`` is called
    after each committed batch. Raises SourceNotFound, CountMismatch.
    """
    if not source.is_file():
        raise SourceNotFound(f"no SQLite database at {source}")
    # Read-only: the copy changes no row it moves (_copy_declared only brings the declared
    # tables to this release's schema).
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if not _sqlite_has_table(reader, conversations.name):
            raise SourceNotFound(f"{source} holds no conversation store ({conversations.name})")
        counts = _copy_declared(list(declared), source, target_url, on_batch)
        _create_knowledge_schema(target_url)
        present = [t for t in TABLES if _sqlite_has_table(reader, t.name)]
        with psycopg.connect(target_url, autocommit=True) as writer:
            for table in present:
                _copy_table(reader, writer, table, source.parent, on_batch)
            for name, column in knowledge.SEQUENCES:
                writer.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', '{column}'),"
                    f" COALESCE(MAX({column}), 1), MAX({column}) IS NOT NULL) FROM {name}"
                )
            counts += [
                TableCount(t.name, _count(reader, t.name), _count(writer, t.name)) for t in present
            ]
    finally:
        reader.close()
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


def _create_knowledge_schema(url: str) -> None:
    """The knowledge base's tables, as a replica or a job would create them."""
    with postgres_db.connect(url) as conn:
        postgres_db.apply_migrations(conn, knowledge.COMPONENT, knowledge.POSTGRES_MIGRATIONS)


def _copy_table(
    reader: sqlite3.Connection,
    writer: psycopg.Connection[tuple[object, ...]],
    table: CopiedTable,
    home: Path,
    on_batch: Callable[[str, int], None],
) -> None:
    columns = ", ".join(table.columns)
    key = ", ".join(table.key)
    updates = ", ".join(f"{c} = excluded.{c}" for c in table.columns if c not in table.key)
    upsert = (
        f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join('%s' for _ in table.columns)})"
        f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )
    # Keyset pagination: each batch starts after the last key copied (a row value for a
    # key of several columns).
    after = ", ".join("?" for _ in table.key)
    select = f"SELECT {columns} FROM {table.name} WHERE ({key}) > ({after}) ORDER BY {key} LIMIT ?"
    # In SQLite every integer sorts before any text: an integer key starts below its values.
    last: tuple[object, ...] = ((-1,) if table.integer_key else ("",)) * len(table.key)
    positions = [table.columns.index(column) for column in table.key]
    if table.prepare is not None:
        writer.execute(table.prepare)
    while True:
        rows = reader.execute(select, (*last, _BATCH)).fetchall()
        if not rows:
            return
        values = rows if table.rewrite is None else [table.rewrite(r, home) for r in rows]
        with writer.transaction(), writer.cursor() as cursor:
            cursor.executemany(upsert, values)
        last = tuple(rows[-1][i] for i in positions)
        on_batch(table.name, len(rows))


def _count(conn: sqlite3.Connection | psycopg.Connection[tuple[object, ...]], table: str) -> int:
    row = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    assert row is not None
    (count,) = row
    assert isinstance(count, int)
    return count


def _sqlite_has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None
