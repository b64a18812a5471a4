"""Fakes of the engine's ports for tests: a retriever and a generator that record calls.

``FakeRetriever`` either returns fixed answers or scores a small knowledge list by word
overlap; ``FakeGenerator`` streams scripted pieces and can fail or stall on cue.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace

from bot.core.config import EngineConfig
from bot.core.engine import ConversationEngine
from bot.core.errors import ModelUnavailable
from bot.core.ports import ConversationStore
from bot.core.types import GenerationRequest, Message, Source, SuggestedQuestion

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def source(
    source_id: str,
    question: str,
    answer: str,
    score: float = 0.9,
    *,
    kind: str = "log",
    support: int = 1,
) -> Source:
    """A retrieved answer, briefly."""
    assert kind in ("log", "curated")
    return Source(source_id, score, kind, question, answer, support)  # type: ignore[arg-type]


@dataclass
class RetrieveCall:
    history: tuple[Message, ...]
    customer_text: str
    k: int


@dataclass
class FakeRetriever:
    """Returns ``answers`` as given, or, with ``knowledge``, the entries scored by word
    overlap (Jaccard) with the question, curated ones with ``curated_bonus`` added.

    Also an ``AnswerCurator``: curated answers join ``knowledge`` (and leave it). Set
    ``error`` to make retrieval raise.
    """

    answers: Sequence[Source] | None = None
    knowledge: list[Source] = field(default_factory=list)
    curated_bonus: float = 0.05
    error: Exception | None = None
    version: str | None = "index-test"
    calls: list[RetrieveCall] = field(default_factory=list)
    curated: list[tuple[str, str, str, tuple[Message, ...]]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # source ids of withdrawn answers

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, str]]) -> FakeRetriever:
        """Keyword scoring over ``(question, answer)`` pairs with ids ``log-1``, ``log-2``..."""
        return cls(knowledge=[source(f"log-{i}", q, a, 0.0) for i, (q, a) in enumerate(pairs, 1)])

    async def retrieve(
        self, history: Sequence[Message], customer_text: str, k: int
    ) -> list[Source]:
        self.calls.append(RetrieveCall(tuple(history), customer_text, k))
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        if self.answers is not None:
            return list(self.answers[:k])
        query = _words(customer_text)
        scored = []
        for entry in self.knowledge:
            words = _words(entry.customer_text)
            score = len(query & words) / len(query | words) if query | words else 0.0
            if entry.kind == "curated":
                score += self.curated_bonus
            scored.append(replace(entry, score=score))
        scored.sort(key=lambda s: s.score, reverse=True)
        return scored[:k]

    async def add_curated(
        self, source_id: str, question: str, answer: str, context: Sequence[Message] = ()
    ) -> None:
        self.curated.append((source_id, question, answer, tuple(context)))
        self.knowledge = [s for s in self.knowledge if s.source_id != source_id]
        self.knowledge.append(source(source_id, question, answer, 0.0, kind="curated"))

    async def remove_curated(self, source_id: str) -> None:
        self.removed.append(source_id)
        self.knowledge = [s for s in self.knowledge if s.source_id != source_id]

    async def similar_questions(
        self,
        queries: Sequence[str],
        wrong_answer: str | None,
        candidates: Sequence[str],
        limit: int,
        *,
        corrected_answer: str | None = None,
        answered_otherwise: Sequence[str] = (),
    ) -> list[SuggestedQuestion]:
        """Logged questions and ``candidates`` sharing a word with a query, by overlap."""

        def overlap(text: str) -> float:
            words = _words(text)
            return max(len(words & _words(q)) / len(words | _words(q)) for q in queries)

        found = [
            SuggestedQuestion(
                e.customer_text, overlap(e.customer_text), "log", e.agent_reply == wrong_answer
            )
            for e in self.knowledge
            if e.kind == "log"
        ]
        found += [SuggestedQuestion(c, overlap(c), "conversation", True) for c in candidates]
        found += [
            SuggestedQuestion(c, overlap(c), "conversation", False)
            for c in answered_otherwise
            if c not in candidates
        ]
        asked = set(queries)
        # Half the words shared stands in for retrieval's "likely the same question" rule.
        kept = [
            replace(q, likely_same=q.score >= 0.5)
            for q in found
            if q.score > 0 and q.text not in asked
        ]
        return sorted(kept, key=lambda q: q.score, reverse=True)[:limit]


@dataclass
class FakeGenerator:
    """Streams ``pieces`` (or what ``script(request)`` returns) one by one.

    ``fail_after``: raise ``error`` after that many pieces (0: before the first one).
    ``stall_after``: hang after that many pieces (for timeouts). Records each request,
    how many pieces it yielded, and whether the stream was closed before its end.
    """

    pieces: Sequence[str] = ()
    script: Callable[[GenerationRequest], Sequence[str]] | None = None
    fail_after: int | None = None
    error: Exception = field(default_factory=lambda: ModelUnavailable("fake model is down"))
    stall_after: int | None = None
    version: str | None = "model-test"
    requests: list[GenerationRequest] = field(default_factory=list)
    yielded: int = 0
    closed_early: bool = False

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        self.requests.append(request)
        pieces = self.script(request) if self.script is not None else self.pieces
        try:
            for n, piece in enumerate(pieces):
                if self.fail_after is not None and n >= self.fail_after:
                    raise self.error
                if self.stall_after is not None and n >= self.stall_after:
                    await asyncio.Event().wait()
                await asyncio.sleep(0)
                self.yielded += 1
                yield piece
        except GeneratorExit:  # aclose() by the consumer before the end
            self.closed_early = True
            raise
        if self.fail_after is not None and self.fail_after >= len(pieces):
            raise self.error


def split_words(text: str) -> list[str]:
    """``text`` as a model would stream it: a word (with its leading space) per piece."""
    return re.findall(r"\s*\S+", text)


def copying_engine(
    store: ConversationStore, retriever: FakeRetriever, **config: object
) -> ConversationEngine:
    """An engine without a generator over ``retriever``, scrubbing as the product does."""
    from retrieval.pii import scrub

    scrub_text = lambda text: scrub(text).text  # noqa: E731
    return ConversationEngine(retriever, None, store, EngineConfig(**config), scrub_text)  # type: ignore[arg-type]
