"""The generator training job (``supportbot train``) and loading the live generator.

``train_generator`` loads the configured base (``generator.base_model``, by default the
packaged SmolLM2-135M-Instruct), trains a LoRA adapter on retrieval-augmented examples,
evaluates it against the base model and against copying the top retrieved reply on held-out
conversations, publishes the adapter as a new version and registers it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune.config import GeneratorConfig
from finetune.evaluate import (
    BASE_MODEL_CASES,
    EvalCase,
    Evaluation,
    ReplyWriter,
    SystemScores,
    counting,
    evaluate_systems,
    format_scores,
    unscored,
)
from finetune.examples import (
    ExchangeRetriever,
    TrainingExample,
    Turn,
    build_examples,
    iter_turns,
    reply_target,
    retrieve_for_turns,
    split_held_out,
    split_validation,
)
from finetune.prompting import PromptFormat, PromptRequest
from finetune.registry import ModelRegistry
from retrieval.pacing import StepTimes, format_times
from retrieval.records import Conversation

if TYPE_CHECKING:
    from finetune.modeling import LoadedModel
    from finetune.registry import AdapterRecord, BaseModelRecord, ModelRegistry
    from finetune.serving_policy import AdapterStatus

log = logging.getLogger(__name__)

_MIN_LEARNING_SHARE = 0.6  # of the budget, for LoRA, however long loading and building took
# Of the budget, for retrieving the evidence of training examples (validation's included,
# the last fifth of it): a short budget trains on a few of them (five minutes on two busy
# cores: one LoRA step, 8 examples), while building all of the sample's (1,531 and their
# validation) took 81 s there.
_BUILD_SHARE = 0.1
# Of the budget, for writing held-out replies (2 cores: about 3 s a reply, batched).
_EVAL_SHARE = 0.2


class NoLiveAdapterError(LookupError):
    """No adapter has been promoted yet, and the answer mode serves no base without one."""


@dataclass(frozen=True)
class GeneratorPaths:
    """Where the generator's state lives (``HomePaths`` of the bot maps onto this).

    The model registry and the retraining cycle log are kept in ``database``, the home's
    SQLite file, or in PostgreSQL when ``postgres_url`` is set (replicas on several hosts;
    see :mod:`finetune.database`).
    """

    base_models: Path
    adapters: Path
    database: Path
    postgres_url: str | None = field(default=None, repr=False)  # may hold a password

    @classmethod
    def under(cls, home: Path, *, postgres_url: str | None = None) -> GeneratorPaths:
        return cls(
            home / "models" / "base",
            home / "models" / "adapters",
            home / "supportbot.db",
            postgres_url,
        )

    @property
    def home(self) -> Path:
        """The home folder: the one that holds the database file and ``models/``."""
        return self.database.parent


@dataclass
class TrainingReport:
    base_folder: str
    adapter_folder: Path
    adapter_id: int
    promoted: bool
    training: dict[str, Any]
    scores: list[SystemScores]
    seconds: float
    notes: list[str] = field(default_factory=list)
    # Seconds each step took, in order: where a budget went (issue 19).
    steps: dict[str, float] = field(default_factory=dict)
    # Held-out cases, how many the figures were computed on, how many the budget cut.
    evaluation: Evaluation | None = None

    def format_table(self, status: AdapterStatus | None = None) -> str:
        """The report as printed; ``status`` (the serving policy's word on this adapter
        under the server's answer mode) says whether customers will get its replies."""
        adapter = f"adapter:     {self.adapter_folder} (id {self.adapter_id})"
        if status is not None:
            adapter += f": {status.sentence()}"
        else:
            adapter += ": live" if self.promoted else ": not live"
        lines = [
            f"base model:  {self.base_folder}",
            adapter,
            f"training:    {self.training.get('steps')} steps,"
            f" {self.training.get('epochs')} epochs,"
            f" stopped by {self.training.get('stopped')},"
            f" {self.training.get('tokens_per_s')} tokens/s, {self.seconds:.0f} s in total",
            *([format_times(self.steps)] if self.steps else []),
            *(["evaluated:   " + self.evaluation.sentence()] if self.evaluation else []),
            "",
            format_scores(self.scores),
        ]
        return "\n".join(lines + self.notes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "base_folder": self.base_folder,
            "adapter_folder": str(self.adapter_folder),
            "adapter_id": self.adapter_id,
            "promoted": self.promoted,
            "training": self.training,
            "scores": [s.as_dict() for s in self.scores],
            "seconds": round(self.seconds, 1),
            "steps": {k: round(v, 1) for k, v in self.steps.items()},
            **({"evaluation": self.evaluation.as_dict()} if self.evaluation else {}),
        }


def train_generator(
    *,
    conversations: Iterable[Conversation],
    retriever: ExchangeRetriever,
    config: GeneratorConfig,
    paths: GeneratorPaths,
    eval_conversations: Sequence[Conversation] | None = None,
    budget_minutes: float = 30.0,
    promote: bool | None = None,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainingReport:
    """Train and publish a new adapter; see the module docstring.

    ``budget_minutes`` bounds loading the base, building examples, LoRA training and the
    evaluation: examples are built from the turns whose evidence was retrieved within a
    tenth of the budget (one batch of 64 at least), LoRA stops a fifth of the budget
    before its end, and the held-out replies
    (at most ``config.eval_max_examples``) are written until the budget ends, the first
    batch's too; only the replies written to the end are scored
    (:func:`finetune.evaluate.evaluate_systems`).
    ``promote``: True makes the new adapter live, False never, None only when no adapter
    is live yet. An exception anywhere leaves the registry and the live adapter as they were.
    Raises ValueError when there is nothing to train on, BaseModelError when the base
    cannot be loaded.
    """
    import torch

    from finetune.generation import ReplyGenerator  # lazy: torch
    from finetune.modeling import attach_lora, merged_adapter  # lazy: torch
    from finetune.training import LoraSettings, publish_adapter, train_lora  # lazy: torch

    start = time.monotonic()
    deadline = start + budget_minutes * 60.0
    steps = StepTimes(start)
    torch.manual_seed(config.seed)
    train_convs, eval_convs = _split(list(conversations), eval_conversations, config)
    fit_convs, val_convs = split_validation(train_convs)
    if not fit_convs:
        fit_convs, val_convs = train_convs, []
    fit_turns = [t for c in fit_convs for t in iter_turns(c)]
    if not fit_turns:
        raise ValueError("no conversation has an agent reply to learn from")
    val_turns = [t for c in val_convs for t in iter_turns(c)][:256]

    registry = ModelRegistry.open(paths)
    try:
        # First: a base that cannot be found fails the job before any time is spent.
        base, base_record = configured_base(config, paths, registry)
        steps.done("load base")
        build_s = _BUILD_SHARE * budget_minutes * 60.0
        # Retrieval for every turn, before the LoRA bar: half a minute that `make run`
        # spent without a word after converting the base.
        log.info(
            "building examples: retrieving evidence for %d training turns, for at most %.0f s",
            len(fit_turns),
            build_s,
        )
        built = time.monotonic()
        examples = _examples(
            fit_turns, retriever, config, seed=config.seed, deadline=built + 0.8 * build_s
        )
        validation = (
            _examples(val_turns, retriever, config, seed=config.seed + 1, deadline=built + build_s)
            if val_turns
            else []
        )
        steps.done("build examples")
        notes = []
        if len(examples) < len(fit_turns):
            notes.append(
                f"examples:    {len(examples)} of {len(fit_turns)} training turns got their"
                f" evidence within the {_BUILD_SHARE:.0%} of the budget for building them"
            )
        # Held-out replies are written within the budget too, as many as fit in this share.
        eval_reserve = _EVAL_SHARE * budget_minutes * 60.0
        model = attach_lora(base, config)
        fmt = PromptFormat.for_config(base.tokenizer, config)
        settings = LoraSettings.for_config(
            config,
            # Converting the base on first use and building examples (which retrieves for
            # every turn) can eat the whole budget on a busy machine, and an adapter
            # trained for 0 s has learnt nothing: LoRA keeps at least this share of the
            # budget even when that makes the run overrun it.
            budget_s=max(
                deadline - eval_reserve - time.monotonic(),
                _MIN_LEARNING_SHARE * budget_minutes * 60.0,
            ),
        )
        training = train_lora(
            model, fmt, examples, validation, settings, progress=progress, on_step=on_step
        )
        steps.done("LoRA")
        generator = ReplyGenerator(
            model,
            base.tokenizer,
            fmt,
            max_new_tokens=config.max_new_tokens,
            no_repeat_ngram_size=config.no_repeat_ngram_size,
            device=config.device,
        )
        held_out = held_out_turns(eval_convs, config)
        if time.monotonic() < deadline:
            cases = eval_cases_for(held_out, retriever, config)
            with merged_adapter(model), _progress_bar(len(cases), progress) as bar:
                evaluation = evaluate_systems(
                    cases,
                    _counted(generator, config.max_batch_size, bar),
                    adapter_off=model.disable_adapter,
                    handoff_reply=config.handoff_reply,
                    batch_size=config.max_batch_size,
                    deadline=deadline,
                )
        else:
            # Retrieving the evidence and merging the adapter would only overrun the budget.
            evaluation = unscored(len(held_out))
        steps.done("evaluate")
        scores = evaluation.scores
        metrics = {
            "training": training,
            "eval": [s.as_dict() for s in scores],
            "evaluation": evaluation.as_dict(),
        }
        previous = registry.live_adapter()
        folder = publish_adapter(
            model,
            adapters_root=paths.adapters,
            config=config,
            base_folder=base_record.folder,
            metrics=metrics,
            training_conversations=fit_convs,
        )
        record = registry.register_adapter(
            folder,
            base_id=base_record.id,
            parent_id=previous.id if previous else None,
            metrics=metrics,
        )
        promoted = promote if promote is not None else previous is None
        if promoted:
            registry.promote(record.id)
        steps.done("publish")
    finally:
        registry.close()
    return TrainingReport(
        base_folder=base.source,
        adapter_folder=folder,
        adapter_id=record.id,
        promoted=promoted,
        training=training,
        scores=scores,
        seconds=time.monotonic() - start,
        notes=notes,
        steps=steps.seconds,
        evaluation=evaluation,
    )


def _progress_bar(cases: int, progress: bool) -> Any:
    """A bar over held-out replies (the adapter's, then the base model's glimpse): they
    take minutes on a CPU, and a silent terminal looks hung. It stops where the budget
    stops the evaluation."""
    from tqdm.auto import tqdm

    # Both counts named: "evaluate 0/66" stood above "0 of 50 held-out replies evaluated".
    glimpse = min(cases, BASE_MODEL_CASES)
    desc = f"evaluate ({cases} held-out + {glimpse} by the base model)"
    return tqdm(total=cases + glimpse, desc=desc, unit="reply", disable=not progress)


def _counted(generator: Any, batch_size: int, bar: Any) -> ReplyWriter:
    """``generator.generate_within`` that moves ``bar`` by the replies it finishes."""

    def generate(requests: Sequence[PromptRequest], deadline: float | None) -> list[str | None]:
        replies: list[str | None] = generator.generate_within(
            requests, deadline, batch_size=batch_size
        )
        return replies

    return counting(generate, bar.update)


def eval_cases(
    conversations: Sequence[Conversation], retriever: ExchangeRetriever, config: GeneratorConfig
) -> list[EvalCase]:
    """Held-out turns with the evidence the bot would retrieve (own conversation excluded)."""
    return eval_cases_for(held_out_turns(conversations, config), retriever, config)


def held_out_turns(conversations: Sequence[Conversation], config: GeneratorConfig) -> list[Turn]:
    """The turns of ``conversations`` evaluated, at most ``config.eval_max_examples``."""
    return [t for c in conversations for t in iter_turns(c)][: config.eval_max_examples]


def eval_cases_for(
    turns: Sequence[Turn], retriever: ExchangeRetriever, config: GeneratorConfig
) -> list[EvalCase]:
    """``turns`` with the evidence the bot would retrieve (own conversation excluded), and
    the reply the generator learns for each as the reference (:func:`reply_target`)."""
    retrieved = retrieve_for_turns(turns, retriever, config.retrieved_k) if turns else []
    return [
        EvalCase(
            PromptRequest(t.customer_text, t.history, tuple(hits[: config.retrieved_k])),
            reply_target(t),
            t.conversation_id,
        )
        for t, hits in zip(turns, retrieved, strict=True)
    ]


def load_live_generator(paths: GeneratorPaths, config: GeneratorConfig) -> Any:
    """A ReplyGenerator for the live adapter merged into its base, for serving.

    The prompt settings the adapter was trained with (instructions, prompt budget) are
    read from its folder; decoding settings come from ``config``. Without a live adapter,
    the configured base is served as it is (the server asks for that only in 'generate'
    answer mode). Raises BaseModelError when the base cannot be loaded.
    """
    from finetune.generation import ReplyGenerator  # lazy: torch
    from finetune.modeling import load_base  # lazy: torch

    registry = ModelRegistry.open(paths)
    try:
        live = registry.live_adapter()
        base_record = registry.base(live.base_id) if live is not None else None
    finally:
        registry.close()
    if live is None or base_record is None:
        loaded = load_base(config.base_model, device=config.device, base_root=paths.base_models)
        return ReplyGenerator.from_config(loaded, config)
    loaded, serving = load_registered_adapter(live, config, paths, merge=True)
    generator = ReplyGenerator.from_config(loaded, serving)
    generator.version = live.folder.name
    return generator


def load_registered_adapter(
    adapter: AdapterRecord, config: GeneratorConfig, paths: GeneratorPaths, *, merge: bool
) -> tuple[LoadedModel, GeneratorConfig]:
    """``adapter`` on its registered base (merged into it when ``merge``: faster decoding,
    no more training), and ``config`` with the prompt settings the adapter was trained with
    (instructions, prompt budget): prompts must be built as in training, whatever
    ``config`` now says; decoding settings stay ``config``'s. Raises BaseModelError."""
    import json

    from finetune.modeling import load_adapter, load_base  # lazy: torch

    registry = ModelRegistry.open(paths)
    try:
        base_record = registry.base(adapter.base_id)
    finally:
        registry.close()
    loaded = load_base(base_record.model_ref, device=config.device, base_root=paths.base_models)
    loaded.model = load_adapter(loaded, adapter.folder, merge=merge)
    with open(adapter.folder / "generator_config.json", encoding="utf-8") as fh:
        trained: dict[str, Any] = json.load(fh)
    prompt: dict[str, Any] = {
        k: trained[k] for k in ("instructions", "max_prompt_tokens") if k in trained
    }
    return loaded, config.model_copy(update=prompt)


def _split(
    conversations: list[Conversation],
    eval_conversations: Sequence[Conversation] | None,
    config: GeneratorConfig,
) -> tuple[list[Conversation], list[Conversation]]:
    if eval_conversations is None:
        return split_held_out(conversations, config.eval_percent)
    held = {c.id for c in eval_conversations}
    return [c for c in conversations if c.id not in held], list(eval_conversations)


def _examples(
    turns: Sequence[Turn],
    retriever: ExchangeRetriever,
    config: GeneratorConfig,
    *,
    seed: int,
    deadline: float | None = None,
) -> list[TrainingExample]:
    """RAFT examples of ``turns``; with ``deadline`` (a ``time.monotonic()`` instant), of
    those whose evidence was retrieved by then (the first batch's at least): the turns are
    retrieved in a seeded random order, so that the ones reached are spread over the logs,
    in batches small enough that the deadline stops it within seconds."""
    if deadline is not None:
        order = list(range(len(turns)))
        random.Random(seed).shuffle(order)
        hits = retrieve_for_turns(
            [turns[i] for i in order], retriever, config.raft_pool, batch_size=64, deadline=deadline
        )
        reached = sorted(zip(order, hits, strict=False), key=lambda pair: pair[0])
        turns = [turns[i] for i, _ in reached]
        retrieved = [found for _, found in reached]
    else:
        retrieved = retrieve_for_turns(turns, retriever, config.raft_pool)
    return build_examples(
        turns,
        retrieved,
        k=config.retrieved_k,
        reference_rate=config.raft_reference_rate,
        handoff_reply=config.handoff_reply,
        seed=seed,
        shuffle_evidence=config.raft_shuffle_evidence,
    )


def configured_base(
    config: GeneratorConfig, paths: GeneratorPaths, registry: ModelRegistry
) -> tuple[LoadedModel, BaseModelRecord]:
    """The configured base model, loaded, and its registry record (registered on first use).

    Raises BaseModelError when it cannot be loaded.
    """
    from finetune.modeling import load_base  # lazy: torch

    # A short name or .gguf is recorded as named, like a hub id; loading it again (serving,
    # retraining) finds its converted folder under paths.base_models.
    loaded = load_base(config.base_model, device=config.device, base_root=paths.base_models)
    record = registry.register_base(
        Path(config.base_model), source="pretrained", model_ref=config.base_model
    )
    return loaded, record
