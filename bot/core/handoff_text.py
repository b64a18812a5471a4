"""Recognising the generator's own hand-off reply in a generated reply.

The generator is trained to answer a fixed sentence (``generator.handoff_reply``) when its
evidence does not back an answer. That sentence is a decision, not an answer: the engine
turns it into a hand-off (the conversation goes to a person, the turn is flagged), so it
must recognise the sentence whatever the tokenizer did to case, spacing and punctuation.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[\w']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.replace("\u2019", "'").lower())


class HandoffTextMatcher:
    """Compares a reply, word by word, with the generator's hand-off sentence."""

    def __init__(self, handoff_reply: str) -> None:
        self._target = _words(handoff_reply)

    def could_become(self, text: str) -> bool:
        """Whether ``text`` (complete words) is the start of the hand-off sentence, so a
        reply beginning this way should not be shown yet."""
        words = _words(text)
        return bool(self._target) and self._target[: len(words)] == words

    def mostly_matches(self, text: str) -> bool:
        """Whether a reply that ended as the start of the sentence said most of it (the
        model stopped early, or ran into its token limit)."""
        words = _words(text)
        return self.could_become(text) and 2 * len(words) >= len(self._target)

    def found_in(self, text: str) -> bool:
        """Whether the whole hand-off sentence occurs anywhere in ``text``."""
        if not self._target:
            return False
        joined = " " + " ".join(_words(text)) + " "
        return " " + " ".join(self._target) + " " in joined
