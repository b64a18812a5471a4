"""A softmax classifier over the knowledge base's answers, fitted per index version.

Nearest-neighbour retrieval judges a question by its closest paraphrases; a classifier
fitted on every indexed question judges it against whole answers at once, and its
probability that the top retrieved answer is the right one is a second opinion the
confidence model uses (``answer_probability``). Measured on Banking77
(``benchmarks/confidence_banking77.py --classifier``, train-only folds): beside score,
margin, support and vote share, it cut wrong answers at 0.9 hand-off recall from 3.51% to
3.44%, and a threshold fitted on train then held that recall on test (0.904 instead of
0.86-0.875, wrong answers 3.31% instead of 4.7-5.0%).

Answers are clusters of replies that are the same once case, spacing and an opening
greeting are ignored; answers with fewer than ``min_members`` indexed questions share one
"rare answers" class, so that the classifier has somewhere to put the probability of a
question about none of the frequent ones. An answer the classifier does not know (a rare
one, or a curated answer added after the fit) gets no probability: the confidence model
falls back to the vote share for it.

Beside the classifier, the same fit keeps a Gaussian model of the indexed questions: one
mean per known answer with a covariance shared by all (estimated with Ledoit-Wolf
shrinkage), and one Gaussian of all questions together. ``typicality`` is how much closer
(in Mahalanobis distance) a question lies to its nearest answer than to questions at large:
the "relative Mahalanobis distance" of Ren et al. (2021), "A Simple Fix to Mahalanobis
Distance for Improving Near-OOD Detection". A question about a topic the logs never
answered sits far from every answer even when some past question shares its words, which
is what nearest-neighbour scores miss. Measured on Banking77 (20 held-out intents,
weights fitted on train-only folds, ``benchmarks/confidence_banking77.py --classifier``):
beside the classifier's probability, margin, support and vote share, it raised the share
of in-scope questions answered at exactly 0.9 hand-off recall from 0.736 to 0.780 with
wrong answers about the same (2.89% -> 2.95% of all questions), and the threshold fitted
on train held 0.943 recall on test instead of 0.922. Calibration decides per corpus
whether to use it (retrieval.confidence.select_features).

Fitting uses scikit-learn's multinomial logistic regression (lbfgs) and Ledoit-Wolf
estimator: well-tested code rather than ours. Serving needs only the fitted arrays, a few
matrix products per batch.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

CLASSIFIER_FILE = "answer_classifier.npz"
# Inverse regularisation strength, as in the benchmark that measured the feature.
_INVERSE_L2 = 10.0
_MAX_ITERATIONS = 300


@dataclass(frozen=True)
class QuestionGaussians:
    """Gaussians of the indexed questions: one per known answer, sharing a precision
    matrix, and one of all questions (``background_*``). Means are stored pre-multiplied
    by the precision, so that a distance costs matrix products only."""

    precision: np.ndarray  # (dimension, dimension)
    precision_means: np.ndarray  # (answers, dimension): mean @ precision per answer
    mean_norms: np.ndarray  # (answers,): mean @ precision @ mean
    background_mean: np.ndarray  # (dimension,)
    background_precision: np.ndarray  # (dimension, dimension)

    def typicality(self, vectors: np.ndarray) -> np.ndarray:
        """Per question: (Mahalanobis distance to all questions - distance to the nearest
        answer's questions) / dimension, both squared. Above 0: closer to some answer than
        to questions at large."""
        x = np.asarray(vectors, dtype=np.float64)
        xp = x @ self.precision
        to_answers = (xp * x).sum(axis=1)[:, None] - 2.0 * x @ self.precision_means.T
        nearest = (to_answers + self.mean_norms[None, :]).min(axis=1)
        centred = x - self.background_mean
        background = ((centred @ self.background_precision) * centred).sum(axis=1)
        result: np.ndarray = (background - nearest) / x.shape[1]
        return result

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: np.ndarray) -> QuestionGaussians:
        from sklearn.covariance import LedoitWolf

        x = np.asarray(vectors, dtype=np.float64)
        answers = np.unique(labels)
        means = np.stack([x[labels == a].mean(axis=0) for a in answers])
        within = x - means[np.searchsorted(answers, labels)]
        precision = np.linalg.inv(LedoitWolf(assume_centered=True).fit(within).covariance_)
        background_mean = x.mean(axis=0)
        background_precision = np.linalg.inv(
            LedoitWolf(assume_centered=True).fit(x - background_mean).covariance_
        )
        precision_means = means @ precision
        return cls(
            precision=precision,
            precision_means=precision_means,
            mean_norms=(precision_means * means).sum(axis=1),
            background_mean=background_mean,
            background_precision=background_precision,
        )


@dataclass(frozen=True)
class AnswerClassifier:
    """``P(answer | question vector) = softmax(vector @ weights.T + bias)``, and how typical
    a question is of the answered ones (``gaussians``)."""

    weights: np.ndarray  # (classes, dimension) float32
    bias: np.ndarray  # (classes,) float32
    class_of: Mapping[str, int]  # reply hash -> class of the answers it knows
    embedder_id: str  # the embedder whose vectors it was fitted on
    gaussians: QuestionGaussians | None = None  # None: saved before typicality existed

    @property
    def classes(self) -> int:
        return int(self.weights.shape[0])

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(queries, classes) probabilities for unit query vectors of its embedder."""
        logits = np.asarray(vectors, dtype=np.float32) @ self.weights.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        result: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
        return result

    def typicality(self, vectors: np.ndarray) -> np.ndarray | None:
        """See :meth:`QuestionGaussians.typicality`; None without the Gaussians."""
        return None if self.gaussians is None else self.gaussians.typicality(vectors)

    def probability_of(self, probabilities: np.ndarray, reply_hash: str) -> float | None:
        """The probability a row of :meth:`probabilities` gives the answer with this reply
        hash; None for an answer the classifier does not know."""
        known = self.class_of.get(reply_hash)
        return None if known is None else float(probabilities[known])

    def save(self, folder: Path) -> Path:
        path = folder / CLASSIFIER_FILE
        gaussians = {} if self.gaussians is None else vars(self.gaussians)
        with open(path, "wb") as fh:
            np.savez(
                fh,
                weights=self.weights,
                bias=self.bias,
                meta=np.array(
                    json.dumps({"class_of": dict(self.class_of), "embedder_id": self.embedder_id})
                ),
                **{f"gaussians_{name}": array for name, array in gaussians.items()},
            )
        return path

    @classmethod
    def load(cls, folder: Path) -> AnswerClassifier | None:
        """The classifier saved in ``folder``; None when there is none or it is unreadable
        (the confidence model then uses the vote share, as before classifiers existed)."""
        path = folder / CLASSIFIER_FILE
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                meta = json.loads(str(saved["meta"]))
                gaussians = None
                if "gaussians_precision" in saved.files:
                    gaussians = QuestionGaussians(
                        **{
                            name: saved[f"gaussians_{name}"].astype(np.float64)
                            for name in QuestionGaussians.__dataclass_fields__
                        }
                    )
                return cls(
                    weights=saved["weights"].astype(np.float32),
                    bias=saved["bias"].astype(np.float32),
                    class_of={str(k): int(v) for k, v in meta["class_of"].items()},
                    embedder_id=str(meta["embedder_id"]),
                    gaussians=gaussians,
                )
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable answer classifier %s: %s", path, exc)
            return None


def answer_classes(
    reply_hashes: Sequence[str],
    normalised_replies: Sequence[str],
    *,
    min_members: int,
    max_answers: int,
) -> tuple[list[int], dict[str, int]]:
    """The class of every indexed question and the reply hash -> class map of the (at most
    ``max_answers`` most frequent) answers with at least ``min_members`` questions; all
    other answers share the last class, which the map does not name (their questions are
    known, their answers are not)."""
    members = Counter(normalised_replies)
    ranked = sorted(members.items(), key=lambda item: (-item[1], item[0]))
    frequent = sorted(r for r, n in ranked[:max_answers] if n >= min_members)
    number = {reply: i for i, reply in enumerate(frequent)}
    rare = len(frequent)
    labels = [number.get(r, rare) for r in normalised_replies]
    class_of = {
        h: number[r] for h, r in zip(reply_hashes, normalised_replies, strict=True) if r in number
    }
    return labels, class_of


def fit_answer_classifier(
    vectors: np.ndarray,
    reply_hashes: Sequence[str],
    normalised_replies: Sequence[str],
    *,
    embedder_id: str,
    min_members: int = 3,
    max_answers: int = 500,
    max_questions: int = 20_000,
    seed: int = 0,
) -> AnswerClassifier | None:
    """Fit on the indexed questions' vectors, labelled with their answers.

    None when fewer than two answers have ``min_members`` questions: there is nothing to
    tell apart. The fit costs questions x answers per step, so both are bounded: above
    ``max_questions`` a seeded sample is used, and only the ``max_answers`` most frequent
    answers get a class of their own.
    """
    # One BLAS thread: the fit runs beside a server or a training job, and on two busy
    # cores OpenBLAS's threads wait on each other. Measured on 1,600 questions of 120
    # answers at load 4: 2.3-9.0 s with its default threads, 0.3-0.4 s with one; 10,000 of
    # 77: 5.5-6.3 s against 1.2-1.3 s (the same fit: BLAS threads change only the order of
    # sums).
    with threadpool_limits(1, user_api="blas"):
        return _fit(
            vectors,
            reply_hashes,
            normalised_replies,
            embedder_id=embedder_id,
            min_members=min_members,
            max_answers=max_answers,
            max_questions=max_questions,
            seed=seed,
        )


def _fit(
    vectors: np.ndarray,
    reply_hashes: Sequence[str],
    normalised_replies: Sequence[str],
    *,
    embedder_id: str,
    min_members: int,
    max_answers: int,
    max_questions: int,
    seed: int,
) -> AnswerClassifier | None:
    from sklearn.linear_model import LogisticRegression

    if len(vectors) > max_questions:
        keep = np.sort(np.random.default_rng(seed).choice(len(vectors), max_questions, False))
        vectors = vectors[keep]
        reply_hashes = [reply_hashes[i] for i in keep]
        normalised_replies = [normalised_replies[i] for i in keep]
    labels, class_of = answer_classes(
        reply_hashes, normalised_replies, min_members=min_members, max_answers=max_answers
    )
    known = len(set(class_of.values()))
    if known < 2:
        return None
    classes = known + (1 if any(label == known for label in labels) else 0)
    model = LogisticRegression(C=_INVERSE_L2, max_iter=_MAX_ITERATIONS)
    model.fit(np.asarray(vectors, dtype=np.float32), np.asarray(labels))
    # The Gaussians model the known answers only: the rare answers' pooled questions are a
    # mixture of topics, not one cluster a question could be typical of.
    in_known = np.asarray(labels) < known
    gaussians = QuestionGaussians.fit(np.asarray(vectors)[in_known], np.asarray(labels)[in_known])
    # Every class has at least one question, so scikit-learn's classes are 0..classes-1.
    assert len(model.classes_) == classes
    weights, bias = model.coef_, model.intercept_
    if classes == 2:
        # Two classes come back as one logistic row, P(class 1) = sigmoid(x.w + b): the
        # same as a softmax over the logits (0, x.w + b).
        weights = np.vstack([np.zeros_like(weights), weights])
        bias = np.concatenate([np.zeros_like(bias), bias])
    return AnswerClassifier(
        weights=weights.astype(np.float32),
        bias=bias.astype(np.float32),
        class_of=class_of,
        embedder_id=embedder_id,
        gaussians=gaussians,
    )
