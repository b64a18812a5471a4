"""Model-version registry (:mod:`finetune.tables`): in the home's SQLite file, or in the
PostgreSQL database replicas share (see :mod:`finetune.database`).

Base models and adapters are recorded with their folder, parent, metrics and creation
time; exactly one adapter (or none) is live. Switching the live adapter is one
transaction, so a reader (on any replica) sees the old or the new one, never neither.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from finetune import tables
from finetune.database import dump
from retrieval.database import database_url, insert, migrated_engine
from retrieval.folders import found, recorded

if TYPE_CHECKING:
    from finetune.pipeline import GeneratorPaths


class UnknownModelError(LookupError):
    """No base model or adapter with that id is registered."""


@dataclass(frozen=True)
class BaseModelRecord:
    id: int
    folder: Path
    # "pretrained", or "bootstrap": a base an earlier release pretrained from the logs into
    # the home, still loaded for the adapters trained on it
    source: str
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
    """Reads and writes the registry tables (:mod:`finetune.tables`) over the engine it is
    given (and closes); folders are recorded relative to ``home``."""

    def __init__(self, engine: sa.Engine, home: Path) -> None:
        self._engine = engine
        self._home = home

    @classmethod
    def open(cls, paths: GeneratorPaths) -> ModelRegistry:
        """The registry where ``paths`` keeps it (SQLite or PostgreSQL), migrated."""
        return cls(
            migrated_engine(database_url(paths.database, paths.postgres_url), tables.HISTORY),
            paths.home,
        )

    def close(self) -> None:
        self._engine.dispose()

    def register_base(
        self, folder: Path, *, source: str, model_ref: str, metrics: dict[str, Any] | None = None
    ) -> BaseModelRecord:
        """Record a base model; registering the same folder again returns the existing row."""
        b = tables.base_models
        name = self._recorded(folder, source)
        ref = self._recorded(Path(model_ref), source) if source == "bootstrap" else model_ref
        with self._engine.begin() as conn:
            statement = insert(conn.dialect, b).values(
                folder=name,
                source=source,
                model_ref=ref,
                metrics=dump(metrics),
                created_at=time.time(),
            )
            conn.execute(statement.on_conflict_do_nothing(index_elements=[b.c.folder]))
            return self._base(conn.execute(sa.select(b).where(b.c.folder == name)).one())

    def register_adapter(
        self,
        folder: Path,
        *,
        base_id: int,
        parent_id: int | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> AdapterRecord:
        a = tables.adapters
        statement = a.insert().values(
            folder=recorded(folder, self._home),
            base_id=base_id,
            parent_id=parent_id,
            metrics=dump(metrics),
            created_at=time.time(),
        )
        with self._engine.begin() as conn:
            adapter_id = conn.execute(statement.returning(a.c.id)).scalar_one()
        return self.adapter(adapter_id)

    def add_metrics(self, adapter_id: int, metrics: dict[str, Any]) -> AdapterRecord:
        """Merge ``metrics`` into the adapter's recorded ones (figures measured after it was
        registered, such as the retraining gate's)."""
        merged = {**self.adapter(adapter_id).metrics, **metrics}
        a = tables.adapters
        with self._engine.begin() as conn:
            conn.execute(a.update().where(a.c.id == adapter_id).values(metrics=dump(merged)))
        return self.adapter(adapter_id)

    def promote(self, adapter_id: int) -> None:
        """Make ``adapter_id`` the live adapter (one transaction). Raises UnknownModelError."""
        a, live = tables.adapters, tables.live
        with self._engine.begin() as conn:
            if conn.scalar(sa.select(a.c.id).where(a.c.id == adapter_id)) is None:
                raise UnknownModelError(f"no adapter with id {adapter_id}")
            # Promotions queue on the live row (two replicas may roll back at once; SQLite
            # takes the whole database), so the history names the adapter each replaced.
            previous = conn.scalar(sa.select(live.c.adapter_id).with_for_update())
            now = time.time()
            statement = insert(conn.dialect, live).values(
                slot=1, adapter_id=adapter_id, switched_at=now
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[live.c.slot],
                    set_={"adapter_id": adapter_id, "switched_at": now},
                )
            )
            conn.execute(
                tables.live_history.insert().values(
                    adapter_id=adapter_id, previous_id=previous, switched_at=now
                )
            )

    def live_adapter(self) -> AdapterRecord | None:
        a = tables.adapters
        row = self._first(sa.select(a).join(tables.live, tables.live.c.adapter_id == a.c.id))
        return self._adapter(row) if row else None

    def adapter(self, adapter_id: int) -> AdapterRecord:
        a = tables.adapters
        row = self._first(sa.select(a).where(a.c.id == adapter_id))
        if row is None:
            raise UnknownModelError(f"no adapter with id {adapter_id}")
        return self._adapter(row)

    def base(self, base_id: int) -> BaseModelRecord:
        b = tables.base_models
        row = self._first(sa.select(b).where(b.c.id == base_id))
        if row is None:
            raise UnknownModelError(f"no base model with id {base_id}")
        return self._base(row)

    def adapters(self) -> list[AdapterRecord]:
        a = tables.adapters
        with self._engine.connect() as conn:
            return [self._adapter(r) for r in conn.execute(sa.select(a).order_by(a.c.id))]

    def _first(self, query: sa.Select[Any]) -> sa.Row[Any] | None:
        with self._engine.connect() as conn:
            return conn.execute(query).first()

    # A pretrained base's folder and model_ref name a hub id (or a folder the settings
    # name): recorded as given. Every other folder is one this home's jobs wrote.
    def _recorded(self, folder: Path, source: str) -> str:
        return recorded(folder, self._home) if source == "bootstrap" else str(folder)

    def _folder(self, name: str, source: str) -> Path:
        return found(name, self._home) if source == "bootstrap" else Path(name)

    def _base(self, row: sa.Row[Any]) -> BaseModelRecord:
        return BaseModelRecord(
            id=row.id,
            folder=self._folder(row.folder, row.source),
            source=row.source,
            model_ref=str(self._folder(row.model_ref, row.source))
            if row.source == "bootstrap"
            else row.model_ref,
            metrics=json.loads(row.metrics),
            created_at=row.created_at,
        )

    def _adapter(self, row: sa.Row[Any]) -> AdapterRecord:
        return AdapterRecord(
            id=row.id,
            folder=found(row.folder, self._home),
            base_id=row.base_id,
            parent_id=row.parent_id,
            metrics=json.loads(row.metrics),
            created_at=row.created_at,
        )
