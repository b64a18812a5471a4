"""Schema histories under test (retrieval.database): an empty database of each kind, one
built by the release before with the hand-written migrations each test pastes in, and what
upgrading leaves different from the declaration."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from retrieval import postgres_db, sqlite_db
from retrieval.database import SchemaHistory, schema_differences, sqlite_url, sync_engine, upgrade

Rows = Sequence[tuple[str, tuple[object, ...]]]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "supportbot.db")
    else:
        yield request.getfixturevalue("postgres_url")


def built_by_the_release_before(
    url: str, component: str, sqlite_script: str, postgres_script: str, rows: Rows = ()
) -> None:
    """``component``'s tables as the release before built them (its hand-written
    migration, one script per database), holding ``rows`` (SQL with ``?`` and values)."""
    if url.startswith("sqlite"):
        conn = sqlite_db.connect(Path(sa.make_url(url).database or ""))
        try:
            sqlite_db.apply_migrations(conn, component, [sqlite_script])
            for sql, params in rows:
                conn.execute(sql, params)
        finally:
            conn.close()
        return
    with postgres_db.connect(url) as pg:
        postgres_db.apply_migrations(pg, component, [postgres_script])
        for sql, params in rows:
            pg.execute(sql.replace("?", "%s"), params)


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
