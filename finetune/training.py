"""LoRA training on retrieval-augmented examples, and publishing the adapter.

The loss covers the reply tokens only. Training stops at the epoch limit, the time budget
or when the validation loss stops improving, and keeps the best adapter weights seen.
Each run publishes a new adapter version folder atomically; nothing it does touches the
live adapter unless the caller promotes the new one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from finetune.config import GeneratorConfig
from finetune.examples import TrainingExample
from finetune.generation import cache_keyword, cache_of
from finetune.precision import Precision, autocast, training_dtype
from finetune.prompting import IGNORE_INDEX, EncodedExample, PromptFormat
from retrieval.artifacts import staged_version, write_json
from retrieval.records import Conversation

log = logging.getLogger(__name__)

StepHook = Callable[[int, float], None]  # (step, loss), called after each optimiser step
# The most of the budget one validation pass may take; the examples are cut to fit.
_VALIDATION_SHARE = 0.03


@dataclass(frozen=True)
class LoraSettings:
    budget_s: float
    learning_rate: float
    precision: Precision = "auto"
    device: str = "cpu"
    batch_size: int = 8
    max_epochs: float = 3.0
    early_stop_patience: int = 3
    evals_per_run: int = 10
    warmup_fraction: float = 0.05
    seed: int = 1234

    @classmethod
    def for_config(cls, config: GeneratorConfig, *, budget_s: float) -> LoraSettings:
        """The generator settings' training knobs, for a run of ``budget_s`` seconds."""
        return cls(
            budget_s=budget_s,
            learning_rate=config.learning_rate,
            precision=config.train_precision,
            device=config.device,
            batch_size=config.train_batch_size,
            max_epochs=config.max_epochs,
            early_stop_patience=config.early_stop_patience,
            seed=config.seed,
        )


def train_lora(
    model: Any,
    prompt_format: PromptFormat,
    train: Sequence[TrainingExample],
    validation: Sequence[TrainingExample],
    settings: LoraSettings,
    *,
    progress: bool = True,
    on_step: StepHook | None = None,
) -> dict[str, Any]:
    """Train the adapter parameters of ``model`` (a peft model) in place; return metrics."""
    start = time.monotonic()
    torch.manual_seed(settings.seed)
    dtype = training_dtype(settings.precision, settings.device)
    # Training examples are encoded as their batches come up: rendering a chat template
    # costs milliseconds an example, minutes for ten thousand, and a budget of minutes
    # may reach only a tenth of them.
    encoded = _LazyEncoding(prompt_format, train)
    val_encoded = [prompt_format.encode_example(e.request, e.target) for e in validation[:128]]
    if not train:
        raise ValueError("no training example has a reply to learn")
    pad = prompt_format.tokenizer.pad_token_id or 0
    rng = random.Random(settings.seed)
    batches_per_epoch = math.ceil(len(encoded) / settings.batch_size)
    planned_steps = max(1, int(settings.max_epochs * batches_per_epoch))
    eval_every = max(10, planned_steps // settings.evals_per_run)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    deadline = start + settings.budget_s
    eval_every_s = settings.budget_s / settings.evals_per_run
    last_eval = time.monotonic()
    step, tokens, reply_tokens, loss_ema = 0, 0, 0, float("nan")
    best_val, best_state, bad_checks, stopped = math.inf, _trainable_state(model), 0, "epochs"
    # Seconds a training step and a validation pass take, measured as they run: the budget
    # must also pay for the validation passes (the last one after training included), and
    # the bar's ETA is the steps the budget leaves room for, not the epochs planned.
    step_s: float | None = None
    val_s = 0.0
    bar = tqdm(
        total=planned_steps,
        desc="train adapter",
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
    )
    model.train()
    while step < planned_steps and stopped == "epochs":
        for batch in _batches(encoded, settings.batch_size, pad, rng):
            if step >= planned_steps:
                break
            # A step is started only if it should end in time, timed as the steps so far:
            # on a busy machine one takes many seconds.
            if time.monotonic() + (step_s or 0.0) + val_s >= deadline:
                stopped = "budget"
                break
            step_started = time.monotonic()
            fraction = max(step / planned_steps, (time.monotonic() - start) / settings.budget_s)
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(
                    fraction, settings.learning_rate, settings.warmup_fraction, 0.1
                )
            with autocast(dtype, settings.device):
                loss: Any = reply_loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            step += 1
            tokens += int(batch["attention_mask"].sum())
            reply_tokens += int((batch["labels"] != IGNORE_INDEX).sum())
            value = float(loss.item())
            loss_ema = value if math.isnan(loss_ema) else 0.9 * loss_ema + 0.1 * value
            now = time.monotonic()
            took = now - step_started
            if step_s is None and val_encoded:
                # A validation example costs about what a training one does: both run the
                # prompt forward, which is most of the work, and a step's backward covers
                # only the reply (reply_loss). Keep as many as make a pass cost a few per
                # cent of the budget; a budget that affords less than a batch validates
                # nothing: one pass would cost a step, and early stopping needs several.
                per_example = took / settings.batch_size
                keep = int(_VALIDATION_SHARE * settings.budget_s / max(per_example, 1e-9))
                val_encoded = val_encoded[:keep] if keep >= settings.batch_size else []
                val_s = per_example * len(val_encoded)
            step_s = took if step_s is None else 0.8 * step_s + 0.2 * took
            bar.total = max(step, min(planned_steps, step + int((deadline - now - val_s) / step_s)))
            bar.update(1)
            elapsed = now - start
            bar.set_postfix(loss=f"{loss_ema:.3f}", tok_s=f"{tokens / max(elapsed, 1e-9):.0f}")
            if on_step is not None:
                on_step(step, value)
            due = step % eval_every == 0 or time.monotonic() - last_eval >= eval_every_s
            # Room for this pass and the final one, or it waits for the end.
            if val_encoded and due and time.monotonic() + 2 * val_s < deadline:
                last_eval = time.monotonic()
                with autocast(dtype, settings.device):
                    val = validation_loss(model, val_encoded, settings.batch_size, pad)
                val_s = time.monotonic() - last_eval
                if val < best_val - 1e-4:
                    best_val, best_state, bad_checks = val, _trainable_state(model), 0
                else:
                    bad_checks += 1
                    if settings.early_stop_patience and bad_checks >= settings.early_stop_patience:
                        stopped = "early_stop"
                        break
                model.train()
    bar.close()
    if val_encoded:
        with autocast(dtype, settings.device):
            final_val = validation_loss(model, val_encoded, settings.batch_size, pad)
        if final_val < best_val:
            best_val = final_val
        else:
            _load_trainable_state(model, best_state)
    model.eval()
    elapsed = time.monotonic() - start
    return {
        "steps": step,
        "epochs": round(step / batches_per_epoch, 3),
        "stopped": stopped,
        "train_examples": len(train),
        "train_loss": loss_ema,
        "best_val_loss": best_val if val_encoded else None,
        "train_seconds": round(elapsed, 1),
        "tokens_per_s": round(tokens / max(elapsed, 1e-9), 1),
        "reply_tokens_per_s": round(reply_tokens / max(elapsed, 1e-9), 1),
        "learning_rate": settings.learning_rate,
        "precision": "bf16" if dtype == torch.bfloat16 else "fp32",
        "validation_examples": len(val_encoded),
    }


def cosine_lr(progress: float, peak: float, warmup: float, min_ratio: float) -> float:
    """Linear warm-up then cosine decay to ``min_ratio * peak``; ``progress`` in [0, 1]."""
    if progress < warmup:
        return peak * (progress + 1e-3) / warmup
    ratio = min(1.0, (progress - warmup) / max(1e-9, 1.0 - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * ratio)))


def validation_loss(
    model: Any, examples: Sequence[EncodedExample], batch_size: int, pad: int
) -> float:
    """Mean reply-token loss over ``examples``."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in _batches(examples, batch_size, pad, None):
            n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            total += float(reply_loss(model, batch).item()) * n
            count += n
    return total / max(count, 1)


def reply_loss(
    model: Any, batch: dict[str, torch.Tensor], *, prompt_gradient: bool = False
) -> torch.Tensor:
    """Mean cross-entropy of the reply tokens of ``batch`` (labels mask the prompt).

    Two savings over the model's own loss, which a CPU step is mostly made of:
    - The output layer runs at the reply positions only. At every position it turns each
      prompt token into a row of logits over the whole vocabulary (49,152 for SmolLM2)
      that the loss then ignores, and prompts are about seven eighths of an example.
    - Unless ``prompt_gradient``, the prompt (instructions, evidence, conversation) runs
      forward once without recording a graph, as a key-value cache, and only the reply
      runs with gradients. The loss is the same; the gradient leaves out how the adapter's
      effect on the prompt's own positions would change the reply, so backward costs the
      reply's length instead of the whole example's (LoRA's weights are shared by all
      positions and still learn from every reply token).
    Models whose head does more than a linear layer (soft-capped or scaled logits) take
    the model's own path.
    """
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = getattr(causal_lm, getattr(causal_lm, "base_model_prefix", ""), None)
    head = causal_lm.get_output_embeddings()
    config = causal_lm.config
    plain_head = not any(
        getattr(config, name, None) not in (None, 1.0, 1)
        for name in ("final_logit_softcapping", "logit_scale", "logits_scaling")
    )
    if decoder is None or head is None or not plain_head:
        own: torch.Tensor = model(**batch).loss
        return own
    if prompt_gradient:
        hidden: torch.Tensor = decoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state[:, :-1]
        targets = batch["labels"][:, 1:]
    else:
        hidden, targets = _reply_hidden_states(decoder, batch)
    scored = targets != IGNORE_INDEX
    if not bool(scored.any()):  # nothing to learn: a zero that still has a graph
        return hidden.sum() * 0.0
    logits = head(hidden[scored])
    return torch.nn.functional.cross_entropy(logits.float(), targets[scored])


def _reply_hidden_states(
    decoder: Any, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states that predict each reply token, the prompt run as a cache without a
    graph; and the reply tokens they predict (IGNORE_INDEX where a row is shorter).

    Rows come right-padded (prompt, then reply). The cached part is each prompt but its
    last token, left-padded so that all rows end together; the part with gradients is the
    prompt's last token followed by the reply but its last token, right-padded after it.
    """
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    lengths = [int(n) for n in mask.sum(dim=1)]
    starts = []  # where each reply begins: the prompt's length
    for row, length in zip(labels, lengths, strict=True):
        replied = (row[:length] != IGNORE_INDEX).nonzero()
        # The first token has nothing before it to predict it from.
        starts.append(max(1, int(replied[0]) if len(replied) else length))
    rows = len(lengths)
    cached = max(max(s - 1 for s in starts), 0)
    width = max(max(n - s for n, s in zip(lengths, starts, strict=True)), 1)
    context_ids = torch.zeros((rows, cached), dtype=ids.dtype)
    context_mask = torch.zeros((rows, cached), dtype=mask.dtype)
    reply_ids = torch.zeros((rows, width), dtype=ids.dtype)
    reply_mask = torch.zeros((rows, width), dtype=mask.dtype)
    targets = torch.full((rows, width), IGNORE_INDEX, dtype=labels.dtype)
    positions = torch.zeros((rows, width), dtype=torch.long)
    for r, (start, length) in enumerate(zip(starts, lengths, strict=True)):
        context = max(start - 1, 0)
        if context:
            context_ids[r, cached - context :] = ids[r, :context]
            context_mask[r, cached - context :] = 1
        steps = length - start
        if steps:
            reply_ids[r, :steps] = ids[r, start - 1 : length - 1]
            reply_mask[r, :steps] = 1
            targets[r, :steps] = labels[r, start:length]
        positions[r] = torch.arange(context, context + width)
    cached_context: dict[str, Any] = {}
    if cached:
        with torch.no_grad():
            context_positions = (context_mask.cumsum(dim=1) - 1).clamp(min=0)
            out = decoder(
                input_ids=context_ids,
                attention_mask=context_mask,
                position_ids=context_positions,
                use_cache=True,
            )
        cached_context = {cache_keyword(decoder): cache_of(out), "use_cache": True}
    hidden = decoder(
        input_ids=reply_ids,
        attention_mask=torch.cat([context_mask, reply_mask], dim=1),
        position_ids=positions,
        **cached_context,
    ).last_hidden_state
    return hidden, targets


def publish_adapter(
    model: Any,
    *,
    adapters_root: Path,
    config: GeneratorConfig,
    base_folder: Path,
    metrics: dict[str, Any],
    training_conversations: Sequence[Conversation],
    extra_files: dict[str, Any] | None = None,
) -> Path:
    """Write the adapter (``save_pretrained``), config, metrics and a training-data manifest
    into a new version folder, atomically; return the folder."""
    with staged_version(adapters_root) as staged:
        model.save_pretrained(str(staged.path))
        write_json(staged.path / "generator_config.json", config.model_dump(mode="json"))
        write_json(staged.path / "metrics.json", metrics)
        write_json(
            staged.path / "manifest.json", data_manifest(base_folder, training_conversations)
        )
        for name, payload in (extra_files or {}).items():
            write_json(staged.path / name, payload)
    assert staged.final is not None
    return staged.final


def data_manifest(base_folder: Path, conversations: Sequence[Conversation]) -> dict[str, Any]:
    hashes = sorted((c.id, c.content_hash()) for c in conversations)
    digest = hashlib.sha256("\n".join(f"{i}\t{h}" for i, h in hashes).encode("utf-8"))
    return {
        "base_folder": str(base_folder),
        "created_at": time.time(),
        "conversations": len(hashes),
        "data_sha256": digest.hexdigest(),
        "conversation_hashes": dict(hashes),
    }


class _LazyEncoding:
    """``train``'s examples encoded by ``prompt_format`` on first use, then kept."""

    def __init__(self, prompt_format: PromptFormat, train: Sequence[TrainingExample]) -> None:
        self._format, self._train = prompt_format, train
        self._done: dict[int, EncodedExample] = {}

    def __len__(self) -> int:
        return len(self._train)

    def __getitem__(self, index: int) -> EncodedExample:
        if index not in self._done:
            example = self._train[index]
            self._done[index] = self._format.encode_example(example.request, example.target)
        return self._done[index]


def _batches(
    examples: Sequence[EncodedExample] | _LazyEncoding,
    batch_size: int,
    pad: int,
    rng: random.Random | None,
) -> Iterator[dict[str, torch.Tensor]]:
    """Padded batches of similar lengths (less padding), sorted within windows of 32
    batches; shuffled when ``rng`` is given. Examples without a reply are left out; each
    window is encoded only when training reaches it."""
    order = list(range(len(examples)))
    if rng is not None:
        rng.shuffle(order)
    window = batch_size * 32
    for start in range(0, len(order), window):
        part = [i for i in order[start : start + window] if examples[i].target_tokens > 0]
        part.sort(key=lambda i: len(examples[i].input_ids))
        groups = [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
        if rng is not None:
            rng.shuffle(groups)
        for group in groups:
            yield _collate([examples[i] for i in group], pad)


def _collate(examples: Sequence[EncodedExample], pad: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):  # right padding: training needs no cache
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _trainable_state(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _load_trainable_state(model: Any, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in state:
                param.copy_(state[name])
