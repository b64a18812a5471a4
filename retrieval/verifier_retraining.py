"""The reply verifier's step of a retraining cycle: keep its say in the hand-off, or earn it
again.

The hand-off calibration weighs the verifier's probability only where its figures were
measured on questions it never learnt from (retrieval/figures.py, ``HeldOut``). When the
cycle's embedder step promotes a new pair it saves a fit for it, measured on the cycle's own
validation split. That split is drawn anew from the logs served now (new conversations,
corrections, replies clustered by the live embedder), so the verifier `supportbot train`
trained without its own split has seen some of these questions, and the fit drops its say
(on the sample, it had cut wrong answers by a quarter). This step then:

1. keeps the verifier when the promoted pair's fit already had its say (it learnt nothing of
   the cycle's questions) or was refitted on labelled files (`supportbot calibrate`'s);
2. otherwise trains a candidate verifier on the promoted index, no question of the cycle's
   validation or held-out-topic conversations asked, within its share of the cycle's budget
   and with the floor of steps every verifier must reach (``retrieval.verifier_min_steps``);
3. measures the promoted pair with the candidate on the same questions and fits the hand-off
   again; publishes the candidate and that fit only when the fit is not worse than the one
   without it, by the score calibration chooses signals by (right answers minus
   ``wrong_answer_cost`` times wrong ones, over all questions).

Nothing is published before step 3 decides: the candidate lives in its own folder, which no
server reads. The verifier is published first and the fit that weighs it after, so a server
in between applies the fit without its say, which reads no verifier at all.

When the embedder step keeps the live pair, the calibration served and the verifier it was
fitted with are left as they are: nothing here runs.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from retrieval.calibration import calibration_of, load_calibration
from retrieval.confidence import CalibrationResult
from retrieval.config import TuningConfig
from retrieval.figures import RetrievalFigures, held_out_of, measure, save_fit
from retrieval.knowledge import KnowledgeBase
from retrieval.tuning_data import TuningSplit
from retrieval.verifier import (
    VerifierRecipe,
    VerifierReport,
    candidate_folder,
    publish_candidate,
)

log = logging.getLogger(__name__)

VerifierStepStatus = Literal["kept", "refreshed", "refused", "not trained", "skipped"]
# Measuring the promoted pair again with the candidate is foreseen to take this many times
# as long as measuring it without: the candidate reads the first hit of every question
# (15 ms each on two busy cores, about as long as the search itself).
_REMEASURE_FACTOR = 2.5
# What the fit saved with a refreshed verifier says it was fitted on (the calibration file,
# `supportbot calibrate`'s table, the dashboard).
_REFRESHED_FIT = (
    "validation split with held-out topics (supportbot retrain, with the verifier it trained)"
)


@dataclass
class VerifierStepReport:
    """What the step did, as stored in the cycle record (figures rounded as rows)."""

    status: VerifierStepStatus
    reason: str
    budget_s: float = 0.0
    seconds: float = 0.0
    training: VerifierReport | None = None
    # The promoted pair's fit on the cycle's split without the candidate, and with it.
    without: dict[str, Any] | None = None
    with_candidate: dict[str, Any] | None = None
    published: str | None = None  # the verifier folder published
    held_out: str | None = None  # the fingerprint of the conversations it never asked

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "budget_s": round(self.budget_s, 1),
            "seconds": round(self.seconds, 1),
            "training": asdict(self.training) if self.training else None,
            "without": self.without,
            "with_candidate": self.with_candidate,
            "published": self.published,
            "held_out": self.held_out,
        }


def format_verifier_step(payload: dict[str, Any]) -> str:
    """The step's lines for ``supportbot retrain``'s table, from :meth:`as_dict`."""
    lines = [f"verifier:    {payload['status']} ({payload['reason']})"]
    without, with_candidate = payload.get("without"), payload.get("with_candidate")
    if without and with_candidate:
        lines.append(f"{'hand-off fit':<22} {'verifier':>10} {'without':>10}")
        for name in ("in_scope_answered", "answered_accuracy", "wrong_answer_rate"):
            lines.append(
                f"{name:<22} {_fmt(with_candidate.get(name)):>10} {_fmt(without.get(name)):>10}"
            )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def fit_score(result: CalibrationResult, wrong_answer_cost: float) -> float:
    """Right answers minus ``wrong_answer_cost`` times wrong ones, over all questions, for
    one fit on its own questions. Like the score calibration chooses its signals by
    (retrieval.confidence.select_features), except that out-of-scope questions answered are
    charged too: both fits compared answer about as many of them, at the same target."""
    total = result.in_scope + result.out_of_scope
    right = result.answered_rate * result.in_scope * result.answered_accuracy
    return (right - wrong_answer_cost * result.wrong_answer_rate * total) / max(total, 1)


def refresh_verifier(
    knowledge: KnowledgeBase,
    recipe: VerifierRecipe,
    split: TuningSplit,
    fitted: RetrievalFigures,
    config: TuningConfig,
    *,
    home: Path,
    budget_s: float,
    may_publish: Callable[[], bool] = lambda: True,
    withhold_claims: bool = True,
) -> VerifierStepReport:
    """Run the step (see the module docstring) after the embedder step promoted the pair
    ``knowledge`` now serves, whose fit ``fitted`` (measured on ``split``) it saved under
    ``home``; within ``budget_s`` seconds. ``may_publish`` is asked last (the cycle's lock
    still held). ``withhold_claims``: the engine's ``hand_off_claimed_actions``, as the
    pair's figures were measured with (:func:`retrieval.figures.measure`)."""
    start = time.monotonic()
    report = VerifierStepReport("kept", "", budget_s=budget_s)
    served = calibration_of(load_calibration(home), knowledge.embedder.model_id) or {}
    if served.get("fitted_on") == "files":
        report.reason = (
            "the promoted pair was refitted on the labelled files `supportbot calibrate` used,"
            " with the verifier served"
        )
        return _done(report, start)
    if fitted.calibration is None:
        report.status, report.reason = "skipped", "no topic could be held out: nothing to fit"
        return _done(report, start)
    if fitted.verified:
        report.reason = (
            "it learnt nothing of the cycle's validation questions: the promoted pair's fit"
            " weighs it"
        )
        return _done(report, start)
    report.without = fitted.row()
    remeasure = fitted.seconds * _REMEASURE_FACTOR
    if budget_s - remeasure <= 0:
        report.status = "not trained"
        report.reason = (
            f"its {budget_s:.0f} s leave no time to train one after measuring again"
            f" (~{remeasure:.0f} s); the promoted pair's fit serves without a verifier's say"
        )
        return _done(report, start)
    held_out = held_out_of(split)
    report.held_out = held_out.fingerprint()
    report.training, candidate = recipe.train_candidate(
        knowledge, within_s=budget_s - remeasure, held_out=held_out
    )
    if candidate is None:
        report.status = "not trained"
        report.reason = (
            f"{report.training.note}; the promoted pair's fit serves without a verifier's say"
        )
        return _done(report, start)
    try:
        rounds = fitted.searched.rounds if fitted.searched else None
        verified = measure(
            knowledge.verified_by(candidate),
            split,
            config,
            deadline=start + budget_s,
            max_rounds=rounds,
            withhold_claims=withhold_claims,
        )
        report.with_candidate = verified.row()
        report.status, report.reason = _decide(fitted, verified, rounds, config, knowledge)
        if report.status == "refreshed" and not may_publish():
            report.status, report.reason = "refused", "the cycle lost its lock; not publishing"
        if report.status == "refreshed":
            # The verifier first: until its fit is saved, servers weigh it at nothing.
            report.published = str(publish_candidate(candidate, knowledge.index_root).folder)
            knowledge.follow_verifier()
            save_fit(verified, home, config, _REFRESHED_FIT)
            log.info("verifier refreshed: %s", report.reason)
    finally:
        shutil.rmtree(candidate_folder(knowledge.index_root), ignore_errors=True)
    return _done(report, start)


def _decide(
    without: RetrievalFigures,
    verified: RetrievalFigures,
    rounds: int | None,
    config: TuningConfig,
    knowledge: KnowledgeBase,
) -> tuple[VerifierStepStatus, str]:
    if verified.calibration is None or not verified.verified:
        return "refused", "the candidate's fit could not weigh it"
    if rounds is not None and (verified.searched is None or verified.searched.rounds < rounds):
        return "refused", "the step's budget ended before the same questions were searched"
    live = knowledge.store.live_index_version()
    if (live.id if live else None) != without.index_version:
        return "refused", "the live index changed during the cycle"
    assert without.calibration is not None
    cost = config.wrong_answer_cost
    gain = fit_score(verified.calibration, cost) - fit_score(without.calibration, cost)
    if gain < 0:
        return "refused", (
            f"the fit weighing it scores {-gain:.3f} less on the cycle's split (right minus"
            f" {cost:g} x wrong answers, of all questions); not published"
        )
    return "refreshed", (
        f"trained without the cycle's validation and held-out-topic conversations; the fit"
        f" weighing it scores {gain:+.3f} on the cycle's split"
    )


def _done(report: VerifierStepReport, start: float) -> VerifierStepReport:
    report.seconds = time.monotonic() - start
    return report
