"""The answer classifier: fitting, saving with an index version, serving, calibration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.components import calibrated_engine_config
from bot.core.config import EngineConfig
from retrieval.answer_classifier import (
    CLASSIFIER_FILE,
    AnswerClassifier,
    QuestionGaussians,
    answer_classes,
    fit_answer_classifier,
)
from retrieval.calibration import Calibration, save_calibration
from retrieval.confidence import (
    CalibrationCase,
    CalibrationResult,
    ConfidenceFeatures,
    ConfidenceWeights,
    confidence_of,
    fit_weights,
)
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from tests.support.corpus import exchange, write_jsonl

MakeKB = Callable[..., KnowledgeBase]


def _clustered(answers: int, per_answer: int, dimension: int = 16, seed: int = 0) -> np.ndarray:
    """Unit vectors in ``answers`` tight groups around random directions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(answers, dimension))
    points = np.repeat(centres, per_answer, axis=0) + 0.3 * rng.normal(
        size=(answers * per_answer, dimension)
    )
    unit: np.ndarray = points / np.linalg.norm(points, axis=1, keepdims=True)
    return unit.astype(np.float32)


def _unit(vector: np.ndarray) -> np.ndarray:
    result: np.ndarray = (vector / np.linalg.norm(vector)).astype(np.float32)
    return result


def test_rare_answers_share_a_class_the_map_does_not_name() -> None:
    replies = ["a", "a", "a", "b", "b", "b", "c"]
    hashes = ["ha", "ha2", "ha", "hb", "hb", "hb", "hc"]  # two wordings of answer "a"
    labels, class_of = answer_classes(hashes, replies, min_members=3, max_answers=10)
    assert class_of == {"ha": 0, "ha2": 0, "hb": 1}
    assert labels == [0, 0, 0, 1, 1, 1, 2]
    # Only the most frequent answers get a class of their own.
    labels, class_of = answer_classes(hashes, replies, min_members=1, max_answers=2)
    assert set(class_of) == {"ha", "ha2", "hb"} and labels[-1] == 2


def test_the_classifier_prefers_the_answer_whose_questions_are_near() -> None:
    vectors = _clustered(3, 20)
    replies = [r for r in ("refund", "shipping", "password") for _ in range(20)]
    hashes = [f"h-{r}" for r in replies]
    classifier = fit_answer_classifier(vectors, hashes, replies, embedder_id="e", min_members=3)
    assert classifier is not None and classifier.classes == 3
    centre = _unit(vectors[20:40].mean(axis=0))  # the "shipping" questions' middle
    probabilities = classifier.probabilities(centre[None, :])[0]
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    shipping = classifier.probability_of(probabilities, "h-shipping")
    refund = classifier.probability_of(probabilities, "h-refund")
    assert shipping is not None and refund is not None
    assert shipping > 0.8 > refund
    assert classifier.probability_of(probabilities, "h-never-indexed") is None


def test_the_fit_runs_its_blas_on_one_thread_and_gives_the_same_classifier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On two busy cores OpenBLAS's threads made the fit 4-30x slower (a server beside a
    # training job); one thread changes nothing but the order of sums.
    from threadpoolctl import threadpool_info, threadpool_limits

    from retrieval import answer_classifier

    vectors = _clustered(3, 20)
    replies = [r for r in ("refund", "shipping", "password") for _ in range(20)]
    hashes = [f"h-{r}" for r in replies]
    threads_seen: list[int] = []
    fit_gaussians = QuestionGaussians.fit

    def watched(fitted_vectors: np.ndarray, labels: np.ndarray) -> QuestionGaussians:
        threads_seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return fit_gaussians(fitted_vectors, labels)

    with threadpool_limits(2, user_api="blas"):
        with monkeypatch.context() as patch:
            patch.setattr(QuestionGaussians, "fit", watched)
            limited = fit_answer_classifier(vectors, hashes, replies, embedder_id="e")
        as_they_were = answer_classifier._fit(
            vectors,
            hashes,
            replies,
            embedder_id="e",
            min_members=3,
            max_answers=500,
            max_questions=20_000,
            seed=0,
        )
    assert threads_seen and set(threads_seen) == {1}
    assert limited is not None and as_they_were is not None
    assert limited.class_of == as_they_were.class_of
    np.testing.assert_allclose(limited.weights, as_they_were.weights, atol=1e-4)
    centre = _unit(vectors[20:40].mean(axis=0))[None, :]
    np.testing.assert_allclose(
        limited.probabilities(centre), as_they_were.probabilities(centre), atol=1e-4
    )


def test_two_answers_give_a_proper_softmax() -> None:
    vectors = _clustered(2, 15, seed=3)
    replies = [r for r in ("yes", "no") for _ in range(15)]
    classifier = fit_answer_classifier(vectors, replies, replies, embedder_id="e", min_members=3)
    assert classifier is not None and classifier.classes == 2
    probabilities = classifier.probabilities(vectors)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    yes, no = classifier.class_of["yes"], classifier.class_of["no"]
    assert (probabilities[:15, yes] > 0.5).all() and (probabilities[15:, no] > 0.5).all()


def test_nothing_to_tell_apart_gives_no_classifier() -> None:
    vectors = _clustered(3, 2)
    replies = ["a", "a", "b", "b", "c", "c"]
    assert fit_answer_classifier(vectors, replies, replies, embedder_id="e", min_members=3) is None


def test_saved_and_loaded_it_answers_the_same(tmp_path: Path) -> None:
    vectors = _clustered(4, 10)
    replies = [r for r in "abcd" for _ in range(10)]
    classifier = fit_answer_classifier(vectors, replies, replies, embedder_id="e1", min_members=3)
    assert classifier is not None
    classifier.save(tmp_path)
    loaded = AnswerClassifier.load(tmp_path)
    assert loaded is not None and loaded.embedder_id == "e1"
    assert dict(loaded.class_of) == dict(classifier.class_of)
    assert np.allclose(loaded.probabilities(vectors), classifier.probabilities(vectors))
    typicality, reloaded = classifier.typicality(vectors), loaded.typicality(vectors)
    assert typicality is not None and reloaded is not None
    assert np.allclose(reloaded, typicality)
    # A classifier saved before typicality existed loads without it.
    replace(classifier, gaussians=None).save(tmp_path)
    older = AnswerClassifier.load(tmp_path)
    assert older is not None and older.typicality(vectors) is None
    assert np.allclose(older.probabilities(vectors), classifier.probabilities(vectors))
    (tmp_path / CLASSIFIER_FILE).write_bytes(b"not a numpy archive")
    assert AnswerClassifier.load(tmp_path) is None  # unreadable: ignored, not a crash


def test_a_question_amid_an_answers_questions_is_more_typical_than_one_off_topic() -> None:
    everything = _clustered(5, 36, seed=4)
    asked = np.zeros(len(everything), dtype=bool)
    asked[np.arange(len(everything)) % 36 >= 30] = True  # 6 new questions per answer
    replies = [r for r in "abcde" for _ in range(30)]
    classifier = fit_answer_classifier(
        everything[~asked], replies, replies, embedder_id="e", min_members=3
    )
    assert classifier is not None
    typical = classifier.typicality(everything[asked])
    # Questions about topics no answer covers: groups around other directions.
    atypical = classifier.typicality(_clustered(5, 6, seed=77))
    assert typical is not None and atypical is not None
    # The known topics' questions sit near 0 (as near an answer as to questions at large);
    # the others far below.
    assert typical.min() > atypical.max()
    assert np.median(typical) - np.median(atypical) > 2.0


def test_typicality_is_the_relative_mahalanobis_distance() -> None:
    from scipy.spatial.distance import mahalanobis
    from sklearn.covariance import LedoitWolf

    vectors = _clustered(3, 25, dimension=8, seed=5).astype(np.float64)
    labels = np.repeat(np.arange(3), 25)
    gaussians = QuestionGaussians.fit(vectors, labels)
    means = np.stack([vectors[labels == a].mean(axis=0) for a in range(3)])
    within = vectors - means[labels]
    precision = np.linalg.inv(LedoitWolf(assume_centered=True).fit(within).covariance_)
    centre = vectors.mean(axis=0)
    background = np.linalg.inv(LedoitWolf(assume_centered=True).fit(vectors - centre).covariance_)
    queries = _clustered(4, 2, dimension=8, seed=6).astype(np.float64)
    expected = [
        (
            mahalanobis(q, centre, background) ** 2
            - min(mahalanobis(q, m, precision) ** 2 for m in means)
        )
        / 8
        for q in queries
    ]
    assert np.allclose(gaussians.typicality(queries), expected, rtol=1e-6, atol=1e-8)


REFUND = "Refunds reach your card within 5 business days of the return arriving (KB-7)."
SHIPPING = "Standard shipping takes 3-5 business days; track it at /orders (KB-3)."
ONE_OFF = "We have passed your feedback about the store music to the manager."


def _logs(tmp_path: Path) -> Path:
    refund_questions = [
        "when will I get my refund",
        "how long does a refund take",
        "my refund has not arrived yet",
        "refund still missing after return",
    ]
    shipping_questions = [
        "how long does shipping take",
        "when will my order arrive",
        "delivery time for standard shipping",
        "my parcel is slow, how many days",
    ]
    conversations = [
        exchange(f"r{n}", question, REFUND) for n, question in enumerate(refund_questions)
    ]
    conversations += [
        exchange(f"s{n}", question, SHIPPING) for n, question in enumerate(shipping_questions)
    ]
    conversations.append(exchange("o1", "the music in your store is too loud", ONE_OFF))
    return write_jsonl(tmp_path / "logs.jsonl", conversations)


def test_each_index_version_carries_its_classifier_and_search_uses_it(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    kb = make_knowledge()
    report = ingest_paths([_logs(tmp_path)], kb)
    assert report.sync is not None and report.sync.version is not None
    assert (report.sync.version.folder / CLASSIFIER_FILE).is_file()

    top = kb.search((), "how many days until my refund shows up?", 3)[0]
    assert top.agent_reply == REFUND
    assert top.answer_probability is not None and top.answer_probability > 0.5
    # Every hit carries how typical the question is of the answered ones.
    hits = kb.search((), "how many days until my refund shows up?", 3)
    assert len({h.question_typicality for h in hits}) == 1
    off_topic = kb.search((), "which football team won the league in 1998?", 1)[0]
    assert top.question_typicality is not None and off_topic.question_typicality is not None
    assert top.question_typicality > off_topic.question_typicality
    # An answer with fewer than three questions has no class of its own.
    rare = kb.search((), "your shop plays music way too loud", 3)[0]
    assert rare.agent_reply == ONE_OFF and rare.answer_probability is None

    # A curated answer added while serving is unknown to the version's classifier.
    kb.add_curated("corr-1", "can I pay with gift cards", "Yes, at checkout (KB-9).")
    curated = kb.search((), "can I pay with a gift card?", 1)[0]
    assert curated.kind == "curated" and curated.answer_probability is None

    # A server loading that version from disk gets the same classifier.
    again = make_knowledge()
    again.load()
    reloaded = again.search((), "how many days until my refund shows up?", 3)[0]
    assert reloaded.answer_probability == pytest.approx(top.answer_probability, abs=1e-5)


def test_switched_off_no_classifier_is_fitted(tmp_path: Path, make_knowledge: MakeKB) -> None:
    kb = make_knowledge(answer_classifier=False)
    report = ingest_paths([_logs(tmp_path)], kb)
    assert report.sync is not None and report.sync.version is not None
    assert not (report.sync.version.folder / CLASSIFIER_FILE).exists()
    hit = kb.search((), "how long does a refund take", 1)[0]
    assert hit.answer_probability is None and hit.question_typicality is None


def test_a_classifier_fitted_without_a_question_is_less_sure_of_it(
    tmp_path: Path, make_knowledge: MakeKB
) -> None:
    kb = make_knowledge()
    ingest_paths([_logs(tmp_path)], kb)
    question = "refund still missing after return"
    entry_id = next(
        i
        for i, e in kb.store.entries_by_id(kb.store.live_entry_ids()).items()
        if e.entry.customer_text == question
    )
    seen = kb.search((), question, 1)[0]
    unseen = kb.classifier_excluding([entry_id]).search((), question, 1)[0]
    assert seen.agent_reply == unseen.agent_reply == REFUND
    assert seen.answer_probability is not None and unseen.answer_probability is not None
    assert unseen.answer_probability < seen.answer_probability


def _cases(with_probability: bool) -> list[CalibrationCase]:
    """Scores that cannot tell right from wrong; the classifier's probability can."""
    rng = np.random.default_rng(7)
    cases = []
    for n in range(200):
        answerable = n % 2 == 0
        probability = float(rng.uniform(0.6, 1.0) if answerable else rng.uniform(0.0, 0.4))
        features = ConfidenceFeatures(
            top_score=float(rng.uniform(0.5, 0.7)),
            margin=float(rng.uniform(0.0, 0.1)),
            support=1,
            vote_share=float(rng.uniform(0.3, 0.6)),
            answer_probability=probability if with_probability else None,
        )
        # Of the others, half are in scope with a wrong top answer, half out of scope.
        in_scope = answerable or n % 4 == 1
        cases.append(CalibrationCase(features, in_scope=in_scope, correct=answerable))
    return cases


def test_calibration_weighs_an_informative_answer_probability() -> None:
    cases = _cases(with_probability=True)
    weights = fit_weights(cases)
    # On each feature's own scale (weight x spread) the probability weighs most.
    spread = np.array([c.features.vector() for c in cases]).std(axis=0)
    scaled = np.array(weights.vector()) * spread
    assert scaled[5] > 2 * max(scaled[1:5])
    # And the confidence ranks answerable questions above the others far more often than
    # the same fit without the probability (whose other features are noise here).
    assert _ranked_right(cases, weights) > 0.95
    without = _cases(with_probability=False)
    assert _ranked_right(without, fit_weights(without)) < 0.7


def _ranked_right(cases: list[CalibrationCase], weights: ConfidenceWeights) -> float:
    """Share of (answerable, other) pairs the confidence orders right (the ROC AUC)."""
    good = [confidence_of(c.features, weights) for c in cases if c.answerable]
    bad = [confidence_of(c.features, weights) for c in cases if not c.answerable]
    return sum(g > b for g in good for b in bad) / (len(good) * len(bad))


def test_without_any_classifier_the_feature_stays_out_of_the_fit() -> None:
    # The column would be the vote share again: a copy that must not split its weight.
    weights = fit_weights(_cases(with_probability=False))
    assert weights.answer_probability == 0.0


def test_the_server_applies_the_fitted_answer_probability_weight(tmp_path: Path) -> None:
    weights = fit_weights(_cases(with_probability=True))
    result = CalibrationResult(0.4, 0.9, 0.8, 0.95, 0.05, 100, 100, weights)
    save_calibration(tmp_path, Calibration(result, 1, "emb", 0.0), 0.9)
    config = calibrated_engine_config(EngineConfig(), tmp_path, "emb")
    assert config.answer_probability_weight == pytest.approx(weights.answer_probability)
    assert config.confidence_weights.answer_probability == pytest.approx(weights.answer_probability)
