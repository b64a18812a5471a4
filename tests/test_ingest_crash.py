"""kill -9 in the middle of an ingest leaves the previous index serving and the store sound,
with the store in the home's SQLite file or in PostgreSQL."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from tests.support.corpus import REPO, SMALL_LOGS, exchange, write_jsonl
from tests.support.crashes import CHILD

MakeKB = Callable[..., KnowledgeBase]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("point", ["before-index", "before-rename"])
def test_killed_ingest_keeps_serving_previous_index(
    tmp_path: Path, make_knowledge: MakeKB, point: str, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    kb = make_knowledge(postgres_url=url)
    ingest_paths([write_jsonl(tmp_path / "first.jsonl", SMALL_LOGS)], kb)
    live_before = kb.store.live_index_version()
    new_logs = write_jsonl(
        tmp_path / "second.jsonl",
        [
            exchange(
                f"n{i}",
                f"Is the Summit {i} tent waterproof?",
                f"Yes, the Summit {i} has a 3000 mm rating.",
            )
            for i in range(20)
        ],
    )

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "home"), str(new_logs), point, url or ""],
        cwd=REPO,
        capture_output=True,
        timeout=240,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]

    if url is None:
        db = sqlite3.connect(tmp_path / "home" / "supportbot.db")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()

    # A server starting now serves exactly the previous version.
    restarted = make_knowledge(postgres_url=url)
    restarted.load()
    assert restarted.version == live_before
    assert all(not h.source_id.startswith("n") for h in restarted.search((), "Summit tent", 5))

    # The next ingest cleans up and indexes what the killed run stored.
    report = ingest_paths([new_logs], restarted)
    assert report.sync and report.sync.version and report.sync.version != live_before
    assert restarted.search((), "is the Summit 7 tent waterproof", 1)[0].source_id == "n7#1"
    assert not [p for p in (tmp_path / "home" / "indexes").iterdir() if p.name.startswith(".")]
    assert restarted.store.counts()["log_entries"] == len(SMALL_LOGS) + 1 + 20
