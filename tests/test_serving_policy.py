"""'auto' answer mode: an adapter reaches customers only if its recorded evaluation is not
worse than copying the best retrieved answer; the running server follows promotions both
ways (issues 3 and 4: a first run's few-minute model must not answer customers with noise)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from finetune.config import GeneratorConfig
from finetune.pipeline import GeneratorPaths
from finetune.registry import ModelRegistry
from finetune.retrain import rollback
from finetune.serving_policy import COPY_SYSTEM, MIN_SCORED_REPLIES, serving_verdict
from tests.support.finetune_fakes import toy_conversations

LOGS = toy_conversations(repeats=1)
CONFIG = GeneratorConfig(max_new_tokens=8, max_prompt_tokens=200)


def _train_metrics(adapter_rouge: float, copy_rouge: float, adapter_facts: float = 0.5) -> Any:
    """The figures `supportbot train` records: adapter, base model and the copy baseline."""
    return {
        "eval": [
            {"name": "adapter", "rouge_l": adapter_rouge, "facts_share": adapter_facts},
            {"name": "base model", "rouge_l": 0.01, "facts_share": 0.0},
            {"name": COPY_SYSTEM, "rouge_l": copy_rouge, "facts_share": 0.5},
        ]
    }


BELOW_COPY = _train_metrics(adapter_rouge=0.075, copy_rouge=0.49)
AT_COPY = _train_metrics(adapter_rouge=0.47, copy_rouge=0.49)


def test_an_adapter_far_below_the_copy_baseline_is_not_served() -> None:
    verdict = serving_verdict(BELOW_COPY, tolerance=0.05)
    assert verdict is not None and not verdict.serve
    assert "0.075 vs 0.490" in verdict.reason


def test_an_adapter_within_the_tolerance_is_served() -> None:
    verdict = serving_verdict(AT_COPY, tolerance=0.05)
    assert verdict is not None and verdict.serve
    strict = serving_verdict(AT_COPY, tolerance=0.0)
    assert strict is not None and not strict.serve


def test_an_adapter_that_drops_the_facts_is_not_served() -> None:
    verdict = serving_verdict(_train_metrics(0.5, 0.49, adapter_facts=0.2), tolerance=0.05)
    assert verdict is not None and not verdict.serve
    assert "facts stated 20.0% vs 50.0%" in verdict.reason


@pytest.mark.parametrize("scored", [0, 5, MIN_SCORED_REPLIES - 1])
def test_an_evaluation_the_budget_cut_to_a_few_replies_serves_nothing(scored: int) -> None:
    """A busy machine's budget stopped `supportbot train`'s evaluation after a few replies:
    figures as good as copying's on them decide nothing."""
    metrics = {"eval": [{**row, "examples": scored} for row in AT_COPY["eval"]]}
    verdict = serving_verdict(metrics, tolerance=0.05)
    assert verdict is not None and not verdict.serve
    assert f"evaluated on {scored} held-out replies, fewer than {MIN_SCORED_REPLIES}" in (
        verdict.reason
    )
    enough = {"eval": [{**row, "examples": MIN_SCORED_REPLIES} for row in AT_COPY["eval"]]}
    assert serving_verdict(enough, tolerance=0.05).serve  # type: ignore[union-attr]
    # Far below copying on the few it scored: that is said too.
    few_and_below = {"eval": [{**row, "examples": scored} for row in BELOW_COPY["eval"]]}
    below = serving_verdict(few_and_below, tolerance=0.05)
    assert below is not None and not below.serve
    assert below.reason.endswith("(below it on those: answer match (ROUGE-L) 0.075 vs 0.490)")


def test_the_retraining_gate_figures_are_newer_than_the_first_evaluation() -> None:
    gate = {
        "candidate": {"held_out_rouge_l": 0.45, "held_out_facts": 0.5},
        "copy": {"held_out_rouge_l": 0.48, "held_out_facts": 0.5},
    }
    verdict = serving_verdict({**BELOW_COPY, "gate": gate}, tolerance=0.05)
    assert verdict is not None and verdict.serve


def test_without_an_evaluation_there_is_no_verdict() -> None:
    assert serving_verdict({}, tolerance=0.05) is None
    assert serving_verdict({"training": {"steps": 3}}, tolerance=0.05) is None


@pytest.mark.parametrize("answer_mode", ["auto", "generate"])
async def test_running_server_serves_only_adapters_that_evaluate_as_well_as_copying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer_mode: str
) -> None:
    import bot.app
    from bot.app import GENERATOR, SWAPPABLE, create_app, started
    from bot.settings import load_settings
    from bot.web import ENGINE
    from tests.support.fakes import FakeRetriever
    from tests.support.finetune_fakes import tiny_live_loader

    loads: list[str] = []
    load = tiny_live_loader(LOGS, CONFIG, loads)
    monkeypatch.setattr(bot.app, "load_live_generator", load)
    settings = load_settings(
        home=tmp_path / "home", retrain={"poll_seconds": 0.05}, engine={"answer_mode": answer_mode}
    )
    paths = GeneratorPaths.under(settings.home)
    registry = ModelRegistry.open(paths)
    base = registry.register_base(tmp_path / "b", source="pretrained", model_ref="b")
    weak = registry.register_adapter(tmp_path / "v0001", base_id=base.id, metrics=BELOW_COPY)
    good = registry.register_adapter(
        tmp_path / "v0002", base_id=base.id, parent_id=weak.id, metrics=AT_COPY
    )
    registry.promote(weak.id)
    app = create_app(settings, retriever=FakeRetriever())

    async def settled(condition: Any) -> None:
        for _ in range(200):
            if condition():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"serving {app[SWAPPABLE].version}, declined {app[SWAPPABLE].declined}"
        )

    try:
        async with started(app):
            holder = app[SWAPPABLE]
            if answer_mode == "auto":
                # The weak first model is not even loaded: replies are copies.
                assert app[GENERATOR] is holder and holder.declined == "v0001" and loads == []
                assert not app[ENGINE].generating  # type: ignore[attr-defined]
            else:
                assert app[GENERATOR] is holder and holder.version == "v0001"
            registry.promote(good.id)
            await settled(lambda: holder.version == "v0002")
            assert app[ENGINE].generating  # type: ignore[attr-defined]
            assert holder.declined is None
            rollback(paths)  # back to the weak one
            if answer_mode == "auto":
                await settled(lambda: holder.declined == "v0001" and not holder.loaded)
                assert not app[ENGINE].generating  # type: ignore[attr-defined]
            else:
                await settled(lambda: holder.version == "v0001")
    finally:
        registry.close()
    assert loads == (["v0002"] if answer_mode == "auto" else ["v0001", "v0002", "v0001"])


@pytest.mark.parametrize("answer_mode", ["auto", "generate"])
async def test_before_any_adapter_only_generate_mode_serves_the_bare_base(
    tmp_path: Path, answer_mode: str
) -> None:
    """A home that has not been trained yet: the base model has no evaluation to weigh
    against copying, so 'auto' copies without loading it; 'generate' serves it as it is."""
    from bot.app import GENERATOR, SWAPPABLE, create_app, started
    from bot.settings import load_settings
    from bot.web import ENGINE
    from tests.support.fakes import FakeRetriever
    from tests.support.finetune_fakes import save_tiny_base

    base = save_tiny_base(tmp_path / "tiny-base", LOGS)
    settings = load_settings(
        home=tmp_path / "home",
        engine={"answer_mode": answer_mode},
        generator={**CONFIG.model_dump(), "base_model": str(base)},
    )
    app = create_app(settings, retriever=FakeRetriever())
    async with started(app):
        holder = app[SWAPPABLE]
        if answer_mode == "auto":
            assert app[GENERATOR] is holder and not holder.loaded
            assert not app[ENGINE].generating  # type: ignore[attr-defined]
        else:
            assert app[GENERATOR] is holder and holder.loaded
            assert app[ENGINE].generating  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "answer_mode,adapter_rouge,scored,label",
    [
        ("auto", 0.075, 50, "live, not served"),
        ("auto", 0.47, 50, "live, served"),
        ("auto", 0.47, 5, "live, not served"),  # the budget cut its evaluation short
        ("copy", 0.47, 50, "live, not served"),
    ],
)
async def test_train_the_server_and_the_dashboard_say_the_same_of_the_new_adapter(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    aiohttp_client: Any,
    answer_mode: str,
    adapter_rouge: float,
    scored: int,
    label: str,
) -> None:
    """What `supportbot train` prints of the adapter it made live, what the server logs
    when it starts with it, and the dashboard's badge and line are the same words."""
    import html
    import logging
    import re

    from typer.testing import CliRunner

    import bot.app
    import finetune.learning
    from bot.app import create_app
    from bot.cli import app as cli_app
    from bot.settings import load_settings
    from finetune.evaluate import SystemScores
    from finetune.pipeline import TrainingReport
    from tests.support.corpus import SMALL_LOGS, write_jsonl
    from tests.support.dashboard import Site, add_operator, logged_in, page
    from tests.support.fakes import FakeRetriever
    from tests.support.finetune_fakes import save_tiny_base, tiny_live_loader

    base_folder = save_tiny_base(tmp_path / "b", LOGS)
    scores = [
        SystemScores("adapter", scored, adapter_rouge, 1.0, 0.0, 0.5),
        SystemScores(COPY_SYSTEM, scored, 0.49, 1.0, 0.0, 0.5),
    ]

    def train_generator(*, paths: GeneratorPaths, **_: Any) -> TrainingReport:
        # What the real job records and reports, without minutes of training.
        registry = ModelRegistry.open(paths)
        try:
            base = registry.register_base(
                base_folder, source="pretrained", model_ref=str(base_folder)
            )
            folder = paths.adapters / "v0001"
            adapter = registry.register_adapter(
                folder, base_id=base.id, metrics={"eval": [s.as_dict() for s in scores]}
            )
            registry.promote(adapter.id)
        finally:
            registry.close()
        return TrainingReport(str(base_folder), folder, adapter.id, True, {}, scores, 1.0)

    monkeypatch.setenv("SUPPORTBOT_ENGINE__ANSWER_MODE", answer_mode)
    monkeypatch.setenv("SUPPORTBOT_GENERATOR__BASE_MODEL", str(base_folder))
    # train_from_logs (finetune.learning) runs the generator's half of `supportbot train`.
    monkeypatch.setattr(finetune.learning, "train_generator", train_generator)
    monkeypatch.setattr(bot.app, "load_live_generator", tiny_live_loader(LOGS, CONFIG, []))
    home = tmp_path / "home"
    runner = CliRunner()
    logs = write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)
    ingested = runner.invoke(cli_app, ["--home", str(home), "ingest", str(logs), "--no-progress"])
    assert ingested.exit_code == 0, ingested.output
    trained = runner.invoke(
        cli_app, ["--home", str(home), "train", "--no-tune-embedder", "--no-progress"]
    )
    assert trained.exit_code == 0, trained.output
    found = re.search(r"adapter: +\S+v0001 \(id 1\): (.*)", trained.stdout)
    assert found, trained.stdout
    said = found[1]
    assert said.startswith(label + ":")
    if scored < MIN_SCORED_REPLIES:
        assert f"it was evaluated on {scored} held-out replies" in said

    caplog.set_level(logging.INFO, logger="bot.app")
    database = home / "supportbot.db"
    add_operator(database)
    app = create_app(load_settings(home=home), retriever=FakeRetriever())
    client = await aiohttp_client(app)
    logged = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
    assert f"adapter v0001: {said}" in logged
    # Served or not, it is information: a fresh `make run` prints no warning of ours.
    assert not [r for r in caplog.records if r.name == "bot.app" and r.levelno >= logging.WARNING]

    ops = Site(client, app, database)
    await logged_in(ops)
    metrics = await page(ops, "/ops/metrics")
    badge = re.search(r'<h3 id="model-1">v0001 <span class="badge[^"]*">([^<]*)</span>', metrics)
    line = re.search(r'<p class="serving-check">([^<]*)</p>', metrics)
    assert badge and line, metrics
    assert badge[1].lower() == label
    assert html.unescape(line[1]) == said[:1].upper() + said[1:] + "."
    generating = "Replies are generated by the live model." in metrics
    assert generating is (label == "live, served")
