"""The knowledge base behind the engine's Retriever port: concurrent searches are
coalesced into batches without changing what each caller finds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.retrieval import KnowledgeRetriever
from bot.core.types import Message
from retrieval.knowledge import KnowledgeBase, Query
from tests.support.corpus import SMALL_LOGS, write_jsonl

QUESTIONS = [
    "Do gift cards expire?",
    "when does my order arrive",
    "I forgot my password",
    "cancel my order please",
    "how do I return boots",
    "when do I get my money back?",
]


class RecordingKnowledgeBase:
    """The real knowledge base, recording the size of every batch it is asked to search
    and (when ``gate`` is set) holding each search until the test opens it."""

    def __init__(self, real: KnowledgeBase, gate: threading.Event | None = None) -> None:
        self.real = real
        self.gate = gate
        self.batches: list[int] = []
        self.version = real.version
        self.fail: Exception | None = None

    def search_batch(
        self, queries: Sequence[Query], k: int | None = None, *, verify: bool = True
    ) -> list[Any]:
        self.batches.append(len(queries))
        if self.gate is not None:
            self.gate.wait(timeout=30)
        if self.fail is not None:
            raise self.fail
        return self.real.search_batch(queries, k, verify=verify)


@pytest.fixture
def knowledge(tmp_path: Path, make_knowledge: Callable[..., KnowledgeBase]) -> KnowledgeBase:
    from retrieval.ingest import ingest_paths

    kb = make_knowledge()
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], kb)
    return kb


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=2)
    yield executor
    executor.shutdown(wait=True)


async def test_searches_arriving_together_go_in_one_batch_and_find_the_same(
    knowledge: KnowledgeBase, pool: ThreadPoolExecutor
) -> None:
    gate = threading.Event()
    recording = RecordingKnowledgeBase(knowledge, gate)
    retriever = KnowledgeRetriever(recording, pool, max_in_flight=1)  # type: ignore[arg-type]
    history = (Message("customer", "hello"), Message("bot", "Hi, how can I help?"))

    searches = [asyncio.create_task(retriever.retrieve(history, q, 3)) for q in QUESTIONS]
    for _ in range(2000):  # the first search started alone, at once (10 s at most)
        if recording.batches or all(s.done() for s in searches):
            break
        await asyncio.sleep(0.005)
    assert recording.batches, [s.exception() for s in searches if s.done()]
    gate.set()
    found = await asyncio.gather(*searches)

    assert recording.batches == [1, len(QUESTIONS) - 1]  # the rest waited and went together
    for question, sources in zip(QUESTIONS, found, strict=True):
        alone = knowledge.search(
            [_log(m) for m in history], question, 3
        )  # the same question searched on its own
        assert [s.source_id for s in sources] == [h.source_id for h in alone]
        assert [s.score for s in sources] == pytest.approx([h.score for h in alone], abs=1e-4)


async def test_a_failed_batch_fails_each_of_its_searches(
    knowledge: KnowledgeBase, pool: ThreadPoolExecutor
) -> None:
    recording = RecordingKnowledgeBase(knowledge)
    recording.fail = RuntimeError("index file is gone")
    retriever = KnowledgeRetriever(recording, pool)  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(retriever.retrieve((), q, 3) for q in QUESTIONS[:3]), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    recording.fail = None  # the retriever keeps working afterwards
    (sources,) = await asyncio.gather(retriever.retrieve((), "Do gift cards expire?", 3))
    assert sources[0].source_id == "c-gift#1"


def _log(message: Message) -> Any:
    from bot.adapters.retrieval import to_log_messages

    return to_log_messages([message])[0]
