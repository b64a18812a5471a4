"""Retrieval that learns from the logs: one step of ``supportbot train``.

1. Group the logs' answers into reply clusters and split off a validation share of
   conversations and a few held-out topics (retrieval/tuning_data.py).
2. Measure the served (embedder, index) pair: top-1 and recall@5 of validation messages,
   and the hand-off trade-off with held-out topics standing in for out-of-scope questions.
3. Tune a copy of the embedder within its share of the budget (retrieval/tuning.py); if it
   beats the served one on validation, re-embed the whole index with it as a new index
   version, served together with the new embedder from then on.
4. Fit the confidence weights and hand-off threshold on the same validation cases for the
   pair now served, and save them with the versions they were fitted for.

A crash anywhere before step 3 publishes its index version leaves what is served as it was.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.adapters.retrieval import to_source
from bot.components import ServedConfidence, format_served, served_confidence
from bot.core.config import EngineConfig
from retrieval.calibration import (
    Calibration,
    answers_match,
    load_calibration,
    refit_on_files,
    save_calibration,
    signals_used,
)
from retrieval.confidence import (
    CalibrationCase,
    CalibrationResult,
    calibrate,
    retrieval_features,
)
from retrieval.config import TuningConfig
from retrieval.knowledge import KnowledgeBase, Query
from retrieval.records import RetrievedExchange
from retrieval.tuning import EmbedderTuner, TuningReport, budget_allows_tuning
from retrieval.tuning_data import (
    LabelledMessage,
    TuningSplit,
    cluster_replies,
    normalise_reply,
    split_for_tuning,
)

log = logging.getLogger(__name__)

_MAX_OUT_OF_SCOPE_QUERIES = 1000


@dataclass(frozen=True)
class RetrievalFigures:
    """What the served pair achieves on the validation split."""

    top1: float
    recall_at_5: float
    calibration: CalibrationResult | None  # None when no held-out topic could be formed
    embedder_id: str
    index_version: int | None

    def row(self) -> dict[str, Any]:
        result = self.calibration
        return {
            "top1": round(self.top1, 4),
            "recall_at_5": round(self.recall_at_5, 4),
            "threshold": round(result.threshold, 4) if result else None,
            "handoff_recall": round(result.handoff_recall, 4) if result else None,
            "in_scope_answered": round(result.answered_rate, 4) if result else None,
            "answered_accuracy": round(result.answered_accuracy, 4) if result else None,
            "wrong_answer_rate": round(result.wrong_answer_rate, 4) if result else None,
            "signals": signals_used(result.weights) if result else None,
        }


@dataclass
class RetrievalTrainingReport:
    skipped: str | None  # why tuning did not run, if it did not
    messages: int
    clusters: int
    validation: int
    held_out_topics: int
    before: RetrievalFigures | None
    after: RetrievalFigures | None
    tuning: TuningReport | None = None
    reembedded: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    # What the server applies after this run (None: no engine settings were given).
    served: ServedConfidence | None = None

    def format_table(self) -> str:
        lines = [
            f"retrieval:   {self.messages} customer messages, {self.clusters} answers,"
            f" {self.validation} validation messages, {self.held_out_topics} held-out topics",
        ]
        if self.tuning is not None:
            t = self.tuning
            lines.append(
                f"embedder:    tuned {t.steps} steps ({t.epochs} epochs, {t.examples} examples,"
                f" stopped by {t.stopped}) in {t.seconds:.0f} s"
                + (f" -> {t.folder}" if t.folder else "; no better than before, not published")
            )
        if self.skipped:
            lines.append(f"embedder:    not tuned ({self.skipped})")
        if self.before is not None:
            # Each row at the threshold fitted on the validation split for it, which is
            # not necessarily the one served (see the line after the table).
            header = (
                f"{'on the validation split':24}{'top-1':>8}{'R@5':>8}{'thresh':>8}{'hand-off':>9}"
                f"{'answered':>9}{'accuracy':>9}{'wrong':>8}"
            )
            lines += ["", header]
            for name, figures in (("before", self.before), ("after", self.after)):
                if figures is None:
                    continue
                row = figures.row()
                cells = [
                    _cell(row[k], 8 if k in ("top1", "recall_at_5", "threshold") else 9)
                    for k in (
                        "top1",
                        "recall_at_5",
                        "threshold",
                        "handoff_recall",
                        "in_scope_answered",
                        "answered_accuracy",
                    )
                ]
                lines.append(f"{name:24}" + "".join(cells) + _cell(row["wrong_answer_rate"], 8))
        lines += self.notes
        if self.served is not None:
            lines.append(format_served(self.served))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "skipped": self.skipped,
            "messages": self.messages,
            "clusters": self.clusters,
            "validation": self.validation,
            "held_out_topics": self.held_out_topics,
            "before": self.before.row() if self.before else None,
            "after": self.after.row() if self.after else None,
            "tuning": self.tuning.as_dict() if self.tuning else None,
            "reembedded": self.reembedded,
            "seconds": round(self.seconds, 1),
            "served": asdict(self.served) if self.served else None,
        }


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"


def labelled_messages(knowledge: KnowledgeBase) -> list[LabelledMessage]:
    """Every live customer message with the answer it got (logs and corrections)."""
    stored = knowledge.store.entries_by_id(knowledge.store.live_entry_ids())
    return [
        LabelledMessage(
            entry_id=entry_id,
            conversation_id=item.entry.conversation_id,
            text=item.entry.embed_text,
            reply=item.entry.agent_reply,
            kind=item.entry.kind,
        )
        for entry_id, item in sorted(stored.items())
    ]


def tuning_split(
    knowledge: KnowledgeBase, config: TuningConfig
) -> tuple[list[LabelledMessage], TuningSplit]:
    """The live messages and their split for tuning: replies clustered by meaning (the
    served embedder's), validation conversations and held-out topics set aside."""
    messages = labelled_messages(knowledge)
    clusters = cluster_replies(
        [m.reply for m in messages],
        knowledge.embedder.encode,
        merge_similarity=config.reply_merge_similarity,
    )
    split = split_for_tuning(
        messages,
        clusters,
        validation_share=config.validation_share,
        held_out_topic_share=config.held_out_topic_share,
        seed=config.seed,
    )
    return messages, split


def train_retrieval(
    knowledge: KnowledgeBase,
    config: TuningConfig,
    *,
    home: Path,
    embedders_root: Path,
    budget_s: float,
    tune: bool = True,
    progress: bool = False,
    should_stop: Callable[[], bool] | None = None,
    engine: EngineConfig | None = None,
) -> RetrievalTrainingReport:
    """Tune the embedder (when ``tune`` and the budget allow), re-embed, and calibrate.

    ``knowledge`` must be loaded; it serves the new pair afterwards when tuning helped.
    With ``engine`` (the settings' engine section) the report says what the server will
    apply afterwards (:func:`bot.components.served_confidence`).
    """
    start = time.monotonic()
    messages, split = tuning_split(knowledge, config)
    report = RetrievalTrainingReport(
        skipped=None,
        messages=len(messages),
        clusters=split.cluster_count,
        validation=len(split.validation),
        held_out_topics=len(split.held_out_topics),
        before=None,
        after=None,
    )
    if not split.validation:
        report.skipped = "too few conversations to validate on"
        if engine is not None:
            report.served = served_confidence(engine, home, knowledge.embedder.model_id)
        report.seconds = time.monotonic() - start
        return report
    report.before = measure(knowledge, split, config)
    tuning_budget = budget_s - (time.monotonic() - start)
    if not tune:
        report.skipped = "switched off"
    elif not budget_allows_tuning(tuning_budget, config, len(messages)):
        report.skipped = (
            f"needs {config.min_budget_s:.0f} s and {config.min_messages} messages,"
            f" has {max(tuning_budget, 0):.0f} s and {len(messages)}"
        )
    else:
        tuner = EmbedderTuner(knowledge.embedder, config, seed=config.seed)
        # Keep a tenth of the step for re-embedding and calibrating afterwards.
        report.tuning = tuner.run(
            split,
            embedders_root,
            budget_s=tuning_budget * 0.9,
            progress=progress,
            should_stop=should_stop,
        )
        if report.tuning.folder is not None:
            knowledge.reembed(knowledge.embedder_at(str(report.tuning.folder)), progress=progress)
            report.reembedded = True
    report.after = measure(knowledge, split, config) if report.reembedded else report.before
    report.notes.append(_calibrate_served(knowledge, report, home, config))
    if engine is not None:
        report.served = served_confidence(engine, home, knowledge.embedder.model_id)
    report.seconds = time.monotonic() - start
    return report


def _calibrate_served(
    knowledge: KnowledgeBase, report: RetrievalTrainingReport, home: Path, config: TuningConfig
) -> str:
    """Fit (or keep) the hand-off calibration of the pair now served; say which it did."""
    served = report.after
    previous = load_calibration(home) or {}
    if report.reembedded:
        refitted = refit_on_files(knowledge, home, previous, config)
        if refitted is not None:
            return (
                f"hand-off:    refitted for the tuned embedder on {refitted.name}, the labelled"
                " files `supportbot calibrate` used"
            )
    fitted = (previous.get("by_embedder") or {}).get(served.embedder_id if served else "")
    if not report.reembedded and fitted and fitted.get("fitted_on") == "files":
        return (
            "hand-off:    kept the threshold `supportbot calibrate` fitted on labelled files,"
            " not the validation split's above"
        )
    if served is not None and served.calibration is not None:
        save_calibration(
            home,
            Calibration(
                result=served.calibration,
                index_version=served.index_version,
                embedder_id=served.embedder_id,
                created_at=time.time(),
            ),
            config.target_handoff_recall,
            wrong_answer_cost=config.wrong_answer_cost,
            fitted_on="validation split with held-out topics (supportbot train)",
        )
        row = "after" if report.reembedded else "before"
        return f"hand-off:    refitted on the validation split (the '{row}' row above)"
    return (
        "hand-off:    not fitted: no topic could be held out (too few answers with three or"
        " more questions); run `supportbot calibrate` with an out-of-scope file"
    )


def measure(knowledge: KnowledgeBase, split: TuningSplit, config: TuningConfig) -> RetrievalFigures:
    """Search every validation message and held-out-topic message in the served index.

    The searches exclude those messages' conversations, and the answer classifier is
    refitted without them: both must see these questions as new ones.
    """
    rng = random.Random(config.seed)
    unseen = [m.entry_id for m in split.validation]
    unseen += [m.entry_id for members in split.held_out_topics.values() for m in members]
    served = knowledge
    knowledge = knowledge.classifier_excluding(unseen)
    cluster_by_reply = {}
    for message in (*split.train, *split.validation):
        cluster_by_reply[normalise_reply(message.reply)] = split.cluster_of[message.entry_id]

    def is_answer(message: LabelledMessage, hit: RetrievedExchange) -> bool:
        wanted = split.cluster_of[message.entry_id]
        found = cluster_by_reply.get(normalise_reply(hit.agent_reply))
        if found is not None:
            return found == wanted
        return answers_match(message.reply, hit.agent_reply)

    in_scope = split.validation[: config.max_validation_queries]
    in_hits = knowledge.search_batch(
        [Query(m.text) for m in in_scope],
        5,
        exclude_conversation_ids=[[m.conversation_id] for m in in_scope],
    )
    out_of_scope: list[LabelledMessage] = []
    excluded: list[list[str]] = []
    for members in split.held_out_topics.values():
        conversations = sorted({m.conversation_id for m in members})
        for message in members:
            out_of_scope.append(message)
            excluded.append(conversations)
    if len(out_of_scope) > _MAX_OUT_OF_SCOPE_QUERIES:
        picked = sorted(rng.sample(range(len(out_of_scope)), _MAX_OUT_OF_SCOPE_QUERIES))
        out_of_scope = [out_of_scope[i] for i in picked]
        excluded = [excluded[i] for i in picked]
    out_hits = (
        knowledge.search_batch(
            [Query(m.text) for m in out_of_scope], 5, exclude_conversation_ids=excluded
        )
        if out_of_scope
        else []
    )

    top1 = recall5 = 0
    cases = []
    for message, hits in zip(in_scope, in_hits, strict=True):
        right = [is_answer(message, h) for h in hits]
        top1 += bool(right) and right[0]
        recall5 += any(right)
        features = retrieval_features([to_source(h) for h in hits])
        if features is not None:
            cases.append(CalibrationCase(features, in_scope=True, correct=bool(right and right[0])))
    for hits in out_hits:
        features = retrieval_features([to_source(h) for h in hits])
        if features is not None:
            cases.append(CalibrationCase(features, in_scope=False))
    result = None
    if any(not c.in_scope for c in cases) and any(c.answerable for c in cases):
        result = calibrate(
            cases, config.target_handoff_recall, wrong_answer_cost=config.wrong_answer_cost
        )
    version = served.version
    return RetrievalFigures(
        top1=top1 / len(in_scope),
        recall_at_5=recall5 / len(in_scope),
        calibration=result,
        embedder_id=served.embedder.model_id,
        index_version=version.id if version else None,
    )
