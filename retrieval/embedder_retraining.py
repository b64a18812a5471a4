"""The embedder step of a retraining cycle: tune, stage, judge against the live pair, promote.

1. Tune a copy of the embedder serving now (tuned before or not) on the live entries: the
   logs and the operators' corrections. A correction is a curated entry, so its question
   is paired with the messages that got the corrected answer (its reply cluster) and with
   that answer itself (retrieval/tuning_data.py). The result is a new embedder version.
2. Re-embed the whole index with it as a candidate index version that nothing serves. A
   candidate the step's deadline leaves half-embedded is deleted unjudged.
3. Measure the candidate pair and the live pair on the same validation split (top-1, and
   wrong answers at the target hand-off recall, held-out topics standing in for questions
   the logs do not cover) and on the recent corrections: each correction's question must
   retrieve its curated answer first. The live pair is measured first, before tuning: the
   step then knows how long measuring and re-embedding take, and keeps that time.
4. Promote when no figure is worse than the live pair's by more than the tolerance: store
   the hand-off calibration fitted for the candidate, then make the candidate index
   version live (one SQLite transaction); servers switch to the pair at their next index
   poll. A refused candidate is deleted: index version, embedder folder, cached vectors.

A cycle killed anywhere before that transaction leaves the live pair serving; the candidate
it left behind was never live, so ``rollback --retrieval`` skips it and the next cycle
deletes it, recorded or not (an embedder killed while re-embedding is not yet recorded).
The retraining cycle (finetune/learning.py) runs this step under its lock, before the
adapter's.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from retrieval.artifacts import write_json
from retrieval.calibration import answers_match, load_calibration, refit_on_files
from retrieval.config import TuningConfig
from retrieval.embedder import Embedder
from retrieval.figures import RetrievalFigures, Searched, measure, save_fit, tuning_split
from retrieval.knowledge import KnowledgeBase, Query
from retrieval.leftovers import (
    WRITER_FILE,
    dead_writers_folders,
    remove_dead_writers_folders,
)
from retrieval.pacing import StepTimes, format_times
from retrieval.pii import scrub
from retrieval.processes import writer_marker
from retrieval.records import LogMessage
from retrieval.store import IndexVersion
from retrieval.tuning import EmbedderTuner, tuning_skipped
from retrieval.tuning_data import TuningSplit
from retrieval.vectors import EmbeddingCut

log = logging.getLogger(__name__)

StepStatus = Literal["promoted", "kept", "skipped"]
# Share of the step's budget for measuring the live pair, from the split's end (the
# sample's 445 questions took 4-11 s on two busy cores; the candidate is then given as
# long as the live pair took, and re-embedding is foreseen at the same pace).
_MEASURE_SHARE = 0.1
# Share of the step's budget for embedding the replies to cluster them (once per embedder:
# the store caches their vectors; see retrieval.figures.tuning_split).
_SPLIT_SHARE = 0.15
# Fewest validation questions a gate that the budget cut must have compared the pairs on:
# a top-1 difference within a tolerance of 0.01 means nothing on a handful (the adapter's
# gate asks the same of held-out replies, finetune.serving_policy.MIN_SCORED_REPLIES).
MIN_COMPARED_QUESTIONS = 16
# What a calibration a cycle fitted on the logs says it was fitted on.
RETRAIN_FIT = "validation split with held-out topics (supportbot retrain)"


class CorrectionRecord(Protocol):
    """An operator's correction as the bot exports it (finetune.retrain.FeedbackRecord)."""

    @property
    def kind(self) -> str: ...
    @property
    def source_id(self) -> str: ...
    @property
    def history(self) -> tuple[LogMessage, ...]: ...
    @property
    def customer_text(self) -> str: ...
    @property
    def reply(self) -> str: ...
    @property
    def created_at(self) -> float: ...


class CandidateTuner(Protocol):
    """Tunes a copy of ``embedder`` on ``split`` within ``budget_s`` and publishes it as a
    new version folder under ``root``; returns the folder, or None when nothing was
    published (no better than the start on the tuner's own validation)."""

    def __call__(
        self, embedder: Embedder, split: TuningSplit, root: Path, budget_s: float
    ) -> Path | None: ...


@dataclass(frozen=True)
class EmbedderStepPolicy:
    """What the cycle's settings say about this step (``retrain.*`` and
    ``retrieval.tuning``)."""

    tuning: TuningConfig
    tolerance: float
    eval_corrections: int
    # engine.hand_off_claimed_actions: a best answer that claims an action counts as
    # handed off in the figures and the fit (retrieval.figures.measure).
    withhold_claims: bool = True


@dataclass(frozen=True)
class GateFigures:
    """One pair's figures on the gate set."""

    pair: RetrievalFigures
    corrections_top1: float | None  # None without a correction to probe
    corrections: int

    def as_dict(self) -> dict[str, Any]:
        row = self.pair.row()
        return {
            "top1": row["top1"],
            "recall_at_5": row["recall_at_5"],
            "wrong_answer_rate": row["wrong_answer_rate"],
            "handoff_recall": row["handoff_recall"],
            "threshold": row["threshold"],
            "corrections_top1": None
            if self.corrections_top1 is None
            else round(self.corrections_top1, 4),
            "corrections": self.corrections,
            "embedder": self.pair.embedder_id,
            "index_version": self.pair.index_version,
            "searched": row["searched"],
        }


# (figure, True when higher is better): a candidate may be worse on none of them by more
# than the tolerance, wherever both pairs were measured.
GATE_FIGURES = (("top1", True), ("wrong_answer_rate", False), ("corrections_top1", True))


def decide(
    candidate: dict[str, Any], live: dict[str, Any], tolerance: float
) -> tuple[bool, str, dict[str, float]]:
    """(promote, reason, figure -> how much worse) for two :meth:`GateFigures.as_dict`."""
    worse: dict[str, float] = {}
    compared = []
    for name, higher_is_better in GATE_FIGURES:
        cand, ref = candidate.get(name), live.get(name)
        if cand is None or ref is None:
            continue
        compared.append(name)
        loss = (ref - cand) if higher_is_better else (cand - ref)
        if loss > tolerance:
            worse[name] = round(loss, 4)
    if not compared:
        return False, "no gate figure was measured for both pairs", worse
    if worse:
        listed = ", ".join(f"{k} worse by {v:.3f}" for k, v in worse.items())
        return False, f"worse than the live pair by more than {tolerance:g}: {listed}", worse
    return True, f"within {tolerance:g} of the live pair on {', '.join(compared)}", worse


@dataclass
class EmbedderStepReport:
    """The step's data, figures and decision, as stored in the cycle record."""

    status: StepStatus
    reason: str
    live_index_version: int | None
    candidate_index_version: int | None = None
    candidate_embedder: str | None = None
    data: dict[str, int] = field(default_factory=dict)
    live: dict[str, Any] | None = None
    candidate: dict[str, Any] | None = None
    worse: dict[str, float] = field(default_factory=dict)
    tolerance: float = 0.0
    tuning_seconds: float = 0.0
    seconds: float = 0.0
    budget_s: float = 0.0
    # Seconds each part took, in order, and the seconds each was given (issue 19).
    steps: dict[str, float] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)
    # Not in the record: for the verifier's step of the cycle (retrieval/verifier_retraining.py),
    # the split the pairs were judged on and, once promoted, the figures its fit was saved from.
    split: TuningSplit | None = field(default=None, repr=False)
    promoted: RetrievalFigures | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "live_index_version": self.live_index_version,
            "candidate_index_version": self.candidate_index_version,
            "candidate_embedder": self.candidate_embedder,
            "data": self.data,
            "live": self.live,
            "candidate": self.candidate,
            "worse": self.worse,
            "tolerance": self.tolerance,
            "tuning_seconds": round(self.tuning_seconds, 1),
            "budget_s": round(self.budget_s, 1),
            # Pairs, in order: a record's JSON may come back with its keys sorted.
            "steps": [[k, round(v, 1)] for k, v in self.steps.items()],
            "shares": {k: round(v, 1) for k, v in self.shares.items()},
            "seconds": round(self.seconds, 1),
        }


def format_step(payload: dict[str, Any]) -> str:
    """The step's lines for ``supportbot retrain``'s table, from :meth:`as_dict`."""
    lines = [f"embedder:    {payload['status']} ({payload['reason']})"]
    candidate, live = payload.get("candidate") or {}, payload.get("live") or {}
    searched = candidate.get("searched")
    if searched and Searched(**searched).cut:
        lines.append(f"budget:      the pairs compared on {Searched(**searched).sentence()}")
    if payload.get("steps"):
        lines.append(format_times(dict(payload["steps"]), payload.get("shares") or {}))
    if candidate or live:
        lines.append(f"{'retrieval figure':<22} {'candidate':>10} {'live':>10}")
        for name, _ in GATE_FIGURES:
            lines.append(f"{name:<22} {_fmt(candidate.get(name)):>10} {_fmt(live.get(name)):>10}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def retrain_embedder(
    knowledge: KnowledgeBase,
    feedback: Sequence[CorrectionRecord],
    policy: EmbedderStepPolicy,
    *,
    home: Path,
    embedders_root: Path,
    budget_s: float,
    may_promote: Callable[[], bool] = lambda: True,
    tune: CandidateTuner | None = None,
    progress: bool = False,
) -> EmbedderStepReport:
    """Run the step (see the module docstring) on a loaded ``knowledge``, which serves the
    promoted pair afterwards. ``may_promote`` is asked last (the cycle's lock still held);
    ``tune`` defaults to :class:`retrieval.tuning.EmbedderTuner` (tests construct better
    and worse candidates with their own)."""
    start = time.monotonic()
    config = policy.tuning
    live_version = knowledge.version
    report = EmbedderStepReport(
        "skipped",
        "",
        live_version.id if live_version else None,
        tolerance=policy.tolerance,
        budget_s=budget_s,
    )
    removed = discard_abandoned_candidates(knowledge)
    if removed:
        report.data["abandoned_candidates_removed"] = removed
    folders = remove_unrecorded_candidates(knowledge, embedders_root)
    if folders:
        report.data["abandoned_folders_removed"] = folders
    skipped = skip_reason(knowledge, config, budget_s)
    if skipped is not None:
        report.reason = skipped
        return _done(report, start)

    report.shares["split"] = budget_s * _SPLIT_SHARE
    messages, split = tuning_split(
        knowledge, config, deadline=start + budget_s * _SPLIT_SHARE, progress=progress
    )
    probes = correction_probes(knowledge, feedback, policy.eval_corrections)
    report.data.update(
        messages=len(messages),
        corrections_trained=sum(m.kind == "curated" for m in split.train),
        answers=split.cluster_count,
        validation=len(split.validation),
        held_out_topics=len(split.held_out_topics),
        corrections_probed=len(probes),
    )
    times = StepTimes(start)
    report.steps = times.seconds
    last = times.done("split")
    if not split.validation:
        report.reason = "too few conversations to validate on"
        return _done(report, start)

    # The live pair is measured first, within its share: how long that took is kept for
    # measuring the candidate on the same questions, and its pace (a question is an
    # entry's text, embedded and searched) foresees re-embedding the index.
    report.shares["measure live"] = budget_s * _MEASURE_SHARE
    live_figures = gate_figures(
        knowledge,
        split,
        probes,
        config,
        deadline=last + budget_s * _MEASURE_SHARE,
        withhold_claims=policy.withhold_claims,
    )
    last = times.done("measure live")
    measuring = live_figures.pair.seconds
    reembedding = len(knowledge.store.live_entry_ids()) * live_figures.pair.seconds_per_question
    end = start + budget_s
    tune = tune or default_tuner(config, progress=progress)
    # A tenth of the time left is kept for what the foresight misses.
    tuning_budget = (end - time.monotonic() - reembedding - measuring) * 0.9
    if tuning_budget < config.min_budget_s:
        report.reason = (
            f"re-embedding the index (~{reembedding:.0f} s) and measuring the candidate"
            f" (~{measuring:.0f} s) leave {max(tuning_budget, 0.0):.0f} s of the step to tune,"
            f" less than {config.min_budget_s:.0f} s"
        )
        return _done(report, start)
    report.shares["tune"] = tuning_budget
    folder = tune(knowledge.embedder, split, embedders_root, tuning_budget)
    last = times.done("tune")
    report.tuning_seconds = report.steps["tune"]
    if folder is None:
        report.reason = "tuning found nothing better on its validation split; nothing published"
        return _done(report, start)

    # Re-embedding takes minutes: killed meanwhile, this cycle leaves a folder nothing
    # records yet, which the marker lets the next cycle delete.
    write_json(folder / WRITER_FILE, writer_marker())
    candidate_embedder = knowledge.embedder_at(str(folder))
    report.shares["re-embed"] = end - measuring - last
    try:
        # By the time that leaves measuring the candidate as long as the live pair took.
        staged = knowledge.stage_reembedded(
            candidate_embedder,
            progress=progress,
            extra_files={WRITER_FILE: writer_marker()},
            deadline=end - measuring,
        )
    except EmbeddingCut as cut:
        # A candidate without its whole index cannot be judged nor served: it goes, with
        # the vectors computed for it; the next cycle tunes afresh on what it then finds.
        knowledge.store.drop_cached_vectors(candidate_embedder.model_id)
        shutil.rmtree(folder, ignore_errors=True)
        times.done("re-embed")
        report.live = live_figures.as_dict()
        report.status = "kept"
        report.reason = (
            f"re-embedding the index with the candidate reached {cut.embedded} of"
            f" {cut.texts} distinct entry texts by the step's deadline; not judged, the live"
            " pair serves on"
        )
        return _done(report, start)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no version refers to it
        raise
    report.candidate_index_version = staged.id
    report.candidate_embedder = str(folder)
    last = times.done("re-embed")
    report.shares["measure candidate"] = end - last
    promoted = False
    try:
        # The candidate by the step's end, on as many rounds of questions as the live pair
        # at most: the same questions.
        candidate_view = knowledge.serving(staged)
        candidate_figures = gate_figures(
            candidate_view,
            split,
            probes,
            config,
            deadline=end,
            max_rounds=live_figures.pair.searched.rounds if live_figures.pair.searched else None,
            withhold_claims=policy.withhold_claims,
        )
        report.live, report.candidate = live_figures.as_dict(), candidate_figures.as_dict()
        promote, reason, report.worse = decide(report.candidate, report.live, policy.tolerance)
        too_few = too_few_compared(live_figures.pair.searched, candidate_figures.pair.searched)
        if promote and too_few is not None:
            promote, reason = False, too_few
        now_live = knowledge.store.live_index_version()
        if promote and (now_live.id if now_live else None) != report.live_index_version:
            # An ingest or a rollback published another version meanwhile: the candidate
            # lacks its entries, and the comparison was made with another pair.
            promote, reason = False, "the live index changed during the cycle"
        if promote and not may_promote():
            promote, reason = False, "the cycle lost its lock; not promoting"
        report.reason = reason
        if promote:
            _store_calibration(
                candidate_view,
                candidate_figures,
                home,
                config,
                withhold_claims=policy.withhold_claims,
            )
            knowledge.make_live(staged.id)
            promoted = True
            report.split, report.promoted = split, candidate_figures.pair
            report.status = "promoted"
            log.info("promoted embedder %s with index version %s", folder, staged.id)
        else:
            report.status = "kept"
    finally:
        if not promoted:
            knowledge.discard(staged)
        times.done("measure candidate")
    return _done(report, start)


def _done(report: EmbedderStepReport, start: float) -> EmbedderStepReport:
    report.seconds = time.monotonic() - start
    return report


def default_tuner(config: TuningConfig, *, progress: bool = False) -> CandidateTuner:
    def tune(embedder: Embedder, split: TuningSplit, root: Path, budget_s: float) -> Path | None:
        report = EmbedderTuner(embedder, config, seed=config.seed).run(
            split, root, budget_s=budget_s, progress=progress
        )
        return report.folder

    return tune


@dataclass(frozen=True)
class CorrectionProbe:
    query: Query
    answer: str


def correction_probes(
    knowledge: KnowledgeBase, feedback: Sequence[CorrectionRecord], limit: int
) -> list[CorrectionProbe]:
    """The ``limit`` most recent corrections still served as curated answers (one an
    operator removed since is no longer an answer the bot must give)."""
    curated = knowledge.store.entries_by_id(knowledge.store.live_entry_ids(kind="curated"))
    served = {item.entry.source_id for item in curated.values()}
    recent = sorted(
        (f for f in feedback if f.kind == "corrected" and f.source_id in served),
        key=lambda f: f.created_at,
        reverse=True,
    )[:limit]
    # Queried as the engine queries: the customer's message scrubbed of personal data.
    return [CorrectionProbe(Query(scrub(f.customer_text).text, f.history), f.reply) for f in recent]


def gate_figures(
    knowledge: KnowledgeBase,
    split: TuningSplit,
    probes: Sequence[CorrectionProbe],
    config: TuningConfig,
    *,
    deadline: float | None = None,
    max_rounds: int | None = None,
    withhold_claims: bool = True,
) -> GateFigures:
    """The pair ``knowledge`` serves, measured on the validation split (by ``deadline``, on
    at most ``max_rounds`` rounds of questions: :func:`retrieval.figures.measure`) and the
    probes."""
    pair = measure(
        knowledge,
        split,
        config,
        deadline=deadline,
        max_rounds=max_rounds,
        withhold_claims=withhold_claims,
    )
    if not probes:
        return GateFigures(pair, None, 0)
    results = knowledge.search_batch([p.query for p in probes], 1)
    found = sum(
        bool(hits) and answers_match(p.answer, hits[0].agent_reply)
        for p, hits in zip(probes, results, strict=True)
    )
    return GateFigures(pair, found / len(probes), len(probes))


def too_few_compared(live: Searched | None, candidate: Searched | None) -> str | None:
    """Why the pairs' figures decide nothing, or None when they may: the budget ended
    before the candidate was searched on the live pair's questions, or cut both to fewer
    than :data:`MIN_COMPARED_QUESTIONS` validation questions."""
    if live is None or candidate is None:
        return None
    if candidate.rounds < live.rounds:
        return (
            "the step's budget ended before the candidate was searched on the live pair's"
            f" questions ({candidate.sentence()}, against {live.validation} and {live.held_out})"
        )
    if candidate.cut and candidate.validation < min(
        MIN_COMPARED_QUESTIONS, candidate.validation_questions
    ):
        return (
            f"the budget cut the comparison to {candidate.validation} of"
            f" {candidate.validation_questions} validation questions, fewer than"
            f" {MIN_COMPARED_QUESTIONS}: too few to judge"
        )
    return None


def discard_abandoned_candidates(knowledge: KnowledgeBase) -> int:
    """Delete candidate versions a killed cycle left (never live); the caller holds the
    cycle lock, so no other cycle is judging one now. Returns how many."""
    abandoned: list[IndexVersion] = [
        v for v in knowledge.store.index_versions() if v.first_live_at is None and not v.is_live
    ]
    for version in abandoned:
        log.warning("deleting index version %s left by a killed cycle", version.id)
        knowledge.discard(version)
    return len(abandoned)


def remove_unrecorded_candidates(knowledge: KnowledgeBase, embedders_root: Path) -> int:
    """Delete the folders a killed cycle published but never recorded: index folders no
    index version names, and tuned embedders no index version uses (with the vectors
    cached for them, since a later version may reuse the folder's name). Only folders
    whose writing process is dead go (retrieval/leftovers.py). Returns how many."""
    versions = knowledge.store.index_versions()
    removed = remove_dead_writers_folders(knowledge.index_root, [v.folder for v in versions])
    in_use = [v.embedder_location for v in versions if v.embedder_location is not None]
    embedders = dead_writers_folders(embedders_root, in_use)
    for folder in embedders:
        log.warning("deleting embedder %s: left by a killed cycle, used by no index", folder)
        knowledge.store.drop_cached_vectors(knowledge.embedder_at(str(folder)).model_id)
        shutil.rmtree(folder, ignore_errors=True)
    return len(removed) + len(embedders)


def _store_calibration(
    candidate: KnowledgeBase,
    figures: GateFigures,
    home: Path,
    config: TuningConfig,
    *,
    withhold_claims: bool,
) -> None:
    """Save the hand-off calibration for the candidate pair before it goes live, so that a
    server switching to it finds its threshold: refitted on the labelled files when the
    live one was fitted on them (`supportbot calibrate`), else the validation split's."""
    previous = load_calibration(home) or {}
    if (
        refit_on_files(candidate, home, previous, config, withhold_claims=withhold_claims)
        is not None
    ):
        return
    if not save_fit(figures.pair, home, config, RETRAIN_FIT):
        log.warning("no topic could be held out: the promoted embedder has no fitted threshold")


def skip_reason(knowledge: KnowledgeBase, config: TuningConfig, budget_s: float) -> str | None:
    """Why the step would not tune with this budget, or None when it would."""
    entries = len(knowledge.store.live_entry_ids())
    if budget_s < config.min_budget_s or entries < config.min_messages:
        return tuning_skipped(config, budget_s, entries, after_tuning=0.0, entries=entries)
    return None
