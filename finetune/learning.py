"""The jobs that train retrieval and the generator together: ``supportbot train`` and a
retraining cycle (``supportbot retrain``).

:func:`train_from_logs` tunes retrieval on the logs (retrieval/training.py), then trains a
new adapter on them (finetune/pipeline.py) in what is left of the budget.
:func:`run_learning_cycle` runs one retraining cycle: under the cluster-wide lock, the
embedder step (retrieval/embedder_retraining.py) on its share of the budget, the reply
verifier's (retrieval/verifier_retraining.py) on its own when that promoted a pair, then
the adapter's cycle (finetune/retrain.py) on the rest, with the retrieval now served.

Both take a loaded knowledge base and plain data: the bot builds the plans from its
settings and exports the operators' feedback as records; nothing here reads the bot's
settings or its store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.config import GeneratorConfig
from finetune.cycles import CycleLock, retrain_lock
from finetune.pipeline import GeneratorPaths, TrainingReport, train_generator
from finetune.retrain import (
    CycleReport,
    Evaluator,
    FeedbackRecord,
    RetrainPolicy,
    Trainer,
    run_cycle,
)
from retrieval.config import TuningConfig
from retrieval.embedder_retraining import (
    CandidateTuner,
    EmbedderStepPolicy,
    retrain_embedder,
    skip_reason,
)
from retrieval.knowledge import KnowledgeBase
from retrieval.records import Conversation
from retrieval.training import RetrievalTrainingReport, train_retrieval
from retrieval.verifier import VerifierRecipe
from retrieval.verifier_retraining import refresh_verifier


@dataclass(frozen=True)
class EmbedderStepPlan:
    """The embedder step of a cycle: its gate, its share of the cycle's budget, and where
    it keeps what it makes (tuned embedders; the calibration under ``home``)."""

    policy: EmbedderStepPolicy
    budget_share: float
    home: Path
    embedders_root: Path


@dataclass(frozen=True)
class VerifierStepPlan:
    """The reply verifier's step of a cycle (retrieval/verifier_retraining.py), run when the
    embedder step promotes a pair: how to train one, and its share of the cycle's budget,
    which goes to the adapter when the step does not run or ends early."""

    recipe: VerifierRecipe
    budget_share: float


@dataclass(frozen=True)
class CyclePlan:
    """What one retraining cycle is to do, as plain data."""

    generator: GeneratorConfig
    paths: GeneratorPaths
    policy: RetrainPolicy  # its budget_minutes is the whole cycle's, embedder step included
    embedder: EmbedderStepPlan | None  # None: the cycle trains the adapter only
    verifier: VerifierStepPlan | None = None  # None: no verifier (retrieval.verifier off)


def run_learning_cycle(
    knowledge: KnowledgeBase,
    feedback: Sequence[FeedbackRecord],
    plan: CyclePlan,
    *,
    progress: bool = True,
    train: Trainer | None = None,
    evaluate: Evaluator | None = None,
    embedder_tuner: CandidateTuner | None = None,
) -> CycleReport:
    """One retraining cycle over the logs of ``knowledge`` (loaded: it serves the live
    pair, and the promoted one afterwards) and the operators' ``feedback``.

    With ``plan.embedder`` the cycle first runs the embedder step on its share of the
    budget; the adapter then trains on the rest (all of it when the share is too short to
    tune in). ``train``, ``evaluate`` and ``embedder_tuner`` replace the defaults (tests).
    Raises CycleLockedError while another cycle runs (on any replica, when they share
    PostgreSQL), ValueError when there is nothing to train on.
    """
    with retrain_lock(plan.paths.postgres_url):
        budget_minutes = plan.policy.budget_minutes
        retrieval_step = None
        spared: Callable[[], float] | None = None
        if plan.embedder is not None:
            retrieval_step, budget_minutes, spared = _retrieval_steps(
                knowledge,
                feedback,
                plan.embedder,
                plan.verifier,
                budget_minutes,
                embedder_tuner,
                progress,
            )
        return run_cycle(
            logs=list(knowledge.iter_conversations()),
            feedback=feedback,
            retriever=knowledge,
            config=plan.generator,
            policy=plan.policy,
            paths=plan.paths,
            train=train,
            evaluate=evaluate,
            budget_minutes=budget_minutes,
            progress=progress,
            before_training=retrieval_step,
            spared_s=spared,
        )


def _retrieval_steps(
    knowledge: KnowledgeBase,
    feedback: Sequence[FeedbackRecord],
    plan: EmbedderStepPlan,
    verifier: VerifierStepPlan | None,
    total_minutes: float,
    tuner: CandidateTuner | None,
    progress: bool,
) -> tuple[Callable[[CycleLock], dict[str, Any]], float, Callable[[], float]]:
    """The embedder step of a cycle, followed by the verifier's when it promotes a pair; the
    minutes left to the adapter (all of them when the embedder step's share is too short to
    tune in: it then only records why); and the seconds of the verifier's share the steps
    left unused, which the adapter gets too."""
    budget_s = total_minutes * 60.0 * plan.budget_share
    verifier_s = total_minutes * 60.0 * verifier.budget_share if verifier is not None else 0.0
    used = [0.0]  # seconds of the verifier's share spent

    def steps(lock: CycleLock) -> dict[str, Any]:
        # Run by finetune.retrain.run_cycle under the cycle's lock; the reports go into
        # the cycle's figures under "embedder" and "verifier".
        report = retrain_embedder(
            knowledge,
            feedback,
            plan.policy,
            home=plan.home,
            embedders_root=plan.embedders_root,
            budget_s=budget_s,
            may_promote=lambda: not lock.lost,
            tune=tuner,
            progress=progress,
        )
        figures: dict[str, Any] = {"embedder": report.as_dict()}
        if verifier is None or report.split is None or report.promoted is None:
            return figures  # the live pair, its fit and the verifier weighed in it stay
        started = time.monotonic()
        refreshed = refresh_verifier(
            knowledge,
            verifier.recipe,
            report.split,
            report.promoted,
            plan.policy.tuning,
            home=plan.home,
            budget_s=verifier_s,
            may_publish=lambda: not lock.lost,
            withhold_claims=plan.policy.withhold_claims,
        )
        used[0] = time.monotonic() - started
        figures["verifier"] = refreshed.as_dict()
        return figures

    def spared() -> float:
        return max(verifier_s - used[0], 0.0)

    if skip_reason(knowledge, plan.policy.tuning, budget_s) is not None:
        return steps, total_minutes, lambda: 0.0
    return steps, total_minutes - (budget_s + verifier_s) / 60.0, spared


@dataclass(frozen=True)
class GeneratorJob:
    """The generator's half of ``supportbot train``."""

    config: GeneratorConfig
    paths: GeneratorPaths
    eval_conversations: Sequence[Conversation] | None = None  # None: a share of the logs
    promote: bool | None = None  # None: only when no adapter is live yet


def train_from_logs(
    knowledge: KnowledgeBase,
    tuning: TuningConfig,
    *,
    home: Path,
    embedders_root: Path,
    budget_minutes: float,
    tune_embedder: bool,
    generator: GeneratorJob | None,
    progress: bool = True,
    started: float | None = None,
    retrieval_done: Callable[[RetrievalTrainingReport], None] | None = None,
    verifier: VerifierRecipe | None = None,
    withhold_claims: bool = True,
) -> tuple[RetrievalTrainingReport, TrainingReport | None]:
    """Tune retrieval on the logs of ``knowledge`` (loaded; with ``verifier``, training a
    reply verifier first), then train a new adapter on them with ``generator`` (None:
    retrieval only, on the whole budget).

    Retrieval gets ``tuning.budget_share`` of ``budget_minutes``, counted from ``started``
    (``time.monotonic()`` when the job began; default: now); ``retrieval_done`` sees its
    report before the generator starts. ``withhold_claims``: the engine's
    ``hand_off_claimed_actions``, which the hand-off figures and fit count with
    (:func:`retrieval.figures.measure`). Raises ValueError when there is nothing to train
    on, BaseModelError when the base model cannot be loaded.
    """
    started = time.monotonic() if started is None else started
    budget_s = budget_minutes * 60.0
    retrieval = train_retrieval(
        knowledge,
        tuning,
        home=home,
        embedders_root=embedders_root,
        budget_s=budget_s if generator is None else budget_s * tuning.budget_share,
        tune=tune_embedder,
        progress=progress,
        verifier=verifier,
        withhold_claims=withhold_claims,
    )
    if retrieval_done is not None:
        retrieval_done(retrieval)
    if generator is None:
        return retrieval, None
    # The generator keeps its share of the budget even when the retrieval step ran over
    # it (a slow or busy machine): a model trained for no time at all answers noise.
    remaining_minutes = max(
        budget_minutes - (time.monotonic() - started) / 60.0,
        budget_minutes * (1.0 - tuning.budget_share),
    )
    report = train_generator(
        conversations=list(knowledge.iter_conversations()),
        retriever=knowledge,
        config=generator.config,
        paths=generator.paths,
        eval_conversations=generator.eval_conversations,
        budget_minutes=max(remaining_minutes, 0.1),
        promote=generator.promote,
        progress=progress,
    )
    return retrieval, report
