"""Faults: kill -9 in the middle of the jobs that share the home's database, and a full disk.

The home holds customers' ratings, flags and operators' corrections in the same SQLite
file the jobs write to. Each job is killed with SIGKILL at a point it reaches for sure
(inside the function named), then the home is opened again: the database passes its
integrity check, every rated turn and correction is still there (counted before and
after, and exported for training the same), and what is served still loads. A full
disk is tested in tests/test_hardening_storage.py.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bot.core.types import FlagReason, FlagStatus, Rating
from bot.feedback import export_feedback
from bot.store.conversations import ConversationDatabase
from finetune.pipeline import GeneratorPaths
from finetune.registry import ModelRegistry
from tests.support.corpus import REPO, SMALL_LOGS, exchange, write_jsonl
from tests.support.crashes import CHILD as INGEST_CHILD
from tests.support.hardening import record
from tests.support.retraining import CONFIG, POLICY, make_home

# A retraining cycle that dies at ``point``: during training (first step), in the middle
# of the promotion's transaction, or just after the promotion committed (before the
# cycle's result is recorded). The evaluator makes the new adapter win, so it is promoted.
RETRAIN_CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from finetune import tables
    from finetune.config import GeneratorConfig
    from finetune.pipeline import GeneratorPaths
    from finetune.registry import ModelRegistry
    from finetune.retrain import RetrainPolicy, run_cycle
    from tests.support.finetune_fakes import InMemoryRetriever, toy_conversations

    home, config, policy, point = (
        Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
    )
    logs = toy_conversations(repeats=2)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: like kill -9

    promote = ModelRegistry.promote

    def dying_promote(self, adapter_id):
        if point == "promotion-mid-transaction":
            with self._engine.begin() as conn:
                conn.execute(tables.live.update().values(adapter_id=adapter_id))
                die()
        promote(self, adapter_id)
        die()

    ModelRegistry.promote = dying_promote

    def evaluate(adapter, gate):
        new = adapter.folder.name != "v0001"
        return {"held_out_rouge_l": 0.9 if new else 0.1, "held_out_grounded": 1.0}

    def on_step(step, loss):
        if point == "training" and step == 1:
            die()

    run_cycle(
        logs=logs, feedback=[], retriever=InMemoryRetriever(logs),
        config=GeneratorConfig(**config), policy=RetrainPolicy(**policy),
        paths=GeneratorPaths.under(home), progress=False, on_step=on_step, evaluate=evaluate,
    )
    """
)


async def seed_feedback(database: Path) -> None:
    """Customers' ratings and flags, operators' reviews and corrections, in ``database``."""
    store = ConversationDatabase(database)
    await store.open()
    try:
        for n in range(6):
            conversation = await store.create_conversation("web")
            await store.add_turn(conversation.id, "customer", f"question {n} about returns")
            turn = await store.add_turn(conversation.id, "bot", f"Returns take {n + 1} days.")
            await store.add_rating(Rating(turn.id, "up" if n % 2 else "down", channel="web"))
            await store.add_flag(turn.id, FlagReason.THUMBS_DOWN)
            status = FlagStatus.APPROVED if n % 3 else FlagStatus.REJECTED
            await store.resolve_turn_flags(turn.id, status, "alice")
            if n % 2 == 0:
                await store.add_correction(
                    f"question {n} about returns",
                    f"Returns take {n + 30} days.",
                    created_by="alice",
                )
    finally:
        await store.aclose()


def kept_data(database: Path) -> dict[str, Any]:
    """What must survive any crash: counts, the integrity check, the training export."""
    with sqlite3.connect(database) as conn:
        counts = {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("bot_turns", "bot_ratings", "bot_flags", "bot_corrections")
        }
        counts["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
    counts["exported"] = sorted((r.kind, r.source_id, r.reply) for r in export_feedback(database))  # type: ignore[assignment]
    return counts


def _live_folder(paths: GeneratorPaths) -> Path:
    registry = ModelRegistry.open(paths)
    try:
        live = registry.live_adapter()
    finally:
        registry.close()
    assert live is not None
    return live.folder


@pytest.mark.parametrize(
    ("point", "live_after"),
    [
        ("training", "v0001"),
        ("promotion-mid-transaction", "v0001"),
        ("promotion-after-commit", "v0002"),
    ],
)
async def test_a_killed_retraining_or_promotion_loses_no_feedback_and_serves_a_whole_adapter(
    tmp_path: Path, point: str, live_after: str
) -> None:
    paths = make_home(tmp_path / "home")
    await seed_feedback(paths.database)
    before = kept_data(paths.database)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            RETRAIN_CHILD,
            str(paths.database.parent),
            CONFIG.model_dump_json(),
            json.dumps({**POLICY.__dict__, "lock_stale_s": 3600.0}),
            point,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]

    after = kept_data(paths.database)
    assert after == before and after["integrity"] == "ok"
    live = _live_folder(paths)
    assert live.name == live_after
    # What is served loads: the live adapter's folder is whole and the model generates.
    from finetune.pipeline import load_live_generator

    generator = load_live_generator(paths, CONFIG)
    assert generator is not None
    assert not [p for p in paths.adapters.iterdir() if p.name.startswith(".")]
    record(
        "faults",
        kill=f"retrain/{point}",
        ratings=[before["bot_ratings"], after["bot_ratings"]],
        corrections=[before["bot_corrections"], after["bot_corrections"]],
        turns=[before["bot_turns"], after["bot_turns"]],
        integrity=after["integrity"],
        served=live.name,
    )


@pytest.mark.parametrize("point", ["before-index", "before-rename"])
async def test_a_killed_ingest_loses_no_feedback(
    tmp_path: Path, point: str, make_knowledge: Any
) -> None:
    home = tmp_path / "home"
    kb = make_knowledge()  # tmp_path/home, the same database as the conversation store
    from retrieval.ingest import ingest_paths

    ingest_paths([write_jsonl(tmp_path / "first.jsonl", SMALL_LOGS)], kb)
    live_index = kb.store.live_index_version()
    kb.close()
    await seed_feedback(home / "supportbot.db")
    before = kept_data(home / "supportbot.db")
    logs = write_jsonl(
        tmp_path / "second.jsonl",
        [exchange(f"n{i}", f"Is tent {i} waterproof?", f"Yes, {i}000 mm.") for i in range(20)],
    )
    child = subprocess.run(
        [sys.executable, "-c", INGEST_CHILD, str(home), str(logs), point],
        cwd=REPO,
        capture_output=True,
        timeout=240,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    after = kept_data(home / "supportbot.db")
    assert after == before and after["integrity"] == "ok"
    restarted = make_knowledge()
    restarted.load()
    assert restarted.version == live_index  # the previous index is served, whole
    record(
        "faults",
        kill=f"ingest/{point}",
        ratings=[before["bot_ratings"], after["bot_ratings"]],
        corrections=[before["bot_corrections"], after["bot_corrections"]],
        turns=[before["bot_turns"], after["bot_turns"]],
        integrity=after["integrity"],
        served=str(live_index.id if live_index else None),
    )
