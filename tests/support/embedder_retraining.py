"""The embedder step of a retraining cycle under test: a correction, its policy and publishing."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from finetune.retrain import FeedbackRecord
from retrieval.artifacts import staged_version
from retrieval.embedder_retraining import (
    EmbedderStepPolicy,
)
from tests.support.tuning import small_config

if TYPE_CHECKING:
    from retrieval.embedder import Embedder

QUESTION = "can I pay with crypto"


ANSWER = "KB-2010 We do not take crypto, only cards and gift cards."


CORRECTION = FeedbackRecord("corrected", "correction:1", (), QUESTION, ANSWER, created_at=1.0)


POLICY = EmbedderStepPolicy(small_config(min_budget_s=0.0), tolerance=0.01, eval_corrections=10)


def publish(model: Path, root: Path) -> Path:
    """Publish a copy of ``model`` as the next embedder version under ``root``."""
    with staged_version(root) as staged:
        shutil.copytree(model, staged.path, dirs_exist_ok=True)
    assert staged.final is not None
    return staged.final


def saved_models(root: Path, embedder: Embedder) -> dict[str, Path]:
    """Saved sentence-transformers folders under ``root``: "minilm" as shipped, "noisy" made
    worse (a pair that tuning can beat)."""
    import torch

    base = embedder.load_model()
    base.save(str(root / "minilm"))
    noisy = copy.deepcopy(base)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weights in noisy.named_parameters():
            if weights.dim() == 2 and "word_embeddings" not in name:
                weights.add_(torch.randn(weights.shape, generator=generator) * 0.04)
    noisy.save(str(root / "noisy"))
    return {"minilm": root / "minilm", "noisy": root / "noisy"}
