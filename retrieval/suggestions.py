"""Questions an operator's correction may answer too (issue 20).

A correction is stored for one question, but customers ask the same thing in many ways.
When an operator corrects a reply, the dashboard offers the past customer messages that may
ask the same: logged questions near the corrected question or near the questions the wrong
answer was retrieved for, and live customer turns the bot answered with the wrong answer or
with another answer the corrected question retrieved. The operator attaches the ones that
ask the same thing.

The page shows a few dozen, so the order decides what the operator gets to attach. Near the
corrected question lie two kinds of messages: those of its topic, and those of the
neighbouring topic whose answer it wrongly got, which lie as close (on Banking77, with
all-MiniLM-L6-v2: 0.6-0.8 both). Closeness alone fills the page with the neighbour's own
questions. A message of the corrected topic differs from those in two ways: it lies closer
to the corrected question than to any question the knowledge base answers otherwise, and
closer to the corrected answer than to the wrong one. So suggestions are ranked by how well
they fit the correction (:func:`fit`), and still show their closeness to the corrected
question.

Ranking is not enough: the page offers a few dozen, and a button that selects them all
would attach the nearby topic's questions too, each then served the corrected answer with
confidence. So the ones that fit well enough are marked ``likely_same``
(:func:`likely_same`); the dashboard groups them apart and lets only that group be
selected in one click.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.knowledge import KnowledgeBase
from retrieval.store import StoredEntry, reply_hash

# Hits fetched per searched question: enough that a question a few neighbours away from
# a crowded topic still shows up, small enough for a page an operator reads.
_FETCH_PER_QUERY = 40
# Hits fetched per candidate to find the nearest question answered otherwise: the first
# few may be the candidate itself or entries of the correction.
_FETCH_PER_CANDIDATE = 8
# Below this cosine similarity a message is about something else (measured on the test
# logs: paraphrases of one question score 0.6-0.95, other topics under 0.25); offering it
# would only make the operator read more.
_MIN_SIMILARITY = 0.3
# A logged question was answered by an agent, a live one by the bot, whose answers near
# the corrected question the correction just showed to be doubtful; so at the same fit
# the live ones come first. Measured on Banking77 (benchmarks/correction_topics_banking77.py
# --quick, 20 suggestions per correction, the operator attaching those of the intent,
# replayed on stored vectors): ranking by fit alone attached 154 of 200, with this
# handicap for logged ones 170.
_LOGGED_HANDICAP = 0.2


# A suggestion is "likely the same question" when it fits the correction (fit() >= 0: it
# lies nearer the corrected question than any question answered otherwise, net of the
# answers' lead and the logged handicap) and is a close paraphrase. Measured by rule on
# the 40 offered per correction, counting those of the corrected intent or topic (replayed
# on what the benchmark's operator was offered): on Banking77
# (benchmarks/correction_topics_banking77.py) fit >= 0 alone holds 97.8% of the intent
# (full logs) and 98.4% (--quick); a similarity floor of 0.65 keeps that (97.2%, 99.0%)
# and holds 43% / 36% of the intent's offered. On the sample (12 topics held out of
# data/sample's logs, their customers live) fit is rarely below 0 and the floor does the
# work: at 0.6 the group was 26 of 29 of the topic, the three others sharing a product
# name ("Do the Talus Mid GTX Boots run true to size?" for an exchange of those boots); at
# 0.65, 24 of 25. Above 0.8 similarity alone is no proof: Banking77 labels near-identical
# wordings differently, and letting it in drops the full run from 97.2% to 91.3%. A nearby
# question asked in a store with few like it ("Do you ship on weekends?" for "Do you ship
# to Canada?": fit 0.10, similarity 0.53) stays out too. Attached unread (the benchmark's
# --attach likely, full) the group reaches 44.5% of the topic's other customers with 4 of
# 143 of another intent, the neighbours' accuracy within a point (94.8% -> 94.0%); fit >=
# -0.05 reached 56.5% with 7 of 176 wrong and cost the neighbours 2 points.
LIKELY_MIN_FIT = 0.0
LIKELY_MIN_SIMILARITY = 0.65


@dataclass(frozen=True)
class SimilarQuestion:
    text: str
    score: float  # cosine similarity to the corrected question
    origin: str  # "log" (an ingested exchange) or "conversation" (a live customer turn)
    got_wrong_answer: bool
    fit: float = 0.0  # how well it fits the correction (see fit()); the ranking key

    @property
    def likely_same(self) -> bool:
        """Alike enough to be grouped as likely asking the same (see likely_same())."""
        return likely_same(self.score, self.fit)


def likely_same(to_question: float, fit_value: float) -> bool:
    """Whether a suggestion with this closeness to the corrected question and this
    :func:`fit` likely asks the same thing: the rule above LIKELY_MIN_FIT."""
    return fit_value >= LIKELY_MIN_FIT and to_question >= LIKELY_MIN_SIMILARITY


def fit(
    to_question: float,
    to_answered_otherwise: float,
    to_answer: float | None,
    to_wrong_answer: float | None,
    *,
    logged: bool,
) -> float:
    """How well a customer message fits a correction, from cosine similarities: its lead
    of closeness to the corrected question over the nearest question the knowledge base
    answers otherwise, plus its lead of closeness to the corrected answer over the wrong
    one (when both are known), less a handicap for a logged question (see above).
    Measured on Banking77 (--quick, the operator attaching the suggested questions of the
    intent): ranked by closeness the 20 suggestions held 84 of the 200 the operator could
    attach (110 once live customers given the other answers were offered too, replayed on
    stored vectors), ranked by fit 176."""
    value = to_question - to_answered_otherwise
    if to_answer is not None and to_wrong_answer is not None:
        value += to_answer - to_wrong_answer
    return value - (_LOGGED_HANDICAP if logged else 0.0)


@dataclass
class _Candidate:
    text: str
    origin: str
    got_wrong_answer: bool
    entry_id: int | None = None  # of a logged question
    vector: np.ndarray | None = None
    answered_otherwise: float = 0.0  # closeness to the nearest question answered otherwise


def similar_questions(
    knowledge_base: KnowledgeBase,
    queries: Sequence[str],
    wrong_answer: str | None,
    candidates: Sequence[str],
    limit: int,
    *,
    corrected_answer: str | None = None,
    answered_otherwise: Sequence[str] = (),
) -> list[SimilarQuestion]:
    """Up to ``limit`` distinct customer questions that may ask what ``queries[0]`` (the
    corrected question) asks, best fit first (see :func:`fit`): logged questions near any
    of ``queries`` (the others are the questions the wrong answer came from),
    ``candidates`` (live customer turns answered with ``wrong_answer``) and
    ``answered_otherwise`` (live turns answered with another answer the corrected question
    retrieved). ``corrected_answer`` is the correction's answer. Curated questions and the
    queries themselves are left out: they are already answered as the operator wants.
    Blocks: embeds and searches, so call it from a worker."""
    if not queries or limit <= 0:
        return []
    asked = {_key(q) for q in queries}
    found: dict[str, _Candidate] = {}
    live = [(t, True) for t in candidates] + [(t, False) for t in answered_otherwise]
    live_texts = [t for t, _ in live]
    vectors, rows = knowledge_base.nearest_entries([*queries, *live_texts], _FETCH_PER_QUERY)
    corrected = reply_hash(corrected_answer) if corrected_answer else None
    wrong = reply_hash(wrong_answer) if wrong_answer else None
    # Logged questions found through any query: the wrong answer's own questions find the
    # customers who got it, but their nearest neighbours are often that answer's rightful
    # topic, which fit() then ranks down.
    for row in rows[: len(queries)]:
        for _, item in row:
            key = _key(item.entry.customer_text)
            if item.entry.kind == "curated" or key in asked or not key:
                continue
            seen = found.get(key)
            got_wrong = item.reply_hash == wrong or (seen is not None and seen.got_wrong_answer)
            found[key] = _Candidate(item.entry.customer_text, "log", got_wrong, item.id)
    for (text, got_wrong), vector, row in zip(
        live, vectors[len(queries) :], rows[len(queries) :], strict=True
    ):
        key = _key(text)
        if not key or key in asked or (key in found and found[key].origin == "log"):
            continue
        if key in found:  # a customer turn seen twice: once answered with the wrong answer
            found[key].got_wrong_answer |= got_wrong
            continue
        found[key] = _Candidate(text, "conversation", got_wrong, vector=vector)
        found[key].answered_otherwise = _nearest_otherwise(row, key, corrected)
    logged = [c for c in found.values() if c.entry_id is not None]
    if logged:
        ids = [c.entry_id for c in logged if c.entry_id is not None]
        logged_vectors, logged_rows = knowledge_base.entries_nearest_entries(
            ids, _FETCH_PER_CANDIDATE
        )
        for candidate, vector, row in zip(logged, logged_vectors, logged_rows, strict=True):
            candidate.vector = vector
            candidate.answered_otherwise = _nearest_otherwise(row, _key(candidate.text), corrected)
    answers = [a for a in (corrected_answer, wrong_answer) if a]
    answer_vectors = knowledge_base.embedder.encode(answers) if len(answers) == 2 else None
    ranked: list[SimilarQuestion] = []
    for candidate in found.values():
        assert candidate.vector is not None
        # The vectors are normalised: a dot product is the cosine similarity.
        to_question = float(candidate.vector @ vectors[0])
        if to_question < _MIN_SIMILARITY:
            continue
        to_answer = to_wrong = None
        if answer_vectors is not None:
            to_answer, to_wrong = (float(s) for s in answer_vectors @ candidate.vector)
        ranked.append(
            SimilarQuestion(
                candidate.text,
                to_question,
                candidate.origin,
                candidate.got_wrong_answer,
                fit(
                    to_question,
                    candidate.answered_otherwise,
                    to_answer,
                    to_wrong,
                    logged=candidate.origin == "log",
                ),
            )
        )
    return sorted(ranked, key=lambda q: q.fit, reverse=True)[:limit]


def _nearest_otherwise(
    row: Sequence[tuple[float, StoredEntry]], key: str, corrected: str | None
) -> float:
    """Closeness of the nearest hit in ``row`` that answers otherwise than the correction,
    other than the message ``key`` itself; 0 when none is among them."""
    for score, item in row:
        if item.reply_hash == corrected or _key(item.entry.customer_text) == key:
            continue
        return score
    return 0.0


def _key(text: str) -> str:
    return " ".join(text.lower().split())
