"""Contrastive tuning of the embedder on pairs mined from the logs.

One run: mine examples from the training split, train with in-batch negatives plus one
hard negative per example (MultipleNegativesRankingLoss) within a time budget, evaluate
retrieval on the validation split at intervals, keep the best weights (stopping early
when retrieval stops improving), and publish them as a new embedder version folder
``models/embedders/vNNNN`` written atomically. Nothing served is touched: re-embedding
the index with the new version is the caller's next step.
"""

from __future__ import annotations

import copy
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from retrieval.artifacts import remove_stale_temporaries, staged_version, write_json
from retrieval.config import TuningConfig
from retrieval.embedder import TUNED_MANIFEST, Embedder
from retrieval.tuning_data import (
    LabelledMessage,
    TuningSplit,
    batches_without_shared_clusters,
    mine_examples,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

_PLAN_AFTER_STEPS = 5
MANIFEST = TUNED_MANIFEST


@dataclass(frozen=True)
class RetrievalScores:
    """Nearest-neighbour retrieval of validation messages among the training messages."""

    top1: float
    recall_at_5: float
    queries: int

    def better_than(self, other: RetrievalScores | None, min_delta: float = 1e-4) -> bool:
        if other is None:
            return True
        return (self.top1, self.recall_at_5) > (other.top1 + min_delta, other.recall_at_5)


@dataclass
class TuningReport:
    folder: Path | None  # None when nothing better than the starting embedder was found
    base_embedder: str
    examples: int
    steps: int
    epochs: float
    seconds: float
    stopped: str  # "budget" | "epochs" | "early_stop"
    before: RetrievalScores
    after: RetrievalScores
    history: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["folder"] = str(self.folder) if self.folder else None
        return payload


def evaluate_retrieval(
    encode: Callable[[Sequence[str]], np.ndarray],
    corpus: Sequence[LabelledMessage],
    queries: Sequence[LabelledMessage],
    cluster_of: dict[int, int],
) -> RetrievalScores:
    """Top-1 and recall@5 of the right answer, counting answers (clusters), not messages."""
    import faiss

    if not corpus or not queries:
        return RetrievalScores(0.0, 0.0, 0)
    corpus_vectors = np.ascontiguousarray(encode([m.text for m in corpus]), dtype=np.float32)
    query_vectors = np.ascontiguousarray(encode([m.text for m in queries]), dtype=np.float32)
    index = faiss.IndexFlatIP(corpus_vectors.shape[1])
    index.add(corpus_vectors)
    _, ids = index.search(query_vectors, min(len(corpus), 50))
    top1 = hits5 = 0
    for query, row in zip(queries, ids, strict=True):
        wanted = cluster_of[query.entry_id]
        answers: list[int] = []
        for i in row:
            cluster = cluster_of[corpus[int(i)].entry_id]
            if cluster not in answers:
                answers.append(cluster)
            if len(answers) == 5:
                break
        top1 += bool(answers) and answers[0] == wanted
        hits5 += wanted in answers
    return RetrievalScores(top1 / len(queries), hits5 / len(queries), len(queries))


class EmbedderTuner:
    """Tunes a copy of ``embedder``'s model; the given embedder is left as it was."""

    def __init__(self, embedder: Embedder, config: TuningConfig, *, seed: int = 0) -> None:
        self.embedder = embedder
        self.config = config
        self.seed = seed

    def run(
        self,
        split: TuningSplit,
        root: Path,
        *,
        budget_s: float,
        progress: bool = False,
        should_stop: Callable[[], bool] | None = None,
        require_improvement: bool | None = None,
    ) -> TuningReport:
        """Tune within ``budget_s`` seconds and publish the best weights under ``root``.

        With ``require_improvement`` (default: the config's ``publish_only_if_better``)
        nothing is published unless validation retrieval got better than the starting
        embedder's; without it the last weights are published when none was better.
        Raises ValueError when the split has nothing to learn from.
        """
        import torch

        try:
            from sentence_transformers.sentence_transformer.losses import (
                MultipleNegativesRankingLoss,
            )
        except ImportError:  # releases before the path moved (it warns from there now)
            from sentence_transformers.losses import (  # type: ignore[no-redef]
                MultipleNegativesRankingLoss,
            )

        start = time.monotonic()
        deadline = start + budget_s
        cfg = self.config
        torch.manual_seed(self.seed)
        random.seed(self.seed)
        base = self.embedder.load_model()
        model = copy.deepcopy(base)  # the served embedder may share ``base``: never train it
        # Customer messages are short; training on shorter sequences is much cheaper. The
        # saved model keeps the serving length.
        serving_length = model.max_seq_length
        model.max_seq_length = min(cfg.max_seq_length, serving_length or cfg.max_seq_length)

        def encode(texts: Sequence[str]) -> np.ndarray:
            model.eval()
            with torch.inference_mode():
                vectors = model.encode(
                    list(texts),
                    batch_size=128,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            return np.asarray(vectors, dtype=np.float32)

        # Validation: held-out messages searched among a sample of the training ones (the
        # whole corpus would cost a full re-embedding at every evaluation).
        rng = random.Random(self.seed)
        # Held-out topics stay in the served index: as distractors here, early stopping sees
        # what tuning does to answers it never trained on.
        distractors = [m for members in split.held_out_topics.values() for m in members]
        corpus = list(split.train) + distractors
        rng.shuffle(corpus)
        corpus = corpus[: cfg.max_validation_corpus]
        queries = list(split.validation)
        rng.shuffle(queries)
        queries = queries[: cfg.max_validation_queries]
        examples = mine_examples(split, encode, seed=self.seed)
        if len(examples) < 2:
            raise ValueError(
                "too few customer messages with answers to tune the embedder"
                f" ({len(examples)} examples)"
            )
        before = evaluate_retrieval(encode, corpus, queries, split.cluster_of)
        train_start = time.monotonic()
        log.info(
            "embedder tuning: %d examples, validation top-1 %.3f before", len(examples), before.top1
        )

        if cfg.freeze_word_embeddings:
            # The dense gradient of a 30k-row embedding table (and its Adam update) costs
            # several times the rest of a step on a CPU, for little gain on small data.
            for name, parameter in model.named_parameters():
                if name.endswith("word_embeddings.weight"):
                    parameter.requires_grad_(False)
        trainable = [p for p in model.parameters() if p.requires_grad]
        loss_fn = MultipleNegativesRankingLoss(model, scale=cfg.scale)
        optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=0.01)
        steps_per_epoch = max(1, len(batches_without_shared_clusters(examples, cfg.batch_size, 0)))
        planned = max(1, int(steps_per_epoch * cfg.max_epochs))
        warmup = max(1, planned // 10)
        eval_every = max(1, int(planned * cfg.eval_every_share))
        best, best_state = before, None
        history: list[dict[str, float]] = [
            {"step": 0, "top1": before.top1, "r5": before.recall_at_5}
        ]
        stale_checks, step, stopped = 0, 0, "epochs"
        bar = tqdm(total=planned, unit="step", desc="tuning embedder", disable=not progress)
        for batch in _endless_batches(examples, cfg.batch_size, self.seed):
            if step >= planned:
                break
            if time.monotonic() >= deadline or (should_stop is not None and should_stop()):
                stopped = "budget"
                break
            # Linear warm-up, then linear decay to zero at the planned last step.
            if step < warmup:
                lr = cfg.learning_rate * (step + 1) / warmup
            else:
                lr = cfg.learning_rate * max(0.0, (planned - step) / max(1, planned - warmup))
            for group in optimizer.param_groups:
                group["lr"] = lr
            model.train()
            features = [
                _to_device(_model_inputs(model, [getattr(e, column) for e in batch]), model.device)
                for column in ("anchor", "positive", "negative")
            ]
            loss = loss_fn(features, torch.empty(0))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", best=f"{best.top1:.3f}")
            if step == _PLAN_AFTER_STEPS:
                # On a CPU the budget, not the epoch count, usually ends the run: fit the
                # schedule (decay, evaluations) to the steps that will really happen.
                per_step = (time.monotonic() - train_start) / step
                affordable = step + (deadline - time.monotonic()) / max(per_step, 1e-6)
                planned = max(step + 1, min(planned, int(affordable * 0.9)))
                warmup = min(warmup, max(1, planned // 10))
                eval_every = max(1, int(planned * cfg.eval_every_share))
                bar.total = planned
            if step % eval_every == 0 or step == planned:
                scores = evaluate_retrieval(encode, corpus, queries, split.cluster_of)
                history.append(
                    {
                        "step": step,
                        "top1": scores.top1,
                        "r5": scores.recall_at_5,
                        "loss": loss.item(),
                    }
                )
                if scores.better_than(best):
                    best, best_state, stale_checks = scores, _state_copy(model), 0
                else:
                    stale_checks += 1
                    if stale_checks >= cfg.early_stop_patience:
                        stopped = "early_stop"
                        break
        bar.close()
        if stopped == "budget" and step > 0 and history[-1]["step"] != step:
            # Evaluate what the budget cut off, so its last steps are not wasted.
            scores = evaluate_retrieval(encode, corpus, queries, split.cluster_of)
            history.append({"step": step, "top1": scores.top1, "r5": scores.recall_at_5})
            if scores.better_than(best):
                best, best_state = scores, _state_copy(model)

        if require_improvement is None:
            require_improvement = cfg.publish_only_if_better
        if best_state is None and not require_improvement and step > 0:
            best_state = _state_copy(model)
        folder = None
        if best_state is not None:
            model.load_state_dict(best_state)
            model.max_seq_length = serving_length
            folder = self._publish(model, root, best, before, len(examples), step)
        seconds = time.monotonic() - start
        return TuningReport(
            folder=folder,
            base_embedder=self.embedder.name,
            examples=len(examples),
            steps=step,
            epochs=round(step / steps_per_epoch, 3),
            seconds=round(seconds, 1),
            stopped=stopped,
            before=before,
            after=best,
            history=history,
        )

    def _publish(
        self,
        model: SentenceTransformer,
        root: Path,
        after: RetrievalScores,
        before: RetrievalScores,
        examples: int,
        steps: int,
    ) -> Path:
        remove_stale_temporaries(root)
        with staged_version(root) as staged:
            model.save(str(staged.path))
            write_json(
                staged.path / MANIFEST,
                {
                    # Its identity wherever models/ is mounted (Embedder.model_id).
                    "embedder_id": f"tuned-{uuid.uuid4().hex}",
                    "base_embedder": self.embedder.name,
                    "base_embedder_id": self.embedder.model_id,
                    "examples": examples,
                    "steps": steps,
                    "validation_before": asdict(before),
                    "validation_after": asdict(after),
                    "created_at": time.time(),
                    "config": self.config.model_dump(),
                },
            )
        assert staged.final is not None
        log.info("published tuned embedder %s (top-1 %.3f)", staged.final, after.top1)
        return staged.final


def _endless_batches(examples: Sequence[Any], batch_size: int, seed: int) -> Iterator[list[Any]]:
    """Batches epoch after epoch, each epoch shuffled differently."""
    epoch = 0
    while True:
        yield from batches_without_shared_clusters(examples, batch_size, seed + epoch)
        epoch += 1


def _model_inputs(model: Any, texts: list[str]) -> Any:
    """The model's tokenised inputs for ``texts``: ``preprocess`` from sentence-transformers
    6 on, where ``tokenize`` only warns that it is deprecated and calls it; ``tokenize``
    before (the lower bound is 3.0)."""
    preprocess = getattr(model, "preprocess", None)
    return preprocess(inputs=texts) if preprocess is not None else model.tokenize(texts)


def _to_device(features: dict[str, Any], device: Any) -> dict[str, Any]:
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in features.items()}


def _state_copy(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def budget_allows_tuning(budget_s: float, config: TuningConfig, messages: int) -> bool:
    """Whether tuning is worth starting: enough time and enough messages."""
    return config.enabled and budget_s >= config.min_budget_s and messages >= config.min_messages


def tuning_skipped(
    config: TuningConfig, budget_s: float, messages: int, *, after_tuning: float, entries: int
) -> str:
    """Why tuning did not start, naming only what fell short: "has 0 s and 1592" read as
    if 1592 messages were too few too."""
    reasons = []
    if budget_s < config.min_budget_s:
        left = f"{max(budget_s, 0):.0f} s of the step's budget left"
        if after_tuning >= 1.0:
            left += (
                f" after keeping {after_tuning:.0f} s to re-embed {entries} entries and"
                " measure the tuned pair"
            )
        reasons.append(f"needs {config.min_budget_s:.0f} s, {left}")
    if messages < config.min_messages:
        reasons.append(f"needs {config.min_messages} customer messages, the logs have {messages}")
    return "; ".join(reasons)
