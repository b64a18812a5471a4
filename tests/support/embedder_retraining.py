"""The embedder step of a retraining cycle under test: a correction, its policy and publishing."""

from __future__ import annotations

import shutil
from pathlib import Path

from finetune.retrain import FeedbackRecord
from retrieval.artifacts import staged_version
from retrieval.embedder_retraining import (
    EmbedderStepPolicy,
)
from tests.support.tuning import small_config

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
