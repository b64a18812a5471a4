"""A home with a tiny generator and a live adapter, and the retraining policy tests run it with."""

from __future__ import annotations

from pathlib import Path

from finetune.config import GeneratorConfig
from finetune.pipeline import GeneratorPaths
from finetune.retrain import (
    FeedbackRecord,
    RetrainPolicy,
)
from tests.support.dashboard import ops  # noqa: F401  (the dashboard fixture)
from tests.support.finetune_fakes import (
    publish_live_adapter,
    save_tiny_base,
    toy_conversations,
)

LOGS = toy_conversations(repeats=2)


CONFIG = GeneratorConfig(
    instructions="Answer.",
    retrieved_k=1,
    raft_pool=4,
    max_prompt_tokens=96,
    max_new_tokens=12,
    no_repeat_ngram_size=0,
    train_batch_size=8,
    max_epochs=1,
    eval_max_examples=3,
    lora_r=4,
    lora_alpha=8,
    lora_dropout=0.0,
    eval_percent=20.0,
)


POLICY = RetrainPolicy(tolerance=0.05, approved_weight=2, corrected_weight=3, budget_minutes=0.2)


CORRECTION = FeedbackRecord(
    "corrected",
    "correction:1",
    (),
    "can I pay with a gift card",
    "Gift cards work online and in stores. Article KB-PAY-07.",
    created_at=100.0,
)


def make_home(root: Path) -> GeneratorPaths:
    """A home with a tiny pretrained base and a live adapter v0001 (random LoRA weights)."""
    paths = GeneratorPaths.under(root)
    base_folder = save_tiny_base(root / "base-model", LOGS, extra_lines=[CORRECTION.reply])
    publish_live_adapter(paths, base_folder, CONFIG, LOGS)
    return paths
