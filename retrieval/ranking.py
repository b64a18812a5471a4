"""Ranking a query's hits into distinct answers: pure functions over the hits FAISS
returned, the stored entries they point to and the retrieval settings.

Hits with the same reply are merged into one answer whose ``support`` counts them; each
hit gains for the intent words its question shares with the message
(retrieval.intent_words); curated answers get the operator's bonus; each answer's share of
the vote among the first hits and the answer classifier's probability go with it as
confidence features.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from retrieval.answer_classifier import AnswerClassifier
from retrieval.config import RetrievalConfig
from retrieval.intent_words import IntentWords
from retrieval.records import RetrievedExchange
from retrieval.store import StoredEntry

# Each answer's vote is the summed similarity of its hits among the first ten. Measured on
# Banking77 (benchmarks/confidence_banking77.py, train-only folds): the top answer's share
# of that vote beside score, margin and support cut wrong answers at 0.9 hand-off recall
# from 4.0% to 3.5%; 5, 15, 20 or 28 hits and count or softmax weights did no better.
_VOTE_HITS = 10
# A curated answer's questions count as backing each other up for a query (see
# corroboration) when they lie within this much of the best other answer's score, and
# together add at most the cap. Chosen on Banking77 (10 corrections with the questions
# the operator attached, benchmarks/correction_topics_banking77.py replayed on stored
# vectors): a window of 0.05 reached fewer of the topics' questions at the same cost to
# the neighbouring topics; with 0.1 the cap of 0.1 or 0.2 made no difference.
_CORROBORATION_WINDOW = 0.1
_CORROBORATION_CAP = 0.1
# Tried in its place, replayed on the same stored hits (full logs; --quick in brackets):
# ranking every answer by the mean of its 2, 3 or 4 nearest questions whenever a curated
# one contends, with a bonus of 0.02-0.05, or by its nearest question with a plain bonus,
# or only counting an attached question for a message nearer to it than its own nearest
# logged question is. Each moved along the same trade-off between the topic's customers
# reached and the neighbour's accuracy, none beyond it: with the bonus and corroboration
# here 77.5% reached, 11.5% given the neighbour's answer, the neighbours 94.8% -> 89.0%
# (83.5%, 7.5%, 92.0% -> 79.8%); the mean of 2 with a bonus of 0.03 72.0%, 13.5%, -> 91.0%
# (82.0%, 8.5%, -> 85.3%); no bonus at all 62.5%, 19.0%, -> 92.5% (69.0%, 15.0%, -> 88.0%).
# Banking77's neighbouring intents share wordings, and even logs of the held-out intents
# cost their neighbours 5.6 points (README). What a message between the two topics does
# change is the correction's own evidence (nearer_questions), which its confidence reads.


def _question_key(text: str) -> str:
    return " ".join(text.casefold().split())


def fetch_size(k: int, excluded_conversations: int) -> int:
    """Hits to fetch for ``k`` distinct answers: duplicates of one reply collapse and
    excluded conversations drop out, so over-fetch."""
    return 4 * k + 8 * excluded_conversations + 8


def rank(
    scores: np.ndarray,
    ids: np.ndarray,
    stored: dict[int, StoredEntry],
    excluded: set[str],
    k: int,
    classifier: AnswerClassifier | None,
    probabilities: np.ndarray | None,  # the classifier's row for this query
    typicality: float | None,  # of this query, the same for all its hits
    config: RetrievalConfig,
    customer_text: str,
    intent_words: IntentWords | None,  # None: the index version is served without
) -> list[RetrievedExchange]:
    """The ``k`` best distinct answers among one query's hits (``scores`` and ``ids``
    nearest first), best first. With ``intent_words``, each hit gains
    ``config.intent_words_weight`` times the share of ``customer_text``'s intent words its
    question shares, and hits and answers are ordered with that gain; the answers' scores
    go out less the largest gain, one shift for all."""
    best: dict[str, tuple[float, StoredEntry]] = {}
    support: dict[str, int] = {}
    votes: dict[str, float] = {}
    hits = _accepted_hits(scores, ids, stored, excluded, fetch_size(k, 0))
    intent_gain: dict[str, float] = {}  # by source id; none: no intent words
    if intent_words is not None and config.intent_words_weight > 0.0:
        hits, intent_gain = _with_intent(
            hits, customer_text, intent_words, config.intent_words_weight
        )
    # Each answer's best score before the curated bonus, and its curated hits' scores.
    nearest: dict[str, float] = {}
    curated_scores: dict[str, list[float]] = {}
    for score, item in hits:
        nearest[item.reply_hash] = max(nearest.get(item.reply_hash, score), score)
        if item.entry.kind == "curated":
            curated_scores.setdefault(item.reply_hash, []).append(score)
    for position, (score, item) in enumerate(hits, start=1):
        key = item.reply_hash
        value = score
        if item.entry.kind == "curated":
            # The operator's word weighs the same however many questions it is spread
            # over: one correction alone gets the whole bonus to reach paraphrases,
            # one with many questions near already covers them by closeness, and a
            # full bonus on each would push it into the neighbouring topic.
            value += config.curated_bonus / len(curated_scores[key])
        support[key] = support.get(key, 0) + 1
        if position <= _VOTE_HITS:
            votes[key] = votes.get(key, 0.0) + max(value, 0.0)
        if key not in best or value > best[key][0]:
            best[key] = (value, item)
    corroborated = _corroboration(curated_scores, nearest, config.curated_corroboration)
    for key, extra in corroborated.items():
        value, item = best[key]
        best[key] = (value + extra, item)
    nearer = {
        key: _nearer_questions(key, scores, nearest) for key, scores in curated_scores.items()
    }
    ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)[:k]
    total_votes = sum(votes.values())
    # The scores go out less the most any hit gained: the same for every answer of the
    # query, so they keep the order and the margins the intent words gave, and the top
    # answer's score is its similarity when its question shares the most intent words.
    # The confidence reads the score as how near the nearest past question is, and a
    # question the logs never answered shares intent words too ("is there a student
    # discount?" with the loyalty answers' "discount"). Measured with supportbot calibrate
    # on the sample: generic off-topic questions handed off 0.906 with the gain in the
    # score, 0.953 with the similarity alone as the score (0.929 before intent words).
    shift = max(intent_gain.values(), default=0.0)
    return [
        RetrievedExchange(
            score=value - shift,
            source_id=item.entry.source_id,
            customer_text=item.entry.customer_text,
            agent_reply=item.entry.agent_reply,
            kind=item.entry.kind,
            conversation_id=item.entry.conversation_id,
            context=item.entry.context,
            support=support[key],
            vote_share=votes.get(key, 0.0) / total_votes if total_votes > 0 else 0.0,
            answer_probability=(
                None
                if classifier is None or probabilities is None
                else classifier.probability_of(probabilities, key)
            ),
            question_typicality=typicality,
            nearer_questions=nearer.get(key) if item.entry.kind == "curated" else None,
        )
        for key, (value, item) in ranked
    ]


def _nearer_questions(key: str, scores: list[float], nearest: Mapping[str, float]) -> int:
    """How many of a curated answer's questions (their ``scores``) lie at least as near the
    query as the nearest question of any other answer: its own evidence for the query
    (retrieval.confidence.curated_evidence), by similarity with the intent words' gain,
    before the curated bonus."""
    rival = max((score for other, score in nearest.items() if other != key), default=None)
    return len(scores) if rival is None else sum(score >= rival for score in scores)


def _accepted_hits(
    scores: np.ndarray,
    ids: np.ndarray,
    stored: Mapping[int, StoredEntry],
    excluded: set[str],
    window: int,
) -> list[tuple[float, StoredEntry]]:
    """The first ``window`` hits that count, nearest first: not in an excluded
    conversation, and not a logged exchange a correction supersedes.

    Counted within the same window whatever was excluded, so that a search with
    exclusions (validation, calibration) sees the confidence features serving sees.
    A logged exchange whose question an operator attached to a correction (its
    curated entry asks the very same, so it is among these hits too) no longer votes
    for the answer the correction replaced: the operator said that answer was wrong
    for it. Otherwise a hundred logs of the old answer outvote the correction.
    """
    superseded = {
        _question_key(item.entry.customer_text)
        for item in (stored.get(int(i)) for i in ids)
        if item is not None and item.entry.kind == "curated"
    }
    hits: list[tuple[float, StoredEntry]] = []
    for score, entry_id in zip(scores, ids, strict=True):
        item = stored.get(int(entry_id))
        if item is None or item.entry.conversation_id in excluded:
            continue
        if item.entry.kind == "log" and _question_key(item.entry.customer_text) in superseded:
            continue
        if len(hits) == window:
            break
        hits.append((float(score), item))
    return hits


def _with_intent(
    hits: list[tuple[float, StoredEntry]],
    customer_text: str,
    intent_words: IntentWords,
    weight: float,
) -> tuple[list[tuple[float, StoredEntry]], dict[str, float]]:
    """``hits`` with their intent-word gain added, best first, and each one's gain by
    source id. Only the fetched hits are re-scored: the past question that asks the same
    thing about another product is among them, and searching the whole index by words
    would cost a second index."""
    shares = intent_words.matches(customer_text, [item.entry.customer_text for _, item in hits])
    gain = {
        item.entry.source_id: weight * share for (_, item), share in zip(hits, shares, strict=True)
    }
    gained = [(score + gain[item.entry.source_id], item) for score, item in hits]
    return sorted(gained, key=lambda hit: hit[0], reverse=True), gain


def _corroboration(
    curated_scores: Mapping[str, list[float]],
    nearest: Mapping[str, float],
    per_question: float,
) -> dict[str, float]:
    """Score to add to each curated answer for its questions (the corrected one and
    those the operator attached) that back each other up: ``per_question`` (the setting
    ``curated_corroboration``) for each one beyond the first that lies within
    _CORROBORATION_WINDOW of the best other answer, at most _CORROBORATION_CAP. A question
    amid several the operator vouched for belongs to their topic more surely than one
    beside a single one, and a flat bonus big enough for that reaches far into the
    neighbouring topic."""
    extra: dict[str, float] = {}
    if per_question <= 0.0:
        return extra
    for key, scores in curated_scores.items():
        rival = max((v for other, v in nearest.items() if other != key), default=None)
        if rival is None:
            continue  # nothing to outrank
        backing = sum(score >= rival - _CORROBORATION_WINDOW for score in scores) - 1
        if backing > 0:
            extra[key] = min(_CORROBORATION_CAP, per_question * backing)
    return extra
