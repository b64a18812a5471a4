"""The engine's :class:`~bot.core.ports.Scrubber` over :mod:`retrieval.pii` and the name
finder, run in the server's retrieval workers: the name recogniser is a spaCy model, which
must not run on the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TypeVar

from bot.core.types import CustomerDetail, ScrubbedMessage
from retrieval.names import NameFinder, load_known_names
from retrieval.pii import scrub

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# How often the names learned by an ingest on this or another host are picked up.
_KNOWN_NAMES_CHECK_S = 10.0
# What an operator needs to find the customer's account. Card numbers and IBANs are
# scrubbed too, but never kept: a support tool is no place for them (PCI DSS forbids
# storing a card number in the clear).
_FOR_OPERATORS = frozenset({"email", "phone", "name"})


class PersonalDataScrubber:
    """Scrubs with ``names`` (None: the rules alone) in ``executor``; the names that
    ``known_names`` lists are re-read when an ingest rewrote the file."""

    def __init__(
        self, names: NameFinder | None, executor: Executor, known_names: Path | None = None
    ) -> None:
        self.names = names
        self.executor = executor
        self.known_names = known_names
        self._known_mtime: float | None = None
        self._checked_at = 0.0

    async def scrub(self, text: str) -> str:
        return await self._run(self._scrub, text)

    async def scrub_names(self, text: str) -> str:
        return await self._run(self._scrub_names, text)

    async def scrub_message(self, text: str) -> ScrubbedMessage:
        return await self._run(self._scrub_message, text)

    def warm(self) -> None:
        """Load the name recogniser now, so the first customer does not wait for it."""
        self._scrub("Hi Sam, warm-up.")

    async def _run(self, work: Callable[[str], _T], text: str) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, work, text)

    def _scrub(self, text: str) -> str:
        self._follow_known_names()
        return scrub(text, self.names).text

    def _scrub_message(self, text: str) -> ScrubbedMessage:
        self._follow_known_names()
        result = scrub(text, self.names)
        kept = (CustomerDetail(k, v) for k, v in result.found if k in _FOR_OPERATORS)
        return ScrubbedMessage(result.text, tuple(kept))

    def _scrub_names(self, text: str) -> str:
        self._follow_known_names()
        if self.names is None:
            return text
        # Names only are scrubbed from what the business's people wrote.
        return self.names.scrub(text, staff=True)[0]

    def _follow_known_names(self) -> None:
        now = time.monotonic()
        if (
            self.names is None
            or self.known_names is None
            or now - self._checked_at < (_KNOWN_NAMES_CHECK_S)
        ):
            return
        self._checked_at = now
        try:
            mtime = self.known_names.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime != self._known_mtime:
            self._known_mtime = mtime
            added = self.names.learn(load_known_names(self.known_names))
            if added:
                log.info("learned %d names from %s", added, self.known_names)
