"""The reply verifier (retrieval.verifier): trained on the logs, published whole, read by
every search's first hit, and a confidence signal calibration may keep."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from bot.adapters.retrieval import KnowledgeRetriever
from bot.cli import app
from bot.components import calibrated_engine_config
from bot.core.config import EngineConfig
from retrieval import verifier as verifier_module
from retrieval.artifacts import list_versions
from retrieval.calibration import Calibration, answers_match, calibration_path, save_calibration
from retrieval.confidence import (
    FEATURE_NAMES,
    CalibrationCase,
    CalibrationResult,
    ConfidenceFeatures,
    ConfidenceWeights,
    calibrate,
    curated_evidence,
    retrieval_features,
)
from retrieval.config import RetrievalConfig
from retrieval.embedder import Embedder, resolve_embedder_location
from retrieval.figures import _unverified
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from retrieval.records import Query, RetrievedExchange
from retrieval.training import RetrievalTrainingReport, train_retrieval
from retrieval.verifier import (
    HeldOut,
    Verifier,
    VerifierRecipe,
    VerifierReport,
    train_verifier,
    verifier_folder,
)
from tests.support.corpus import exchange, write_jsonl
from tests.support.tuning import small_config, tuning_logs

# Four answers, each asked three ways in conversations of its own: every logged turn's
# first hits hold its answer (the other two ways) and others, something to tell apart.
TOPICS = {
    "Standard shipping takes 3-5 business days (KB-SHP-01).": [
        "When will my order arrive?",
        "how long does delivery take",
        "is shipping slow? need it by friday",
    ],
    "Use 'Forgot password' on the sign-in page (KB-ACC-02).": [
        "I forgot my password",
        "can't log in to my account",
        "how do I reset my password?",
    ],
    "Gift cards never expire (KB-GFT-01).": [
        "Do gift cards expire?",
        "is there an expiry date on gift cards",
        "my gift card is two years old, still valid?",
    ],
    "Unworn items can be returned within 30 days (KB-RET-01).": [
        "How do I return boots that don't fit?",
        "can I send back a jacket",
        "what is your returns policy",
    ],
}


def _train(knowledge: KnowledgeBase, **options: int) -> VerifierReport:
    """``train_verifier`` as `supportbot calibrate` calls it, without a deadline."""
    return train_verifier(
        knowledge,
        verifier_folder(knowledge.index_root),
        resolve_embedder_location(knowledge.config.embedder),
        answers_match,
        deadline=None,
        **options,
    )


@pytest.fixture
def trained(
    tmp_path: Path, make_knowledge: Callable[..., KnowledgeBase]
) -> tuple[KnowledgeBase, Path]:
    """A knowledge base with TOPICS ingested and a verifier trained on them, and its folder."""
    logs = [
        exchange(f"c{n}-{i}", question, reply)
        for n, (reply, questions) in enumerate(TOPICS.items())
        for i, question in enumerate(questions)
    ]
    knowledge = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", logs)], knowledge)
    folder = verifier_folder(knowledge.index_root)
    report = _train(knowledge, min_pairs=10)
    assert report.published, report.note
    assert report.questions == 12 and report.pairs >= 10
    assert report.steps == report.planned_steps > 0
    assert report.line().startswith("verifier:    trained on")
    return knowledge, folder


def test_a_trained_verifier_reads_every_search_s_first_hit(
    trained: tuple[KnowledgeBase, Path], make_knowledge: Callable[..., KnowledgeBase]
) -> None:
    knowledge, folder = trained
    verifier = Verifier.published(folder)
    assert verifier is not None
    probabilities = verifier.probabilities(
        ["do gift cards expire?"],
        knowledge.search_batch([Query("do gift cards expire?")], 2)[0][:1],
    )
    assert len(probabilities) == 1 and 0.0 < probabilities[0] < 1.0

    knowledge.follow_verifier()
    hits = knowledge.search_batch([Query("gift card expiry?"), Query("reset my password")], 3)
    for row in hits:
        assert row[0].verifier_probability is not None and 0.0 < row[0].verifier_probability < 1.0
        # Only the first: the confidence judges it alone.
        assert all(h.verifier_probability is None for h in row[1:])
    features = retrieval_features(hits[0])
    assert features is not None and features.verifier_probability == hits[0][0].verifier_probability

    # A home whose settings turn it off, over the same files, never reads it.
    off = KnowledgeBase(
        knowledge.store,
        knowledge.configured_embedder,
        knowledge.index_root,
        knowledge.config.model_copy(update={"verifier": False}),
    )
    off.load()
    assert off.search_batch([Query("gift card expiry?")], 3)[0][0].verifier_probability is None


def test_a_failed_training_leaves_the_published_verifier_as_it_was(
    trained: tuple[KnowledgeBase, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    knowledge, folder = trained
    before = Verifier.published(folder)
    assert before is not None

    def crash(*args: object) -> None:
        raise RuntimeError("killed mid-training")

    # Killed while training, and killed while writing the new version's files.
    for where in ("_train_steps", "write_json"):
        with monkeypatch.context() as patched:
            patched.setattr(verifier_module, where, crash)
            with pytest.raises(RuntimeError):
                _train(knowledge, min_pairs=10, again=True)
        after = Verifier.published(folder)
        assert after is not None and after.folder == before.folder
        # Nothing half-written is left beside it.
        assert [p.name for p in folder.iterdir()] == [before.folder.name]


def test_too_few_examples_publish_nothing(
    tmp_path: Path, make_knowledge: Callable[..., KnowledgeBase]
) -> None:
    knowledge = make_knowledge()
    logs = [exchange("a", "Do gift cards expire?", "Gift cards never expire (KB-GFT-01).")]
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", logs)], knowledge)
    report = _train(knowledge)
    assert not report.published and not verifier_folder(knowledge.index_root).exists()
    assert report.line() == "verifier:    not trained: 0 hits to learn from, fewer than 50"


def test_calibration_keeps_the_verifier_where_it_tells_right_from_wrong() -> None:
    # Scores that say nothing (the same for right and wrong answers); the verifier does, and
    # is surer still that the wrong answers are wrong than the off-topic questions.
    cases = []
    for n in range(60):
        right = n % 2 == 0
        verified = 0.9 if right else 0.02
        cases.append(
            CalibrationCase(
                ConfidenceFeatures(0.7 + 0.001 * (n % 5), 0.05, 1, verifier_probability=verified),
                in_scope=True,
                correct=right,
            )
        )
    for n in range(40):
        cases.append(
            CalibrationCase(
                ConfidenceFeatures(0.7 + 0.001 * (n % 5), 0.05, 1, verifier_probability=0.1),
                in_scope=False,
            )
        )
    result = calibrate(cases, 0.9)
    assert result.weights is not None and result.weights.verifier_probability > 0
    assert result.wrong_answer_rate < 0.05
    # Without a verifier the column is all zeros, which is never fitted.
    unverified = [
        replace(c, features=replace(c.features, verifier_probability=None)) for c in cases
    ]
    assert calibrate(unverified, 0.9).weights.verifier_probability == 0.0  # type: ignore[union-attr]


def test_figures_leave_out_a_verifier_that_learnt_their_questions() -> None:
    # `calibrate`'s verifier learnt from every logged turn: its word on them is too sure.
    features = ConfidenceFeatures(0.8, 0.1, 2, verifier_probability=0.97)
    assert _unverified(features) == replace(features, verifier_probability=None)
    assert _unverified(None) is None


def test_no_question_of_a_held_out_conversation_is_asked_in_training(
    trained: tuple[KnowledgeBase, Path],
) -> None:
    knowledge, _ = trained
    # Two of the shipping questions' conversations, and a returns one.
    held_out = HeldOut.of({"c0-0", "c0-1", "c3-2"})
    unseen = {
        "When will my order arrive?",
        "how long does delivery take",
        "what is your returns policy",
    }
    everything, all_pairs = verifier_module.training_pairs(
        knowledge, answers_match, max_questions=50
    )
    asked, pairs = verifier_module.training_pairs(
        knowledge, answers_match, max_questions=50, held_out=held_out
    )
    assert asked == everything - 3 and pairs
    assert not unseen & {question for question, _, _ in pairs}
    # Without held-out conversations they were asked, so the check above can fail.
    assert unseen <= {question for question, _, _ in all_pairs}
    assert HeldOut.of({"c0-1", "c3-2", "c0-0"}).fingerprint() == held_out.fingerprint()
    assert HeldOut.of({"c0-0"}).fingerprint() != held_out.fingerprint()


def test_train_trains_a_verifier_its_own_figures_may_use(
    tmp_path: Path, embedder: Embedder
) -> None:
    home = tmp_path / "home"
    knowledge = KnowledgeBase.open(
        home / "supportbot.db", home / "indexes", RetrievalConfig(), embedder
    )
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", tuning_logs())], knowledge)
    recipe = VerifierRecipe(
        resolve_embedder_location(knowledge.config.embedder),
        answers_match,
        minutes=5.0,
        steps=200,
        min_steps=1,
        max_questions=2000,
    )

    def train() -> RetrievalTrainingReport:
        return train_retrieval(
            knowledge,
            small_config(),
            home=home,
            embedders_root=home / "models" / "embedders",
            budget_s=300,
            tune=False,
            verifier=recipe,
        )

    # A home without a verifier (its own logs, no `calibrate`): train trains one without
    # the validation and held-out topics' conversations, and its figures use it.
    report = train()
    assert report.verifier is not None and report.verifier.published, report.verifier
    assert report.before is not None and report.before.verified is True
    served = knowledge.served_verifier()
    assert served is not None and served.manifest()["held_out"] is not None
    assert "verifier:    trained on" in report.format_table()
    assert "verifier" in report.steps

    # A verifier trained on every logged turn for the index served (`calibrate`'s) is kept,
    # and left out of the figures, which say so.
    assert _train(knowledge, min_pairs=10, again=True).published
    knowledge.follow_verifier()
    report = train()
    assert report.verifier is not None and report.verifier.kept_version is not None
    assert report.before is not None and report.before.verified is False
    assert "left out of these figures" in report.format_table()


def test_a_verifier_short_of_its_floor_of_steps_is_not_published(
    trained: tuple[KnowledgeBase, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A busy machine: each reading of the clock is 20 s later, so that the pace of the
    # first steps shows the floor cannot be reached in the time allowed.
    knowledge, folder = trained
    before = Verifier.published(folder)
    clock = [time.monotonic()]

    def busy() -> float:
        clock[0] += 20.0
        return clock[0]

    monkeypatch.setattr(verifier_module, "time", SimpleNamespace(monotonic=busy, time=time.time))
    monkeypatch.setattr(verifier_module, "_BATCH", 1)  # one step a pair: many steps
    report = train_verifier(
        knowledge,
        folder,
        resolve_embedder_location(knowledge.config.embedder),
        answers_match,
        deadline=busy() + 600.0,
        min_pairs=10,
        min_steps=1000,
        again=True,
    )
    assert not report.published
    # It stopped once the pace was known, not at the deadline.
    assert report.floor == report.planned_steps and 15 <= report.steps < report.floor
    assert "steps it needs do not fit" in report.line()
    after = Verifier.published(folder)
    assert after is not None and before is not None and after.folder == before.folder


def test_a_deadline_too_short_for_the_floor_at_any_pace_is_not_tried(
    trained: tuple[KnowledgeBase, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run`'s 5-minute train gave the verifier one minute for its 120 steps: no
    machine trains that fast, and the minute was spent on a verifier never published."""
    knowledge, folder = trained
    before = Verifier.published(folder)
    monkeypatch.setattr(verifier_module, "_BATCH", 1)  # one step a pair: many steps
    report = train_verifier(
        knowledge,
        folder,
        resolve_embedder_location(knowledge.config.embedder),
        answers_match,
        deadline=time.monotonic() + 10.0,
        min_pairs=10,
        min_steps=1000,
        again=True,
    )
    assert report.pairs >= 40  # a floor of 40 steps or more: 20 s at the least
    assert not report.published and report.steps == 0
    assert "steps it needs take at least" in report.line()
    after = Verifier.published(folder)
    assert after is not None and before is not None and after.folder == before.folder


def test_a_fitted_verifier_weight_applies(tmp_path: Path) -> None:
    weights = ConfidenceWeights(-3.0, 2.0, 1.0, 0.0, verifier_probability=4.5)
    result = CalibrationResult(0.3, 0.9, 0.8, 0.9, 0.05, 10, 5, weights=weights)
    save_calibration(tmp_path, Calibration(result, 1, "emb@128", 0.0), 0.9)
    assert calibration_path(tmp_path).is_file()
    fitted = calibrated_engine_config(EngineConfig(), tmp_path, "emb@128")
    assert fitted.verifier_probability_weight == 4.5
    assert fitted.confidence_weights.verifier_probability == 4.5
    assert "verifier_probability" in FEATURE_NAMES


def test_a_verifier_folder_removed_by_hand_is_no_verifier(
    trained: tuple[KnowledgeBase, Path],
) -> None:
    knowledge, folder = trained
    shutil.rmtree(folder)
    assert Verifier.published(folder) is None
    knowledge.follow_verifier()
    assert (
        knowledge.search_batch([Query("gift card expiry?")], 3)[0][0].verifier_probability is None
    )


def test_an_operator_s_correction_is_no_less_sure_than_its_own_evidence() -> None:
    # The verifier never learnt curated answers: it doubted corrections' paraphrases, and
    # they were handed off. The operator's word is the floor; a logged answer has none.
    def hits(kind: str) -> list[RetrievedExchange]:
        top = RetrievedExchange(0.8, "s1", "where's your app", "Our app: ...", kind, support=2)  # type: ignore[arg-type]
        other = RetrievedExchange(0.6, "s2", "q", "another answer", "log")
        return [replace(top, verifier_probability=0.1), other]

    curated = retrieval_features(hits("curated"))
    logged = retrieval_features(hits("log"))
    assert curated is not None and logged is not None
    assert curated.verifier_probability == curated_evidence(2) == 0.75
    assert logged.verifier_probability == 0.1


def test_training_searches_do_not_ask_the_verifier_they_replace(
    trained: tuple[KnowledgeBase, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    knowledge, _ = trained
    knowledge.follow_verifier()

    def refuse(*args: object) -> list[float]:
        raise AssertionError("the verifier read a training search's hits")

    monkeypatch.setattr(Verifier, "probabilities", refuse)
    questions, pairs = verifier_module.training_pairs(knowledge, answers_match, max_questions=50)
    assert questions == 12 and pairs


def test_search_shows_the_verifier_s_say_on_the_first_hit(
    trained: tuple[KnowledgeBase, Path],
) -> None:
    knowledge, _ = trained
    home = knowledge.index_root.parent
    result = CliRunner().invoke(
        app, ["--home", str(home), "search", "gift card expiry?", "-k", "2"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    said = [line for line in lines if line.strip().startswith("verifier:")]
    assert len(said) == 1 and said[0].endswith("that this reply answers it")
    assert lines.index(said[0]) < next(i for i, line in enumerate(lines) if line.startswith("2."))


def test_a_server_asks_the_verifier_only_while_the_confidence_reads_it(
    trained: tuple[KnowledgeBase, Path],
) -> None:
    knowledge, _ = trained
    knowledge.follow_verifier()
    used = [False]
    executor = ThreadPoolExecutor(max_workers=1)
    retriever = KnowledgeRetriever(knowledge, executor, verify=lambda: used[0])

    async def first_hit() -> float | None:
        return (await retriever.retrieve([], "gift card expiry?", 3))[0].verifier_probability

    try:
        # Calibration left it out (weight 0): no model call for a say nobody reads.
        assert asyncio.run(first_hit()) is None
        used[0] = True
        verified = asyncio.run(first_hit())
        assert verified is not None and 0.0 < verified < 1.0
    finally:
        executor.shutdown()


def test_a_server_s_poll_follows_a_verifier_trained_meanwhile(
    trained: tuple[KnowledgeBase, Path],
) -> None:
    knowledge, folder = trained
    knowledge.follow_verifier()
    before = Verifier.published(folder)
    assert before is not None
    assert _train(knowledge, min_pairs=10, again=True).published  # on other logs, say
    after = Verifier.published(folder)
    assert after is not None and after.folder != before.folder
    assert not knowledge.refresh_if_stale()  # no new index version: the same index serves
    served = knowledge._live.current
    assert served is not None and served.verifier is not None
    assert served.verifier.folder == after.folder
    # A third training keeps the newest two versions: the served one and the one before.
    assert _train(knowledge, min_pairs=10, again=True).published
    assert [v.name for v in list_versions(folder)] == ["v0002", "v0003"]


def test_the_same_logs_keep_the_verifier_trained_on_them(
    trained: tuple[KnowledgeBase, Path], tmp_path: Path
) -> None:
    # `calibrate --target-recall R` to move the trade-off retrained it for 3 minutes on
    # the same logs; it now keeps the one trained on the index version served.
    knowledge, folder = trained
    before = Verifier.published(folder)
    assert before is not None and knowledge.version is not None
    report = _train(knowledge, min_pairs=10)
    assert not report.published and report.kept_version == knowledge.version.id
    assert report.line().startswith(
        f"verifier:    kept the one trained on index version {knowledge.version.id}"
    )
    after = Verifier.published(folder)
    assert after is not None and after.folder == before.folder
    # New logs publish a new index version, and the verifier is trained on them.
    logs = [
        exchange("new-1", "Do you sell gift wrap?", "Gift wrap is 3 EUR at checkout (KB-GFT-02).")
    ]
    ingest_paths([write_jsonl(tmp_path / "more.jsonl", logs)], knowledge)
    assert _train(knowledge, min_pairs=10).published
