"""Retraining cycle records and the one-cycle-at-a-time lock (tables in :mod:`finetune.tables`).

The lock is one row in the shared SQLite database, taken with ``BEGIN IMMEDIATE`` and
naming its owner (pid, host, process start time). The owner refreshes a heartbeat while
it runs. A row whose owner is dead on this host, or whose heartbeat is older than the
stale timeout, is taken over: a cycle killed half-way (even by SIGKILL) never blocks the
next one. Whoever takes the lock marks cycles still recorded as running as abandoned,
since no live process can be running them.

The records (:class:`CycleLog`) are kept where the model registry is: the home's SQLite
file, or the PostgreSQL database replicas share (:mod:`finetune.database`). With
PostgreSQL a cycle also holds the cluster-wide advisory lock (:func:`retrain_lock`), which
is what keeps cycles on different hosts apart, and marks the abandoned records there
(:meth:`CycleLog.abandon_running`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from finetune import tables
from finetune.database import dump
from retrieval.database import (
    database_url,
    insert,
    lock_key,
    migrated_engine,
    sqlite_url,
    sync_engine,
    upgrade,
)
from retrieval.processes import LockOwner, process_alive, this_process

if TYPE_CHECKING:
    from finetune.pipeline import GeneratorPaths

log = logging.getLogger(__name__)

ABANDONED_REASON = "the process running it stopped before it finished"


class CycleLockedError(RuntimeError):
    """Another retraining cycle holds the lock and is alive."""


@contextlib.contextmanager
def retrain_lock(url: str | None) -> Iterator[None]:
    """Hold the cluster-wide retraining lock for the block; nothing without PostgreSQL.

    Raises CycleLockedError while another replica's cycle holds it. Closing the
    connection releases the lock, so a process that dies holding it holds it no more.
    """
    if url is None:
        yield
        return
    # Imported here to keep psycopg out of the jobs of a home without PostgreSQL.
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key("retrain"),)).fetchone()
        if row is None or not row[0]:
            raise CycleLockedError("another replica is running a retraining cycle")
        yield  # closing the connection releases the lock


@dataclass(frozen=True)
class CycleRecord:
    id: int
    kind: str  # "cycle" or "rollback"
    status: str  # running, promoted, kept, failed, abandoned, rolled_back
    started_at: float
    finished_at: float | None
    owner: str
    live_adapter_id: int | None  # live when the cycle started (the one it was compared with)
    candidate_adapter_id: int | None
    data: dict[str, Any]
    figures: dict[str, Any]
    reason: str


class CycleLock:
    """The crash-surviving retraining lock; use as a context manager.

    ``acquire`` raises CycleLockedError while a live owner holds it. ``lost`` turns true
    when the heartbeat finds the row taken over (this process hung past the timeout); a
    cycle must not promote then.
    """

    def __init__(
        self,
        database: Path,
        *,
        stale_after_s: float,
        heartbeat_s: float | None = None,
        owner: LockOwner | None = None,
    ) -> None:
        self.database = database
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s or max(0.5, min(30.0, stale_after_s / 4))
        self.owner = owner or this_process()
        self.abandoned: list[int] = []  # cycles found running when the lock was taken
        self._engine = sync_engine(sqlite_url(database), pool_size=None)
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def acquire(self) -> CycleLock:
        lock, cycles = tables.retrain_lock, tables.retrain_cycles
        with self._engine.begin() as conn:  # BEGIN IMMEDIATE: one taker at a time
            upgrade(conn, tables.HISTORY)
            row = conn.execute(sa.select(lock)).first()
            now = time.time()
            if row is not None and not self._is_stale(row, now):
                raise CycleLockedError(
                    f"a retraining cycle is already running (pid {row.owner_pid} on"
                    f" {row.owner_host}, started {time.ctime(row.acquired_at)})"
                )
            if row is not None:
                log.warning(
                    "taking over the retraining lock of pid %s on %s (dead or stale)",
                    row.owner_pid,
                    row.owner_host,
                )
            held = {
                "owner_pid": self.owner.pid,
                "owner_host": self.owner.host,
                "owner_start": self.owner.start,
                "acquired_at": now,
                "heartbeat_at": now,
            }
            statement = insert(conn.dialect, lock).values(slot=1, **held)
            conn.execute(statement.on_conflict_do_update(index_elements=[lock.c.slot], set_=held))
            abandon = _abandon_running(now).returning(cycles.c.id)
            self.abandoned = sorted(conn.execute(abandon).scalars())
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, name="retrain-lock-heartbeat", daemon=True
        )
        self._thread.start()
        return self

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._engine.begin() as conn:
            conn.execute(tables.retrain_lock.delete().where(*self._owned()))

    def __enter__(self) -> CycleLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _is_stale(self, row: sa.Row[Any], now: float) -> bool:
        if now - row.heartbeat_at > self.stale_after_s:
            return True
        if row.owner_host != self.owner.host:
            return False  # cannot see the process: only the heartbeat tells
        return not process_alive(row.owner_pid, row.owner_start)

    def _owned(self) -> list[sa.ColumnElement[bool]]:
        """The lock's row while this process holds it."""
        c = tables.retrain_lock.c
        owner = self.owner
        return [c.owner_pid == owner.pid, c.owner_host == owner.host, c.owner_start == owner.start]

    def _beat(self) -> None:
        beat = tables.retrain_lock.update().where(*self._owned())
        try:
            while not self._stop.wait(self.heartbeat_s):
                with self._engine.begin() as conn:
                    if conn.execute(beat.values(heartbeat_at=time.time())).rowcount == 0:
                        log.error("the retraining lock was taken over; this cycle will not promote")
                        self._lost.set()
                        return
        except sa.exc.SQLAlchemyError:
            log.exception("retraining lock heartbeat failed")


class CycleLog:
    """Reads and writes cycle records (:mod:`finetune.tables`) over the engine it is given
    (and closes)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    @classmethod
    def open(cls, paths: GeneratorPaths) -> CycleLog:
        """The log where ``paths`` keeps it (SQLite or PostgreSQL), migrated."""
        return cls(
            migrated_engine(database_url(paths.database, paths.postgres_url), tables.HISTORY)
        )

    def close(self) -> None:
        self._engine.dispose()

    def start(self, *, owner: str, live_adapter_id: int | None, data: dict[str, Any]) -> int:
        return self._insert(
            kind="cycle",
            status="running",
            started_at=time.time(),
            owner=owner,
            live_adapter_id=live_adapter_id,
            data=dump(data),
        )

    def abandon_running(self) -> list[int]:
        """Mark the cycles still recorded as running abandoned; their ids. Only whoever
        holds the retraining lock may call this: no live process runs them then. (The
        SQLite :class:`CycleLock` already does it as it takes the lock; a log in
        PostgreSQL is cleaned here, under the cluster-wide lock.)"""
        abandon = _abandon_running(time.time()).returning(tables.retrain_cycles.c.id)
        with self._engine.begin() as conn:
            return sorted(conn.execute(abandon).scalars())

    def set_candidate(self, cycle_id: int, adapter_id: int) -> None:
        self._update(cycle_id, candidate_adapter_id=adapter_id)

    def finish(
        self,
        cycle_id: int,
        *,
        status: str,
        reason: str,
        figures: dict[str, Any] | None = None,
    ) -> CycleRecord:
        """Record the end; ``figures`` are added to those recorded before."""
        merged = {**self.cycle(cycle_id).figures, **(figures or {})}
        self._update(
            cycle_id, status=status, reason=reason, figures=dump(merged), finished_at=time.time()
        )
        return self.cycle(cycle_id)

    def add_figures(self, cycle_id: int, figures: dict[str, Any]) -> None:
        """Record figures of a step that finished while the cycle runs on."""
        self._update(cycle_id, figures=dump({**self.cycle(cycle_id).figures, **figures}))

    def record_rollback(self, *, from_id: int | None, to_id: int, reason: str) -> CycleRecord:
        now = time.time()
        cycle_id = self._insert(
            kind="rollback",
            status="rolled_back",
            started_at=now,
            finished_at=now,
            owner=str(this_process()),
            live_adapter_id=from_id,
            candidate_adapter_id=to_id,
            reason=reason,
        )
        return self.cycle(cycle_id)

    def cycle(self, cycle_id: int) -> CycleRecord:
        c = tables.retrain_cycles
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(c).where(c.c.id == cycle_id)).first()
        if row is None:
            raise LookupError(f"no retraining cycle with id {cycle_id}")
        return _cycle(row)

    def cycles(self, limit: int = 50) -> list[CycleRecord]:
        """Newest first."""
        c = tables.retrain_cycles
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(c).order_by(c.c.id.desc()).limit(limit))
            return [_cycle(r) for r in rows]

    def _insert(self, **values: Any) -> int:
        with self._engine.begin() as conn:
            c = tables.retrain_cycles
            return int(conn.execute(c.insert().values(**values).returning(c.c.id)).scalar_one())

    def _update(self, cycle_id: int, **values: Any) -> None:
        c = tables.retrain_cycles
        with self._engine.begin() as conn:
            conn.execute(c.update().where(c.c.id == cycle_id).values(**values))


def _abandon_running(now: float) -> sa.Update:
    c = tables.retrain_cycles
    return (
        c.update()
        .where(c.c.status == "running")
        .values(status="abandoned", finished_at=now, reason=ABANDONED_REASON)
    )


def _cycle(row: sa.Row[Any]) -> CycleRecord:
    return CycleRecord(
        id=row.id,
        kind=row.kind,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        owner=row.owner,
        live_adapter_id=row.live_adapter_id,
        candidate_adapter_id=row.candidate_adapter_id,
        data=json.loads(row.data),
        figures=json.loads(row.figures),
        reason=row.reason,
    )


def remove_old_temporaries(root: Path, *, older_than_s: float) -> int:
    """Delete half-written version folders a killed job left under ``root``.

    Only folders untouched for ``older_than_s`` go: another job may be publishing now.
    """
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for path in root.iterdir():
        if path.name.startswith(".tmp-") and path.stat().st_mtime < cutoff:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
