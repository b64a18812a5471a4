"""Work in rounds within a deadline: a round starts only while it is expected to end in time.

Every bounded step of ``supportbot train`` and ``supportbot retrain`` that repeats one kind
of work (embedding replies or entries, searching questions, writing held-out replies) paces
itself with :class:`Pace` (issue 19). It imports nothing of the project, so that the index's
publishing (which servers import) and the generator's evaluation can both use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping


class Pace:
    """Rounds begun while they are expected to end before ``deadline`` (a ``clock()``
    instant; None: no deadline), each expected to take as long as the slowest so far
    (``slowest`` before the first: an estimate, or 0)."""

    def __init__(
        self,
        deadline: float | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        slowest: float = 0.0,
    ) -> None:
        self.deadline = deadline
        self.clock = clock
        self.slowest = slowest

    def rounds(self, count: int, *, first_always: bool = False) -> Iterator[int]:
        """0 to ``count - 1``, each given only while its round is expected to end by the
        deadline; the first is given even after it when ``first_always``. A round is
        timed from its number's yield to the request for the next."""
        for n in range(count):
            if (n > 0 or not first_always) and self._late():
                return
            began = self.clock()
            yield n
            self.slowest = max(self.slowest, self.clock() - began)

    def _late(self) -> bool:
        return self.deadline is not None and self.clock() + self.slowest >= self.deadline


def while_time_allows(
    count: int,
    deadline: float | None,
    clock: Callable[[], float] = time.monotonic,
    *,
    first_always: bool = False,
) -> Iterator[int]:
    """:meth:`Pace.rounds` of a fresh :class:`Pace` (no estimate before the first round)."""
    return Pace(deadline, clock).rounds(count, first_always=first_always)


class StepTimes:
    """How long each step of a job took, each counted from the end of the one before (the
    first from ``start``, a ``time.monotonic()`` instant), in order."""

    def __init__(self, start: float) -> None:
        self.seconds: dict[str, float] = {}
        self._last = start

    def done(self, step: str) -> float:
        """Record that ``step`` ended now; return now, when the next one begins."""
        now = time.monotonic()
        self.seconds[step] = now - self._last
        self._last = now
        return now


def format_times(steps: Mapping[str, float], shares: Mapping[str, float] | None = None) -> str:
    """A report's line of where a job's time went: each step's seconds, and the seconds it
    was given where it had a share ("tune 80 s of 95")."""
    shares = shares or {}
    parts = (
        f"{step} {seconds:.0f} s" + (f" of {shares[step]:.0f}" if step in shares else "")
        for step, seconds in steps.items()
    )
    return "time:        " + ", ".join(parts)
