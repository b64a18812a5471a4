"""The reply verifier through a retraining cycle (retrieval/verifier_retraining.py): after
`supportbot retrain` promotes a new (embedder, index) pair, the hand-off served still weighs
a verifier, and only one that never asked a question of the conversations its fit was
measured on. Real MiniLM, SQLite and FAISS; the adapter's half of the cycle is scripted
(tests/test_retrain.py trains adapters).

The homes start as `supportbot train` leaves them: a verifier trained without the validation
split's conversations, and a hand-off fit that may weigh it. The embedder candidates are
constructed, as in tests/test_retrain_embedder.py: the live pair is MiniLM with noise on its
weights, the candidate MiniLM itself, which the gate promotes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli.models import retrain_plan
from bot.components import open_knowledge_base
from bot.settings import RetrainConfig, Settings, load_settings
from finetune.learning import run_learning_cycle
from finetune.registry import AdapterRecord, ModelRegistry
from finetune.retrain import GATE_SHARE, CycleReport, GateSet, TrainJob
from retrieval.calibration import answers_match, calibration_of, load_calibration
from retrieval.config import RetrievalConfig
from retrieval.embedder import Embedder, resolve_embedder_location
from retrieval.embedder_retraining import CandidateTuner
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from retrieval.training import train_retrieval
from retrieval.tuning_data import TuningSplit
from retrieval.verifier import Verifier, VerifierRecipe, verifier_folder
from retrieval.verifier_retraining import format_verifier_step
from tests.support.corpus import exchange, write_jsonl
from tests.support.embedder_retraining import ANSWER, CORRECTION, QUESTION, publish, saved_models
from tests.support.retraining import make_home
from tests.support.tuning import TOPICS, small_config, tuning_logs

BUDGET_MINUTES = 60.0  # limits, not durations: the scripted parts end in seconds
# Without the intent words' gain (retrieval.intent_words): on these tiny topics (9 to 11
# validation questions) it moves the figures by a question or two, so that the hand-off fit
# has no use for the verifier and the MiniLM candidate loses the gate on one wrong answer.
# The scenario these tests build (a worse live pair the gate replaces, a fit that weighs
# the verifier) needs the embedder alone to decide.
EMBEDDER_DECIDES = {"intent_words_weight": 0.0}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> dict[str, Path]:
    """Saved sentence-transformers folders: "minilm" as shipped, "noisy" made worse."""
    return saved_models(tmp_path_factory.mktemp("models"), embedder)


@pytest.fixture
def home(tmp_path: Path, embedder: Embedder, models: dict[str, Path]) -> Path:
    """A home as `supportbot train` leaves it: the noisy pair live, an operator's correction,
    a verifier trained without the validation split's conversations and a fit that may weigh
    it. (Built for each test: a copied home's records name the original's embedder.)"""
    home = tmp_path / "home"
    make_home(home)  # a tiny generator with a live adapter v0001, for the adapter's half
    knowledge = KnowledgeBase.open(
        home / "supportbot.db", home / "indexes", RetrievalConfig(**EMBEDDER_DECIDES), embedder
    )
    try:
        ingest_paths([write_jsonl(tmp_path / "logs.jsonl", tuning_logs())], knowledge)
        knowledge.load()
        knowledge.add_curated(CORRECTION.source_id, QUESTION, ANSWER)
        knowledge.reembed(
            knowledge.embedder_at(str(publish(models["noisy"], home / "models" / "embedders")))
        )
        recipe = VerifierRecipe(
            resolve_embedder_location(knowledge.config.embedder),
            answers_match,
            minutes=10.0,
            steps=200,
            min_steps=1,
            max_questions=2000,
        )
        report = train_retrieval(
            knowledge,
            small_config(),
            home=home,
            embedders_root=home / "models" / "embedders",
            budget_s=1200,
            tune=False,
            verifier=recipe,
        )
    finally:
        knowledge.close()
    assert report.verifier is not None and report.verifier.published, report.verifier
    assert report.before is not None and report.before.verified is True
    return home


def cycle_settings(home: Path) -> Settings:
    return load_settings(
        home=home,
        retrieval=RetrievalConfig(
            tuning=small_config(min_budget_s=0.0), verifier_min_steps=1, **EMBEDDER_DECIDES
        ),
        retrain=RetrainConfig(budget_minutes=BUDGET_MINUTES, embedder_tolerance=0.01),
    )


def tuner(model: Path | None) -> CandidateTuner:
    """Tuning that yields ``model`` as the candidate embedder (None: nothing better)."""

    def tune(embedder: Embedder, split: TuningSplit, root: Path, budget_s: float) -> Path | None:
        return publish(model, root) if model is not None else None

    return tune


def run_cycle(settings: Settings, tune: CandidateTuner) -> tuple[CycleReport, list[float]]:
    """What `supportbot retrain` runs, with the adapter's half scripted; also the minutes
    the adapter was given to train in (its gate has the rest of its budget)."""
    adapter_minutes: list[float] = []

    def copy_of_live_adapter(job: TrainJob) -> AdapterRecord:
        adapter_minutes.append(job.budget_minutes)
        assert job.live is not None
        folder = job.paths.adapters / "v0002"
        shutil.copytree(job.live.folder, folder)
        registry = ModelRegistry.open(job.paths)
        try:
            return registry.register_adapter(
                folder, base_id=job.live.base_id, parent_id=job.live.id
            )
        finally:
            registry.close()

    def adapter_figures(adapter: AdapterRecord, gate: GateSet) -> dict[str, float]:
        return {"held_out_rouge_l": 0.5 if adapter.folder.name == "v0001" else 0.1}

    knowledge = open_knowledge_base(settings)
    try:
        knowledge.load()
        report = run_learning_cycle(
            knowledge,
            [CORRECTION],
            retrain_plan(settings),
            progress=False,
            train=copy_of_live_adapter,
            evaluate=adapter_figures,
            embedder_tuner=tune,
        )
    finally:
        knowledge.close()
    return report, adapter_minutes


def served_fit(home: Path) -> dict[str, object]:
    """The calibration servers apply for the embedder of the live index."""
    knowledge = KnowledgeBase.open(home / "supportbot.db", home / "indexes", RetrievalConfig())
    try:
        live = knowledge.store.live_index_version()
        assert live is not None
        fitted = calibration_of(load_calibration(home), live.embedder_id)
    finally:
        knowledge.close()
    assert fitted is not None
    return fitted


def verifier_weight(fitted: dict[str, object]) -> float:
    result = fitted["result"]
    assert isinstance(result, dict)
    return float(result["weights"]["verifier_probability"])


def published_verifier(home: Path) -> Verifier:
    verifier = Verifier.published(verifier_folder(home / "indexes"))
    assert verifier is not None
    return verifier


def ingest_new_conversations(home: Path) -> None:
    """Customers kept writing since `train`: two new conversations per answer. The cycle's
    validation split is drawn from the logs it finds, so it is not train's any more."""
    logs = [
        exchange(f"new-{n}-{i}", f"{question} please", reply)
        for n, (reply, questions) in enumerate(TOPICS.items())
        for i, question in enumerate(questions[:2])
    ]
    knowledge = KnowledgeBase.open(home / "supportbot.db", home / "indexes", RetrievalConfig())
    try:
        ingest_paths([write_jsonl(home.parent / "new.jsonl", logs)], knowledge)
    finally:
        knowledge.close()


def test_a_promoted_pair_s_hand_off_weighs_a_verifier_trained_without_its_questions(
    home: Path, models: dict[str, Path]
) -> None:
    ingest_new_conversations(home)
    trained_by_train = published_verifier(home)

    report, adapter_minutes = run_cycle(cycle_settings(home), tuner(models["minilm"]))

    figures = report.record.figures
    assert figures["embedder"]["status"] == "promoted", figures["embedder"]["reason"]
    step = figures["verifier"]
    assert step["status"] == "refreshed", step["reason"]
    # The verifier `train` left had asked questions of the cycle's new split: the promoted
    # pair's fit without a verifier is what the cycle served before this step.
    assert "verifier_probability" not in step["without"]["signals"]
    assert "verifier_probability" in step["with_candidate"]["signals"]
    # Served now: a new verifier, trained for the promoted index, never asked a question of
    # the conversations the fit was measured on, and the fit weighs it.
    served = published_verifier(home)
    manifest = served.manifest()
    assert served.folder != trained_by_train.folder
    assert str(served.folder) == step["published"]
    assert manifest["held_out"] == step["held_out"] != trained_by_train.manifest()["held_out"]
    assert manifest["index_version"] == figures["embedder"]["candidate_index_version"]
    fitted = served_fit(home)
    assert verifier_weight(fitted) > 0.0
    assert "with the verifier it trained" in str(fitted["fitted_on"])
    # No candidate is left behind, and `supportbot retrain` prints the step.
    assert not (home / "indexes" / "verifier-candidate").exists()
    assert format_verifier_step(step).startswith("verifier:    refreshed (")
    # The adapter got what the verifier's share left.
    assert len(adapter_minutes) == 1
    left = BUDGET_MINUTES * (1 - 0.3 - 0.2) + (step["budget_s"] - step["seconds"]) / 60.0
    assert adapter_minutes[0] * 60 == pytest.approx(left * 60 * (1 - GATE_SHARE), abs=1.0)


def test_a_verifier_that_learnt_nothing_of_the_cycle_s_questions_keeps_its_say(
    home: Path, models: dict[str, Path]
) -> None:
    # No new logs: the cycle draws train's split again, which the verifier never asked.
    before = published_verifier(home)

    report, _ = run_cycle(cycle_settings(home), tuner(models["minilm"]))

    figures = report.record.figures
    assert figures["embedder"]["status"] == "promoted", figures["embedder"]["reason"]
    assert figures["verifier"]["status"] == "kept", figures["verifier"]["reason"]
    assert figures["verifier"]["training"] is None  # no time spent training another
    assert published_verifier(home).folder == before.folder
    assert verifier_weight(served_fit(home)) > 0.0


def test_a_cycle_that_keeps_the_live_pair_leaves_the_verifier_and_its_fit(home: Path) -> None:
    ingest_new_conversations(home)
    before = published_verifier(home)
    fit_before = served_fit(home)

    report, adapter_minutes = run_cycle(cycle_settings(home), tuner(None))

    figures = report.record.figures
    assert figures["embedder"]["reason"].startswith("tuning found nothing better")
    assert "verifier" not in figures
    assert published_verifier(home).folder == before.folder
    assert served_fit(home) == fit_before
    # The verifier's share of the budget went to the adapter.
    assert adapter_minutes == [
        pytest.approx(BUDGET_MINUTES * (1 - 0.3) * (1 - GATE_SHARE), abs=0.02)
    ]


def test_the_verifier_s_share_must_leave_the_adapter_time() -> None:
    with pytest.raises(ValueError, match=r"retrain\.verifier_budget_share"):
        RetrainConfig(embedder_budget_share=0.6, verifier_budget_share=0.4)
