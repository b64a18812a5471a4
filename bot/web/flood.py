"""Caps that hold when a flood comes from many addresses at once.

Per-IP rate limits stop one client; rotating addresses walk past them. These caps count
all clients together: conversations started per minute, and flags in the review queue,
where a flood of hand-offs would bury the real ones. Flags are also capped per client, so
one client that causes many hand-offs takes a few places in the queue, not hundreds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from prometheus_client import Counter

from bot.core.types import FlagReason
from bot.web.errors import ApiError
from bot.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# The client (IP) of the API request being handled; the rate-limit middleware sets it for
# the engine's flag gate, which is called deep inside the engine, far from the request.
CURRENT_CLIENT: ContextVar[str | None] = ContextVar("supportbot_web_client", default=None)
_ALL = "*"
# A refused flag is logged at most this often: the point is not to flood the log either.
_LOG_EVERY_S = 60.0


def refuse_when_too_many_conversations(limiter: RateLimiter) -> None:
    """Raise ApiError 429 when all clients together started too many conversations."""
    wait = limiter.acquire(_ALL)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            "Too many conversations are starting right now; please try again in a moment.",
            {"Retry-After": RateLimiter.retry_after_header(wait)},
        )


class FlagBudget:
    """A :class:`bot.core.ports.FlagGate` with a cap on open flags and a rate per client.

    ``open_flags`` counts the open flags in the store; it is asked again every
    ``recount_s`` seconds (operators resolve flags meanwhile), and in between each admitted
    flag adds one. Requests of no web client (Slack, the dashboard) meet only the cap.
    Replicas keep separate counts, so with N replicas the queue can pass the cap by up to
    N - 1 recount periods' worth of flags.

    Replies sent while unsure (``FlagReason.UNSURE``) are many, and no customer waits on
    them: they have their own hourly share per client, and may fill only half the cap, so
    they never take the places of the hand-offs and thumbs-down that follow them.
    """

    def __init__(
        self,
        *,
        max_open: int,
        per_client_per_hour: int,
        open_flags: Callable[[], Awaitable[int]],
        refused: Counter | None = None,
        max_clients: int = 50_000,
        recount_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_open = max_open
        self._per_client = RateLimiter(
            per_client_per_hour / 60.0, per_client_per_hour, max_keys=max_clients, clock=clock
        )
        self._unsure_per_client = RateLimiter(
            per_client_per_hour / 60.0, per_client_per_hour, max_keys=max_clients, clock=clock
        )
        self._open_flags = open_flags
        self._refused = refused
        self._recount_s = recount_s
        self._clock = clock
        self._open: int | None = None
        self._counted_at = 0.0
        self._logged_at: dict[str, float] = {}
        self._lock = asyncio.Lock()  # the count and the check are one step

    async def admit(self, reason: FlagReason) -> bool:
        async with self._lock:
            now = self._clock()
            if self._open is None or now - self._counted_at >= self._recount_s:
                self._open = await self._open_flags()
                self._counted_at = now
            unsure = reason is FlagReason.UNSURE
            cap = self.max_open // 2 if unsure else self.max_open
            if self._open >= cap:
                why = "unsure_half_full" if unsure else "queue_full"
                self._refuse(why, f"the review queue holds {self._open} open flags")
                return False
            client = CURRENT_CLIENT.get()
            share = self._unsure_per_client if unsure else self._per_client
            if client is not None and share.acquire(client) > 0:
                self._refuse("client", "a client raised more flags than its hourly share")
                return False
            self._open += 1
            return True

    def _refuse(self, why: str, what: str) -> None:
        if self._refused is not None:
            self._refused.labels(why=why).inc()
        now = self._clock()
        if now - self._logged_at.get(why, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            self._logged_at[why] = now
            log.warning("%s; new flags are not stored (see supportbot_flags_refused)", what)
