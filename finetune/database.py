"""Where the model registry and the retraining cycle log keep their rows: the home folder's
SQLite file (one box, the default) or the PostgreSQL database that replicas share
(``storage.database_url``). The same tables (:mod:`finetune.tables`) and statements serve
both.

A folder is recorded relative to the home when it lies inside it, and found again under
the reader's own home: replicas on several hosts, each naming the shared folders where
they are mounted there, and jobs started from another working directory find the same
folder, and a home can move.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from retrieval.database import sqlite_url
from retrieval.records_db import inside_home


def database_url(database: Path, postgres_url: str | None) -> str:
    """PostgreSQL when ``postgres_url`` is set, else the SQLite file ``database``."""
    return postgres_url or sqlite_url(database)


def recorded(folder: Path, home: Path) -> str:
    """How ``folder`` is written into a row: relative to ``home`` when inside it (as this
    process names both), else absolute."""
    inside = inside_home(folder, home)
    return inside if inside is not None else os.path.abspath(folder)


def found(recorded: str, home: Path) -> Path:
    """The folder a row names, as this process reaches it from its ``home``."""
    path = Path(recorded)
    return path if path.is_absolute() else home / path


def dump(payload: dict[str, Any] | None) -> str:
    """A JSON column's text."""
    return json.dumps(payload or {}, sort_keys=True, default=str)
