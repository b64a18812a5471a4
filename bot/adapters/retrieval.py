"""The knowledge base as the engine's ``Retriever`` and ``AnswerCurator`` ports.

``KnowledgeBase`` blocks (embedding, FAISS, SQLite), so every call runs in the executor
the application gives this adapter, never in the event loop. Concurrent searches are
coalesced into batches (see :class:`KnowledgeRetriever`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core.types import Message, Source, SuggestedQuestion
from retrieval.records import LogMessage, Query, RetrievedExchange

if TYPE_CHECKING:  # importing it loads numpy and faiss; only the app that builds one needs it
    from retrieval.knowledge import KnowledgeBase


@dataclass(eq=False)
class _PendingSearch:
    query: Query
    k: int
    found: asyncio.Future[list[RetrievedExchange]]


def to_log_messages(history: Sequence[Message]) -> tuple[LogMessage, ...]:
    """The history as retrieval sees it: the bot and operators are both the agent side."""
    return tuple(
        LogMessage("customer" if m.role == "customer" else "agent", m.text) for m in history
    )


def to_source(hit: RetrievedExchange) -> Source:
    return Source(
        source_id=hit.source_id,
        score=hit.score,
        kind=hit.kind,
        customer_text=hit.customer_text,
        agent_reply=hit.agent_reply,
        support=hit.support,
        vote_share=hit.vote_share,
        answer_probability=hit.answer_probability,
        question_typicality=hit.question_typicality,
        verifier_probability=hit.verifier_probability,
        nearer_questions=hit.nearer_questions,
    )


class KnowledgeRetriever:
    """Searches run in ``executor``, at most ``max_in_flight`` calls at a time; searches
    that arrive meanwhile wait and then go together in one ``search_batch`` call (one
    embedding batch, one FAISS call), which costs less per query than one call each.
    A search that arrives when a slot is free starts at once: batching adds no wait."""

    def __init__(
        self,
        knowledge_base: KnowledgeBase,
        executor: Executor,
        *,
        max_in_flight: int = 2,
        max_batch: int = 32,
        verify: Callable[[], bool] = lambda: True,
    ) -> None:
        self.knowledge_base = knowledge_base
        # Whether the confidence served reads the verifier's say: when calibration left it
        # out (Banking77 does), asking it costs 15-170 ms a search for nothing.
        self.verify = verify
        self.executor = executor
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
        self._waiting: list[_PendingSearch] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    @property
    def version(self) -> str | None:
        """The live index version's id (recorded on each bot turn)."""
        live = self.knowledge_base.version
        return None if live is None else str(live.id)

    async def retrieve(
        self, history: Sequence[Message], customer_text: str, k: int
    ) -> list[Source]:
        loop = asyncio.get_running_loop()
        query = Query(customer_text, to_log_messages(history))
        found: asyncio.Future[list[RetrievedExchange]] = loop.create_future()
        self._waiting.append(_PendingSearch(query, k, found))
        self._dispatch()
        return [to_source(hit) for hit in await found]

    def _dispatch(self) -> None:
        self._waiting = [p for p in self._waiting if not p.found.done()]  # callers gone
        while self._waiting and len(self._in_flight) < self.max_in_flight:
            k = self._waiting[0].k  # one k per call; the engine always asks the same
            batch = [p for p in self._waiting if p.k == k][: self.max_batch]
            self._waiting = [p for p in self._waiting if p not in batch]
            task = asyncio.create_task(self._search(batch, k))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._dispatch()

    async def _search(self, batch: list[_PendingSearch], k: int) -> None:
        search = functools.partial(
            self.knowledge_base.search_batch, [p.query for p in batch], k, verify=self.verify()
        )
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.executor, search)
        except BaseException as exc:  # every caller of the batch sees the failure
            for pending in batch:
                if pending.found.done():
                    continue
                if isinstance(exc, Exception):
                    pending.found.set_exception(exc)
                else:  # shutdown cancelled the search: its callers must not wait forever
                    pending.found.cancel()
            if not isinstance(exc, Exception):
                raise
            return
        for pending, hits in zip(batch, results, strict=True):
            if not pending.found.done():  # its caller may have given up meanwhile
                pending.found.set_result(hits)

    async def add_curated(
        self, source_id: str, question: str, answer: str, context: Sequence[Message] = ()
    ) -> None:
        add = functools.partial(
            self.knowledge_base.add_curated,
            source_id,
            question,
            answer,
            context=to_log_messages(context),
        )
        await asyncio.get_running_loop().run_in_executor(self.executor, add)

    async def remove_curated(self, source_id: str) -> None:
        remove = functools.partial(self.knowledge_base.remove_source, source_id)
        await asyncio.get_running_loop().run_in_executor(self.executor, remove)

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
        from retrieval.suggestions import similar_questions  # lazy: faiss

        find = functools.partial(
            similar_questions,
            self.knowledge_base,
            queries,
            wrong_answer,
            candidates,
            limit,
            corrected_answer=corrected_answer,
            answered_otherwise=answered_otherwise,
        )
        found = await asyncio.get_running_loop().run_in_executor(self.executor, find)
        return [
            SuggestedQuestion(q.text, q.score, q.origin, q.got_wrong_answer, q.likely_same)
            for q in found
        ]
