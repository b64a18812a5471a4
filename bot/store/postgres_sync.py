"""A synchronous PostgreSQL connection that reads like a ``sqlite3`` one, for the code that
queries the conversation tables directly from a worker thread or a job (the dashboard's
read-only pages, the feedback export of a retraining cycle).

Those queries are written once with ``?`` parameters and read rows by index, by unpacking
or by column name, as ``sqlite3.Row`` allows; :class:`QmarkConnection` and
:class:`HybridRow` give PostgreSQL the same surface, so the SQL is not duplicated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import BaseRowFactory, RowMaker

if TYPE_CHECKING:
    from psycopg._cursor_base import BaseCursor  # the type row factories are given


class HybridRow(tuple[Any, ...]):
    """A row readable as a tuple and by column name (like ``sqlite3.Row``)."""

    _names: dict[str, int]

    def __new__(cls, values: Iterable[Any], names: dict[str, int]) -> HybridRow:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def hybrid_row(cursor: BaseCursor[Any, Any]) -> RowMaker[HybridRow]:
    names = {column.name: i for i, column in enumerate(cursor.description or [])}
    return lambda values: HybridRow(values, names)


class QmarkConnection:
    """``execute(sql_with_?, params)`` on a psycopg connection, returning its cursor."""

    def __init__(self, conn: psycopg.Connection[HybridRow]) -> None:
        self.raw = conn

    @classmethod
    def connect(cls, url: str, *, read_only: bool = False) -> QmarkConnection:
        factory: BaseRowFactory[HybridRow] = hybrid_row
        conn = psycopg.connect(url, autocommit=True, row_factory=factory)
        if read_only:  # no page can write through this connection by mistake
            conn.execute("SET default_transaction_read_only = on")
        return cls(conn)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[HybridRow]:
        # Our SQL has no ? or % inside literals; % is doubled for psycopg's own placeholders.
        return self.raw.execute(sql.replace("%", "%%").replace("?", "%s"), params)

    def close(self) -> None:
        self.raw.close()
