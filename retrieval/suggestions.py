"""Questions an operator's correction may answer too (issue 20).

A correction is stored for one question, but customers ask the same thing in many ways.
When an operator corrects a reply, the dashboard offers the past customer messages that ask
nearly the same: logged questions near the corrected question, or near the questions the
wrong answer was retrieved for, and live customer turns the bot answered with the wrong
answer. The operator attaches the ones that ask the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.knowledge import KnowledgeBase
from retrieval.store import reply_hash

# Hits fetched per searched question: enough that a question a few neighbours away from
# a crowded topic still shows up, small enough for a page an operator reads.
_FETCH_PER_QUERY = 40
# Below this cosine similarity a message is about something else (measured on the test
# logs: paraphrases of one question score 0.6-0.95, other topics under 0.25); offering it
# would only make the operator read more.
_MIN_SIMILARITY = 0.3


@dataclass(frozen=True)
class SimilarQuestion:
    text: str
    score: float  # cosine similarity to the nearest searched question
    origin: str  # "log" (an ingested exchange) or "conversation" (a live customer turn)
    got_wrong_answer: bool


def similar_questions(
    knowledge_base: KnowledgeBase,
    queries: Sequence[str],
    wrong_answer: str | None,
    candidates: Sequence[str],
    limit: int,
) -> list[SimilarQuestion]:
    """Up to ``limit`` distinct customer questions nearest to any of ``queries``, best
    first: logged questions from the knowledge base, and ``candidates`` (live customer
    turns answered with ``wrong_answer``). Curated questions and the queries themselves
    are left out: they are already answered as the operator wants. Blocks: embeds and
    searches, so call it from a worker."""
    if not queries or limit <= 0:
        return []
    vectors, rows = knowledge_base.nearest_entries([*queries, *candidates], _FETCH_PER_QUERY)
    wrong = reply_hash(wrong_answer) if wrong_answer else None
    asked = {_key(q) for q in queries}
    found: dict[str, SimilarQuestion] = {}

    def offer(question: SimilarQuestion) -> None:
        key = _key(question.text)
        if key in asked or not key or question.score < _MIN_SIMILARITY:
            return
        kept = found.get(key)
        if kept is None or question.score > kept.score:
            found[key] = question

    for row in rows[: len(queries)]:
        for score, item in row:
            if item.entry.kind == "curated":
                continue
            got_wrong = item.reply_hash == wrong
            offer(SimilarQuestion(item.entry.customer_text, score, "log", got_wrong))
    if candidates:
        # (candidates, queries) cosine similarities: the vectors are normalised.
        similarity = vectors[len(queries) :] @ np.asarray(vectors[: len(queries)]).T
        for text, score in zip(candidates, similarity.max(axis=1), strict=True):
            offer(SimilarQuestion(text, float(score), "conversation", True))
    return sorted(found.values(), key=lambda q: q.score, reverse=True)[:limit]


def _key(text: str) -> str:
    return " ".join(text.lower().split())
