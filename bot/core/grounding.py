"""Grounding check of a reply while it is being generated.

A generated reply may only state facts (article codes, URLs, numbers, amounts, e-mail
addresses, times) that the business's side of its evidence states: the agent replies of
the retrieved exchanges and curated answers, and the earlier bot and agent turns of the
conversation. Text is released for streaming only once checked, so a customer never sees
an invented fact, even for a moment.

What a customer types is not evidence, except their own order or ticket number named as
such; the rule is :func:`retrieval.facts.grounding_evidence`, shared with the training
data and the evaluation of generated replies, so that neither rewards what the engine
refuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.types import Message, Source
from retrieval.facts import GroundingEvidence
from retrieval.facts import grounding_evidence as _grounding_evidence

__all__ = ["GroundingEvidence", "GroundingStep", "StreamingGroundingCheck", "grounding_evidence"]

_COMPLETE_WORD = re.compile(r"\S+(?=\s)")


def grounding_evidence(
    sources: Sequence[Source], history: Sequence[Message], customer_text: str
) -> GroundingEvidence:
    """The evidence of a reply to ``customer_text`` after ``history`` with ``sources``."""
    return _grounding_evidence(
        (source.agent_reply for source in sources),
        ((message.role, message.text) for message in history),
        customer_text,
    )


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
    one word. ``customer_references`` are the customer's order and ticket numbers: the
    reply may state them only as an order or ticket ("order JO-482913").
    """

    def __init__(
        self,
        evidence: Iterable[str],
        *,
        customer_references: Iterable[str] = (),
        holdback_words: int = 0,
    ) -> None:
        self._evidence = GroundingEvidence(tuple(evidence), frozenset(customer_references))
        self._holdback_words = holdback_words
        self._released = ""
        self._pending = ""
        self._unsupported: frozenset[str] = frozenset()
        self._finished = False

    @property
    def text(self) -> str:
        """Everything released so far."""
        return self._released

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
        unsupported = self._evidence.unsupported(self._released + new_text)
        if unsupported:
            self._unsupported = frozenset(unsupported)
            return GroundingStep(unsupported=self._unsupported)
        return GroundingStep()

    def _release(self, end: int) -> GroundingStep:
        text, self._pending = self._pending[:end], self._pending[end:]
        self._released += text
        return GroundingStep(text=text)
