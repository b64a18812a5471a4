"""Engines, schema histories and table copies for every component's declared tables.

A component declares its tables once, as SQLAlchemy Core ``Table`` objects in one
``MetaData``, and keeps one Alembic history for them (:class:`SchemaHistory`); the same
statements then run on the home's SQLite file and on the PostgreSQL database replicas
share. Several histories share one database: each has a version table of its own, and
only its own tables are compared with its declaration.

An engine from :func:`sync_engine` opens SQLite as the house always has: WAL,
``synchronous=NORMAL``, foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` for every
transaction (but for one on a connection from :func:`reading`), so that two writers queue
on the timeout instead of failing half-way with "database is locked". A PostgreSQL URL
(``postgresql://`` or ``postgres://``) gets psycopg 3, imported only then.
"""

from __future__ import annotations

import functools
import logging
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateColumn

log = logging.getLogger(__name__)

_SQLITE_TIMEOUT_S = 30.0


# -- engines -----------------------------------------------------------------------------------
def sqlite_url(path: Path) -> str:
    """The URL of the SQLite file at ``path``."""
    return f"sqlite:///{path}"


def database_url(database: Path, postgres_url: str | None) -> str:
    """PostgreSQL when ``postgres_url`` is set, else the SQLite file ``database``."""
    return postgres_url or sqlite_url(database)


def sync_engine(url: str, *, pool_size: int | None = 4) -> sa.Engine:
    """An engine for jobs and worker threads (sqlite3 or psycopg; coroutines run
    whole transactions in worker threads); ``pool_size`` None: a connection for
    each use, closed after it."""
    parsed = _parsed(url, sqlite_driver="sqlite+pysqlite", postgres_driver="postgresql+psycopg")
    if pool_size is None:
        engine = sa.create_engine(parsed, poolclass=sa.NullPool)
    else:
        # A pooled connection the server dropped (a restart, a network cut) is replaced
        # before use instead of failing the statement: a serving replica's knowledge base
        # lives as long as its process. A SQLite file is never dropped: no ping.
        ping = parsed.get_backend_name() != "sqlite"
        engine = sa.create_engine(parsed, pool_size=pool_size, max_overflow=0, pool_pre_ping=ping)
    if parsed.get_backend_name() == "sqlite":
        _sqlite_like_the_house(engine)
    return engine


def reading(engine: sa.Engine) -> sa.Connection:
    """A connection of ``engine`` for statements that only read: in SQLite its
    transactions begin deferred, as a WAL reader neither blocks the writer nor waits for
    it; in PostgreSQL they are read only."""
    return engine.connect().execution_options(**READ_ONLY)


# The execution options of a connection from reading(), and those that undo them on a
# connection kept for writing too.
READ_ONLY = {"read_only": True, "postgresql_readonly": True}
WRITING = {"read_only": False, "postgresql_readonly": False}


def sqlite_reader(path: Path) -> sa.Engine:
    """A read-only engine on the SQLite file at ``path`` (a copy never changes its source)."""
    return sa.create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")


def describe(url: str) -> str:
    """Where ``url`` points, for logs: the SQLite file, or ``database NAME on HOST:PORT``
    (never the user or the password)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database)
    where = parsed.host or "localhost"
    if parsed.port:
        where = f"{where}:{parsed.port}"
    return f"database {parsed.database or parsed.username or '?'} on {where}"


def _parsed(url: str, *, sqlite_driver: str, postgres_driver: str) -> sa.URL:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return parsed.set(drivername=sqlite_driver)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername=postgres_driver)
    raise ValueError(f"not a sqlite:/// or postgresql:// URL: {describe(url)}")


def _sqlite_like_the_house(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: object) -> None:
        # The driver's own transaction handling off: the "begin" hook below says BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching to WAL takes a lock, and with the timeout set
        # after it a replica starting while another one migrated the same file failed on
        # it ("database is locked", once in CI: test_replicas_starting_at_once_migrate_once).
        for pragma in (
            f"busy_timeout={int(_SQLITE_TIMEOUT_S * 1000)}",
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(conn: sa.Connection) -> None:
        reads = conn.get_execution_options().get("read_only", False)
        # On the driver's cursor: exec_driver_sql's machinery (execution context, events,
        # result) cost every transaction ~50 us, a third of an empty one. A failure here
        # (the busy timeout run out) is the driver's error, not wrapped by SQLAlchemy.
        conn.connection.cursor().execute("BEGIN" if reads else "BEGIN IMMEDIATE")


# A column named ``rowid`` is SQLite's own: every table there has it, numbered in the order
# rows were inserted, and statements may name it. A declaration gives it to PostgreSQL as an
# identity column (log_conversations keeps the order conversations were stored in).
_ROWID = "rowid"


@compiles(CreateColumn, "sqlite")
def _sqlite_has_its_own_rowid(element: CreateColumn, compiler: Any, **kw: Any) -> Any:
    if element.element.name == _ROWID:
        return None  # left out of CREATE TABLE
    return compiler.visit_create_column(element, **kw)


def lock_key(name: str) -> int:
    """A stable PostgreSQL advisory-lock key for ``name`` (crc32, unlike hash(), is the
    same in every process): ``migrations``, ``retrain``, the knowledge base's writers."""
    return zlib.crc32(f"supportbot:{name}".encode())


def insert(dialect: sa.Dialect, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that takes ``on_conflict_do_update`` / ``on_conflict_do_nothing``: both
    databases have ``INSERT ... ON CONFLICT``, and SQLAlchemy renders it for each."""
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# -- schema histories --------------------------------------------------------------------------
# The column types every declaration shares. An integer key: INTEGER in SQLite (a rowid
# alias, the id SQLite picks), BIGINT from an identity sequence in PostgreSQL.
Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Epoch seconds, an 8-byte float in both: SQLite calls it REAL (as the hand-written schemas
# did), PostgreSQL DOUBLE PRECISION (its REAL has 4 bytes).
Seconds: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


@dataclass(frozen=True)
class SchemaHistory:
    """A component's tables and the Alembic history that builds them.

    ``folder`` holds ``env.py`` (which calls :func:`run_migrations`) and ``versions/``.
    ``legacy_component`` and ``legacy_revisions`` name the hand-written migrations that
    built the tables before (their ``schema_migrations`` bookkeeping): a database
    they built at version n is stamped with ``legacy_revisions[n]`` instead of created again.
    """

    metadata: sa.MetaData
    folder: Path
    version_table: str
    legacy_component: str | None = None
    legacy_revisions: Mapping[int, str] = field(default_factory=dict)

    def has_table(self, name: str) -> bool:
        return name in self.metadata.tables


# Alembic's `context` and `op` are module globals: one history migrates at a time in a
# process (other processes wait on the database's own lock, see run_migrations).
_MIGRATING = threading.Lock()


def upgrade(connection: sa.Connection, history: SchemaHistory) -> None:
    """Bring ``history``'s tables to its latest revision, in the transaction ``connection``
    is in (begin one first): all of it is done or none. Several processes may start at
    once; one migrates, the others wait for it and find nothing left to do."""
    if _at_head(connection, history):
        # The common case, and a frequent one: the server opens the model registry at
        # every adapter poll. One SELECT instead of an Alembic run (and, on PostgreSQL,
        # its migrations lock).
        return
    config = Config()
    config.set_main_option("script_location", str(history.folder))
    config.attributes["connection"] = connection
    config.attributes["history"] = history
    with _MIGRATING:
        command.upgrade(config, "head")


def _at_head(connection: sa.Connection, history: SchemaHistory) -> bool:
    """Whether the database already records ``history``'s latest revision."""
    if not sa.inspect(connection).has_table(history.version_table):
        return False
    version = sa.table(history.version_table, sa.column("version_num"))
    recorded = set(connection.execute(sa.select(version.c.version_num)).scalars())
    return recorded == {_head_revision(history.folder)}


@functools.cache
def _head_revision(folder: Path) -> str | None:
    config = Config()
    config.set_main_option("script_location", str(folder))
    return ScriptDirectory.from_config(config).get_current_head()


def migrated_engine(url: str, history: SchemaHistory, *, pool_size: int | None = 4) -> sa.Engine:
    """A :func:`sync_engine` on ``url`` once ``history``'s tables are at its latest
    revision: blocks, so coroutines call it in a worker thread (``asyncio.to_thread``)."""
    engine = sync_engine(url, pool_size=pool_size)
    try:
        with engine.begin() as conn:
            upgrade(conn, history)
    except BaseException:
        engine.dispose()
        raise
    return engine


def upgrade_database(url: str, history: SchemaHistory) -> None:
    """:func:`upgrade` on a connection of its own to ``url`` (blocks, as
    :func:`migrated_engine`)."""
    migrated_engine(url, history, pool_size=None).dispose()


def run_migrations() -> None:
    """The body of each history's ``env.py``: what :func:`upgrade` asked for, on its
    connection."""
    connection: sa.Connection = context.config.attributes["connection"]
    history: SchemaHistory = context.config.attributes["history"]
    context.configure(
        connection=connection,
        target_metadata=history.metadata,
        version_table=history.version_table,
        include_name=_only_tables_of(history),
    )
    if connection.dialect.name == "postgresql":
        # The lock the hand-written runners take too: no two processes migrate this
        # database at once.
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key("migrations"))))
    # (SQLite: BEGIN IMMEDIATE already holds the one write lock.)
    migration = context.get_context()
    if migration.get_current_revision() is None:
        legacy = _legacy_revision(connection, history)
        if legacy is not None:
            log.info("tables of %s were built before Alembic: stamped %s", history.folder, legacy)
            migration.stamp(context.script, legacy)
    with context.begin_transaction():
        context.run_migrations()


def _legacy_revision(connection: sa.Connection, history: SchemaHistory) -> str | None:
    if history.legacy_component is None or not sa.inspect(connection).has_table(
        "schema_migrations"
    ):
        return None
    ran = sa.table("schema_migrations", sa.column("component"), sa.column("version"))
    version = connection.scalar(
        sa.select(sa.func.max(ran.c.version)).where(ran.c.component == history.legacy_component)
    )
    return None if version is None else history.legacy_revisions[int(version)]


def _only_tables_of(history: SchemaHistory) -> Callable[..., bool]:
    def include(name: str | None, type_: str, _parent: object) -> bool:
        return type_ != "table" or (name is not None and history.has_table(name))

    return include


# -- copies ------------------------------------------------------------------------------------
# The key of a table's ``info`` naming what copy_tables sets on the target's rows first.
RESET_BEFORE_COPY = "reset_before_copy"


def copy_tables(
    metadata: sa.MetaData,
    source: sa.Engine,
    target: sa.Engine,
    *,
    batch: int = 1000,
    on_batch: Callable[[str, int], None] = lambda table, rows: None,
) -> list[str]:
    """Upsert every row of ``metadata``'s tables that ``source`` has into ``target``;
    return the names of the tables copied.

    Parents before children (foreign keys), each table in primary-key order, one committed
    transaction per batch of ``batch`` rows (``on_batch(table, rows)`` after each): a copy
    stopped half-way can be run again, bringing rows already there up to date. Ids are
    kept, and new ones in the target follow them.

    A table whose ``info`` names ``RESET_BEFORE_COPY`` values has them set on the target's
    rows first: a partial unique index (one live row) that the copied rows, in key order,
    would break on the way while the target still holds an older choice.
    """
    with source.connect() as reader:
        present = [t for t in metadata.sorted_tables if sa.inspect(reader).has_table(t.name)]
    for table in present:
        if RESET_BEFORE_COPY in table.info:
            with target.begin() as writer:
                writer.execute(table.update().values(table.info[RESET_BEFORE_COPY]))
        key = list(table.primary_key.columns)
        page = sa.select(table).order_by(*key).limit(batch)
        last: tuple[Any, ...] | None = None
        while True:
            query = page if last is None else page.where(sa.tuple_(*key) > sa.tuple_(*last))
            with source.connect() as reader:
                rows = reader.execute(query).mappings().all()
            if not rows:
                break
            with target.begin() as writer:
                writer.execute(_upsert(writer.dialect, table), [dict(r) for r in rows])
            last = tuple(rows[-1][c.name] for c in key)
            on_batch(table.name, len(rows))
        if target.dialect.name == "postgresql":
            _move_identities_past_copied_values(target, table)
    return [t.name for t in present]


def _move_identities_past_copied_values(target: sa.Engine, table: sa.Table) -> None:
    """The next value PostgreSQL gives follows the copied ones (rows copied with their ids
    leave the identity sequence where it was; SQLite takes the next after the largest)."""
    numbered = {c for c in table.columns if c.identity is not None}
    if table.autoincrement_column is not None:
        numbered.add(table.autoincrement_column)
    with target.begin() as writer:
        for column in numbered:
            top = sa.func.max(column)
            sequence = sa.func.pg_get_serial_sequence(table.name, column.name)
            writer.execute(
                sa.select(sa.func.setval(sequence, sa.func.coalesce(top, 1), top.is_not(None)))
            )


def _upsert(dialect: sa.Dialect, table: sa.Table) -> sa.Executable:
    statement = insert(dialect, table)
    others = {c.name: statement.excluded[c.name] for c in table.columns if not c.primary_key}
    key = list(table.primary_key.columns)
    if not others:
        return statement.on_conflict_do_nothing(index_elements=key)
    return statement.on_conflict_do_update(index_elements=key, set_=others)


def count_rows(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
