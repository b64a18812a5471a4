"""What the bot hands the retraining job: operator feedback as plain records, and the cycle.

:func:`export_feedback` reads the conversation store's tables: bot replies an operator
approved or rejected (the latest review of a turn wins) and every correction not
withdrawn (as last edited), each with the conversation before it.
:func:`run_retrain_cycle` feeds them, the ingested logs and the knowledge base to
:func:`finetune.retrain.run_cycle`. ``finetune`` never imports the bot; this module is the
bridge.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bot.settings import RetrainConfig, Settings
from retrieval.records import LogMessage, Role

if TYPE_CHECKING:
    from finetune.cycles import CycleLock, CycleRecord
    from finetune.retrain import CycleReport, Evaluator, FeedbackRecord, RetrainPolicy, Trainer
    from retrieval.embedder_retraining import CandidateTuner, CorrectionRecord, EmbedderStepPolicy
    from retrieval.knowledge import KnowledgeBase

log = logging.getLogger(__name__)


class NothingIndexedError(RuntimeError):
    """No index version is live: there are no logs to retrain on."""


def retrain_policy(config: RetrainConfig) -> RetrainPolicy:
    from finetune.retrain import RetrainPolicy

    return RetrainPolicy(
        tolerance=config.tolerance,
        approved_weight=config.approved_weight,
        corrected_weight=config.corrected_weight,
        feedback_share=config.feedback_share,
        budget_minutes=config.budget_minutes,
        lock_stale_s=config.lock_stale_minutes * 60.0,
        eval_corrections=config.eval_corrections,
    )


def export_feedback(database: Path, *, postgres_url: str | None = None) -> list[FeedbackRecord]:
    """Approved, rejected and corrected replies, oldest first; [] before the bot has run.

    Read from PostgreSQL instead of ``database`` when ``postgres_url`` is given.
    """
    if postgres_url is not None:
        from bot.store.postgres_sync import QmarkConnection

        shared = QmarkConnection.connect(postgres_url, read_only=True)
        try:
            return _reviewed_replies(shared) + _corrections(shared)
        finally:
            shared.close()
    from retrieval.sqlite_db import connect

    conn = connect(database)
    try:
        if not _has_tables(conn, "bot_turns", "bot_flags", "bot_corrections"):
            return []
        return _reviewed_replies(conn) + _corrections(conn)
    finally:
        conn.close()


def run_retrain_cycle(
    settings: Settings,
    *,
    budget_minutes: float | None = None,
    progress: bool = True,
    train: Trainer | None = None,
    evaluate: Evaluator | None = None,
    tune_embedder: bool | None = None,
    embedder_tuner: CandidateTuner | None = None,
) -> CycleReport:
    """One retraining cycle over this home's logs and feedback (see finetune.retrain).

    With ``tune_embedder`` (default: ``retrain.tune_embedder``) the cycle first runs the
    embedder step (retrieval/embedder_retraining.py) on ``retrain.embedder_budget_share`` of the
    budget; the adapter then trains on the rest, with the retrieval now served.
    ``embedder_tuner`` replaces the tuner (tests). Raises NothingIndexedError before the
    first ingest, CycleLockedError while another cycle runs (on any replica, when they
    share PostgreSQL), ValueError when there is nothing to train on.
    """
    from bot.components import generator_paths, open_knowledge_base
    from finetune.cycles import retrain_lock
    from finetune.retrain import run_cycle

    paths = generator_paths(settings)
    knowledge = open_knowledge_base(settings)
    try:
        if knowledge.store.live_index_version() is None:
            raise NothingIndexedError("nothing is indexed yet: run `supportbot ingest PATH` first")
        knowledge.load()
        postgres_url = settings.storage.postgres_url
        with retrain_lock(postgres_url):
            feedback = export_feedback(paths.database, postgres_url=postgres_url)
            total = (
                budget_minutes if budget_minutes is not None else settings.retrain.budget_minutes
            )
            embedder_step = None
            if settings.retrain.tune_embedder if tune_embedder is None else tune_embedder:
                embedder_step, budget_minutes = _embedder_step(
                    settings, knowledge, feedback, total, embedder_tuner, progress
                )
            return run_cycle(
                logs=list(knowledge.iter_conversations()),
                feedback=feedback,
                retriever=knowledge,
                config=settings.generator,
                policy=retrain_policy(settings.retrain),
                paths=paths,
                train=train,
                evaluate=evaluate,
                budget_minutes=budget_minutes,
                progress=progress,
                before_training=embedder_step,
            )
    finally:
        knowledge.close()


def _embedder_step(
    settings: Settings,
    knowledge: KnowledgeBase,
    feedback: list[FeedbackRecord],
    total_minutes: float,
    tuner: CandidateTuner | None,
    progress: bool,
) -> tuple[Callable[[CycleLock], dict[str, Any]], float]:
    """The embedder step of a cycle and the minutes left to the adapter: all of them when
    the step's share is too short to tune in (it then only records why)."""
    from retrieval.embedder_retraining import EmbedderStepPolicy, skip_reason

    tuning = settings.retrieval.tuning
    budget_s = total_minutes * 60.0 * settings.retrain.embedder_budget_share
    step = cycle_step(
        knowledge,
        feedback,
        EmbedderStepPolicy(
            tuning, settings.retrain.embedder_tolerance, settings.retrain.eval_corrections
        ),
        home=settings.home,
        embedders_root=settings.paths.embedders,
        budget_s=budget_s,
        tune=tuner,
        progress=progress,
    )
    if skip_reason(knowledge, tuning, budget_s) is not None:
        return step, total_minutes
    return step, total_minutes - budget_s / 60.0


def cycle_step(
    knowledge: KnowledgeBase,
    feedback: Sequence[CorrectionRecord],
    policy: EmbedderStepPolicy,
    *,
    home: Path,
    embedders_root: Path,
    budget_s: float,
    tune: CandidateTuner | None = None,
    progress: bool = False,
) -> Callable[[CycleLock], dict[str, Any]]:
    """The step as :func:`finetune.retrain.run_cycle` runs it, under the cycle's lock; its
    report goes into the cycle's figures under ``"embedder"``."""
    from retrieval.embedder_retraining import retrain_embedder

    def step(lock: CycleLock) -> dict[str, Any]:
        report = retrain_embedder(
            knowledge,
            feedback,
            policy,
            home=home,
            embedders_root=embedders_root,
            budget_s=budget_s,
            may_promote=lambda: not lock.lost,
            tune=tune,
            progress=progress,
        )
        return {"embedder": report.as_dict()}

    return step


def rollback_generator(settings: Settings, *, to: int | None = None) -> CycleRecord:
    """Make the previous adapter live (see finetune.retrain.rollback); a running server
    switches to it at its next poll."""
    from bot.components import generator_paths
    from finetune.retrain import rollback

    return rollback(generator_paths(settings), to=to)


def scheduled_cycle_command(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment for a ``supportbot retrain`` subprocess that sees the
    same settings as the server (passed as environment, which beats the config file)."""
    argv = [sys.executable, "-m", "bot.cli", "--home", str(settings.home), "retrain"]
    env = {"HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    dumped = settings.model_dump(
        mode="json", include={"generator", "retrieval", "retrain", "storage"}
    )
    for name, value in dumped.items():
        env[f"SUPPORTBOT_{name.upper()}"] = json.dumps(value)
    env["SUPPORTBOT_LOG_LEVEL"] = settings.log_level
    return [*argv, "--no-progress"], env


# -- reading the store ---------------------------------------------------------------------

_ROLE: dict[str, Role] = {"customer": "customer", "bot": "agent", "agent": "agent"}


class _Queryable(Protocol):
    """A sqlite3 connection, or a PostgreSQL one that reads like it (QmarkConnection)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


def _reviewed_replies(conn: _Queryable) -> list[FeedbackRecord]:
    from finetune.retrain import FeedbackRecord

    # The latest review of each bot turn; a corrected turn is exported as its correction.
    rows = conn.execute(
        "SELECT f.turn_id, f.status, f.resolved_at FROM bot_flags f"
        " JOIN bot_turns t ON t.id = f.turn_id"
        " WHERE t.role = 'bot' AND f.status IN ('approved', 'corrected', 'rejected')"
        " ORDER BY f.resolved_at, f.id"
    ).fetchall()
    latest: dict[str, tuple[str, float]] = {}
    for row in rows:
        latest[row["turn_id"]] = (row["status"], float(row["resolved_at"] or 0.0))
    records = []
    for turn_id, (status, resolved_at) in latest.items():
        if status not in ("approved", "rejected"):
            continue  # a corrected turn is exported as its correction
        found = _exchange(conn, turn_id)
        if found is None:
            continue
        history, customer_text, reply = found
        records.append(
            FeedbackRecord(
                "approved" if status == "approved" else "rejected",
                f"turn:{turn_id}",
                history,
                customer_text,
                reply,
                resolved_at,
            )
        )
    return records


def _corrections(conn: _Queryable) -> list[FeedbackRecord]:
    from finetune.retrain import FeedbackRecord

    records = []
    for row in conn.execute("SELECT * FROM bot_corrections ORDER BY created_at, id"):
        # A withdrawn correction was a mistake (or a test): nothing learns from it. Read
        # from the row, which a database the server has not migrated yet reads without.
        # keys(): `in` on a sqlite3.Row looks through its values, not its column names.
        if "withdrawn_at" in row.keys() and row["withdrawn_at"] is not None:  # noqa: SIM118
            continue
        history: tuple[LogMessage, ...] = ()
        if row["turn_id"] is not None:
            found = _exchange(conn, row["turn_id"])
            history = found[0] if found is not None else ()
        records.append(
            FeedbackRecord(
                "corrected",
                str(row["source_id"] or f"correction:{row['id']}"),
                history,
                str(row["question"]),
                str(row["answer"]),
                float(row["created_at"]),
            )
        )
    return records


def _exchange(conn: _Queryable, turn_id: str) -> tuple[tuple[LogMessage, ...], str, str] | None:
    """(history before the customer's message, that message, the reply) for a bot turn."""
    turn = conn.execute(
        "SELECT conversation_id, position, text FROM bot_turns WHERE id = ?", (turn_id,)
    ).fetchone()
    if turn is None:
        return None
    earlier = conn.execute(
        "SELECT role, text FROM bot_turns WHERE conversation_id = ? AND position < ?"
        " ORDER BY position",
        (turn["conversation_id"], turn["position"]),
    ).fetchall()
    start = len(earlier)
    while start > 0 and earlier[start - 1]["role"] == "customer":
        start -= 1
    if start == len(earlier):
        return None  # the bot spoke first: no question to learn from
    history = tuple(LogMessage(_ROLE[r["role"]], r["text"]) for r in earlier[:start])
    question = "\n".join(r["text"] for r in earlier[start:])
    return history, question, str(turn["text"])


def _has_tables(conn: sqlite3.Connection, *names: str) -> bool:
    placeholders = ", ".join("?" for _ in names)
    (found,) = conn.execute(
        f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ({placeholders})",
        names,
    ).fetchone()
    return int(found) == len(names)
