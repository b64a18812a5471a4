"""Offline bootstrap of a base model from the support logs themselves.

A byte-level BPE tokenizer is trained on the corpus and a small GPT-2-style model, sized
to the time budget, is pretrained as a causal LM on token documents (conversations, with
related past exchanges in front so that it learns to copy from its context). Training
resumes from a checkpoint (model args, step, best loss, config, as nanoGPT's ``train.py``)
left by an interrupted run on the same corpus, and the finished model is published as a
new version folder under the base-model root.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import ByteLevelBPETokenizer
from tqdm.auto import tqdm
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from finetune.modeling import BOOTSTRAP_MANIFEST, name_causal_lm_loss
from retrieval.artifacts import remove_stale_temporaries, staged_version, write_json

log = logging.getLogger(__name__)

EOS_TOKEN = "<|endoftext|>"
CHECKPOINT_FILE = "checkpoint.pt"
# (layers, heads, width), smallest first; the largest one the budget can train is chosen.
MODEL_LADDER: tuple[tuple[int, int, int], ...] = (
    (2, 2, 64),
    (2, 4, 128),
    (4, 4, 128),
    (4, 4, 192),
    (4, 4, 256),
    (6, 6, 384),
    (8, 8, 512),
    (12, 12, 768),
)


@dataclass(frozen=True)
class PretrainSettings:
    budget_s: float
    batch_size: int = 16
    block_size: int = 512  # training window; positions past it stay untrained
    context_size: int = 512  # positions the model supports when serving
    learning_rate: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_fraction: float = 0.05
    weight_decay: float = 0.1
    # Sizing rule: tokens the budget can train per non-embedding parameter. Budgets here are
    # minutes on a CPU, far below compute-optimal (~20), so small models with several
    # epochs over the logs beat larger ones that see them once.
    tokens_per_param: float = 8.0
    checkpoint_every_s: float = 60.0
    model_shape: tuple[int, int, int] | None = None  # (layers, heads, width); None: sized to budget
    max_steps: int | None = None  # stop earlier than the budget (tests, smoke runs)
    seed: int = 1234


@dataclass(frozen=True)
class BootstrapResult:
    folder: Path
    metrics: dict[str, Any]


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer learned from ``texts`` (any byte sequence stays encodable)."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts,
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS_TOKEN],
        show_progress=False,
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe._tokenizer,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
    )


def model_config(
    vocab_size: int, block_size: int, layers: int, heads: int, width: int
) -> GPT2Config:
    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=block_size,
        n_embd=width,
        n_layer=layers,
        n_head=heads,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        tie_word_embeddings=True,
    )


def choose_model_config(
    vocab_size: int, settings: PretrainSettings, corpus_tokens: int
) -> tuple[GPT2Config, float]:
    """The largest ladder model whose measured speed trains ``tokens_per_param`` tokens per
    parameter within the budget (and that the corpus can feed); returns it and its tokens/s."""
    chosen: tuple[GPT2Config, float] | None = None
    ladder = (settings.model_shape,) if settings.model_shape else MODEL_LADDER
    for layers, heads, width in ladder:
        config = model_config(vocab_size, settings.context_size, layers, heads, width)
        params = _non_embedding_params(config)
        if chosen is not None and params > 200 * corpus_tokens:
            break
        speed = _measure_tokens_per_s(config, settings)
        if chosen is not None and speed * settings.budget_s < settings.tokens_per_param * params:
            break
        chosen = (config, speed)
    assert chosen is not None
    return chosen


def bootstrap_base(
    corpus_texts: Sequence[str],
    make_documents: Callable[[PreTrainedTokenizerFast], list[list[int]]],
    *,
    base_root: Path,
    vocab_size: int,
    settings: PretrainSettings,
    progress: bool = True,
) -> BootstrapResult:
    """Train tokenizer and model on the corpus and publish them as ``base_root/vNNNN``.

    ``make_documents`` turns the trained tokenizer into pretraining documents (token ids).
    An interrupted run on the same corpus and settings resumes from its checkpoint.
    """
    remove_stale_temporaries(base_root)
    corpus_hash = _hash_texts(corpus_texts)
    work = base_root / ".checkpoints" / f"bootstrap-{corpus_hash[:16]}-{vocab_size}"
    work.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = work / "tokenizer"
    if (tokenizer_dir / "tokenizer.json").is_file():
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_dir))
    else:
        tokenizer = train_tokenizer(corpus_texts, vocab_size)
        tokenizer.save_pretrained(str(tokenizer_dir))
    documents = make_documents(tokenizer)
    # Shuffled so that the held-out tail (validation) is a sample of every kind of document.
    random.Random(settings.seed).shuffle(documents)
    stream = _concatenate(documents, tokenizer.eos_token_id)
    model, metrics = pretrain(stream, len(tokenizer), settings, work / CHECKPOINT_FILE, progress)
    metrics.update(corpus_sha256=corpus_hash, documents=len(documents), vocab_size=len(tokenizer))
    with staged_version(base_root) as staged:
        model.save_pretrained(str(staged.path))
        tokenizer.save_pretrained(str(staged.path))
        write_json(staged.path / BOOTSTRAP_MANIFEST, metrics)
    assert staged.final is not None
    shutil.rmtree(work, ignore_errors=True)
    log.info("bootstrap base written to %s", staged.final)
    return BootstrapResult(staged.final, metrics)


def pretrain(
    stream: torch.Tensor,
    vocab_size: int,
    settings: PretrainSettings,
    checkpoint_path: Path,
    progress: bool = True,
) -> tuple[GPT2LMHeadModel, dict[str, Any]]:
    """Causal-LM pretraining on random windows of ``stream`` for the planned training time
    (the budget, less the sizing probe); the learning rate follows the share of that time
    used. Resumes from ``checkpoint_path`` when it exists, with the time it had left."""
    start = time.monotonic()
    deadline = start + settings.budget_s
    torch.manual_seed(settings.seed)
    block = min(settings.block_size, max(8, len(stream) // 4))
    split = max(block + 1, int(len(stream) * 0.95))
    train_data, val_data = stream[:split], stream[split - block - 1 :]
    state = _load_checkpoint(checkpoint_path)
    if state is not None and not _same_run(state, settings):
        log.info("checkpoint %s was made with other settings; starting afresh", checkpoint_path)
        state = None
    if state is not None:
        config = GPT2Config(**state["model_args"])
        log.info("resuming bootstrap pretraining at step %d", state["step"])
    else:
        config, _ = choose_model_config(vocab_size, settings, len(stream))
    model: Any = GPT2LMHeadModel(config)
    name_causal_lm_loss(model)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=settings.learning_rate,
        betas=(0.9, 0.95),
        weight_decay=settings.weight_decay,
    )
    tokens_per_step = settings.batch_size * block
    step, best_loss, tokens_seen, trained_s = 0, math.inf, 0, 0.0
    planned_s = max(1e-3, deadline - time.monotonic())
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, best_loss = int(state["step"]), float(state["best_val_loss"])
        tokens_seen, trained_s = int(state["tokens_seen"]), float(state["trained_s"])
        planned_s = float(state["planned_s"])
    generator = torch.Generator().manual_seed(settings.seed + step)
    bar = tqdm(
        total=round(planned_s),
        initial=round(trained_s),
        desc="pretrain base",
        disable=not progress,
        unit="s",
        dynamic_ncols=True,
    )
    last_checkpoint, loss_ema = time.monotonic(), float("nan")
    model.train()
    max_steps = settings.max_steps or 1 << 62
    while trained_s < planned_s and step < max_steps and time.monotonic() < deadline:
        began = time.monotonic()
        lr = _lr(max(trained_s / planned_s, step / max_steps), settings)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = _batch(train_data, block, settings.batch_size, generator)
        loss = _loss(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        tokens_seen += tokens_per_step
        value = float(loss.item())
        loss_ema = value if math.isnan(loss_ema) else 0.95 * loss_ema + 0.05 * value
        trained_s += time.monotonic() - began
        bar.n = min(round(trained_s), bar.total)
        bar.set_postfix(step=step, loss=f"{loss_ema:.3f}", tok_s=f"{tokens_seen / trained_s:.0f}")
        if time.monotonic() - last_checkpoint >= settings.checkpoint_every_s:
            best_loss = min(best_loss, _val_loss(model, val_data, block, settings))
            _save_checkpoint(
                checkpoint_path,
                model,
                optimizer,
                config,
                settings,
                step=step,
                planned_s=planned_s,
                best_val_loss=best_loss,
                tokens_seen=tokens_seen,
                trained_s=trained_s,
            )
            last_checkpoint = time.monotonic()
    bar.close()
    model.eval()
    val_loss = _val_loss(model, val_data, block, settings)
    metrics = {
        "model_args": config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": step,
        "tokens_seen": tokens_seen,
        "train_loss": loss_ema,
        "val_loss": val_loss,
        "best_val_loss": min(best_loss, val_loss),
        "train_seconds": round(trained_s, 1),
        "planned_seconds": round(planned_s, 1),
        "tokens_per_s": round(tokens_seen / max(trained_s, 1e-9), 1),
        "created_at": time.time(),
    }
    return model, metrics


def _lr(progress: float, settings: PretrainSettings) -> float:
    return cosine_lr(
        progress, settings.learning_rate, settings.warmup_fraction, settings.min_lr_ratio
    )


def cosine_lr(progress: float, peak: float, warmup: float, min_ratio: float) -> float:
    """Linear warm-up then cosine decay to ``min_ratio * peak``; ``progress`` in [0, 1]."""
    if progress < warmup:
        return peak * (progress + 1e-3) / warmup
    ratio = min(1.0, (progress - warmup) / max(1e-9, 1.0 - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * ratio)))


def _batch(
    data: torch.Tensor, block: int, batch_size: int, generator: torch.Generator
) -> torch.Tensor:
    """Random windows of ``block`` tokens, (B, T); token t is trained to predict t + 1."""
    starts = torch.randint(len(data) - block, (batch_size,), generator=generator)
    return torch.stack([data[i : i + block] for i in starts.tolist()])


def _loss(model: Any, x: torch.Tensor) -> Any:  # a scalar tensor
    # Blocks are cut from one packed stream: nothing is padding, so every position is
    # attended. Saying so keeps transformers from warning that the end-of-text token,
    # which is also the pad token, "may be padding". The model shifts the labels itself.
    return model(input_ids=x, attention_mask=torch.ones_like(x), labels=x).loss


def _val_loss(model: Any, data: torch.Tensor, block: int, settings: PretrainSettings) -> float:
    if len(data) <= block + 2:
        return float("nan")
    generator = torch.Generator().manual_seed(settings.seed)
    was_training = model.training
    model.eval()
    losses = []
    with torch.no_grad():
        for _ in range(4):
            x = _batch(data, block, settings.batch_size, generator)
            inputs = x[:, :-1]
            logits = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits
            y = x[:, 1:]
            losses.append(
                float(
                    torch.nn.functional.cross_entropy(
                        logits.reshape(-1, logits.size(-1)), y.reshape(-1)
                    ).item()
                )
            )
    model.train(was_training)
    return sum(losses) / len(losses)


def _measure_tokens_per_s(config: GPT2Config, settings: PretrainSettings) -> float:
    torch.manual_seed(settings.seed)
    model = GPT2LMHeadModel(config)
    name_causal_lm_loss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    shape = (settings.batch_size, min(settings.block_size, 512))
    x = torch.randint(config.vocab_size, shape)
    timings = []
    for _ in range(3):  # the first step warms up allocators and kernels
        began = time.perf_counter()
        loss = _loss(model, x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timings.append(time.perf_counter() - began)
    return x.numel() / min(timings[1:])


def _non_embedding_params(config: GPT2Config) -> int:
    return 12 * config.n_layer * config.n_embd**2


def _concatenate(documents: Sequence[list[int]], eos: int) -> torch.Tensor:
    flat: list[int] = []
    for doc in documents:
        flat.extend(doc)
        flat.append(eos)
    return torch.tensor(flat, dtype=torch.long)


def _hash_texts(texts: Sequence[str]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def _save_checkpoint(
    path: Path,
    model: GPT2LMHeadModel,
    optimizer: torch.optim.Optimizer,
    config: GPT2Config,
    settings: PretrainSettings,
    **progress: Any,
) -> None:
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_args": config.to_dict(),
        "config": json.loads(json.dumps(settings.__dict__)),
        **progress,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # a kill mid-write leaves the previous checkpoint


def _same_run(state: dict[str, Any], settings: PretrainSettings) -> bool:
    saved = state.get("config", {})
    keys = ("block_size", "context_size", "batch_size", "model_shape", "seed")
    current = json.loads(json.dumps(settings.__dict__))
    return all(saved.get(key) == current.get(key) for key in keys)


def _load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # a corrupt checkpoint only costs the time it saved
        log.warning("ignoring unreadable checkpoint %s", path)
        return None
    return state
