"""Statements compiled once by SQLAlchemy for a database, run on the DBAPI cursor.

The few statements every chat message makes (a conversation read, its turns, a turn
stored) are built from the declared tables like every other, but run outside
``Connection.execute``: its machinery (cache key, execution context, events, result
wrapper) cost each of them about 35 us on top of SQLite's 20, paid in the store's one
worker thread. Values are converted as SQLAlchemy would convert them, on the way in and
out (its bind and result processors).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

Row = dict[str, Any]
_Convert = Callable[[Any], Any]


class CompiledStatement:
    """``statement`` as ``dialect`` words it, with parameters taken by name; an INSERT
    names in ``column_keys`` the columns it is given (the others are its own values)."""

    def __init__(
        self,
        statement: sa.ClauseElement,
        dialect: sa.Dialect,
        *,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        assert isinstance(compiled, SQLCompiler)  # a statement, not DDL
        self.sql = compiled.string
        self._dialect = dialect
        binds = compiled.bind_names.items()
        # The statement's own values (a literal 0 or 1 becomes a parameter too).
        self._constants = {name: bind.value for bind, name in binds if not bind.required}
        self._convert_in: dict[str, _Convert] = {
            name: convert
            for bind, name in binds
            if (convert := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        # sqlite3 takes "?" parameters in order, psycopg "%(name)s" ones by name.
        self._order: Sequence[str] | None = compiled.positiontup if compiled.positional else None
        self._selected = (
            list(statement.selected_columns) if isinstance(statement, sa.Select) else []
        )
        # A reader's conversions hang on the types the database reports: known at the first read.
        self._convert_out: list[_Convert | None] | None = None

    def execute(self, conn: sa.Connection, params: Mapping[str, Any]) -> Any:
        """Run on ``conn``'s driver connection, in its transaction if one was begun (on
        SQLite none is begun for a statement alone); the driver's cursor."""
        if self._constants:
            params = {**self._constants, **params}
        if self._convert_in:
            params = {
                name: value if (convert := self._convert_in.get(name)) is None else convert(value)
                for name, value in params.items()
            }
        order = self._order
        cursor = conn.connection.cursor()
        cursor.execute(self.sql, params if order is None else tuple(params[n] for n in order))
        return cursor

    def rows(self, conn: sa.Connection, params: Mapping[str, Any]) -> list[Row]:
        """The rows it reads, each a dict by column name."""
        cursor = self.execute(conn, params)
        found = [self._row(cursor, row) for row in cursor.fetchall()]
        cursor.close()
        return found

    def first(self, conn: sa.Connection, params: Mapping[str, Any]) -> Row | None:
        """The first row it reads, or None."""
        cursor = self.execute(conn, params)
        row = cursor.fetchone()
        found = None if row is None else self._row(cursor, row)
        cursor.close()
        return found

    def _row(self, cursor: Any, values: Sequence[Any]) -> Row:
        description = cursor.description
        convert = self._convert_out
        if convert is None:
            convert = self._convert_out = [
                column.type.dialect_impl(self._dialect).result_processor(self._dialect, kind[1])
                for column, kind in zip(self._selected, description, strict=True)
            ]
        if any(convert):
            values = [v if c is None else c(v) for c, v in zip(convert, values, strict=True)]
        return dict(zip((kind[0] for kind in description), values, strict=True))
