"""The training job end to end: adapter versions on the configured base, the live pointer,
serving; and an adapter on a base an earlier release bootstrapped still serves."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from finetune.config import GeneratorConfig
from finetune.pipeline import (
    GeneratorPaths,
    TrainingReport,
    load_live_generator,
    train_generator,
)
from finetune.prompting import PromptRequest
from finetune.registry import ModelRegistry
from retrieval.artifacts import list_versions
from tests.support.finetune_fakes import (
    InMemoryRetriever,
    publish_live_adapter,
    save_tiny_base,
    toy_conversations,
)

CONVERSATIONS = toy_conversations(repeats=4)
CONFIG = GeneratorConfig(
    instructions="Answer.",
    retrieved_k=1,
    raft_pool=4,
    max_prompt_tokens=96,
    max_new_tokens=32,
    train_batch_size=8,
    max_epochs=1,
    eval_max_examples=4,
    lora_r=4,
    eval_percent=20.0,
)


class Crash(RuntimeError):
    pass


def _train(paths: GeneratorPaths, config: GeneratorConfig, **kwargs: Any) -> TrainingReport:
    return train_generator(
        conversations=CONVERSATIONS,
        retriever=InMemoryRetriever(CONVERSATIONS),
        config=config,
        paths=paths,
        budget_minutes=1.0,  # max_epochs=1 ends training; the rest leaves evaluation time
        progress=False,
        **kwargs,
    )


def test_runs_publish_versions_and_a_crash_leaves_the_live_one(tmp_path: Path) -> None:
    paths = GeneratorPaths.under(tmp_path / "home")
    base = save_tiny_base(tmp_path / "tiny-base", CONVERSATIONS)
    config = CONFIG.model_copy(update={"base_model": str(base)})
    bare = load_live_generator(paths, config)  # no adapter yet: the base as it is
    assert bare.version == "" and isinstance(bare.generate(PromptRequest("hi")), str)

    first = _train(paths, config)
    assert first.promoted and first.base_folder == str(base)
    # Without --eval, a salted share of the training conversations validates: early
    # stopping had a validation loss to watch.
    assert first.training["best_val_loss"] is not None
    assert first.adapter_folder == paths.adapters / "v0001"
    table = first.format_table()
    for system in ("adapter", "base model", "copy top retrieved"):
        assert system in table
    # Where the budget went, step by step, in the order they ran.
    steps = ["load base", "build examples", "LoRA", "evaluate", "publish"]
    assert list(first.steps) == steps and list(first.as_dict()["steps"]) == steps
    assert 0 < sum(first.steps.values()) <= first.seconds
    assert "time:        load base " in table
    assert {s.name for s in first.scores} == {"adapter", "base model", "copy top retrieved"}
    assert len({s.examples for s in first.scores}) == 1 and 0 < first.scores[0].examples <= 4
    # How much of the held-out set the figures cover, in the table and the recorded metrics.
    counts = first.as_dict()["evaluation"]
    assert counts["scored"] == first.scores[0].examples
    assert counts["scored"] + counts["cut"] <= counts["held_out"] <= 4
    assert f"evaluated:   {counts['scored']} of {counts['held_out']} held-out replies" in table

    def crash(step: int, loss: float) -> None:
        if step == 2:
            raise Crash("killed mid-training")

    with pytest.raises(Crash):
        _train(paths, config, on_step=crash)
    assert list_versions(paths.adapters) == [first.adapter_folder]
    assert [p.name for p in paths.adapters.iterdir()] == ["v0001"]  # no temporary left over

    second = _train(paths, config, promote=False)
    assert second.adapter_folder.name == "v0002" and not second.promoted

    registry = ModelRegistry.open(paths)
    try:
        live = registry.live_adapter()
        assert live is not None and live.id == first.adapter_id
        assert [a.folder.name for a in registry.adapters()] == ["v0001", "v0002"]
        # Both on the one configured base, registered once.
        assert registry.adapter(second.adapter_id).base_id == live.base_id
        base_record = registry.base(live.base_id)
        assert (base_record.source, base_record.model_ref) == ("pretrained", str(base))
        assert registry.adapter(second.adapter_id).parent_id == first.adapter_id
        registry.promote(second.adapter_id)
        assert registry.live_adapter().id == second.adapter_id  # type: ignore[union-attr]
    finally:
        registry.close()

    generator = load_live_generator(paths, config)
    assert generator.version == "v0002"
    reply = generator.generate(PromptRequest("hi, where is my order?"))
    assert isinstance(reply, str)


def test_an_adapter_on_a_base_an_earlier_release_bootstrapped_still_serves(
    tmp_path: Path,
) -> None:
    """A home trained before the offline bootstrap left the product: its registry names a
    base with source 'bootstrap' (a folder of the home) and a live adapter on it. That
    pair is served, whatever base is configured now (here the default, which the tests'
    guard keeps from loading)."""
    from finetune.modeling import load_adapter, load_base

    paths = GeneratorPaths.under(tmp_path / "home")
    folder = save_tiny_base(paths.base_models / "v0001", CONVERSATIONS)
    (folder / "bootstrap.json").write_text('{"steps": 60}', encoding="utf-8")  # as left
    adapter = publish_live_adapter(
        paths, folder, CONFIG, CONVERSATIONS, source="bootstrap", base_metrics={"steps": 60}
    )

    generator = load_live_generator(paths, GeneratorConfig())
    assert generator.version == "v0001"
    assert isinstance(generator.generate(PromptRequest("hi, where is my order?")), str)
    ids = torch.tensor(
        [generator.prompt_format.encode(PromptRequest("where is my order")).input_ids]
    )
    with torch.no_grad():
        served = generator.model(ids).logits
        on_base = load_adapter(load_base(folder), adapter, merge=True)(ids).logits
        bare = load_base(folder).model(ids).logits
    torch.testing.assert_close(served, on_base)  # that base, with that adapter
    assert not torch.allclose(served, bare, atol=1e-3)


def test_a_budget_spent_before_the_evaluation_scores_nothing_and_serves_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A budget of a few milliseconds is spent before the evaluation (loading the base
    alone takes longer): no held-out reply is written or scored, the report says so, and
    'auto' answer mode would not serve the adapter on figures of nothing."""
    from finetune.serving_policy import adapter_status

    caplog.set_level(logging.INFO, logger="finetune.pipeline")
    paths = GeneratorPaths.under(tmp_path / "home")
    base = save_tiny_base(tmp_path / "tiny-base", CONVERSATIONS)
    report = train_generator(
        conversations=CONVERSATIONS,
        retriever=InMemoryRetriever(CONVERSATIONS),
        config=CONFIG.model_copy(update={"base_model": str(base)}),
        paths=paths,
        budget_minutes=1e-4,
        progress=False,
    )
    # Said before the examples are built, which took half a minute of `make run` in silence.
    assert "building examples: retrieving evidence for" in caplog.text
    held_out = report.as_dict()["evaluation"]["held_out"]
    assert report.as_dict()["evaluation"] == {"held_out": held_out, "scored": 0, "cut": 0}
    assert held_out > 0
    assert f"0 of {held_out} held-out replies evaluated ({held_out} not reached)" in (
        report.format_table()
    )
    metrics = {"eval": [s.as_dict() for s in report.scores]}
    status = adapter_status(metrics, live=report.promoted, answer_mode="auto", tolerance=0.05)
    assert not status.served and "evaluated on 0 held-out replies" in status.reason


def test_examples_cut_by_their_deadline_are_spread_over_the_logs() -> None:
    """The budget stopped the evidence retrieval after its first batch (64 turns): those
    turns are drawn from all over the logs, not the first conversations, and keep the
    logs' order."""
    from finetune.examples import iter_turns
    from finetune.pipeline import _examples

    conversations = toy_conversations(repeats=20)
    turns = [t for c in conversations for t in iter_turns(c)]
    assert len(turns) > 2 * 64
    retriever = InMemoryRetriever(conversations)
    examples = _examples(turns, retriever, CONFIG, seed=1, deadline=0.0)

    index = {(t.conversation_id, t.customer_text): i for i, t in enumerate(turns)}
    reached = [index[(e.conversation_id, e.request.customer_text)] for e in examples]
    assert len(reached) == 64 and reached == sorted(reached)
    assert max(reached) > len(turns) * 0.9 and min(reached) < len(turns) * 0.1
    assert len(_examples(turns, retriever, CONFIG, seed=1)) == len(turns)  # no deadline: all


def test_the_evaluation_bar_names_what_it_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """`make run` showed "evaluate: 0/66" above "0 of 50 held-out replies evaluated": the
    bar also counts the base model's replies."""
    from finetune.pipeline import _progress_bar

    with _progress_bar(50, progress=True) as bar:
        assert bar.total == 66
    assert "evaluate (50 held-out + 16 by the base model):   0%" in capsys.readouterr().err
