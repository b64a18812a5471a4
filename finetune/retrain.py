"""One retraining cycle: assemble, warm-start, train, gate, maybe promote, record.

The training set is the original logs (less a fixed held-out share) plus the operators'
feedback: approved and corrected replies repeated ``approved_weight`` and
``corrected_weight`` times, rejected ones left out. The new adapter starts from the live
adapter's weights. The candidate and the live adapter answer the same gate set, the fixed
held-out conversations plus the most recent corrections, and the candidate is promoted
only if no gate figure is worse than the live one's by more than ``tolerance``.

Only one cycle runs at a time (:class:`finetune.cycles.CycleLock`). Promotion is the last
step and one transaction, so a cycle that fails or is killed anywhere leaves the live
adapter serving; its record stays "running" until the next cycle marks it abandoned and
deletes the candidate folder it published but never registered (retrieval/leftovers.py).
The bot supplies the logs and the feedback as plain records; nothing here imports it.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from finetune.config import GeneratorConfig
from finetune.cycles import CycleLock, CycleLog, CycleRecord, remove_old_temporaries
from finetune.evaluate import copy_top_evidence
from finetune.examples import (
    ExchangeRetriever,
    TrainingExample,
    correction_examples,
    iter_turns,
    retrieve_for_turns,
    split_held_out,
    split_validation,
)
from finetune.gate import (
    AdapterWriter,
    GateSet,
    adapter_writer,
    judge,
    part_figures,
    too_few_compared,
)
from finetune.pipeline import (
    _BUILD_SHARE,
    GeneratorPaths,
    _examples,
    configured_base,
    eval_cases,
    load_registered_adapter,
)
from finetune.prompting import PromptFormat, PromptRequest
from finetune.registry import AdapterRecord, ModelRegistry
from retrieval.leftovers import WRITER_FILE, remove_dead_writers_folders
from retrieval.pacing import StepTimes, format_times
from retrieval.processes import writer_marker
from retrieval.records import Conversation, LogMessage

log = logging.getLogger(__name__)

FeedbackKind = Literal["approved", "corrected", "rejected"]
# Of the adapter's part of a cycle's budget, for the gate: loading the candidate and the
# live adapter and writing both's replies to the gate set (train's evaluation has a fifth
# for one adapter's; unbounded, the gate took what it took after training had used it all).
GATE_SHARE = 0.3
FEEDBACK_PREFIX = "feedback:"  # ids of the training conversations made from feedback
# Gate figures: a candidate may not fall below the live adapter by more than the tolerance
# on any of them that both were measured on (see gate_figures). The held-out share that
# states the reference's facts is recorded only: whether they could be stated depends on
# what retrieval found, and held_out_grounded already counts a fact-free reply as a miss
# wherever the evidence held them.
GATE_FIGURES = (
    "held_out_rouge_l",
    "held_out_grounded",
    "corrections_rouge_l",
    "corrections_grounded",
    "corrections_facts",
)


@dataclass(frozen=True)
class FeedbackRecord:
    """An operator's verdict on one bot reply, or an operator's corrected answer.

    ``history`` is the conversation before ``customer_text``; ``reply`` is the bot's reply
    (approved, rejected) or the operator's answer (corrected).
    """

    kind: FeedbackKind
    source_id: str  # stable: "turn:<id>" or "correction:<id>"
    history: tuple[LogMessage, ...]
    customer_text: str
    reply: str
    created_at: float


@dataclass(frozen=True)
class RetrainPolicy:
    tolerance: float = 0.02
    approved_weight: int = 2
    corrected_weight: int = 3
    budget_minutes: float = 30.0
    lock_stale_s: float = 6 * 3600.0
    eval_corrections: int = 50  # most recent corrections added to the gate set
    # Feedback examples are repeated until they make up at least this share of training.
    feedback_share: float = 0.3


@dataclass(frozen=True)
class TrainingSet:
    train: list[Conversation]  # logs less the held-out share, plus weighted feedback
    held_out: list[Conversation]  # fixed: a hash of the conversation id decides
    corrections: list[Conversation]  # the most recent corrections, for the gate
    counts: dict[str, int]


@dataclass(frozen=True)
class TrainJob:
    data: TrainingSet
    retriever: ExchangeRetriever
    config: GeneratorConfig
    paths: GeneratorPaths
    live: AdapterRecord | None  # warm start from it when given
    budget_minutes: float
    progress: bool = True
    on_step: Callable[[int, float], None] | None = None
    feedback_share: float = 0.0  # see RetrainPolicy


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    worse: dict[str, float] = field(default_factory=dict)  # figure -> how much worse


Trainer = Callable[[TrainJob], AdapterRecord]
Evaluator = Callable[[AdapterRecord, GateSet], dict[str, float]]


@dataclass
class CycleReport:
    record: CycleRecord
    live_before: AdapterRecord | None
    candidate: AdapterRecord | None
    live_after: AdapterRecord | None
    seconds: float

    @property
    def promoted(self) -> bool:
        return self.record.status == "promoted"

    def format_table(self) -> str:
        r = self.record
        lines = [
            f"cycle {r.id}: {r.status} ({r.reason})",
            "data:        " + ", ".join(f"{k} {v}" for k, v in sorted(r.data.items())),
            f"live before: {_name(self.live_before)}",
            f"candidate:   {_name(self.candidate)}",
            f"live now:    {_name(self.live_after)}",
        ]
        figures = r.figures
        evaluation = figures.get("evaluation")
        if evaluation:
            lines.append(f"gate:        {gate_sentence(evaluation)}")
        if figures:
            lines += ["", f"{'figure':<22} {'candidate':>10} {'live':>10}"]
            for name in GATE_FIGURES:
                cand = figures.get("candidate", {}).get(name)
                live = (figures.get("live") or {}).get(name)
                if cand is None and live is None:
                    continue
                lines.append(f"{name:<22} {_fmt(cand):>10} {_fmt(live):>10}")
        budget = figures.get("budget")
        if budget:
            lines.append("\n" + format_times(dict(budget["steps_s"]), budget["shares_s"]))
        lines.append(f"\n{self.seconds:.0f} s in total")
        return "\n".join(lines)


def assemble_training_set(
    logs: Sequence[Conversation],
    feedback: Sequence[FeedbackRecord],
    policy: RetrainPolicy,
    config: GeneratorConfig,
) -> TrainingSet:
    """Split the logs (fixed held-out share) and add the weighted feedback; see the module."""
    train, held_out = split_held_out(logs, config.eval_percent)
    weights = {"approved": policy.approved_weight, "corrected": policy.corrected_weight}
    counts = {"log_conversations": len(train), "held_out_conversations": len(held_out)}
    for kind in ("approved", "corrected", "rejected"):
        counts[kind] = sum(1 for f in feedback if f.kind == kind)
    for record in feedback:
        for copy in range(weights.get(record.kind, 0)):  # rejected: weight 0, left out
            train.append(_conversation(record, f"{FEEDBACK_PREFIX}{record.source_id}#{copy}"))
    counts["training_conversations"] = len(train)
    recent = sorted(
        (f for f in feedback if f.kind == "corrected"), key=lambda f: f.created_at, reverse=True
    )[: policy.eval_corrections]
    corrections = [_conversation(f, f"gate:{f.source_id}") for f in recent]
    counts["gate_corrections"] = len(corrections)
    return TrainingSet(train, held_out, corrections, counts)


def gate_set(data: TrainingSet, retriever: ExchangeRetriever, config: GeneratorConfig) -> GateSet:
    """Evaluation cases with the evidence the bot would retrieve for them."""
    return GateSet(
        held_out=eval_cases(data.held_out, retriever, config) if data.held_out else [],
        corrections=eval_cases(data.corrections, retriever, config) if data.corrections else [],
    )


def decide(
    candidate: dict[str, float], live: dict[str, float] | None, tolerance: float
) -> GateDecision:
    """Promote unless a gate figure measured for both is worse by more than ``tolerance``,
    or the budget cut the comparison to too few held-out replies to judge on
    (:func:`finetune.gate.too_few_compared`)."""
    if live is None:
        return GateDecision(True, "no live adapter to compare with")
    too_few = too_few_compared(candidate)
    if too_few is not None:
        return GateDecision(False, too_few)
    shared = [k for k in GATE_FIGURES if k in candidate and k in live]
    if not shared:
        return GateDecision(False, "no gate figure was measured for both adapters")
    worse = {
        k: round(live[k] - candidate[k], 4) for k in shared if live[k] - candidate[k] > tolerance
    }
    if worse:
        listed = ", ".join(f"{k} -{v:.3f}" for k, v in worse.items())
        return GateDecision(False, f"worse than live by more than {tolerance:g}: {listed}", worse)
    return GateDecision(True, f"within {tolerance:g} of live on {', '.join(shared)}")


def run_cycle(
    *,
    logs: Sequence[Conversation],
    feedback: Sequence[FeedbackRecord],
    retriever: ExchangeRetriever,
    config: GeneratorConfig,
    policy: RetrainPolicy,
    paths: GeneratorPaths,
    train: Trainer | None = None,
    evaluate: Evaluator | None = None,
    write: AdapterWriter | None = None,
    budget_minutes: float | None = None,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
    before_training: Callable[[CycleLock], dict[str, Any]] | None = None,
    spared_s: Callable[[], float] | None = None,
) -> CycleReport:
    """Run one cycle under the lock; see the module docstring.

    The candidate trains in ``1 - GATE_SHARE`` of ``budget_minutes`` (counted from the end
    of ``before_training``) and the gate judges it in the rest, the adapters loaded with
    ``write`` (default :func:`finetune.gate.adapter_writer`; see :func:`finetune.gate.judge`).
    ``train`` defaults to :func:`train_candidate`; ``evaluate`` replaces the gate's
    comparison with fixed figures per adapter, without a deadline (tests).
    ``before_training`` runs a step of the caller's under this cycle's lock (the bot's
    embedder step); the figures it returns are added to the cycle's record, and ``spared_s``
    (asked after it) the seconds of its share it left, which the candidate's budget gets
    besides ``budget_minutes``. Raises
    CycleLockedError while another cycle runs, ValueError when there is nothing to train
    on; any failure is recorded on the cycle and re-raised, with the live adapter unchanged.
    With the registry in PostgreSQL (``paths.postgres_url``) the caller holds the
    cluster-wide retraining lock, as the bot's ``run_retrain_cycle`` does: the lock taken
    here is only this home's.
    """
    start = time.monotonic()
    train = train or train_candidate
    budget_s = 60.0 * (budget_minutes if budget_minutes is not None else policy.budget_minutes)
    with CycleLock(paths.database, stale_after_s=policy.lock_stale_s) as lock:
        registry = ModelRegistry.open(paths)
        cycles = CycleLog.open(paths)
        try:
            # The lock marked its own records; a log in PostgreSQL is marked here.
            abandoned = [*lock.abandoned, *cycles.abandon_running()]
            if abandoned:
                log.warning("cycles %s were killed half-way; starting clean", abandoned)
                remove_old_temporaries(paths.adapters, older_than_s=600.0)
            # A killed cycle's candidate published but never registered: nothing names it.
            leftovers = remove_dead_writers_folders(
                paths.adapters, [a.folder for a in registry.adapters()]
            )
            live = registry.live_adapter()
            data = assemble_training_set(logs, feedback, policy, config)
            counts = dict(data.counts)
            if leftovers:
                counts["abandoned_adapters_removed"] = len(leftovers)
            cycle_id = cycles.start(
                owner=str(lock.owner), live_adapter_id=live.id if live else None, data=counts
            )
            try:
                if before_training is not None:
                    cycles.add_figures(cycle_id, before_training(lock))
                if spared_s is not None:
                    budget_s += spared_s()
                deadline = time.monotonic() + budget_s
                steps = StepTimes(time.monotonic())
                candidate = train(
                    TrainJob(
                        data,
                        retriever,
                        config,
                        paths,
                        live,
                        budget_s * (1.0 - GATE_SHARE) / 60.0,
                        progress,
                        on_step,
                        policy.feedback_share,
                    )
                )
                steps.done("train candidate")
                cycles.set_candidate(cycle_id, candidate.id)
                # Seconds of searching: the counts it gives say what a cut gate left out.
                gate = gate_set(data, retriever, config)
                figures: dict[str, Any] = {"tolerance": policy.tolerance}
                if evaluate is not None:
                    figures["candidate"] = evaluate(candidate, gate)
                    figures["live"] = evaluate(live, gate) if live is not None else None
                    # The baseline the server compares an adapter with before serving it
                    # (finetune.serving_policy): recorded before promotion, so a server
                    # that picks the adapter up finds its figures.
                    figures["copy"] = gate_figures(
                        gate, copy_top_evidence, handoff_reply=config.handoff_reply
                    )
                else:
                    judged = judge(
                        candidate,
                        live,
                        gate,
                        write or adapter_writer(config, paths),
                        deadline=deadline,
                        batch_size=config.max_batch_size,
                        handoff_reply=config.handoff_reply,
                        progress=progress,
                    )
                    figures.update(
                        candidate=judged.candidate,
                        live=judged.live,
                        copy=judged.copy,
                        evaluation=judged.as_dict(),
                    )
                steps.done("gate")
                figures["budget"] = _budget_figures(
                    budget_s, steps.seconds, dict(candidate.metrics.get("steps") or [])
                )
                decision = decide(figures["candidate"], figures["live"], policy.tolerance)
                figures["worse"] = decision.worse
                registry.add_metrics(
                    candidate.id,
                    {"gate": {"candidate": figures["candidate"], "copy": figures["copy"]}},
                )
                status, reason = _promote_if(decision, registry, candidate, live, lock)
                record = cycles.finish(cycle_id, status=status, reason=reason, figures=figures)
            except BaseException as exc:
                cycles.finish(cycle_id, status="failed", reason=f"{type(exc).__name__}: {exc}")
                raise
            return CycleReport(
                record, live, candidate, registry.live_adapter(), time.monotonic() - start
            )
        finally:
            cycles.close()
            registry.close()


def _budget_figures(
    budget_s: float, steps: dict[str, float], training: dict[str, float]
) -> dict[str, Any]:
    """The adapter's half of a cycle against its budget (issue 19): each step's seconds and
    the seconds it was given, the candidate's parts under it (loading the base, which the
    budget's target leaves out, has no share of its own)."""
    train_s = budget_s * (1.0 - GATE_SHARE)
    parts = {"train candidate": steps.get("train candidate", 0.0), **training}
    parts["gate"] = steps.get("gate", 0.0)
    return {
        "budget_s": round(budget_s, 1),
        # Pairs, in order: the record's JSON comes back with its keys sorted.
        "steps_s": [[k, round(v, 1)] for k, v in parts.items()],
        "shares_s": {
            "train candidate": round(train_s, 1),
            "build examples": round(_BUILD_SHARE * train_s, 1),
            "gate": round(budget_s * GATE_SHARE, 1),
        },
    }


def rollback(paths: GeneratorPaths, *, to: int | None = None) -> CycleRecord:
    """Make the previous adapter live again: ``to``, or the live adapter's parent (the one
    that was live when it was trained), so repeated rollbacks walk back the lineage.

    Raises LookupError when there is nothing to roll back to, UnknownModelError for a bad
    ``to``.
    """
    registry = ModelRegistry.open(paths)
    cycles = CycleLog.open(paths)
    try:
        live = registry.live_adapter()
        target_id = to if to is not None else (live.parent_id if live else None)
        if target_id is None:
            raise LookupError(
                "no adapter is live" if live is None else f"{live.folder.name} has no parent"
            )
        target = registry.adapter(target_id)
        if live is not None and target.id == live.id:
            raise LookupError(f"{target.folder.name} is already live")
        registry.promote(target.id)
        return cycles.record_rollback(
            from_id=live.id if live else None,
            to_id=target.id,
            reason=f"rolled back from {_name(live)} to {target.folder.name}",
        )
    finally:
        cycles.close()
        registry.close()


def training_examples(
    job: TrainJob, *, deadline: float | None = None
) -> tuple[list[TrainingExample], list[TrainingExample], list[Conversation]]:
    """The cycle's training and validation examples, and the conversations trained on.

    Log turns get the RAFT examples of ``supportbot train``, and a fixed share of the log
    conversations validates, with the corrections in their training share. Only the
    reviewed turn of a feedback conversation is learnt (the bot's earlier replies in it
    were not reviewed): an approved reply like a log
    turn, a correction with the corrected answer as the first evidence, as the bot serves
    it (:func:`finetune.examples.correction_examples`). Feedback examples are then repeated
    until they make up ``job.feedback_share`` of training (:func:`mix_feedback`). Raises
    ValueError when there is no reply to learn.

    With ``deadline`` (a ``time.monotonic()`` instant), the log turns' evidence is retrieved
    in a seeded order until four fifths of the time left, and the validation's until the
    deadline, as ``supportbot train`` builds its examples; the feedback, which the cycle
    exists to learn and which is small, is always built whole. The conversations returned
    as trained on are all those the logs' examples could come from: listing one too many
    only keeps it out of a later gate's held-out set.
    """
    config = job.config
    logs = [c for c in job.data.train if not c.id.startswith(FEEDBACK_PREFIX)]
    feedback = [c for c in job.data.train if c.id.startswith(FEEDBACK_PREFIX)]
    fit, val = split_validation(logs)
    if not fit:
        fit, val = logs, []
    reviewed = {c.id: list(iter_turns(c))[-1:] for c in feedback}
    corrected = [
        t for c in feedback if c.metadata.get("kind") == "corrected" for t in reviewed[c.id]
    ]
    approved = [
        t for c in feedback if c.metadata.get("kind") != "corrected" for t in reviewed[c.id]
    ]
    log_turns = [t for c in fit for t in iter_turns(c)]
    if not (log_turns or approved or corrected):
        raise ValueError("no conversation has an agent reply to learn from")
    logs_by = None if deadline is None else time.monotonic() + 0.8 * (deadline - time.monotonic())
    log_examples = _examples(log_turns, job.retriever, config, seed=config.seed, deadline=logs_by)
    feedback_examples = _examples(approved, job.retriever, config, seed=config.seed + 2)
    corrections: list[TrainingExample] = []
    if corrected:
        retrieved = retrieve_for_turns(corrected, job.retriever, config.raft_pool)
        corrections = correction_examples(corrected, retrieved, k=config.retrieved_k)
        feedback_examples += corrections
    val_turns = [t for c in val for t in iter_turns(c)][:256]
    validation = _examples(
        val_turns, job.retriever, config, seed=config.seed + 1, deadline=deadline
    )
    # The corrections validate too, in the share they train: a cycle exists to learn them,
    # and a validation of logs alone stopped it (and went back to the best weights) before
    # it had (296 steps of a 10-minute budget; the corrected answers' loss 5.38 against
    # 4.58 without going back). The gate still compares held-out logs with the live adapter.
    validation = mix_feedback(validation, corrections, job.feedback_share, seed=config.seed + 1)
    examples = mix_feedback(log_examples, feedback_examples, job.feedback_share, seed=config.seed)
    return examples, validation, fit + feedback


def mix_feedback(
    logs: Sequence[TrainingExample],
    feedback: Sequence[TrainingExample],
    share: float,
    *,
    seed: int,
) -> list[TrainingExample]:
    """The log examples and the feedback examples, the latter repeated (whole rounds, then
    a seeded sample) until they are at least ``share`` of the whole.

    A cycle's budget usually ends it within its first epoch over the logs; a share, unlike
    a fixed number of copies, trains on each correction many times whatever the budget.
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"feedback share must be in [0, 1), got {share}")
    mixed = [*logs, *feedback]
    wanted = math.ceil(share * len(logs) / (1.0 - share) - 1e-9)  # 30.000000000000004: 30
    if not feedback or len(feedback) >= wanted:
        return mixed
    rounds, rest = divmod(wanted - len(feedback), len(feedback))
    return mixed + list(feedback) * rounds + random.Random(seed).sample(list(feedback), rest)


def train_candidate(job: TrainJob) -> AdapterRecord:
    """Train a new adapter (warm-started from ``job.live``), publish and register it."""
    import torch

    from finetune.modeling import attach_lora, load_base, peft_wrapping  # lazy: torch
    from finetune.training import LoraSettings, publish_adapter, train_lora  # lazy: torch

    config, paths = job.config, job.paths
    deadline = time.monotonic() + job.budget_minutes * 60.0
    steps = StepTimes(time.monotonic())
    torch.manual_seed(config.seed)
    # Building the examples gets the share `supportbot train` gives it (issue 19: every
    # step of a cycle within its share): retrieving evidence for every log turn of a large
    # corpus took minutes, outside any bound.
    examples, validation, fit = training_examples(
        job, deadline=time.monotonic() + _BUILD_SHARE * job.budget_minutes * 60.0
    )
    steps.done("build examples")
    registry = ModelRegistry.open(paths)
    try:
        if job.live is not None:
            from peft import PeftModel

            base_record = registry.base(job.live.base_id)
            base = load_base(
                base_record.model_ref, device=config.device, base_root=paths.base_models
            )
            # Warm start: the live adapter's weights (and its LoRA shape) train on.
            with peft_wrapping():
                model = PeftModel.from_pretrained(
                    base.model, str(job.live.folder), is_trainable=True
                )
        else:
            base, base_record = configured_base(config, paths, registry)
            model = attach_lora(base, config)
        steps.done("load base")
        fmt = PromptFormat.for_config(base.tokenizer, config)
        settings = LoraSettings.for_config(config, budget_s=max(1.0, deadline - time.monotonic()))
        training = train_lora(
            model, fmt, examples, validation, settings, progress=job.progress, on_step=job.on_step
        )
        steps.done("LoRA")
        metrics = {
            "training": training,
            # Where the candidate's share of the cycle went (publishing it follows), as
            # pairs in order: the registry's JSON comes back with its keys sorted.
            "steps": [[k, round(v, 1)] for k, v in steps.seconds.items()],
            "retrain": {
                "warm_start_from": job.live.folder.name if job.live else None,
                **job.data.counts,
            },
        }
        folder = publish_adapter(
            model,
            adapters_root=paths.adapters,
            config=config,
            base_folder=base_record.folder,
            metrics=metrics,
            training_conversations=fit,
            extra_files={WRITER_FILE: writer_marker()},
        )
        return registry.register_adapter(
            folder,
            base_id=base_record.id,
            parent_id=job.live.id if job.live else None,
            metrics=metrics,
        )
    finally:
        registry.close()


def evaluate_adapter(
    adapter: AdapterRecord, gate: GateSet, *, config: GeneratorConfig, paths: GeneratorPaths
) -> dict[str, float]:
    """Gate figures of ``adapter`` merged into its base, decoded as the server would."""
    from finetune.generation import ReplyGenerator  # lazy: torch

    loaded, serving = load_registered_adapter(adapter, config, paths, merge=True)
    generator = ReplyGenerator.from_config(loaded, serving)
    return gate_figures(
        gate,
        lambda requests: generator.generate_batch(requests, batch_size=config.max_batch_size),
        handoff_reply=config.handoff_reply,
    )


def gate_figures(
    gate: GateSet,
    generate: Callable[[list[PromptRequest]], list[str]],
    *,
    handoff_reply: str,
) -> dict[str, float]:
    """The figures of the replies ``generate`` writes for the gate set (see
    :func:`finetune.evaluate.score_replies`): ROUGE-L and grounded share on both parts,
    and on the corrections the share of replies that state the corrected answer's facts.
    A fact-free reply to a question whose answer has facts is neither grounded nor right.
    """
    figures: dict[str, float] = {}
    for name, cases in (("held_out", gate.held_out), ("corrections", gate.corrections)):
        if cases:
            replies = generate([c.request for c in cases])
            figures.update(part_figures(name, replies, cases, handoff_reply=handoff_reply))
    return figures


def gate_sentence(evaluation: dict[str, int]) -> str:
    """How much of the gate set the adapters were compared on, from
    :meth:`finetune.gate.GateResult.as_dict`."""
    held_out, scored, cut = evaluation["held_out"], evaluation["scored"], evaluation["cut"]
    left = held_out - scored - cut
    notes = [f"{cut} cut short by the budget" if cut else "", f"{left} not reached" if left else ""]
    extra = "; ".join(n for n in notes if n)
    return (
        f"compared on {scored} of {held_out} held-out replies"
        f" and {evaluation['corrections_scored']} of {evaluation['corrections']} corrections"
        + (f" ({extra})" if extra else "")
    )


def _promote_if(
    decision: GateDecision,
    registry: ModelRegistry,
    candidate: AdapterRecord,
    live: AdapterRecord | None,
    lock: CycleLock,
) -> tuple[str, str]:
    if not decision.promote:
        return "kept", decision.reason
    if lock.lost:
        return "kept", "the lock was taken over while this cycle ran; not promoting"
    now_live = registry.live_adapter()
    if (now_live.id if now_live else None) != (live.id if live else None):
        # Someone promoted or rolled back meanwhile; the comparison no longer holds.
        return "kept", f"the live adapter changed during the cycle (now {_name(now_live)})"
    registry.promote(candidate.id)
    return "promoted", decision.reason


def _conversation(record: FeedbackRecord, conversation_id: str) -> Conversation:
    messages = (
        *record.history,
        LogMessage("customer", record.customer_text),
        LogMessage("agent", record.reply),
    )
    return Conversation(id=conversation_id, messages=messages, metadata={"kind": record.kind})


def _name(adapter: AdapterRecord | None) -> str:
    return adapter.folder.name if adapter is not None else "(none)"


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "—"
