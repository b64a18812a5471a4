"""Grounding check of a reply while it is being generated.

A generated reply may only state facts (article codes, URLs, numbers, amounts, e-mail
addresses, times) that appear in its evidence: the retrieved exchanges and the
conversation itself. Text is released for streaming only once checked, so a customer
never sees an invented fact, even for a moment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.types import Message, Source
from retrieval.facts import extract_facts, supported_facts

_COMPLETE_WORD = re.compile(r"\S+(?=\s)")


def evidence_texts(
    sources: Sequence[Source], history: Sequence[Message], customer_text: str
) -> list[str]:
    """Every text a reply may take its facts from."""
    texts = [customer_text, *(m.text for m in history)]
    for source in sources:
        texts += [source.customer_text, source.agent_reply]
    return texts


@dataclass(frozen=True)
class GroundingStep:
    """What one piece of generated text allows: ``text`` may be sent now; a non-empty
    ``unsupported`` means the reply stated facts the evidence does not back and must stop
    (nothing of the offending text is in ``text``)."""

    text: str = ""
    unsupported: frozenset[str] = frozenset()

    @property
    def grounded(self) -> bool:
        return not self.unsupported


class StreamingGroundingCheck:
    """Checks generated text piece by piece and releases it once its facts are backed.

    The incomplete last word is always held back (``KB-RET-0`` may still become
    ``KB-RET-01``; ``3`` may become ``30``), and so is trailing whitespace, so the released
    pieces join to exactly :attr:`text` when the reply ends. Facts are checked over the
    whole text so far, not piece by piece, so a fact that spans pieces is seen whole.
    ``holdback_words`` keeps that many further complete words back, for facts longer than
    one word.
    """

    def __init__(self, evidence: Iterable[str], *, holdback_words: int = 0) -> None:
        self._support = supported_facts(evidence)
        self._holdback_words = holdback_words
        self._released = ""
        self._pending = ""
        self._unsupported: frozenset[str] = frozenset()
        self._finished = False

    @property
    def text(self) -> str:
        """Everything released so far."""
        return self._released

    @property
    def unsupported(self) -> frozenset[str]:
        return self._unsupported

    def feed(self, piece: str) -> GroundingStep:
        """Take the next generated piece; return what may be released now."""
        if self._unsupported or self._finished:
            return GroundingStep(unsupported=self._unsupported)
        self._pending += piece
        if not self._released:
            self._pending = self._pending.lstrip()
        ends = [m.end() for m in _COMPLETE_WORD.finditer(self._pending)]
        if not ends:
            return GroundingStep()
        step = self._check(self._pending[: ends[-1]])
        if not step.grounded:
            return step
        releasable = len(ends) - self._holdback_words
        if releasable <= 0:
            return GroundingStep()
        return self._release(ends[releasable - 1])

    def finish(self) -> GroundingStep:
        """The generator is done: check and release the rest."""
        if self._unsupported or self._finished:
            return GroundingStep(unsupported=self._unsupported)
        self._finished = True
        self._pending = self._pending.rstrip()
        step = self._check(self._pending)
        if not step.grounded:
            return step
        return self._release(len(self._pending))

    def _check(self, new_text: str) -> GroundingStep:
        unsupported = extract_facts(self._released + new_text) - self._support
        if unsupported:
            self._unsupported = frozenset(unsupported)
            return GroundingStep(unsupported=self._unsupported)
        return GroundingStep()

    def _release(self, end: int) -> GroundingStep:
        text, self._pending = self._pending[:end], self._pending[end:]
        self._released += text
        return GroundingStep(text=text)
