"""Retraining cycle records and the one-cycle-at-a-time lock (component ``retrain``).

The lock is one row in the shared SQLite database, taken with ``BEGIN IMMEDIATE`` and
naming its owner (pid, host, process start time). The owner refreshes a heartbeat while
it runs. A row whose owner is dead on this host, or whose heartbeat is older than the
stale timeout, is taken over: a cycle killed half-way (even by SIGKILL) never blocks the
next one. Whoever takes the lock marks cycles still recorded as running as abandoned,
since no live process can be running them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from retrieval.sqlite_db import apply_migrations, connect

log = logging.getLogger(__name__)

COMPONENT = "retrain"
MIGRATIONS = [
    """
    CREATE TABLE retrain_lock (
        slot INTEGER PRIMARY KEY CHECK (slot = 1),
        owner_pid INTEGER NOT NULL,
        owner_host TEXT NOT NULL,
        owner_start TEXT NOT NULL DEFAULT '',
        acquired_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL
    );
    CREATE TABLE retrain_cycles (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL DEFAULT 'cycle' CHECK (kind IN ('cycle', 'rollback')),
        status TEXT NOT NULL CHECK (status IN
            ('running', 'promoted', 'kept', 'failed', 'abandoned', 'rolled_back')),
        started_at REAL NOT NULL,
        finished_at REAL,
        owner TEXT NOT NULL DEFAULT '',
        live_adapter_id INTEGER,
        candidate_adapter_id INTEGER,
        data TEXT NOT NULL DEFAULT '{}',
        figures TEXT NOT NULL DEFAULT '{}',
        reason TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX retrain_cycles_started ON retrain_cycles(started_at);
    """,
]


class CycleLockedError(RuntimeError):
    """Another retraining cycle holds the lock and is alive."""


@dataclass(frozen=True)
class LockOwner:
    pid: int
    host: str
    start: str  # the process's start time (guards against a reused pid); "" when unknown

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


def this_process() -> LockOwner:
    return LockOwner(os.getpid(), socket.gethostname(), _process_start(os.getpid()))


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
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def acquire(self) -> CycleLock:
        conn = _open(self.database)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT * FROM retrain_lock WHERE slot = 1").fetchone()
                now = time.time()
                if row is not None and not self._is_stale(row, now):
                    raise CycleLockedError(
                        f"a retraining cycle is already running (pid {row['owner_pid']} on"
                        f" {row['owner_host']}, started {time.ctime(row['acquired_at'])})"
                    )
                if row is not None:
                    log.warning(
                        "taking over the retraining lock of pid %s on %s (dead or stale)",
                        row["owner_pid"],
                        row["owner_host"],
                    )
                conn.execute(
                    "INSERT OR REPLACE INTO retrain_lock (slot, owner_pid, owner_host,"
                    " owner_start, acquired_at, heartbeat_at) VALUES (1, ?, ?, ?, ?, ?)",
                    (self.owner.pid, self.owner.host, self.owner.start, now, now),
                )
                self.abandoned = [
                    int(r[0])
                    for r in conn.execute(
                        "SELECT id FROM retrain_cycles WHERE status = 'running'"
                    ).fetchall()
                ]
                conn.execute(
                    "UPDATE retrain_cycles SET status = 'abandoned', finished_at = ?,"
                    " reason = 'the process running it stopped before it finished'"
                    " WHERE status = 'running'",
                    (now,),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
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
        conn = _open(self.database)
        try:
            conn.execute(
                "DELETE FROM retrain_lock WHERE slot = 1 AND owner_pid = ? AND owner_host = ?"
                " AND owner_start = ?",
                (self.owner.pid, self.owner.host, self.owner.start),
            )
        finally:
            conn.close()

    def __enter__(self) -> CycleLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _is_stale(self, row: sqlite3.Row, now: float) -> bool:
        if now - float(row["heartbeat_at"]) > self.stale_after_s:
            return True
        if row["owner_host"] != self.owner.host:
            return False  # cannot see the process: only the heartbeat tells
        return not process_alive(int(row["owner_pid"]), str(row["owner_start"]))

    def _beat(self) -> None:
        conn = _open(self.database)
        try:
            while not self._stop.wait(self.heartbeat_s):
                cursor = conn.execute(
                    "UPDATE retrain_lock SET heartbeat_at = ? WHERE slot = 1 AND owner_pid = ?"
                    " AND owner_host = ? AND owner_start = ?",
                    (time.time(), self.owner.pid, self.owner.host, self.owner.start),
                )
                if cursor.rowcount == 0:
                    log.error("the retraining lock was taken over; this cycle will not promote")
                    self._lost.set()
                    return
        except sqlite3.Error:
            log.exception("retraining lock heartbeat failed")
        finally:
            conn.close()


class CycleLog:
    """Reads and writes cycle records over a connection it owns."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        apply_migrations(conn, COMPONENT, MIGRATIONS)

    @classmethod
    def open(cls, database: Path) -> CycleLog:
        return cls(connect(database))

    def close(self) -> None:
        self._conn.close()

    def start(self, *, owner: str, live_adapter_id: int | None, data: dict[str, Any]) -> int:
        cursor = self._conn.execute(
            "INSERT INTO retrain_cycles (kind, status, started_at, owner, live_adapter_id, data)"
            " VALUES ('cycle', 'running', ?, ?, ?, ?)",
            (time.time(), owner, live_adapter_id, _dump(data)),
        )
        return int(cursor.lastrowid or 0)

    def set_candidate(self, cycle_id: int, adapter_id: int) -> None:
        self._conn.execute(
            "UPDATE retrain_cycles SET candidate_adapter_id = ? WHERE id = ?",
            (adapter_id, cycle_id),
        )

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
        self._conn.execute(
            "UPDATE retrain_cycles SET status = ?, reason = ?, figures = ?, finished_at = ?"
            " WHERE id = ?",
            (status, reason, _dump(merged), time.time(), cycle_id),
        )
        return self.cycle(cycle_id)

    def add_figures(self, cycle_id: int, figures: dict[str, Any]) -> None:
        """Record figures of a step that finished while the cycle runs on."""
        merged = {**self.cycle(cycle_id).figures, **figures}
        self._conn.execute(
            "UPDATE retrain_cycles SET figures = ? WHERE id = ?", (_dump(merged), cycle_id)
        )

    def record_rollback(self, *, from_id: int | None, to_id: int, reason: str) -> CycleRecord:
        now = time.time()
        cursor = self._conn.execute(
            "INSERT INTO retrain_cycles (kind, status, started_at, finished_at, owner,"
            " live_adapter_id, candidate_adapter_id, reason)"
            " VALUES ('rollback', 'rolled_back', ?, ?, ?, ?, ?, ?)",
            (now, now, str(this_process()), from_id, to_id, reason),
        )
        return self.cycle(int(cursor.lastrowid or 0))

    def cycle(self, cycle_id: int) -> CycleRecord:
        row = self._conn.execute(
            "SELECT * FROM retrain_cycles WHERE id = ?", (cycle_id,)
        ).fetchone()
        if row is None:
            raise LookupError(f"no retraining cycle with id {cycle_id}")
        return cycle_of(row)

    def cycles(self, limit: int = 50) -> list[CycleRecord]:
        """Newest first."""
        rows = self._conn.execute(
            "SELECT * FROM retrain_cycles ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [cycle_of(r) for r in rows]


def cycle_of(row: sqlite3.Row) -> CycleRecord:
    return CycleRecord(
        id=int(row["id"]),
        kind=str(row["kind"]),
        status=str(row["status"]),
        started_at=float(row["started_at"]),
        finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
        owner=str(row["owner"]),
        live_adapter_id=None if row["live_adapter_id"] is None else int(row["live_adapter_id"]),
        candidate_adapter_id=None
        if row["candidate_adapter_id"] is None
        else int(row["candidate_adapter_id"]),
        data=json.loads(row["data"]),
        figures=json.loads(row["figures"]),
        reason=str(row["reason"]),
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


def _open(database: Path) -> sqlite3.Connection:
    conn = connect(database)
    apply_migrations(conn, COMPONENT, MIGRATIONS)
    return conn


def process_alive(pid: int, start: str) -> bool:
    """Whether process ``pid`` runs, and is the one started at ``start`` (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _stat_fields(pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return not start or not fields or fields[19] == start


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "" elsewhere."""
    fields = _stat_fields(pid)
    return fields[19] if fields else ""


def _stat_fields(pid: int) -> list[str]:
    """Fields 3.. of ``/proc/PID/stat`` (state first), or [] where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return []
    # The command name (field 2) may hold spaces; the fields after its ")" are plain.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields if len(fields) > 19 else []


def _dump(payload: dict[str, Any] | None) -> str:
    return json.dumps(payload or {}, sort_keys=True, default=str)
