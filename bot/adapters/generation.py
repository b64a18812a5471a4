"""The Generator port over finetune's batching worker (the in-process model)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from bot.adapters.retrieval import to_log_messages
from bot.core.errors import ModelUnavailable
from bot.core.types import GenerationRequest
from finetune.prompting import PromptRequest
from retrieval.records import RetrievedExchange

if TYPE_CHECKING:  # imports torch; only the server's start-up creates a worker
    from finetune.worker import GenerationWorker


class WorkerGenerator:
    """Streams replies from a :class:`~finetune.worker.GenerationWorker`.

    The worker decodes concurrent requests together in its own thread; this adapter only
    translates records and errors, so the event loop never waits on the model.
    """

    def __init__(self, worker: GenerationWorker) -> None:
        self._worker = worker

    @property
    def version(self) -> str | None:
        return self._worker.version

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        from finetune.worker import GenerationQueueFullError, WorkerClosedError  # lazy: torch

        prompt = prompt_request(request)
        try:
            async for piece in self._worker.stream(prompt, max_new_tokens=request.max_new_tokens):
                yield piece
        except (GenerationQueueFullError, WorkerClosedError) as exc:
            raise ModelUnavailable(str(exc)) from exc


def prompt_request(request: GenerationRequest) -> PromptRequest:
    """The engine's request in the records the prompt is built from (any generator)."""
    return PromptRequest(
        customer_text=request.customer_text,
        # The model was trained on logs where bot and operator replies are both "agent".
        history=to_log_messages(request.history),
        evidence=tuple(
            RetrievedExchange(
                score=s.score,
                source_id=s.source_id,
                customer_text=s.customer_text,
                agent_reply=s.agent_reply,
                kind=s.kind,
                support=s.support,
            )
            for s in request.evidence
        ),
    )
