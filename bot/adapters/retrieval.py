"""The knowledge base as the engine's ``Retriever`` and ``AnswerCurator`` ports.

``KnowledgeBase`` blocks (embedding, FAISS, SQLite), so every call runs in the executor
the application gives this adapter, never in the event loop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from bot.core.types import Message, Source
from retrieval.records import LogMessage, RetrievedExchange

if TYPE_CHECKING:  # importing it loads numpy and faiss; only the app that builds one needs it
    from retrieval.knowledge import KnowledgeBase


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
    )


class KnowledgeRetriever:
    def __init__(self, knowledge_base: KnowledgeBase, executor: Executor) -> None:
        self.knowledge_base = knowledge_base
        self.executor = executor

    @property
    def version(self) -> str | None:
        """The live index version's id (recorded on each bot turn)."""
        live = self.knowledge_base.version
        return None if live is None else str(live.id)

    async def retrieve(
        self, history: Sequence[Message], customer_text: str, k: int
    ) -> list[Source]:
        search = functools.partial(
            self.knowledge_base.search, to_log_messages(history), customer_text, k
        )
        hits = await asyncio.get_running_loop().run_in_executor(self.executor, search)
        return [to_source(hit) for hit in hits]

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
