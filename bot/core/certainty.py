"""How sure an answered reply is, in three steps a customer can be told.

The confidence is a calibrated estimate that the best retrieved answer is the right one;
below the hand-off threshold the bot does not answer at all. A client shows the step, not
the number, and never needs to know the threshold: it is fitted per embedder and corpus
(see :mod:`retrieval.calibration`) and may change while the server runs.
"""

from __future__ import annotations

from typing import Literal

Certainty = Literal["high", "medium", "low"]


def certainty_of(confidence: float, handoff_threshold: float) -> Certainty:
    """The step of an answered reply's ``confidence``.

    The span from the hand-off threshold to 1 is cut in thirds: with the default threshold
    of 0.25 the steps start at 0.5 ("medium": the answer is more likely right than wrong)
    and 0.75 ("high"). A reply below the threshold (copied after a failed grounding check
    under a lower ``copy_threshold``) is "low".
    """
    third = (1.0 - handoff_threshold) / 3.0
    if confidence >= handoff_threshold + 2 * third:
        return "high"
    if confidence >= handoff_threshold + third:
        return "medium"
    return "low"
