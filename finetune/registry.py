"""Model-version registry in the shared SQLite database (component ``finetune``).

Base models and adapters are recorded with their folder, parent, metrics and creation
time; exactly one adapter (or none) is live. Switching the live adapter is one
transaction, so a reader sees the old or the new one, never neither.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.sqlite_db import apply_migrations, connect

COMPONENT = "finetune"
MIGRATIONS = [
    """
    CREATE TABLE finetune_base_models (
        id INTEGER PRIMARY KEY,
        folder TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL CHECK (source IN ('bootstrap', 'pretrained')),
        model_ref TEXT NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE TABLE finetune_adapters (
        id INTEGER PRIMARY KEY,
        folder TEXT NOT NULL UNIQUE,
        base_id INTEGER NOT NULL REFERENCES finetune_base_models(id),
        parent_id INTEGER REFERENCES finetune_adapters(id),
        metrics TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE TABLE finetune_live (
        slot INTEGER PRIMARY KEY CHECK (slot = 1),
        adapter_id INTEGER NOT NULL REFERENCES finetune_adapters(id),
        switched_at REAL NOT NULL
    );
    CREATE TABLE finetune_live_history (
        id INTEGER PRIMARY KEY,
        adapter_id INTEGER NOT NULL REFERENCES finetune_adapters(id),
        previous_id INTEGER REFERENCES finetune_adapters(id),
        switched_at REAL NOT NULL
    );
    """,
]


class UnknownModelError(LookupError):
    """No base model or adapter with that id is registered."""


@dataclass(frozen=True)
class BaseModelRecord:
    id: int
    folder: Path
    source: str  # "bootstrap" or "pretrained"
    model_ref: str  # what to load: a folder or a Hugging Face id
    metrics: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class AdapterRecord:
    id: int
    folder: Path
    base_id: int
    parent_id: int | None
    metrics: dict[str, Any]
    created_at: float


class ModelRegistry:
    """Reads and writes the registry tables over a connection it does not own."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        apply_migrations(conn, COMPONENT, MIGRATIONS)

    @classmethod
    def open(cls, database: Path) -> ModelRegistry:
        return cls(connect(database))

    def close(self) -> None:
        self._conn.close()

    def register_base(
        self, folder: Path, *, source: str, model_ref: str, metrics: dict[str, Any] | None = None
    ) -> BaseModelRecord:
        """Record a base model; registering the same folder again returns the existing row."""
        self._conn.execute(
            "INSERT INTO finetune_base_models (folder, source, model_ref, metrics, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(folder) DO NOTHING",
            (str(folder), source, model_ref, _dump(metrics), time.time()),
        )
        row = self._conn.execute(
            "SELECT * FROM finetune_base_models WHERE folder = ?", (str(folder),)
        ).fetchone()
        return _base(row)

    def register_adapter(
        self,
        folder: Path,
        *,
        base_id: int,
        parent_id: int | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> AdapterRecord:
        cursor = self._conn.execute(
            "INSERT INTO finetune_adapters (folder, base_id, parent_id, metrics, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (str(folder), base_id, parent_id, _dump(metrics), time.time()),
        )
        return self.adapter(int(cursor.lastrowid or 0))

    def add_metrics(self, adapter_id: int, metrics: dict[str, Any]) -> AdapterRecord:
        """Merge ``metrics`` into the adapter's recorded ones (figures measured after it was
        registered, such as the retraining gate's)."""
        record = self.adapter(adapter_id)
        merged = {**record.metrics, **metrics}
        self._conn.execute(
            "UPDATE finetune_adapters SET metrics = ? WHERE id = ?", (_dump(merged), adapter_id)
        )
        return self.adapter(adapter_id)

    def promote(self, adapter_id: int) -> None:
        """Make ``adapter_id`` the live adapter (one transaction). Raises UnknownModelError."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if (
                self._conn.execute(
                    "SELECT 1 FROM finetune_adapters WHERE id = ?", (adapter_id,)
                ).fetchone()
                is None
            ):
                raise UnknownModelError(f"no adapter with id {adapter_id}")
            row = self._conn.execute(
                "SELECT adapter_id FROM finetune_live WHERE slot = 1"
            ).fetchone()
            now = time.time()
            self._conn.execute(
                "INSERT INTO finetune_live (slot, adapter_id, switched_at) VALUES (1, ?, ?)"
                " ON CONFLICT(slot) DO UPDATE SET adapter_id = excluded.adapter_id,"
                " switched_at = excluded.switched_at",
                (adapter_id, now),
            )
            self._conn.execute(
                "INSERT INTO finetune_live_history (adapter_id, previous_id, switched_at)"
                " VALUES (?, ?, ?)",
                (adapter_id, row[0] if row else None, now),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def live_adapter(self) -> AdapterRecord | None:
        row = self._conn.execute(
            "SELECT a.* FROM finetune_live l JOIN finetune_adapters a ON a.id = l.adapter_id"
        ).fetchone()
        return _adapter(row) if row else None

    def adapter(self, adapter_id: int) -> AdapterRecord:
        row = self._conn.execute(
            "SELECT * FROM finetune_adapters WHERE id = ?", (adapter_id,)
        ).fetchone()
        if row is None:
            raise UnknownModelError(f"no adapter with id {adapter_id}")
        return _adapter(row)

    def base(self, base_id: int) -> BaseModelRecord:
        row = self._conn.execute(
            "SELECT * FROM finetune_base_models WHERE id = ?", (base_id,)
        ).fetchone()
        if row is None:
            raise UnknownModelError(f"no base model with id {base_id}")
        return _base(row)

    def adapters(self) -> list[AdapterRecord]:
        rows = self._conn.execute("SELECT * FROM finetune_adapters ORDER BY id").fetchall()
        return [_adapter(r) for r in rows]

    def newest_base(
        self, *, source: str | None = None, model_ref: str | None = None
    ) -> BaseModelRecord | None:
        query, args = "SELECT * FROM finetune_base_models WHERE 1=1", list[str]()
        if source is not None:
            query, args = query + " AND source = ?", [*args, source]
        if model_ref is not None:
            query, args = query + " AND model_ref = ?", [*args, model_ref]
        row = self._conn.execute(query + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return _base(row) if row else None


def _dump(metrics: dict[str, Any] | None) -> str:
    return json.dumps(metrics or {}, sort_keys=True, default=str)


def _base(row: sqlite3.Row) -> BaseModelRecord:
    return BaseModelRecord(
        id=int(row["id"]),
        folder=Path(row["folder"]),
        source=str(row["source"]),
        model_ref=str(row["model_ref"]),
        metrics=json.loads(row["metrics"]),
        created_at=float(row["created_at"]),
    )


def _adapter(row: sqlite3.Row) -> AdapterRecord:
    return AdapterRecord(
        id=int(row["id"]),
        folder=Path(row["folder"]),
        base_id=int(row["base_id"]),
        parent_id=None if row["parent_id"] is None else int(row["parent_id"]),
        metrics=json.loads(row["metrics"]),
        created_at=float(row["created_at"]),
    )
