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

Fitting uses scikit-learn's multinomial logistic regression (lbfgs): a well-tested solver
rather than one of ours. Serving needs only the weights, one matrix product per batch.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CLASSIFIER_FILE = "answer_classifier.npz"
# Inverse regularisation strength, as in the benchmark that measured the feature.
_INVERSE_L2 = 10.0
_MAX_ITERATIONS = 300


@dataclass(frozen=True)
class AnswerClassifier:
    """``P(answer | question vector) = softmax(vector @ weights.T + bias)``."""

    weights: np.ndarray  # (classes, dimension) float32
    bias: np.ndarray  # (classes,) float32
    class_of: Mapping[str, int]  # reply hash -> class of the answers it knows
    embedder_id: str  # the embedder whose vectors it was fitted on

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

    def probability_of(self, probabilities: np.ndarray, reply_hash: str) -> float | None:
        """The probability a row of :meth:`probabilities` gives the answer with this reply
        hash; None for an answer the classifier does not know."""
        known = self.class_of.get(reply_hash)
        return None if known is None else float(probabilities[known])

    def save(self, folder: Path) -> Path:
        path = folder / CLASSIFIER_FILE
        with open(path, "wb") as fh:
            np.savez(
                fh,
                weights=self.weights,
                bias=self.bias,
                meta=np.array(
                    json.dumps({"class_of": dict(self.class_of), "embedder_id": self.embedder_id})
                ),
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
                return cls(
                    weights=saved["weights"].astype(np.float32),
                    bias=saved["bias"].astype(np.float32),
                    class_of={str(k): int(v) for k, v in meta["class_of"].items()},
                    embedder_id=str(meta["embedder_id"]),
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
    )
