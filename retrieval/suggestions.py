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
    """Up to ``limit`` distinct customer questions, nearest to ``queries[0]`` (the corrected
    question) first: logged questions near any of ``queries`` (the others are the
    questions the wrong answer came from), and ``candidates`` (live customer turns
    answered with ``wrong_answer``). Curated questions and the queries themselves are left
    out: they are already answered as the operator wants. Blocks: embeds and searches, so
    call it from a worker."""
    if not queries or limit <= 0:
        return []
    vectors, rows = knowledge_base.nearest_entries([*queries, *candidates], _FETCH_PER_QUERY)
    wrong = reply_hash(wrong_answer) if wrong_answer else None
    asked = {_key(q) for q in queries}
    # Found through any query, ranked by closeness to the corrected question: the wrong
    # answer's own questions find the customers who got it, but their nearest neighbours
    # are often that answer's rightful topic, which the operator must not be offered first.
    logged: dict[str, tuple[str, bool, float | None]] = {}
    for n, row in enumerate(rows[: len(queries)]):
        for score, item in row:
            key = _key(item.entry.customer_text)
            if item.entry.kind == "curated" or key in asked or not key:
                continue
            got_wrong = item.reply_hash == wrong
            _, seen_wrong, seen_score = logged.get(key, ("", False, None))
            logged[key] = (
                item.entry.customer_text,
                got_wrong or seen_wrong,
                score if n == 0 else seen_score,
            )
    unscored = [key for key, (_, _, score) in logged.items() if score is None]
    if unscored:
        again = knowledge_base.embedder.encode([logged[key][0] for key in unscored])
        for key, similarity in zip(unscored, again @ vectors[0], strict=True):
            text, got_wrong, _ = logged[key]
            logged[key] = (text, got_wrong, float(similarity))
    found: dict[str, SimilarQuestion] = {}
    for key, (text, got_wrong, known) in logged.items():
        found[key] = SimilarQuestion(text, known or 0.0, "log", got_wrong)
    # The vectors are normalised: a dot product is the cosine similarity.
    for text, score in zip(candidates, vectors[len(queries) :] @ vectors[0], strict=True):
        key = _key(text)
        if key and key not in asked and key not in found:
            found[key] = SimilarQuestion(text, float(score), "conversation", True)
    near = [q for q in found.values() if q.score >= _MIN_SIMILARITY]
    return sorted(near, key=lambda q: q.score, reverse=True)[:limit]


def _key(text: str) -> str:
    return " ".join(text.lower().split())
