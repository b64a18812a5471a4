"""The training job end to end: bootstrap, adapter versions, the live pointer, serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune.config import GeneratorConfig
from finetune.pipeline import (
    GeneratorPaths,
    NoLiveAdapterError,
    load_live_generator,
    train_generator,
)
from finetune.prompting import PromptRequest
from finetune.registry import ModelRegistry
from finetune.testing import InMemoryRetriever, toy_conversations
from retrieval.artifacts import list_versions

CONVERSATIONS = toy_conversations(repeats=4)
CONFIG = GeneratorConfig(
    instructions="Answer.",
    retrieved_k=1,
    raft_pool=4,
    max_prompt_tokens=96,
    max_new_tokens=32,
    bootstrap_vocab_size=400,
    bootstrap_batch_size=8,
    train_batch_size=8,
    max_epochs=1,
    eval_max_examples=4,
    lora_r=4,
    eval_percent=20.0,
)


class Crash(RuntimeError):
    pass


def _train(paths: GeneratorPaths, **kwargs: object):  # type: ignore[no-untyped-def]
    return train_generator(
        conversations=CONVERSATIONS,
        retriever=InMemoryRetriever(CONVERSATIONS),
        config=CONFIG,
        paths=paths,
        budget_minutes=0.15,
        progress=False,
        **kwargs,
    )  # type: ignore[arg-type]


def test_runs_publish_versions_and_a_crash_leaves_the_live_one(tmp_path: Path) -> None:
    paths = GeneratorPaths.under(tmp_path)
    with pytest.raises(NoLiveAdapterError):
        load_live_generator(paths, CONFIG)

    first = _train(paths)
    assert first.base_bootstrapped and first.promoted
    # Without --eval, a salted share of the training conversations validates: early
    # stopping had a validation loss to watch.
    assert first.training["best_val_loss"] is not None
    assert first.adapter_folder == paths.adapters / "v0001"
    table = first.format_table()
    for system in ("adapter", "base model", "copy top retrieved"):
        assert system in table
    assert {s.name for s in first.scores} == {"adapter", "base model", "copy top retrieved"}
    assert len({s.examples for s in first.scores}) == 1 and 0 < first.scores[0].examples <= 4

    def crash(step: int, loss: float) -> None:
        if step == 2:
            raise Crash("killed mid-training")

    with pytest.raises(Crash):
        _train(paths, on_step=crash)
    assert list_versions(paths.adapters) == [first.adapter_folder]
    assert [p.name for p in paths.adapters.iterdir()] == ["v0001"]  # no temporary left over

    second = _train(paths, promote=False)
    assert second.adapter_folder.name == "v0002" and not second.promoted
    assert len(list_versions(paths.base_models)) == 1  # the bootstrapped base was reused

    registry = ModelRegistry.open(paths)
    try:
        live = registry.live_adapter()
        assert live is not None and live.id == first.adapter_id
        assert [a.folder.name for a in registry.adapters()] == ["v0001", "v0002"]
        assert registry.adapter(second.adapter_id).parent_id == first.adapter_id
        registry.promote(second.adapter_id)
        assert registry.live_adapter().id == second.adapter_id  # type: ignore[union-attr]
    finally:
        registry.close()

    generator = load_live_generator(paths, CONFIG)
    assert generator.version == "v0002"
    reply = generator.generate(PromptRequest("hi, where is my order?"))
    assert isinstance(reply, str)
