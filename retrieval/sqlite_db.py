"""A plain sqlite3 connection to the home's SQLite file, opened as every engine of
:mod:`retrieval.database` opens it (for the few places that read it without SQLAlchemy)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path, *, timeout_s: float = 30.0) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with foreign keys on.

    WAL lets the server keep reading while an ingest or retraining job writes, and makes a
    killed writer leave the last committed state intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    return conn
