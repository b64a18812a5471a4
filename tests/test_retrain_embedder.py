"""The embedder step of a retraining cycle: a candidate (embedder, index) pair judged against
the live pair, promoted or refused, followed by a running server, recorded on the
dashboard, rolled back, and a cycle killed half-way. Real MiniLM, SQLite and FAISS.

Candidates are constructed rather than tuned, so that which one is better is certain: a
copy of MiniLM with noise on its weights (top-1 falls from 1.0 to about 0.4 on the tiny
corpus of tests/test_retrieval_tuning.py) and MiniLM itself. They reach the step through
its tuner port, published as embedder versions exactly as EmbedderTuner publishes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.settings import RetrainConfig, Settings, load_settings
from finetune.registry import AdapterRecord, ModelRegistry
from finetune.retrain import CycleReport, GateSet, TrainJob
from retrieval.calibration import load_calibration
from retrieval.config import RetrievalConfig
from retrieval.embedder import Embedder
from retrieval.embedder_retraining import (
    CandidateTuner,
    EmbedderStepPolicy,
    decide,
    default_tuner,
    discard_abandoned_candidates,
    format_step,
    retrain_embedder,
)
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from retrieval.tuning import MANIFEST
from retrieval.tuning_data import TuningSplit
from tests.support.corpus import write_jsonl
from tests.support.embedder_retraining import (
    ANSWER,
    CORRECTION,
    POLICY,
    QUESTION,
    publish,
    saved_models,
)
from tests.support.tuning import small_config, tuning_logs

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> dict[str, Path]:
    """Saved sentence-transformers folders: "minilm" as shipped, "noisy" made worse."""
    return saved_models(tmp_path_factory.mktemp("models"), embedder)


def publishing(model: Path) -> tuple[CandidateTuner, list[str]]:
    """A tuner whose "tuned" model is ``model``; records the embedder it was asked to tune."""
    asked: list[str] = []

    def tune(embedder: Embedder, split: TuningSplit, root: Path, budget_s: float) -> Path:
        asked.append(embedder.model_id)
        assert split.validation and budget_s > 0
        return publish(model, root)

    return tune, asked


def open_home(home: Path, embedder: Embedder, logs: Path) -> KnowledgeBase:
    """The tiny corpus ingested, plus an operator's correction served as a curated answer."""
    kb = KnowledgeBase.open(home / "supportbot.db", home / "indexes", RetrievalConfig(), embedder)
    ingest_paths([logs], kb)
    kb.load()
    kb.add_curated(CORRECTION.source_id, QUESTION, ANSWER)
    return kb


@pytest.fixture
def knowledge(tmp_path: Path, embedder: Embedder) -> Iterator[KnowledgeBase]:
    kb = open_home(tmp_path / "home", embedder, write_jsonl(tmp_path / "l.jsonl", tuning_logs()))
    yield kb
    kb.close()


def serve_pair(kb: KnowledgeBase, model: Path) -> None:
    """Make ``model`` (published as an embedder version) and its index the live pair."""
    home = kb.store.path.parent
    kb.reembed(kb.embedder_at(str(publish(model, home / "models" / "embedders"))))


def step(kb: KnowledgeBase, tune: CandidateTuner, **kwargs: Any) -> Any:
    home = kb.store.path.parent
    return retrain_embedder(
        kb,
        [CORRECTION],
        POLICY,
        home=home,
        embedders_root=home / "models" / "embedders",
        # Not about budgets: room to measure both pairs on two busy cores (up to 20 s
        # each), which the step keeps before it tunes.
        budget_s=600.0,
        tune=tune,
        **kwargs,
    )


def test_a_better_candidate_is_promoted_with_its_calibration(
    knowledge: KnowledgeBase, models: dict[str, Path]
) -> None:
    serve_pair(knowledge, models["noisy"])
    live = knowledge.version
    assert live is not None
    tune, asked = publishing(models["minilm"])

    report = step(knowledge, tune)

    assert asked == [live.embedder_id]  # tuned from the live embedder, not the configured one
    assert report.status == "promoted", report.reason
    assert report.live["top1"] < 0.8 <= report.candidate["top1"]
    assert report.candidate["corrections_top1"] == 1.0 and report.candidate["corrections"] == 1
    assert report.data["corrections_trained"] == 1  # the correction was in the training split
    # The candidate pair is live in the store, and served here.
    served = knowledge.store.live_index_version()
    assert served is not None and served.id == report.candidate_index_version != live.id
    assert knowledge.version == served
    assert knowledge.embedder.model_id == served.embedder_id != live.embedder_id
    assert "KB-2002" in knowledge.search((), "do giftcards run out", 1)[0].agent_reply
    # The hand-off threshold fitted for the promoted embedder is stored for servers.
    calibration = load_calibration(knowledge.store.path.parent)
    assert calibration is not None
    fitted = calibration["by_embedder"][served.embedder_id]
    assert fitted["result"]["threshold"] == pytest.approx(report.candidate["threshold"], abs=1e-4)
    # Each part's time and the time it was given, for the cycle's table and the benchmark.
    parts = ["split", "measure live", "tune", "re-embed", "measure candidate"]
    assert list(report.steps) == list(report.shares) == parts
    assert report.budget_s == 600.0 and report.shares["tune"] > 0
    assert sum(report.steps.values()) <= report.seconds
    stored = json.loads(json.dumps(report.as_dict(), sort_keys=True))  # as the cycle log
    assert [part for part, _ in stored["steps"]] == parts
    assert "time:        split " in format_step(stored)


def test_a_better_candidate_measured_on_too_few_questions_by_the_deadline_is_not_promoted(
    knowledge: KnowledgeBase, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrieval import embedder_retraining, figures

    serve_pair(knowledge, models["noisy"])
    live = knowledge.version
    monkeypatch.setattr(figures, "_ROUND", 4)  # the toy logs' questions in several rounds
    # The live pair's share spent before it is measured: one round, and as many for the
    # candidate, whose re-embedding the step's minute leaves time for.
    monkeypatch.setattr(embedder_retraining, "_MEASURE_SHARE", 0.0)
    home = knowledge.store.path.parent
    report = retrain_embedder(
        knowledge,
        [CORRECTION],
        POLICY,
        home=home,
        embedders_root=home / "models" / "embedders",
        budget_s=600.0,
        # The candidate promoted in the test above.
        tune=lambda embedder, split, root, budget_s: publish(models["minilm"], root),
    )
    assert report.status == "kept"
    assert "the budget cut the comparison to" in report.reason
    assert "too few to judge" in report.reason
    searched = report.candidate["searched"]
    assert searched == report.live["searched"] and searched["rounds"] == 1
    assert searched["validation"] < searched["validation_questions"]
    assert knowledge.version == live  # the live pair serves on
    assert "the pairs compared on" in format_step(report.as_dict())


def test_a_candidate_the_deadline_left_half_embedded_is_deleted_unjudged(
    knowledge: KnowledgeBase, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrieval import embedder_retraining

    serve_pair(knowledge, models["noisy"])
    live = knowledge.version
    versions_before = knowledge.store.index_versions()
    published: list[tuple[Path, str]] = []

    def tune(embedder: Embedder, split: TuningSplit, root: Path, budget_s: float) -> Path:
        folder = publish(models["minilm"], root)  # the candidate promoted above
        published.append((folder, knowledge.embedder_at(str(folder)).model_id))
        return folder

    # The step's clock runs 1,000 s behind the one its parts read: its own sums leave time
    # to tune, and every deadline it hands them (re-embedding's too) has passed.
    real = time.monotonic
    monkeypatch.setattr(
        embedder_retraining,
        "time",
        SimpleNamespace(monotonic=lambda: real() - 1000.0, time=time.time),
    )
    report = step(knowledge, tune)

    assert report.status == "kept", report.reason
    assert "re-embedding the index with the candidate reached 0 of" in report.reason
    assert report.candidate is None and report.live is not None  # not judged
    # Nothing half-built is left: no index version, no embedder folder, no cached vector.
    assert knowledge.version == live == knowledge.store.live_index_version()
    assert knowledge.store.index_versions() == versions_before
    [(folder, model_id)] = published
    assert not folder.exists()
    assert knowledge.store.drop_cached_vectors(model_id) == 0


def test_a_worse_candidate_is_refused_and_the_live_pair_is_untouched(
    knowledge: KnowledgeBase, models: dict[str, Path]
) -> None:
    live = knowledge.version
    assert live is not None
    hits_before = knowledge.search((), "what time do you close", 3)
    versions_before = knowledge.store.index_versions()
    tune, _ = publishing(models["noisy"])

    report = step(knowledge, tune)

    assert report.status == "kept"
    assert report.worse["top1"] > 0.3 and "top1 worse by" in report.reason
    assert report.candidate["top1"] < report.live["top1"] == 1.0
    # Nothing served changed, here or in the store; the candidate left no trace but its
    # figures: no index version, no folders, no cached vectors.
    assert knowledge.store.live_index_version() == live == knowledge.version
    assert knowledge.embedder is knowledge.configured_embedder
    assert knowledge.search((), "what time do you close", 3) == hits_before
    assert knowledge.store.index_versions() == versions_before
    assert report.candidate_embedder is not None
    assert not Path(report.candidate_embedder).exists()
    hashes = [h for h, _ in knowledge.store.embed_texts([1, 2, 3]).values()]
    assert knowledge.store.cached_vectors(hashes, report.live["embedder"])
    assert not knowledge.store.cached_vectors(hashes, report.candidate["embedder"])
    assert load_calibration(knowledge.store.path.parent) is None  # no threshold was stored


def test_a_candidate_is_not_promoted_once_the_cycle_lost_its_lock(
    knowledge: KnowledgeBase, models: dict[str, Path]
) -> None:
    serve_pair(knowledge, models["noisy"])
    live = knowledge.version
    report = step(knowledge, publishing(models["minilm"])[0], may_promote=lambda: False)
    assert report.status == "kept" and "lock" in report.reason
    assert knowledge.store.live_index_version() == live


def _run_until_killed(script: str, *args: str) -> None:
    """Run ``script`` in a child Python that must end killed by SIGKILL (it kills itself
    at the step under test)."""
    child = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]


_KILLED_STEP = """
import os, shutil, signal, sys
from pathlib import Path
from retrieval.embedder_retraining import retrain_embedder
from retrieval.artifacts import staged_version
from retrieval.config import RetrievalConfig
from retrieval.knowledge import KnowledgeBase
from retrieval.tuning import MANIFEST
from tests.support.embedder_retraining import CORRECTION, POLICY, publish

home, model = Path(sys.argv[1]), Path(sys.argv[2])
kb = KnowledgeBase.open(home / "supportbot.db", home / "indexes", RetrievalConfig())
kb.load()

def killed():  # the gate said yes: die just before the promotion, like kill -9
    os.kill(os.getpid(), signal.SIGKILL)
    return True

retrain_embedder(
    kb, [CORRECTION], POLICY, home=home, embedders_root=home / "models" / "embedders",
    budget_s=600.0, tune=lambda e, s, root, b: publish(model, root), may_promote=killed,
)
"""


def test_a_cycle_killed_before_promotion_leaves_the_live_pair_and_rollback_skips_it(
    tmp_path: Path, embedder: Embedder, models: dict[str, Path]
) -> None:
    home = tmp_path / "home"
    kb = open_home(home, embedder, write_jsonl(tmp_path / "l.jsonl", tuning_logs()))
    serve_pair(kb, models["noisy"])
    live = kb.version
    assert live is not None
    kb.close()

    _run_until_killed(_KILLED_STEP, str(home), str(models["minilm"]))

    kb = KnowledgeBase.open(home / "supportbot.db", home / "indexes", RetrievalConfig(), embedder)
    try:
        kb.load()
        assert kb.version == live  # the better candidate was staged and judged, never served
        assert kb.embedder.model_id == live.embedder_id
        [abandoned] = [v for v in kb.store.index_versions() if v.id > live.id]
        assert abandoned.first_live_at is None and abandoned.folder.is_dir()

        # `supportbot train` publishes a pair meanwhile; rolling back returns to the pair
        # served before it, not to the candidate that was never served.
        serve_pair(kb, models["minilm"])
        assert kb.rollback().id == live.id
        assert kb.embedder.model_id == live.embedder_id

        # The next cycle deletes what the killed one left before it starts.
        assert discard_abandoned_candidates(kb) == 1
        assert abandoned.id not in {v.id for v in kb.store.index_versions()}
        assert not abandoned.folder.exists()
        assert not Path(abandoned.embedder_location or "").exists()
        assert kb.version == live
    finally:
        kb.close()


_KILLED_UNRECORDED = """
import os, signal, sys
from pathlib import Path
from retrieval.embedder_retraining import retrain_embedder
from retrieval.config import RetrievalConfig
from retrieval.knowledge import KnowledgeBase
from retrieval.store import KnowledgeStore
from tests.support.embedder_retraining import CORRECTION, POLICY, publish

home, model, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
kb = KnowledgeBase.open(home / "supportbot.db", home / "indexes", RetrievalConfig())
kb.load()

def die(*args, **kwargs):  # like kill -9: no cleanup, no finally
    os.kill(os.getpid(), signal.SIGKILL)

if point == "re-embedding":  # the tuned embedder is published, its index not yet built
    KnowledgeBase.stage_reembedded = die  # (the live pair, measured first, reads vectors)
else:  # the candidate index folder is published, not yet recorded
    KnowledgeStore.record_index_version = die
retrain_embedder(
    kb, [CORRECTION], POLICY, home=home, embedders_root=home / "models" / "embedders",
    budget_s=600.0, tune=lambda e, s, root, b: publish(model, root),
)
"""


@pytest.mark.parametrize("point", ["re-embedding", "recording"])
def test_the_next_cycle_deletes_the_folders_a_killed_one_never_recorded(
    tmp_path: Path, embedder: Embedder, models: dict[str, Path], point: str
) -> None:
    from retrieval.leftovers import WRITER_FILE
    from retrieval.processes import writer_marker

    home = tmp_path / "home"
    embedders = home / "models" / "embedders"
    kb = open_home(home, embedder, write_jsonl(tmp_path / "l.jsonl", tuning_logs()))
    first = kb.version
    serve_pair(kb, models["minilm"])  # the first pair stays on disk for rollback
    live = kb.version
    assert first is not None and live is not None and live.embedder_location is not None
    kb.close()

    _run_until_killed(_KILLED_UNRECORDED, str(home), str(models["noisy"]), point)

    kb = KnowledgeBase.open(home / "supportbot.db", home / "indexes", RetrievalConfig(), embedder)
    try:
        kb.load()
        assert kb.version == live
        versions = kb.store.index_versions()
        recorded = {v.folder.resolve() for v in versions}
        # What the killed cycle left: an embedder no version uses, and (killed while
        # recording) an index folder no version names.
        orphan_embedder = embedders / "v0002"
        assert (orphan_embedder / WRITER_FILE).is_file()
        assert not any(v.embedder_location == str(orphan_embedder) for v in versions)
        orphan_indexes = [f for f in (home / "indexes").glob("v*") if f.resolve() not in recorded]
        assert len(orphan_indexes) == (1 if point == "recording" else 0)
        orphan_id = kb.embedder_at(str(orphan_embedder)).model_id
        hashes = [h for h, _ in kb.store.embed_texts([1, 2, 3]).values()]
        assert bool(kb.store.cached_vectors(hashes, orphan_id)) == (point == "recording")
        # Another job tuning right now (its process alive) has not recorded its embedder
        # yet either: not a dead cycle's, so it stays.
        publishing = publish(models["noisy"], embedders)
        (publishing / WRITER_FILE).write_text(json.dumps(writer_marker()), encoding="utf-8")

        # The next cycle's step deletes them first, then tunes, re-embeds and judges.
        report = step(kb, publishing_model(models["noisy"]))
        assert report.data["abandoned_folders_removed"] == 1 + len(orphan_indexes)
        assert report.status == "kept"  # a noisy copy of the live MiniLM: worse, refused
        assert not orphan_embedder.exists() and not any(f.exists() for f in orphan_indexes)
        assert not kb.store.cached_vectors(hashes, orphan_id)
        # The live pair, the pair live before it and the other job's folder are untouched.
        assert kb.version == live and kb.store.index_versions() == versions
        assert first.folder.is_dir() and live.folder.is_dir()
        assert Path(live.embedder_location).is_dir() and publishing.is_dir()
        assert kb.rollback().id == first.id
    finally:
        kb.close()


def publishing_model(model: Path) -> CandidateTuner:
    return publishing(model)[0]


# -- the whole cycle: a running server, the dashboard --------------------------------------


def copy_of_live_adapter(job: TrainJob) -> AdapterRecord:
    """The adapter's own training is tested in tests/test_retrain.py: here the candidate
    adapter is the live one's weights published again."""
    assert job.live is not None
    folder = job.paths.adapters / "v0002"
    shutil.copytree(job.live.folder, folder)
    registry = ModelRegistry.open(job.paths)
    try:
        return registry.register_adapter(folder, base_id=job.live.base_id, parent_id=job.live.id)
    finally:
        registry.close()


def adapter_figures(adapter: AdapterRecord, gate: GateSet) -> dict[str, float]:
    """The candidate adapter scores worse: the adapter's gate refuses it."""
    return {"held_out_rouge_l": 0.5 if adapter.folder.name == "v0001" else 0.1}


async def until(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return condition()


async def test_a_cycle_promotes_the_pair_the_server_follows_and_the_dashboard_shows_it(
    aiohttp_client: Any, tmp_path: Path, embedder: Embedder, models: dict[str, Path]
) -> None:
    from bot.app import KNOWLEDGE, create_app
    from bot.cli.models import retrain_plan
    from bot.components import generator_paths, open_knowledge_base
    from bot.feedback import export_feedback
    from bot.store.conversations import ConversationDatabase
    from bot.web import WebConfig
    from finetune.cycles import CycleLog
    from finetune.learning import run_learning_cycle
    from tests.support.dashboard import Site, add_operator, logged_in, page
    from tests.support.retraining import make_home

    home = tmp_path / "home"
    make_home(home)  # a tiny generator with a live adapter v0001
    settings: Settings = load_settings(
        home=home,
        web=WebConfig(index_refresh_seconds=0.1),
        retrieval=RetrievalConfig(tuning=small_config(min_budget_s=0.0)),
        # The adapter's half is scripted: the budget is the embedder step's (a share of 3 min).
        retrain=RetrainConfig(budget_minutes=10, embedder_tolerance=0.01),
    )
    store = ConversationDatabase(settings.paths.database)
    await store.open()
    correction = await store.add_correction(QUESTION, ANSWER, created_by="alice")
    await store.aclose()
    assert correction.source_id == CORRECTION.source_id
    kb = open_home(home, embedder, write_jsonl(tmp_path / "l.jsonl", tuning_logs()))
    serve_pair(kb, models["noisy"])
    live = kb.version
    kb.close()
    assert live is not None
    add_operator(settings.paths.database)

    app = create_app(settings)
    site = Site(await aiohttp_client(app), app, settings.paths.database)
    assert app[KNOWLEDGE].embedder.model_id == live.embedder_id
    tune, _ = publishing(models["minilm"])

    def cycle() -> CycleReport:  # what `supportbot retrain` runs, with this test's models
        knowledge = open_knowledge_base(settings)
        try:
            knowledge.load()
            return run_learning_cycle(
                knowledge,
                export_feedback(settings.paths.database),
                retrain_plan(settings),
                progress=False,
                train=copy_of_live_adapter,
                evaluate=adapter_figures,
                embedder_tuner=tune,
            )
        finally:
            knowledge.close()

    report = await asyncio.to_thread(cycle)

    step_figures = report.record.figures["embedder"]
    assert step_figures["status"] == "promoted", step_figures["reason"]
    assert step_figures["candidate"]["corrections_top1"] == 1.0  # the correction, probed
    assert report.record.status == "kept"  # the adapter has its own gate
    promoted = step_figures["candidate_index_version"]
    assert await until(lambda: app[KNOWLEDGE].version.id == promoted)
    assert app[KNOWLEDGE].embedder.model_id == step_figures["candidate"]["embedder"]

    await logged_in(site)
    text = await page(site, "/ops/metrics")
    top1 = f"top-1 {step_figures['candidate']['top1']:.3f} vs {step_figures['live']['top1']:.3f}"
    assert f"embedder: index v{promoted} vs v{live.id}" in text
    assert top1 in text and "corrections retrieved 1.000 vs" in text
    assert "within 0.01 of the live pair" in text

    # Rolling retrieval back returns the server to the live pair before the cycle.
    result = CliRunner().invoke(cli_app, ["--home", str(home), "rollback", "--retrieval"])
    assert result.exit_code == 0, result.output
    assert await until(lambda: app[KNOWLEDGE].version.id == live.id)
    assert app[KNOWLEDGE].embedder.model_id == live.embedder_id
    cycles = CycleLog.open(generator_paths(settings))
    try:
        [record] = cycles.cycles()
    finally:
        cycles.close()
    assert record.figures["embedder"] == step_figures


@pytest.mark.slow  # 70 s on the shared 2-core machine; the tuner has its own fast tests
def test_the_default_tuner_tunes_the_live_embedder_and_the_gate_decides_on_the_figures(
    knowledge: KnowledgeBase,
) -> None:
    """A few real tuning steps: whichever way the gate goes on this tiny corpus, the
    decision is the one its figures call for, and the store serves accordingly."""
    config = small_config(
        min_budget_s=0.0, max_epochs=0.3, eval_every_share=1.0, publish_only_if_better=False
    )
    live = knowledge.version
    assert live is not None
    manifests: list[dict[str, Any]] = []
    tuner = default_tuner(config)

    def tune(embedder: Embedder, split: TuningSplit, root: Path, budget_s: float) -> Path | None:
        folder = tuner(embedder, split, root, budget_s)
        assert folder is not None
        manifests.append(json.loads((folder / MANIFEST).read_text(encoding="utf-8")))
        return folder

    home = knowledge.store.path.parent
    report = retrain_embedder(
        knowledge,
        [CORRECTION],
        EmbedderStepPolicy(config, tolerance=0.01, eval_corrections=10),
        home=home,
        embedders_root=home / "models" / "embedders",
        budget_s=120.0,
        tune=tune,
    )

    [manifest] = manifests
    assert manifest["steps"] >= 1 and manifest["base_embedder_id"] == live.embedder_id
    promote, _, worse = decide(report.candidate, report.live, 0.01)
    assert report.status == ("promoted" if promote else "kept") and report.worse == worse
    served = knowledge.store.live_index_version()
    assert served is not None
    assert served.id == (report.candidate_index_version if promote else live.id)
    assert Path(report.candidate_embedder or "").is_dir() is promote
