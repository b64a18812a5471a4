"""Schema histories under test (retrieval.database): an empty database of each kind, one
built by the release before with the hand-written migrations each test pastes in, and what
upgrading leaves different from the declaration."""

from __future__ import annotations

import sqlite3
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from retrieval.database import SchemaHistory, sqlite_url, sync_engine, upgrade

Rows = Sequence[tuple[str, tuple[object, ...]]]


def schema_differences(connection: sa.Connection, history: SchemaHistory) -> list[Any]:
    """What Alembic's autogenerate would change to make the database's tables of
    ``history`` match its declaration (``alembic check``): empty when they agree."""
    migration = MigrationContext.configure(
        connection,
        opts={
            "version_table": history.version_table,
            "include_name": lambda name, type_, _parent: (
                type_ != "table" or (name is not None and history.has_table(name))
            ),
            "include_object": _built_on(connection.dialect.name),
            "compare_type": True,
        },
    )
    with warnings.catch_warnings():
        # Alembic warns that SQLite cannot reflect an expression index before it asks
        # include_object, even of one declared for PostgreSQL only.
        warnings.filterwarnings("ignore", "autogenerate skipping .* expression-based index")
        differences = list(compare_metadata(migration, history.metadata))
    if connection.dialect.name == "sqlite":
        return [d for d in differences if not _sqlite_key_seen_nullable(d, history.metadata)]
    return differences


def _built_on(dialect: str) -> Callable[..., bool]:
    """Alembic's include_object: leave out a declared index or constraint that
    ``ddl_if(dialect=...)`` builds on another database only (Alembic ignores ddl_if), and
    SQLite's own rowid."""

    def include(item: object, name: object, type_: str, reflected: bool, _to: object) -> bool:
        if type_ == "column" and name == "rowid" and dialect == "sqlite":
            return False  # SQLite's own, never reflected
        only = getattr(item, "_ddl_if", None)
        if reflected or only is None or only.dialect is None:
            return True
        return dialect == only.dialect if isinstance(only.dialect, str) else dialect in only.dialect

    return include


def _sqlite_key_seen_nullable(difference: Any, metadata: sa.MetaData) -> bool:
    """Whether ``difference`` only says that SQLite reports a primary-key column nullable
    that was built without NOT NULL: a table's one INTEGER PRIMARY KEY, which is the rowid
    and can hold no NULL, or a column whose ``info`` says ``sqlite_key_may_be_null`` (kept
    as an earlier release built it, see :mod:`bot.store.tables`)."""
    if not isinstance(difference, list) or len(difference) != 1:
        return False
    operation, _schema, table, column, *_ = difference[0]
    if operation != "modify_nullable":
        return False
    (key, *others) = metadata.tables[table].primary_key.columns
    declared = metadata.tables[table].c[column]
    rowid = not others and key.name == column and isinstance(key.type, sa.Integer)
    return rowid or (declared.primary_key and declared.info.get("sqlite_key_may_be_null", False))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "supportbot.db")
    else:
        yield request.getfixturevalue("postgres_url")


def built_by_the_release_before(
    url: str,
    component: str,
    sqlite_script: str | Sequence[str],
    postgres_script: str | Sequence[str],
    rows: Rows = (),
) -> None:
    """``component``'s tables as the release before built them (its hand-written
    migrations, a script or a list of them per database), holding ``rows`` (SQL with ``?``
    and values)."""
    # What that release's runners did: each script in one transaction with its row in
    # schema_migrations, then its statements wrote the rows.
    if url.startswith("sqlite"):
        conn = _sqlite_as_the_release_before(Path(sa.make_url(url).database or ""))
        try:
            conn.execute(_MIGRATIONS_TABLE.replace("DOUBLE PRECISION", "REAL"))
            for version, script in enumerate(_listed(sqlite_script), start=1):
                conn.execute("BEGIN IMMEDIATE")
                for statement in _sqlite_statements(script):
                    conn.execute(statement)
                conn.execute(_RECORD, (component, version, time.time()))
                conn.execute("COMMIT")
            for sql, params in rows:
                conn.execute(sql, params)
        finally:
            conn.close()
        return
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(_MIGRATIONS_TABLE)
        for version, script in enumerate(_listed(postgres_script), start=1):
            with pg.transaction():
                pg.execute(script)
                pg.execute(_RECORD.replace("?", "%s"), (component, version, time.time()))
        for sql, params in rows:
            pg.execute(sql.replace("?", "%s"), params)


_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " component TEXT NOT NULL, version INTEGER NOT NULL,"
    " applied_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (component, version))"
)
_RECORD = "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)"


def _sqlite_statements(script: str) -> list[str]:
    """A script's statements one by one (executescript would commit on its own)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [s for s in statements if s]


def _listed(scripts: str | Sequence[str]) -> list[str]:
    return [scripts] if isinstance(scripts, str) else list(scripts)


def table_shapes(url: str, names: Iterable[str]) -> dict[str, object]:
    """What the tables ``names`` hold and refuse, as the database itself reports it:
    columns (type, nullability, default), keys, foreign keys, unique and (PostgreSQL, which
    names them) check constraints, and indexes with their WHERE clause."""
    engine = sync_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            seen = sa.inspect(conn)
            sqlite = conn.dialect.name == "sqlite"
            return {
                name: (
                    [
                        # SQLite: an INTEGER PRIMARY KEY is the rowid, never NULL, however built
                        (
                            c["name"],
                            str(c["type"]),
                            c["nullable"]
                            and not (sqlite and c["name"] in _rowid_alias(seen, name)),
                            c["default"],
                        )
                        for c in seen.get_columns(name)
                    ],
                    seen.get_pk_constraint(name)["constrained_columns"],
                    sorted(
                        (f["constrained_columns"], f["referred_table"], f["options"])
                        for f in seen.get_foreign_keys(name)
                    ),
                    sorted(
                        (u["name"] if not sqlite else "", u["column_names"])
                        for u in seen.get_unique_constraints(name)
                    ),
                    []
                    if sqlite
                    else sorted(
                        (c["name"], c["sqltext"]) for c in seen.get_check_constraints(name)
                    ),
                    sorted(
                        (
                            i["name"],
                            i["column_names"],
                            i["unique"],
                            sorted((k, str(v)) for k, v in i.get("dialect_options", {}).items()),
                        )
                        for i in seen.get_indexes(name)
                    ),
                )
                for name in names
            }
    finally:
        engine.dispose()


def _rowid_alias(seen: sa.Inspector, table: str) -> list[str]:
    """The table's one INTEGER PRIMARY KEY column, if it has one (in SQLite: the rowid)."""
    (*key,) = seen.get_pk_constraint(table)["constrained_columns"]
    columns = {c["name"]: c["type"] for c in seen.get_columns(table)}
    return key if len(key) == 1 and isinstance(columns[key[0]], sa.Integer) else []


def upgraded(url: str, history: SchemaHistory) -> list[object]:
    """Bring ``history`` to head at ``url``; what then differs from its declaration."""
    engine = sync_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            upgrade(conn, history)
        with engine.connect() as conn:
            return schema_differences(conn, history)
    finally:
        engine.dispose()


def difference_after_dropping(url: str, history: SchemaHistory, index: str) -> object:
    """The one difference reported once ``index`` is dropped from an upgraded database."""
    assert upgraded(url, history) == []
    engine = sync_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP INDEX {index}"))
        with engine.connect() as conn:
            (difference,) = schema_differences(conn, history)
    finally:
        engine.dispose()
    return difference


def _sqlite_as_the_release_before(path: Path) -> sqlite3.Connection:
    """A connection as that release's runners opened the home's file: WAL, foreign keys on,
    the driver's own transactions off (each script says BEGIN)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    return conn
