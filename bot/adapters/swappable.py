"""A Generator port whose model can be replaced while replies are streaming.

Each request is bound to the generator that is current when its stream starts, and
finishes there; :meth:`SwappableGenerator.replace` sends later requests to the new one,
and :meth:`SwappableGenerator.retire` closes the old one once its streams have ended.
Everything here runs on the event loop; closing a model worker runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from bot.core.errors import ModelUnavailable
from bot.core.ports import Generator
from bot.core.types import GenerationRequest

log = logging.getLogger(__name__)


@dataclass(eq=False)
class GeneratorSlot:
    """A generator, how to close it, and how many streams it is serving."""

    generator: Generator
    close: Callable[[], None]
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def version(self) -> str | None:
        version = getattr(self.generator, "version", None)
        return version if isinstance(version, str) else None


class SwappableGenerator:
    def __init__(self) -> None:
        self._current: GeneratorSlot | None = None
        self._retiring: set[GeneratorSlot] = set()
        # The live version that was not loaded (auto answer mode: it evaluated below
        # copying), so that it is not reconsidered until another version goes live.
        self.declined: str | None = None

    @property
    def version(self) -> str | None:
        return self._current.version if self._current is not None else None

    @property
    def loaded(self) -> bool:
        return self._current is not None

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        slot = self._current  # bound now: a swap later does not move this request
        if slot is None:
            raise ModelUnavailable("no generator is loaded")
        slot.in_flight += 1
        slot.idle.clear()
        try:
            async for piece in slot.generator.stream(request):
                yield piece
        finally:
            slot.in_flight -= 1
            if slot.in_flight == 0:
                slot.idle.set()

    def replace(self, generator: Generator, *, close: Callable[[], None]) -> GeneratorSlot | None:
        """Serve new requests from ``generator``; return the previous slot (still open)."""
        old, self._current = self._current, GeneratorSlot(generator, close)
        if old is not None:
            self._retiring.add(old)
        return old

    def clear(self) -> GeneratorSlot | None:
        """Serve nothing from now on; return the previous slot (still open) to retire."""
        old, self._current = self._current, None
        if old is not None:
            self._retiring.add(old)
        return old

    async def retire(self, slot: GeneratorSlot, *, timeout: float) -> None:
        """Close ``slot`` once its streams have finished (or after ``timeout`` seconds)."""
        if slot.in_flight:
            try:
                await asyncio.wait_for(slot.idle.wait(), timeout)
            except TimeoutError:
                log.warning(
                    "%d replies still streaming from %s after %.0f s; closing it anyway",
                    slot.in_flight,
                    slot.version,
                    timeout,
                )
        self._retiring.discard(slot)
        await asyncio.to_thread(slot.close)

    async def aclose(self) -> None:
        """Close the current generator and any still retiring (shutdown)."""
        slots = [*self._retiring, *([self._current] if self._current else [])]
        self._current = None
        self._retiring.clear()
        for slot in slots:
            await asyncio.to_thread(slot.close)
