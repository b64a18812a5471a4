"""Retrieval that learns from the logs: one step of ``supportbot train``.

1. Group the logs' answers into reply clusters and split off a validation share of
   conversations and a few held-out topics (retrieval/tuning_data.py).
2. Measure the served (embedder, index) pair: top-1 and recall@5 of validation messages,
   and the hand-off trade-off with held-out topics standing in for out-of-scope questions
   (retrieval/figures.py).
3. Tune a copy of the embedder within its share of the budget (retrieval/tuning.py),
   keeping the time that re-embedding the index and measuring again are foreseen to take;
   if it beats the served one on validation, re-embed the whole index with it as a new
   index version, served together with the new embedder from then on. A re-embedding the
   step's deadline cuts publishes nothing: the served pair stays, the tuned embedder goes.
4. Fit the confidence weights and hand-off threshold on the same validation cases for the
   pair now served, and save them with the versions they were fitted for.

A crash anywhere before step 3 publishes its index version leaves what is served as it was.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrieval.calibration import load_calibration, refit_on_files
from retrieval.config import TuningConfig
from retrieval.figures import (
    ReplyEncoding,
    RetrievalFigures,
    held_out_of,
    measure,
    save_fit,
    tuning_split,
)
from retrieval.knowledge import KnowledgeBase
from retrieval.pacing import StepTimes, format_times
from retrieval.tuning import EmbedderTuner, TuningReport, budget_allows_tuning, tuning_skipped
from retrieval.vectors import EmbeddingCut
from retrieval.verifier import VerifierRecipe, VerifierReport

log = logging.getLogger(__name__)

# Of the step's budget, for splitting the logs and measuring the served pair when tuning
# follows (after it, measuring the tuned pair has what tuning and re-embedding left); the
# whole budget without tuning. Unbounded, they took 106-175 s of a 120 s step on the sample
# corpus under load (issue 19).
_BEFORE_TUNING_SHARE = 0.25
# Of that, for embedding the replies to cluster them (74-128 s for the sample's 1,363
# distinct replies on two busy cores, a few seconds once cached; measuring took 5-11 s).
_SPLIT_SHARE = 0.6
# Of the step's budget, at most, for training the reply verifier (besides its own
# retrieval.verifier_minutes); the shares above are counted from when it ends. With the
# README's `train --budget-minutes 20`, the step has 8 minutes: a third (2.7) left too
# little for the verifier's 120 steps after its searches on two quiet cores, and it cut
# wrong answers by a quarter where tuning the embedder moved top-1 by a point.
_VERIFIER_SHARE = 0.5


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
    replies: ReplyEncoding | None = None  # replies embedded to cluster them
    reembedded: bool = False
    reembedding_cut: EmbeddingCut | None = None  # why a tuned embedder was not published
    verifier: VerifierReport | None = None  # None: not asked to train one
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    # Seconds each part of the step took, in order: where its share went (issue 19).
    steps: dict[str, float] = field(default_factory=dict)

    def format_table(self) -> str:
        lines = [
            f"retrieval:   {self.messages} customer messages, {self.clusters} answers,"
            f" {self.validation} validation messages, {self.held_out_topics} held-out topics",
        ]
        if self.replies is not None and self.replies.cut:
            lines.append(
                f"answers:     {self.replies.embedded} of {self.replies.replies} distinct replies"
                " embedded to cluster them by the step's deadline; the others merged only with"
                " identical ones"
            )
        if self.verifier is not None:
            lines.append(self.verifier.line())
        if self.before is not None and self.before.verified is False:
            lines.append(
                "verifier:    left out of these figures: it learnt from every logged turn,"
                " these questions included (`supportbot calibrate` fits with it)"
            )
        if self.tuning is not None:
            t = self.tuning
            lines.append(
                f"embedder:    tuned {t.steps} steps ({t.epochs} epochs, {t.examples} examples,"
                f" stopped by {t.stopped}) in {t.seconds:.0f} s"
                + (
                    "; not published (its index could not be re-embedded in time)"
                    if self.reembedding_cut
                    else f" -> {t.folder}"
                    if t.folder
                    else "; no better than before, not published"
                )
            )
        if self.skipped:
            lines.append(f"embedder:    not tuned ({self.skipped})")
        if self.before is not None:
            # Each row at the threshold fitted on the validation split for it, which is
            # not necessarily the one served (see the line after the table).
            header = (
                f"{'on the validation split':24}{'top-1':>8}{'R@5':>8}{'thresh':>8}{'hand-off':>9}"
                f"{'generic':>8}{'answered':>9}{'accuracy':>9}{'wrong':>8}"
            )
            lines += ["", header]
            for name, figures in (("before", self.before), ("after", self.after)):
                if figures is None:
                    continue
                row = figures.row()
                cells = [
                    _cell(row[k], 9 if k in _WIDE_COLUMNS else 8)
                    for k in (
                        "top1",
                        "recall_at_5",
                        "threshold",
                        "handoff_recall",
                        "generic_handoff_recall",
                        "in_scope_answered",
                        "answered_accuracy",
                    )
                ]
                lines.append(f"{name:24}" + "".join(cells) + _cell(row["wrong_answer_rate"], 8))
            measured = [("before", self.before)]
            if self.after is not None and self.after is not self.before:
                measured.append(("after", self.after))
            for name, figures in measured:
                if figures.searched is not None and figures.searched.cut:
                    lines.append(
                        f"budget:      the '{name}' row and its fit: {figures.searched.sentence()}"
                        " by the step's deadline"
                    )
        if self.steps:
            lines.append(format_times(self.steps))
        lines += self.notes
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
            "reembedding_cut": (
                {"embedded": self.reembedding_cut.embedded, "entries": self.reembedding_cut.texts}
                if self.reembedding_cut
                else None
            ),
            "replies_embedded": asdict(self.replies) if self.replies else None,
            "verifier": asdict(self.verifier) if self.verifier else None,
            "seconds": round(self.seconds, 1),
            "steps": {k: round(v, 1) for k, v in self.steps.items()},
        }


_WIDE_COLUMNS = ("handoff_recall", "in_scope_answered", "answered_accuracy")


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"


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
    verifier: VerifierRecipe | None = None,
    withhold_claims: bool = True,
) -> RetrievalTrainingReport:
    """Train the reply verifier (with ``verifier``), tune the embedder (when ``tune`` and
    the budget allow), re-embed, and calibrate.

    ``knowledge`` must be loaded; it serves the new pair afterwards when tuning helped.
    What the server then applies depends on its settings too, which only the bot knows
    (``bot.components.served_confidence``), and so does ``withhold_claims``: the engine's
    ``hand_off_claimed_actions``, which the figures and the fit count with
    (:func:`retrieval.figures.measure`).
    """
    start = time.monotonic()
    # Splitting and measuring stop within the step's budget (what they leave out is
    # reported), within a share of it when tuning is to follow.
    entries = len(knowledge.store.live_entry_ids())
    may_tune = tune and budget_allows_tuning(budget_s, config, entries)
    before_tuning = start + budget_s * (_BEFORE_TUNING_SHARE if may_tune else 1.0)
    encoding = ReplyEncoding()
    messages, split = tuning_split(
        knowledge,
        config,
        deadline=start + (before_tuning - start) * _SPLIT_SHARE,
        encoding=encoding,
        progress=progress,
    )
    report = RetrievalTrainingReport(
        skipped=None,
        messages=len(messages),
        clusters=split.cluster_count,
        validation=len(split.validation),
        held_out_topics=len(split.held_out_topics),
        before=None,
        after=None,
        replies=encoding,
    )

    steps = StepTimes(start)
    report.steps = steps.seconds
    done = steps.done

    done("split")
    if not split.validation:
        report.skipped = "too few conversations to validate on"
        report.seconds = time.monotonic() - start
        return report
    if verifier is not None:
        # Trained without the conversations measured next, so that their figures and the
        # fit may use it (a verifier `calibrate` trained on every turn is kept, unused).
        report.verifier = verifier.train(
            knowledge, within_s=budget_s * _VERIFIER_SHARE, held_out=held_out_of(split)
        )
        done("verifier")
        before_tuning = min(start + budget_s, before_tuning + steps.seconds["verifier"])
    report.before = measure(
        knowledge,
        split,
        config,
        deadline=before_tuning,
        progress=progress,
        withhold_claims=withhold_claims,
    )
    done("measure")
    # After tuning: re-embedding every entry (foreseen at the pace the served embedder
    # embedded and searched the validation questions, which are entries' texts) and
    # measuring the tuned pair on the same questions (as long as measuring took now).
    after_tuning = entries * report.before.seconds_per_question + report.before.seconds
    tuning_budget = budget_s - (time.monotonic() - start) - after_tuning
    if not tune:
        report.skipped = "switched off"
    elif not budget_allows_tuning(tuning_budget, config, len(messages)):
        report.skipped = tuning_skipped(
            config, tuning_budget, len(messages), after_tuning=after_tuning, entries=entries
        )
    else:
        tuner = EmbedderTuner(knowledge.embedder, config, seed=config.seed)
        # A tenth of the time left is kept for what the foresight misses (calibrating).
        report.tuning = tuner.run(
            split,
            embedders_root,
            budget_s=tuning_budget * 0.9,
            progress=progress,
            should_stop=should_stop,
        )
        done("tune")
        if report.tuning.folder is not None:
            report.reembedded = _reembed(
                knowledge,
                report,
                report.tuning.folder,
                # Measuring the tuned pair keeps as long as measuring the served one took.
                deadline=start + budget_s - report.before.seconds,
                progress=progress,
            )
            done("re-embed")
    if report.reembedded:
        report.after = measure(
            knowledge,
            split,
            config,
            deadline=start + budget_s,
            progress=progress,
            withhold_claims=withhold_claims,
        )
        done("measure tuned")
    else:
        report.after = report.before
    report.notes.append(
        _calibrate_served(knowledge, report, home, config, withhold_claims=withhold_claims)
    )
    done("save calibration")
    report.seconds = time.monotonic() - start
    return report


def _reembed(
    knowledge: KnowledgeBase,
    report: RetrievalTrainingReport,
    folder: Path,
    *,
    deadline: float,
    progress: bool,
) -> bool:
    """Serve the tuned embedder in ``folder`` with the index re-embedded by it, when every
    entry is embedded by ``deadline``; True if it is served. Otherwise the pair served stays,
    and the tuned embedder is deleted with the vectors computed for it: an embedder without
    its index cannot be served, and the next job tunes afresh from the data it finds (a
    half-embedded index would serve only the entries it had reached)."""
    tuned = knowledge.embedder_at(str(folder))
    try:
        knowledge.reembed(tuned, progress=progress, deadline=deadline)
    except EmbeddingCut as cut:
        knowledge.store.drop_cached_vectors(tuned.model_id)
        shutil.rmtree(folder, ignore_errors=True)
        report.reembedding_cut = cut
        report.notes.append(
            f"embedder:    not published: re-embedding the index reached {cut.embedded} of"
            f" {cut.texts} distinct entry texts by the step's deadline; the served pair serves on"
            " (a larger --budget-minutes leaves time for both)"
        )
        log.info("tuned embedder %s not published: %s", folder, cut)
        return False
    return True


def _calibrate_served(
    knowledge: KnowledgeBase,
    report: RetrievalTrainingReport,
    home: Path,
    config: TuningConfig,
    *,
    withhold_claims: bool,
) -> str:
    """Fit (or keep) the hand-off calibration of the pair now served; say which it did."""
    served = report.after
    previous = load_calibration(home) or {}
    if report.reembedded:
        refitted = refit_on_files(
            knowledge, home, previous, config, withhold_claims=withhold_claims
        )
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
    if served is not None and save_fit(
        served, home, config, "validation split with held-out topics (supportbot train)"
    ):
        row = "after" if report.reembedded else "before"
        return f"hand-off:    refitted on the validation split (the '{row}' row above)"
    return (
        "hand-off:    not fitted: no topic could be held out (too few answers with three or"
        " more questions); run `supportbot calibrate` with an out-of-scope file"
    )
