"""Every component whose tables are declared once (bot.components.DECLARED_TABLES): its
Alembic history builds exactly its declaration on SQLite and PostgreSQL, a second start-up
finds nothing to do, and a drift between the two is reported (the `alembic check` the
issue asks for). What each history must keep of the release before is tested beside it
(tests/test_*_schema.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bot.components import DECLARED_TABLES
from retrieval.database import SchemaHistory
from tests.support.schema import difference_after_dropping, upgraded

HISTORIES = pytest.mark.parametrize(
    "history", DECLARED_TABLES, ids=[h.version_table for h in DECLARED_TABLES]
)


@HISTORIES
def test_the_migrations_build_exactly_the_declared_tables(
    history: SchemaHistory, database_url: str
) -> None:
    assert upgraded(database_url, history) == []
    assert upgraded(database_url, history) == []  # a second start-up finds nothing to do


@HISTORIES
def test_a_drift_between_declaration_and_migrations_is_reported(
    history: SchemaHistory, database_url: str
) -> None:
    # An index on plain columns (a functional one may be declared for one database only).
    index = next(
        index
        for table in history.metadata.sorted_tables
        for index in table.indexes
        if all(isinstance(e, sa.Column) for e in index.expressions)
    )
    difference = difference_after_dropping(database_url, history, str(index.name))
    assert difference[0] == "add_index" and difference[1].name == index.name  # type: ignore[index]
