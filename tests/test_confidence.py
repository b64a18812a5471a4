"""Confidence from retrieval scores, and calibration of the weights and the threshold."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from bot.core.config import EngineConfig
from bot.core.types import Source
from retrieval.calibration import generic_off_topic_questions
from retrieval.confidence import (
    CalibrationCase,
    ConfidenceFeatures,
    ConfidenceWeights,
    calibrate,
    confidence_of,
    fit_threshold,
    retrieval_confidence,
    retrieval_features,
    select_features,
    trade_offs,
)
from tests.support.fakes import source

WEIGHTS = EngineConfig().confidence_weights


def test_margin_is_measured_to_the_next_different_answer() -> None:
    sources = [
        source("a", "q1", "Refunds take 5-7 business days.", 0.82, support=3),
        source("b", "q2", "refunds take 5-7   business days.", 0.80),  # same answer again
        source("c", "q3", "Gift cards never expire.", 0.50),
    ]
    features = retrieval_features(sources)
    assert features is not None
    assert (features.top_score, features.support) == (0.82, 3)
    assert features.margin == pytest.approx(0.82 - 0.50)


def test_the_vote_share_of_the_top_answer_is_a_feature() -> None:
    sources = [
        Source("a", 0.8, "log", "q1", "Refunds take 5-7 days.", support=2, vote_share=0.3),
        Source("b", 0.7, "log", "q2", "Gift cards never expire.", vote_share=0.7),
    ]
    features = retrieval_features(sources)
    assert features is not None and features.vote_share == 0.3
    with_votes = ConfidenceWeights(bias=-5.0, score=6.0, margin=4.0, support=0.2, vote_share=3.0)
    crowded = ConfidenceFeatures(0.8, 0.1, 2, vote_share=0.3)
    agreed = ConfidenceFeatures(0.8, 0.1, 2, vote_share=0.9)
    assert confidence_of(crowded, with_votes) < confidence_of(agreed, with_votes)
    # Weights fitted before the vote share existed ignore it.
    assert confidence_of(crowded, WEIGHTS) == confidence_of(agreed, WEIGHTS)


def test_a_curated_answer_is_as_sure_as_the_questions_the_operator_attached() -> None:
    with_probability = ConfidenceWeights(
        bias=-5.0, score=6.0, margin=4.0, support=0.0, answer_probability=3.0
    )

    def confidence(questions: int, vote_share: float, logged_score: float = 0.6) -> float:
        sources = [
            Source("correction:1", 0.8, "curated", "q", "Cards expire.", questions, vote_share),
            Source("log-1", logged_score, "log", "q2", "Cards never expire.", 9, 0.8),
        ]
        return retrieval_confidence(sources, with_probability)

    # Amid a crowd of logs of the old answer, the correction is not doubted for the crowd:
    # its vote share no longer stands in for the classifier that never saw it.
    assert confidence(1, vote_share=0.1) == confidence(1, vote_share=0.9)
    # Each question the operator attached that lies near makes it surer.
    assert confidence(1, 0.2) < confidence(3, 0.2) < confidence(6, 0.2)
    # Without a lead over the logged answer it replaced, it is no surer than one question.
    assert confidence(6, 0.2, logged_score=0.8) == pytest.approx(
        confidence(1, 0.2, logged_score=0.8)
    )

    # What the search says of its questions decides: those nearer the message than any
    # other answer's, by similarity alone. None of them: it won by the operator's bonus,
    # and is no surer than one question.
    def evidence(nearer: int | None) -> float | None:
        top = Source("correction:1", 0.8, "curated", "q", "Cards expire.", 6, 0.2, None, None)
        logged = Source("log-1", 0.6, "log", "q2", "Cards never expire.", 9, 0.8)
        features = retrieval_features([replace(top, nearer_questions=nearer), logged])
        assert features is not None
        return features.answer_probability

    assert evidence(None) == 1.0 - 0.5**6  # not known: its questions among the hits
    assert (evidence(0), evidence(1), evidence(3)) == (0.5, 0.5, 0.875)
    # A logged answer the classifier does not know still uses its vote share.
    log = [Source("log-1", 0.8, "log", "q", "x", 1, 0.2), Source("log-2", 0.6, "log", "q", "y")]
    features = retrieval_features(log)
    assert features is not None
    assert (features.answer_probability, features.vector()[5]) == (None, 0.2)


def test_without_a_different_runner_up_the_score_alone_decides() -> None:
    assert retrieval_features([source("a", "q", "x", 0.7)]) == ConfidenceFeatures(0.7, 0.0, 1)
    assert retrieval_features([]) is None
    assert retrieval_confidence([], WEIGHTS) == 0.0


@pytest.mark.parametrize(
    ("weaker", "stronger"),
    [
        (ConfidenceFeatures(0.5, 0.1, 1), ConfidenceFeatures(0.8, 0.1, 1)),  # better match
        (ConfidenceFeatures(0.8, 0.01, 1), ConfidenceFeatures(0.8, 0.2, 1)),  # less ambiguous
        (ConfidenceFeatures(0.8, 0.1, 1), ConfidenceFeatures(0.8, 0.1, 6)),  # more support
    ],
)
def test_confidence_grows_with_score_margin_and_support(
    weaker: ConfidenceFeatures, stronger: ConfidenceFeatures
) -> None:
    assert 0.0 < confidence_of(weaker, WEIGHTS) < confidence_of(stronger, WEIGHTS) < 1.0


def test_default_weights_answer_a_clear_match_and_not_an_unrelated_question() -> None:
    threshold = EngineConfig().confidence_threshold
    clear = [source("a", "q", "A", 0.85), source("b", "q", "B", 0.55)]
    unrelated = [source("a", "q", "A", 0.35), source("b", "q", "B", 0.31)]
    assert retrieval_confidence(clear, WEIGHTS) >= threshold
    assert retrieval_confidence(unrelated, WEIGHTS) < threshold


def test_extreme_scores_do_not_overflow() -> None:
    weights = ConfidenceWeights(bias=0.0, score=1e4, margin=0.0, support=0.0)
    assert confidence_of(ConfidenceFeatures(-1.0, 0.0, 1), weights) == 0.0
    assert confidence_of(ConfidenceFeatures(1.0, 0.0, 1), weights) == 1.0


def _overlapping_scores(seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    in_scope = [rng.uniform(0.4, 1.0) for _ in range(200)]
    out_of_scope = [rng.uniform(0.0, 0.6) for _ in range(150)]
    return in_scope, out_of_scope


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 0.95, 0.99, 1.0])
def test_fitted_threshold_hits_the_requested_handoff_recall(target: float) -> None:
    in_scope, out_of_scope = _overlapping_scores(seed=7)
    result = fit_threshold(in_scope, out_of_scope, target)
    handed_off = sum(s < result.threshold for s in out_of_scope)
    assert handed_off == math.ceil(target * len(out_of_scope))  # enough, and no more
    assert result.handoff_recall == pytest.approx(handed_off / len(out_of_scope))
    assert result.handoff_recall >= target
    answered = sum(s >= result.threshold for s in in_scope)
    assert result.answered_rate == pytest.approx(answered / len(in_scope))


def test_a_higher_recall_target_answers_fewer_in_scope_questions() -> None:
    in_scope, out_of_scope = _overlapping_scores(seed=3)
    loose = fit_threshold(in_scope, out_of_scope, 0.8)
    strict = fit_threshold(in_scope, out_of_scope, 0.99)
    assert strict.threshold > loose.threshold
    assert strict.answered_rate < loose.answered_rate
    assert strict.wrong_answer_rate < loose.wrong_answer_rate


def test_calibration_metrics_on_a_worked_example() -> None:
    result = fit_threshold(
        [0.9, 0.8, 0.7, 0.3],
        [0.1, 0.2, 0.6, 0.35],
        0.75,
        in_scope_correct=[True, False, True, True],
    )
    assert result.threshold == pytest.approx((0.35 + 0.6) / 2)  # half-way to the next score
    assert result.handoff_recall == 0.75
    assert result.answered_rate == 0.75  # 0.9, 0.8, 0.7
    assert result.answered_accuracy == pytest.approx(2 / 3)  # 0.8 had the wrong answer
    assert result.wrong_answer_rate == pytest.approx(2 / 8)  # that one and oos 0.6
    assert (result.in_scope, result.out_of_scope) == (4, 4)


def test_questions_whose_answer_is_withheld_count_as_handed_off() -> None:
    # The worked example above, with the engine withholding the wrongly answered 0.8's
    # reply and the out-of-scope 0.6's (each claims an action: retrieval.claims).
    result = fit_threshold(
        [0.9, 0.8, 0.7, 0.3],
        [0.1, 0.2, 0.6, 0.35],
        0.75,
        in_scope_correct=[True, False, True, True],
        in_scope_withheld=[False, True, False, False],
        out_of_scope_withheld=[False, False, True, False],
    )
    # Fitted as if every answer could be sent: the same threshold.
    assert result.threshold == pytest.approx((0.35 + 0.6) / 2)
    assert result.handoff_recall == 1.0  # the 0.6 goes to a person whatever its confidence
    assert result.answered_rate == 0.5  # 0.9 and 0.7
    assert result.answered_accuracy == 1.0
    assert result.wrong_answer_rate == 0.0


def test_generic_off_topic_questions_must_meet_the_target_too() -> None:
    in_scope, held_out_topics = [0.9, 0.8, 0.7, 0.3], [0.1, 0.2, 0.6, 0.35]
    alone = fit_threshold(in_scope, held_out_topics, 0.75)
    assert alone.generic_handoff_recall is None and alone.generic_off_topic == 0

    # Generic questions already under the threshold leave it where the topics put it.
    easy = fit_threshold(in_scope, held_out_topics, 0.75, generic_scores=[0.05, 0.1, 0.2, 0.3])
    assert easy.threshold == alone.threshold
    assert (easy.generic_handoff_recall, easy.generic_off_topic) == (1.0, 4)
    assert easy.handoff_recall == alone.handoff_recall  # the topics' figure, unpooled

    # Two of four above it: the threshold rises until three of four are handed off, and
    # the topics' and in-scope figures are those of the raised threshold.
    hard = fit_threshold(in_scope, held_out_topics, 0.75, generic_scores=[0.1, 0.65, 0.75, 0.2])
    assert hard.threshold == pytest.approx((0.65 + 0.7) / 2)
    assert hard.generic_handoff_recall == 0.75
    assert hard.handoff_recall == 1.0
    assert hard.answered_rate == 0.75  # 0.9, 0.8 and 0.7


def test_the_generic_questions_shipped_are_read_without_comments_or_repeats() -> None:
    questions = generic_off_topic_questions()
    assert len(questions) >= 100
    assert not any(q.startswith("#") or not q.strip() for q in questions)
    assert len({q.casefold() for q in questions}) == len(questions)


def test_a_zero_target_never_hands_off() -> None:
    result = fit_threshold([0.9], [0.1, 0.2], 0.0)
    assert result.threshold == 0.0
    assert result.handoff_recall == 0.0
    assert result.answered_rate == 1.0


@pytest.mark.parametrize(
    ("in_scope", "out_of_scope", "target", "correct"),
    [
        ([0.9], [], 0.9, None),
        ([0.9], [0.1], 1.5, None),
        ([0.9, 0.8], [0.1], 0.9, [True]),
    ],
)
def test_fit_threshold_rejects_unusable_input(
    in_scope: list[float], out_of_scope: list[float], target: float, correct: list[bool] | None
) -> None:
    with pytest.raises(ValueError):
        fit_threshold(in_scope, out_of_scope, target, in_scope_correct=correct)


def _ambiguity_cases(seed: int) -> list[CalibrationCase]:
    """Top scores overlap completely; only the margin tells answerable questions apart."""
    rng = random.Random(seed)
    cases = []
    for _ in range(150):
        top = rng.uniform(0.5, 0.9)
        cases.append(CalibrationCase(ConfidenceFeatures(top, rng.uniform(0.1, 0.3), 1), True))
    for _ in range(30):  # in scope, but a near-tie between answers: often the wrong one
        top = rng.uniform(0.5, 0.9)
        features = ConfidenceFeatures(top, rng.uniform(0.0, 0.05), 1)
        cases.append(CalibrationCase(features, True, correct=False))
    for _ in range(100):
        top = rng.uniform(0.5, 0.9)
        cases.append(CalibrationCase(ConfidenceFeatures(top, rng.uniform(0.0, 0.08), 1), False))
    return cases


def test_calibration_learns_to_rely_on_the_margin() -> None:
    cases = _ambiguity_cases(seed=11)
    result = calibrate(cases, target_handoff_recall=0.9)
    assert result.weights is not None
    assert result.weights.margin > 10 * abs(result.weights.score)
    assert result.handoff_recall >= 0.9
    # Nearly all 150 clear questions answered; the 30 near-ties mostly handed off.
    assert result.answered_rate > 0.8
    assert result.answered_accuracy > 0.95
    assert result.wrong_answer_rate < 0.1


def test_the_trade_off_curve_hands_off_more_and_answers_less_as_its_target_rises() -> None:
    cases = _ambiguity_cases(seed=11)
    chosen = calibrate(cases, target_handoff_recall=0.9)
    assert chosen.weights is not None
    curve = trade_offs(cases, chosen.weights, targets=(0.5, 0.9, 0.99))

    # The chosen target's row is the fitted result itself.
    assert replace(curve[1], weights=chosen.weights) == chosen
    for target, row in zip((0.5, 0.9, 0.99), curve, strict=True):
        assert row.handoff_recall >= target
    thresholds = [row.threshold for row in curve]
    assert thresholds == sorted(thresholds) and thresholds[0] < thresholds[-1]
    answered = [row.answered_rate for row in curve]
    assert answered == sorted(answered, reverse=True) and answered[0] > answered[-1]


def test_calibrated_weights_generalise_to_a_fresh_split() -> None:
    fitted = calibrate(_ambiguity_cases(seed=1), target_handoff_recall=0.95)
    assert fitted.weights is not None
    held_out = _ambiguity_cases(seed=2)
    oos = [confidence_of(c.features, fitted.weights) for c in held_out if not c.in_scope]
    recall = sum(s < fitted.threshold for s in oos) / len(oos)
    assert recall >= 0.85


def _crowded_neighbourhood_cases(seed: int) -> list[CalibrationCase]:
    """Scores, margins and support overlap; only the vote share of the nearest hits tells
    a right top answer (its paraphrases crowd the neighbourhood) from a lucky match."""
    rng = random.Random(seed)

    def features(share: tuple[float, float]) -> ConfidenceFeatures:
        return ConfidenceFeatures(
            rng.uniform(0.5, 0.9), rng.uniform(0.0, 0.2), rng.randint(1, 6), rng.uniform(*share)
        )

    cases = [CalibrationCase(features((0.5, 1.0)), True) for _ in range(150)]
    cases += [CalibrationCase(features((0.1, 0.45)), True, correct=False) for _ in range(40)]
    cases += [CalibrationCase(features((0.1, 0.45)), False) for _ in range(100)]
    return cases


def test_calibration_learns_to_rely_on_the_vote_share() -> None:
    result = calibrate(_crowded_neighbourhood_cases(seed=5), target_handoff_recall=0.9)
    assert result.weights is not None
    assert result.weights.vote_share > 5 * abs(result.weights.score)
    assert result.answered_accuracy > 0.97  # the 40 lucky matches are handed off too
    assert result.answered_rate > 0.75  # nearly all 150 clear ones of the 190 in scope
    held_out = _crowded_neighbourhood_cases(seed=6)
    answered = [
        c for c in held_out if confidence_of(c.features, result.weights) >= result.threshold
    ]
    assert sum(not c.answerable for c in answered) <= 0.05 * len(held_out)


def test_a_feature_that_never_varies_gets_no_weight() -> None:
    # Cases fitted without vote shares (all 1.0): its weight must stay 0, not take half of
    # the bias, so that clipping negative weights cannot move the threshold's meaning.
    cases = _ambiguity_cases(seed=11)
    assert {c.features.vote_share for c in cases} == {1.0}
    result = calibrate(cases, target_handoff_recall=0.9)
    assert result.weights is not None and result.weights.vote_share == 0.0
    assert result.weights.support == 0.0  # every support is 1 as well


def test_a_feature_that_counts_against_the_answer_is_dropped_not_clipped() -> None:
    # Support is higher on the wrong answers here: a free fit gives it a negative weight,
    # which the server would clip to 0 and so answer more than the threshold was fitted for.
    rng = random.Random(4)
    cases = []
    for in_scope, correct, support in ((True, True, (1, 3)), (True, False, (4, 9))) * 60:
        features = ConfidenceFeatures(
            rng.uniform(0.5, 0.9), rng.uniform(0.0, 0.2), rng.randint(*support)
        )
        cases.append(CalibrationCase(features, in_scope, correct))
    for _ in range(80):
        features = ConfidenceFeatures(
            rng.uniform(0.3, 0.7), rng.uniform(0.0, 0.1), rng.randint(1, 9)
        )
        cases.append(CalibrationCase(features, False))
    result = calibrate(cases, target_handoff_recall=0.9)
    assert result.weights is not None
    assert result.weights.support == 0.0
    assert min(result.weights.score, result.weights.margin, result.weights.vote_share) >= 0.0
    oos = [confidence_of(c.features, result.weights) for c in cases if not c.in_scope]
    assert sum(s < result.threshold for s in oos) / len(oos) >= 0.9  # as the server sees it


def test_calibration_needs_both_kinds_of_case() -> None:
    only_in_scope = [CalibrationCase(ConfidenceFeatures(0.9, 0.2, 1), True)]
    with pytest.raises(ValueError, match="out-of-scope"):
        calibrate(only_in_scope)


def _trade_off_cases(seed: int) -> list[CalibrationCase]:
    """The nearest neighbours (score) look sure of 100 right answers and 30 wrong ones that
    the classifier (answer probability) doubts; the classifier is sure of 200 others."""
    rng = random.Random(seed)

    def case(score: tuple[float, float], probability: tuple[float, float], **kind: bool):
        features = ConfidenceFeatures(
            rng.uniform(*score), 0.1, 1, answer_probability=rng.uniform(*probability)
        )
        return CalibrationCase(features, **kind)

    cases = [case((0.7, 0.9), (0.6, 1.0), in_scope=True) for _ in range(200)]
    cases += [case((0.7, 0.9), (0.0, 0.5), in_scope=True) for _ in range(100)]
    cases += [case((0.7, 0.9), (0.0, 0.5), in_scope=True, correct=False) for _ in range(30)]
    cases += [case((0.2, 0.6), (0.0, 0.5), in_scope=False) for _ in range(200)]
    return cases


def test_the_price_of_a_wrong_answer_decides_which_signals_calibration_keeps() -> None:
    cases = _trade_off_cases(seed=3)
    # Cheap wrong answers: the score earns its place with the 100 extra right answers.
    cheap = select_features(cases, 0.9, wrong_answer_cost=1.0)
    assert "score" in cheap
    # Dear ones: the 30 wrong answers the score lets through cost more than it brings.
    dear = select_features(cases, 0.9, wrong_answer_cost=20.0)
    assert "score" not in dear and "answer_probability" in dear

    many = calibrate(cases, 0.9, wrong_answer_cost=1.0)
    careful = calibrate(cases, 0.9, wrong_answer_cost=20.0)
    assert many.handoff_recall >= 0.9 and careful.handoff_recall >= 0.9
    assert many.answered_rate > 0.85 and many.answered_accuracy < 0.93
    assert careful.answered_accuracy > 0.97 and careful.wrong_answer_rate < 0.05
    # Without selection every informative signal is fitted, as before selection existed.
    every = calibrate(cases, 0.9, select=False)
    assert every.weights is not None
    assert every.weights.score > 0.0 and every.weights.answer_probability > 0.0


def test_a_signal_that_is_noise_is_left_out() -> None:
    rng = random.Random(8)
    cases = [
        CalibrationCase(replace(c.features, vote_share=rng.random()), c.in_scope, c.correct)
        for c in _ambiguity_cases(seed=11)
    ]
    chosen = select_features(cases, 0.9)
    assert "margin" in chosen and "vote_share" not in chosen
    result = calibrate(cases, 0.9)
    assert result.weights is not None and result.weights.vote_share == 0.0
    assert result.weights.margin > 0.0


def test_too_few_cases_to_cross_validate_keep_every_signal() -> None:
    cases = [c for c in _trade_off_cases(seed=3) if c.in_scope][:30]
    cases += [c for c in _trade_off_cases(seed=3) if not c.in_scope][:10]
    assert select_features(cases, 0.9, wrong_answer_cost=20.0) == ("score", "answer_probability")
