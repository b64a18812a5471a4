"""How sure the bot is that its best retrieved answer is the right one, and calibration.

Confidence is a logistic combination of six retrieval signals:

* the top score (how close the best past question is to this one),
* the margin to the next *different* answer (a close runner-up means the question is
  ambiguous between answers, even when both score well),
* the support of the top answer (how many past exchanges gave that same answer),
* the vote share of the top answer: its share of the similarity-weighted vote of the
  nearest hits (one close paraphrase amid a crowd of other answers is weaker evidence than
  a neighbourhood that agrees). Its weight is 0 unless calibration fitted one, so weights
  fitted before it existed keep meaning what they meant.
* the answer probability: what a classifier fitted on every indexed question over the
  answers (retrieval.answer_classifier) gives the top answer. For an answer it does not
  know (a rare one) the vote share stands in, the nearest-neighbour estimate of the same
  thing; for an operator's curated answer its own evidence does (:func:`curated_evidence`:
  how many of its questions lie nearer the message than any other answer's). Weight
  0 unless calibration fitted one, as for vote share.
* the question's typicality: how much closer the question lies to the questions of some
  known answer than to questions at large (relative Mahalanobis distance, see
  retrieval.answer_classifier). It is the signal for a topic the logs never answered. 0
  (no evidence either way) when the index version has no classifier; weight 0 unless
  calibration fitted one.

The weights and the hand-off threshold are fitted on a labelled validation split: in-scope
questions whose best answer is known, and out-of-scope questions the bot should hand off.
Calibration also chooses which signals to use (see :func:`select_features`): a signal that
helps the fit overall can still cost right answers near the hand-off threshold, which is
the only place where confidence decides anything. Everything here is a pure function over
numbers and records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import numpy as np

from retrieval.config import WRONG_ANSWER_COST


class RankedAnswer(Protocol):
    """A retrieved answer as confidence reads it: a search hit
    (:class:`retrieval.records.RetrievedExchange`) or the bot's record of one (its
    ``Source``), both best first."""

    @property
    def score(self) -> float: ...
    @property
    def kind(self) -> Literal["log", "curated"]: ...
    @property
    def agent_reply(self) -> str: ...
    @property
    def support(self) -> int: ...
    @property
    def vote_share(self) -> float: ...
    @property
    def answer_probability(self) -> float | None: ...
    @property
    def question_typicality(self) -> float | None: ...
    @property
    def verifier_probability(self) -> float | None: ...
    @property
    def nearer_questions(self) -> int | None: ...


@dataclass(frozen=True)
class ConfidenceWeights:
    """``confidence = sigmoid(bias + score*top + margin*margin + support*ln(support)
    + vote_share*vote_share + answer_probability*answer probability
    + question_typicality*typicality + verifier_probability*verifier probability)``."""

    bias: float
    score: float
    margin: float
    support: float
    vote_share: float = 0.0
    answer_probability: float = 0.0
    question_typicality: float = 0.0
    verifier_probability: float = 0.0

    def vector(self) -> tuple[float, ...]:
        """The weights in the order of :meth:`ConfidenceFeatures.vector`."""
        return (
            self.bias,
            self.score,
            self.margin,
            self.support,
            self.vote_share,
            self.answer_probability,
            self.question_typicality,
            self.verifier_probability,
        )


@dataclass(frozen=True)
class ConfidenceFeatures:
    top_score: float
    margin: float  # top score minus the score of the next different answer, >= 0
    support: int  # >= 1
    vote_share: float = 1.0  # in [0, 1]
    answer_probability: float | None = None  # in [0, 1]; None: the classifier has no say
    question_typicality: float | None = None  # None: no classifier, counts as 0
    # None: no verifier, counts as 0 (a column of zeros is never fitted: _varying_columns).
    verifier_probability: float | None = None

    def vector(self) -> tuple[float, ...]:
        """The features as the logistic model sees them, constant term first."""
        probability = self.answer_probability
        if probability is None:
            probability = self.vote_share
        return (
            1.0,
            self.top_score,
            self.margin,
            math.log(max(self.support, 1)),
            self.vote_share,
            probability,
            self.question_typicality or 0.0,
            self.verifier_probability or 0.0,
        )


# Column names of ConfidenceFeatures.vector after the constant, as ConfidenceWeights names
# their weights.
FEATURE_NAMES = (
    "score",
    "margin",
    "support",
    "vote_share",
    "answer_probability",
    "question_typicality",
    "verifier_probability",
)


def _same_answer(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def retrieval_features(sources: Sequence[RankedAnswer]) -> ConfidenceFeatures | None:
    """The confidence features of retrieval results given best first; None when empty.

    Without a different runner-up the margin is 0: a knowledge base that knows a single
    answer cannot tell that this question is not about it, so the score alone must carry
    the decision.
    """
    if not sources:
        return None
    top = sources[0]
    runner_up = next(
        (s for s in sources[1:] if not _same_answer(s.agent_reply, top.agent_reply)), None
    )
    margin = max(0.0, top.score - runner_up.score) if runner_up is not None else 0.0
    probability = top.answer_probability
    if probability is None and top.kind == "curated":
        probability = curated_evidence(_nearer_questions(top, margin))
    verified = top.verifier_probability
    if verified is not None and top.kind == "curated":
        # The verifier learnt which logged replies answer what, never an operator's answer:
        # it doubted corrections' paraphrases ("where do I download your app" for the app
        # correction: 0.32), and 3 of 15 that reached their correction were handed off
        # (benchmarks/learning_loop_topics.json on the sample). The operator's word is the
        # floor.
        verified = max(verified, curated_evidence(_nearer_questions(top, margin)))
    return ConfidenceFeatures(
        top.score,
        margin,
        max(top.support, 1),
        top.vote_share,
        probability,
        top.question_typicality,
        verified,
    )


def curated_evidence(nearer_questions: int) -> float:
    """How sure an operator's curated answer is, in place of the answer classifier's
    probability (which never saw it): from its own evidence, not the neighbourhood's vote.

    ``nearer_questions`` is how many of its questions (the corrected one and those the
    operator attached) lie at least as near the message as the nearest question of any
    other answer, by similarity alone: each halves the doubt. A message amid the questions
    the operator vouched for has several; one that sits between them and the neighbouring
    topic's logged questions has one or none (it won by the operator's bonus alone), and
    is then no surer than the operator's word for one question, 0.5: the bonus is there
    to reach a lone correction's paraphrases, and the sample's learning loop
    (benchmarks/learning_loop.py) handed off 3 of its 15 paraphrases, not 1, when that
    case counted 0.
    Measured on Banking77 (benchmarks/correction_topics_banking77.py, the curated answer
    served first): this tells the topic's customers from the neighbouring topic's with an
    AUC of 0.77 (full logs; 0.81 --quick), where counting every one of its questions among
    the nearest hits, with any lead the bonus gave, did 0.65 (0.71).
    """
    return 1.0 - 0.5 ** max(nearer_questions, 1)


def _nearer_questions(top: RankedAnswer, margin: float) -> int:
    """The curated ``top``'s nearer questions; where they are not known (a turn's source
    read back from the store), its questions among the nearest hits when it led, else
    one, as before they were counted."""
    if top.nearer_questions is not None:
        return top.nearer_questions
    return max(top.support, 1) if margin > 0.0 else 1


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)  # the other branch would overflow for very negative z
    return e / (1.0 + e)


def confidence_of(features: ConfidenceFeatures, weights: ConfidenceWeights) -> float:
    """Confidence in [0, 1] that the top answer is right."""
    x, w = features.vector(), weights.vector()
    return _sigmoid(sum(a * b for a, b in zip(w, x, strict=True)))


def retrieval_confidence(sources: Sequence[RankedAnswer], weights: ConfidenceWeights) -> float:
    """Confidence of retrieval results given best first; 0.0 when there are none."""
    features = retrieval_features(sources)
    return 0.0 if features is None else confidence_of(features, weights)


# -- calibration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationCase:
    """One validation question: its features, whether the bot should answer it at all, and
    (for in-scope questions) whether the top retrieved answer is the expected one."""

    features: ConfidenceFeatures
    in_scope: bool
    correct: bool = True
    # The top answer claims an action, states this customer's case or asks for details a
    # person must act on (retrieval.claims): the engine hands the message off whatever its
    # confidence, so it is never answered.
    withheld: bool = False

    @property
    def answerable(self) -> bool:
        return self.in_scope and self.correct


@dataclass(frozen=True)
class CalibrationResult:
    """A hand-off threshold and what it achieves on the validation set.

    * ``handoff_recall``: share of out-of-scope questions handed off;
    * ``answered_rate``: share of in-scope questions answered (not handed off);
    * ``answered_accuracy``: of the in-scope questions answered, the share whose answer was
      the expected one (1.0 when none were answered);
    * ``wrong_answer_rate``: share of *all* questions that got a wrong answer, i.e. an
      answered out-of-scope question or an answered in-scope one with the wrong answer.
    * ``generic_handoff_recall``: share of the generic off-topic questions (chit-chat,
      general knowledge, other trades; not counted in the figures above) handed off, None
      when none were asked.
    """

    threshold: float
    handoff_recall: float
    answered_rate: float
    answered_accuracy: float
    wrong_answer_rate: float
    in_scope: int
    out_of_scope: int
    weights: ConfidenceWeights | None = None
    generic_handoff_recall: float | None = None
    generic_off_topic: int = 0


def fit_threshold(
    in_scope_scores: Sequence[float],
    out_of_scope_scores: Sequence[float],
    target_handoff_recall: float = 0.9,
    *,
    in_scope_correct: Sequence[bool] | None = None,
    generic_scores: Sequence[float] = (),
    in_scope_withheld: Sequence[bool] | None = None,
    out_of_scope_withheld: Sequence[bool] | None = None,
) -> CalibrationResult:
    """The lowest threshold that hands off at least ``target_handoff_recall`` of the
    out-of-scope questions (a message is handed off when its confidence is below it), and
    as much of the generic off-topic questions (``generic_scores``), if any.

    ``in_scope_withheld`` and ``out_of_scope_withheld`` mark the questions whose top answer
    the engine never copies (:class:`CalibrationCase` ``withheld``): they count as handed
    off in the figures. The threshold does not count on them: it is fitted as if every
    answer could be sent, so that a setting that sends them does not hand off less.

    The lowest such threshold answers as many in-scope questions as the recall target
    allows. It is placed half-way to the next observed score so that it does not sit on a
    validation point. ``in_scope_correct`` says per in-scope score whether the top answer
    was right (all right when omitted). Raises ValueError without out-of-scope scores or on
    a target outside [0, 1].
    """
    if not 0.0 <= target_handoff_recall <= 1.0:
        raise ValueError(f"target_handoff_recall must be in [0, 1], got {target_handoff_recall}")
    if not out_of_scope_scores:
        raise ValueError("fit_threshold needs at least one out-of-scope score")
    if in_scope_correct is not None and len(in_scope_correct) != len(in_scope_scores):
        raise ValueError(
            f"in_scope_correct has {len(in_scope_correct)} values for"
            f" {len(in_scope_scores)} in-scope scores"
        )
    every_score = (*in_scope_scores, *out_of_scope_scores, *generic_scores)
    # Each set must meet the target on its own: held-out topics of the logs are hard to
    # tell from the logs, generic questions easy, and a pooled target would let the easy
    # set's surplus pay for answering the hard one (issue 19).
    threshold = max(
        _threshold_for(scores, target_handoff_recall, every_score)
        for scores in (out_of_scope_scores, generic_scores)
        if scores
    )
    correct = list(in_scope_correct) if in_scope_correct is not None else None
    result = _evaluate(
        threshold,
        in_scope_scores,
        out_of_scope_scores,
        correct,
        in_scope_withheld=in_scope_withheld,
        out_of_scope_withheld=out_of_scope_withheld,
    )
    if not generic_scores:
        return result
    handed_off = sum(1 for s in generic_scores if s < threshold)
    return replace(
        result,
        generic_handoff_recall=handed_off / len(generic_scores),
        generic_off_topic=len(generic_scores),
    )


def _threshold_for(
    out_of_scope_scores: Sequence[float], target: float, every_score: Sequence[float]
) -> float:
    """The lowest threshold under which ``target`` of ``out_of_scope_scores`` fall, half-way
    to the next of ``every_score`` above the boundary."""
    oos = sorted(out_of_scope_scores)
    needed = math.ceil(target * len(oos) - 1e-9)
    if needed == 0:
        return 0.0
    boundary = oos[needed - 1]
    above = [s for s in every_score if s > boundary]
    return (boundary + min(above)) / 2 if above else math.nextafter(boundary, math.inf)


# Targets of hand-off recall whose figures `supportbot calibrate` shows beside the one it
# fits, so that an operator sees what handing off more or less would cost.
TRADE_OFF_TARGETS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99)


def trade_offs(
    cases: Sequence[CalibrationCase],
    weights: ConfidenceWeights,
    targets: Sequence[float] = TRADE_OFF_TARGETS,
    *,
    generic: Sequence[ConfidenceFeatures] = (),
) -> list[CalibrationResult]:
    """What each of ``targets`` (hand-off recall) would give on ``cases`` with ``weights``
    (and the ``generic`` off-topic questions' features, see fit_threshold): its threshold,
    how many in-scope questions it answers and how many answers are wrong. The figures are
    on the cases the weights were fitted on, like the chosen target's."""
    in_scope = [c for c in cases if c.in_scope]
    inside = [confidence_of(c.features, weights) for c in in_scope]
    outside = [confidence_of(c.features, weights) for c in cases if not c.in_scope]
    generic_scores = [confidence_of(f, weights) for f in generic]
    correct = [c.correct for c in in_scope]
    return [
        fit_threshold(
            inside,
            outside,
            t,
            in_scope_correct=correct,
            generic_scores=generic_scores,
            **_withheld(cases),
        )
        for t in targets
    ]


def _withheld(cases: Sequence[CalibrationCase]) -> dict[str, list[bool]]:
    """fit_threshold's withheld marks of ``cases``, in scope and out of it."""
    return {
        "in_scope_withheld": [c.withheld for c in cases if c.in_scope],
        "out_of_scope_withheld": [c.withheld for c in cases if not c.in_scope],
    }


def _evaluate(
    threshold: float,
    in_scope_scores: Sequence[float],
    out_of_scope_scores: Sequence[float],
    in_scope_correct: Sequence[bool] | None,
    *,
    in_scope_withheld: Sequence[bool] | None = None,
    out_of_scope_withheld: Sequence[bool] | None = None,
) -> CalibrationResult:
    correct = in_scope_correct or [True] * len(in_scope_scores)
    held = in_scope_withheld or [False] * len(in_scope_scores)
    held_out = out_of_scope_withheld or [False] * len(out_of_scope_scores)
    answered = [
        ok
        for s, ok, withheld in zip(in_scope_scores, correct, held, strict=True)
        if s >= threshold and not withheld
    ]
    oos_answered = sum(
        1
        for s, withheld in zip(out_of_scope_scores, held_out, strict=True)
        if s >= threshold and not withheld
    )
    total = len(in_scope_scores) + len(out_of_scope_scores)
    wrong = oos_answered + sum(1 for ok in answered if not ok)
    return CalibrationResult(
        threshold=threshold,
        handoff_recall=1.0 - oos_answered / len(out_of_scope_scores),
        answered_rate=len(answered) / len(in_scope_scores) if in_scope_scores else 0.0,
        answered_accuracy=sum(answered) / len(answered) if answered else 1.0,
        wrong_answer_rate=wrong / total,
        in_scope=len(in_scope_scores),
        out_of_scope=len(out_of_scope_scores),
    )


# Cross-validation folds of select_features, and the fewest answerable and out-of-scope
# cases it needs per fold: with fewer, every feature is kept. With the sample corpus's 42
# out-of-scope questions the threshold at 0.9 recall rests on the four highest of them,
# and a choice between signals made on that is noise: there, choosing left the margin
# alone and handed off "How long does standard shipping take?".
_SELECTION_FOLDS = 5
_MIN_CASES_PER_FOLD = 20


def calibrate(
    cases: Sequence[CalibrationCase],
    target_handoff_recall: float = 0.9,
    *,
    ridge: float = 1.0,
    select: bool = True,
    wrong_answer_cost: float = WRONG_ANSWER_COST,
    generic: Sequence[ConfidenceFeatures] = (),
) -> CalibrationResult:
    """Fit the confidence weights on ``cases``, then the threshold (see fit_threshold),
    which must also hand off the target share of the ``generic`` off-topic questions (their
    features; they do not enter the weights' fit).

    The weights are a ridge-regularised logistic regression of "the top answer is right
    and the question in scope" on the features, so the confidence reads as a probability
    on data like the validation set. With ``select``, the features are first chosen by
    cross-validation (:func:`select_features`). Raises ValueError unless there is at least
    one answerable case and one out-of-scope case.
    """
    if not any(c.answerable for c in cases) or not any(not c.in_scope for c in cases):
        raise ValueError(
            "calibration needs at least one answerable in-scope case and one out-of-scope case"
        )
    features = (
        select_features(
            cases, target_handoff_recall, ridge=ridge, wrong_answer_cost=wrong_answer_cost
        )
        if select
        else None
    )
    weights = fit_weights(cases, ridge=ridge, features=features)
    in_scope = [c for c in cases if c.in_scope]
    result = fit_threshold(
        [confidence_of(c.features, weights) for c in in_scope],
        [confidence_of(c.features, weights) for c in cases if not c.in_scope],
        target_handoff_recall,
        in_scope_correct=[c.correct for c in in_scope],
        generic_scores=[confidence_of(f, weights) for f in generic],
        **_withheld(cases),
    )
    return replace(result, weights=weights)


def select_features(
    cases: Sequence[CalibrationCase],
    target_handoff_recall: float,
    *,
    ridge: float = 1.0,
    wrong_answer_cost: float = WRONG_ANSWER_COST,
    folds: int = _SELECTION_FOLDS,
) -> tuple[str, ...]:
    """The features (names of :data:`FEATURE_NAMES`) the confidence should use on data like
    ``cases``, chosen by cross-validation.

    Each candidate set is scored out of fold: weights fitted on the other folds give every
    case a confidence; the threshold that hands off ``target_handoff_recall`` of the pooled
    out-of-scope cases is applied, and the score is (right answers - ``wrong_answer_cost``
    x wrong answers to in-scope questions) over all cases. The best-scoring subset of the
    features that vary wins, so a feature stays only when it earns its place near the
    threshold. Folds are by case, in a fixed order, so calibrating the same cases twice
    gives the same choice.
    """
    vectors = np.array([c.features.vector() for c in cases], dtype=np.float64)
    varying = _varying_columns(cases, vectors)
    answerable = np.array([c.answerable for c in cases])
    in_scope = np.array([c.in_scope for c in cases])
    least = min(int(answerable.sum()), int((~in_scope).sum()))
    if least < folds * _MIN_CASES_PER_FOLD or len(varying) <= 1:
        return tuple(FEATURE_NAMES[j - 1] for j in varying)
    # Interleaved folds: every fold gets its share of each kind of case, whatever their order.
    fold_of = np.empty(len(cases), dtype=np.int64)
    for kind in (answerable, in_scope & ~answerable, ~in_scope):
        rows = np.flatnonzero(kind)
        fold_of[rows] = np.arange(len(rows)) % folds

    def score(columns: list[int]) -> float:
        confidence = np.empty(len(cases))
        for fold in range(folds):
            held = fold_of == fold
            w = _fit_columns(vectors[~held], answerable[~held], columns, ridge)
            if not w[1:].any():
                # Nothing but the constant: one confidence for every question, which can
                # only answer all or none. Never the choice.
                return -math.inf
            confidence[held] = vectors[held][:, [0, *columns]] @ w
        oos = np.sort(confidence[~in_scope])
        needed = math.ceil(target_handoff_recall * len(oos) - 1e-9)
        threshold = np.nextafter(oos[needed - 1], np.inf) if needed else -np.inf
        answered = confidence >= threshold
        right = int((answered & answerable).sum())
        # The out-of-scope questions answered are set by the recall target, not by the
        # signals; charging them would favour a confidence that ties them all at the top.
        wrong = int((answered & in_scope & ~answerable).sum())
        return (right - wrong_answer_cost * wrong) / len(cases)

    # Every subset: backward elimination would miss the best one, because a feature
    # correlated with another can only show its worth once that other is gone (its weight
    # comes out negative, so 0, beside it). At most 127 subsets of seven features.
    subsets = [
        [c for i, c in enumerate(varying) if mask >> i & 1] for mask in range(1, 1 << len(varying))
    ]
    # Ties go to the smaller subset, then to the earlier features.
    best = max(subsets, key=lambda subset: (score(subset), -len(subset)))
    return tuple(FEATURE_NAMES[j - 1] for j in best)


def fit_weights(
    cases: Sequence[CalibrationCase],
    *,
    ridge: float = 1.0,
    max_iterations: int = 100,
    features: Sequence[str] | None = None,
) -> ConfidenceWeights:
    """Logistic regression by Newton's method (at most seven parameters, so each step is a
    small solve), with every feature weight >= 0. The ridge term keeps the weights finite
    when the classes separate perfectly, which small validation sets often do; the bias is
    not penalised. ``features`` (names of :data:`FEATURE_NAMES`) limits the fit to those;
    the others get weight 0.

    Non-negative because every feature is evidence for the top answer (the server clips
    negative weights too): a feature whose fitted weight comes out negative is dropped and
    the rest refitted, so the threshold is fitted for the weights the server applies.
    """
    vectors = np.array([c.features.vector() for c in cases], dtype=np.float64)
    labels = np.array([c.answerable for c in cases])
    columns = _varying_columns(cases, vectors)
    if features is not None:
        unknown = set(features) - set(FEATURE_NAMES)
        if unknown:
            raise ValueError(f"unknown confidence features: {sorted(unknown)}")
        columns = [j for j in columns if FEATURE_NAMES[j - 1] in features]
    w = _fit_columns(vectors, labels, columns, ridge, max_iterations)
    full = [0.0] * vectors.shape[1]
    for j, weight in zip([0, *columns], w, strict=True):
        full[j] = float(weight)
    return ConfidenceWeights(*full)


def _varying_columns(cases: Sequence[CalibrationCase], vectors: np.ndarray) -> list[int]:
    """Feature columns (1-based: 0 is the constant) worth fitting. A feature that is the
    same in every case (every vote share 1.0, every support 1) is a copy of the constant
    term: fitted, it would split the bias with it. It keeps weight 0."""
    variances = vectors.var(axis=0)
    columns = [j for j in range(1, vectors.shape[1]) if variances[j] > 1e-12]
    if all(c.features.answer_probability is None for c in cases):
        # No classifier had a say: the column is the vote share again, a copy of another.
        columns = [j for j in columns if j != _ANSWER_PROBABILITY]
    return columns


def _fit_columns(
    vectors: np.ndarray,
    labels: np.ndarray,
    columns: Sequence[int],
    ridge: float,
    max_iterations: int = 100,
) -> np.ndarray:
    """Non-negative logistic weights of the constant and ``columns`` (see fit_weights): a
    feature whose weight comes out negative is dropped and the rest refitted. Returns one
    weight per column of ``[0, *columns]``, the dropped ones 0."""
    variances = vectors.var(axis=0)
    active = [0, *columns]
    y = labels.astype(np.float64)
    while True:
        # Penalise each weight on the scale of its feature: margins are a tenth of scores,
        # and an unscaled penalty would all but erase them.
        penalty = np.array([1e-6] + [ridge * max(variances[j], 1e-6) for j in active[1:]])
        w = _newton(vectors[:, active], y, penalty, max_iterations)
        negative = [i for i in range(1, len(active)) if w[i] < 0.0]
        if not negative:
            break
        # Drop the most negative on the features' own scale, then refit without it.
        worst = min(negative, key=lambda i: w[i] * math.sqrt(variances[active[i]]))
        active = active[:worst] + active[worst + 1 :]
    weights = dict(zip(active, w, strict=True))
    return np.array([weights.get(j, 0.0) for j in (0, *columns)])


# Its column in ConfidenceFeatures.vector, after the constant.
_ANSWER_PROBABILITY = FEATURE_NAMES.index("answer_probability") + 1


def _newton(x: np.ndarray, y: np.ndarray, penalty: np.ndarray, max_iterations: int) -> np.ndarray:
    w = np.zeros(x.shape[1])
    for _ in range(max_iterations):
        z = x @ w
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # the sigmoid, without overflow
        gradient = x.T @ (y - p) - penalty * w
        hessian = (x * (p * (1.0 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w = w + step
        if np.max(np.abs(step)) < 1e-9:
            break
    return w
