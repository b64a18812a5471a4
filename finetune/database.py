"""Where the model registry and the retraining cycle log keep their rows: the home folder's
SQLite file (one box, the default) or the PostgreSQL database that replicas share
(``storage.database_url``). The same tables (:mod:`finetune.tables`) and statements serve
both.

A folder is recorded relative to the home when it lies inside it (:mod:`retrieval.folders`).
"""

from __future__ import annotations

import json
from typing import Any


def dump(payload: dict[str, Any] | None) -> str:
    """A JSON column's text."""
    return json.dumps(payload or {}, sort_keys=True, default=str)
