"""How often someone may try to log in, without handing a guesser the power to lock out.

A limit per operator name alone lets anyone lock an operator out: one wrong guess every
few seconds from rotating addresses keeps the name's bucket empty, and the operator's own
correct logins are refused. So attempts are limited per client IP and per (IP, name)
pair, and the per-name limit counts only failures from addresses that have never logged in
as that name: the operator's usual address is not held back by strangers' guesses.
"""

from __future__ import annotations

from collections import OrderedDict

from bot.web.ratelimit import RateLimiter


class LoginLimits:
    """The login limits of one dashboard; only used from the event loop."""

    def __init__(self, per_minute: float, burst: int, *, max_known: int = 10_000) -> None:
        self.per_ip = RateLimiter(per_minute, burst)
        self.per_pair = RateLimiter(per_minute, burst)
        self.name_failures = RateLimiter(per_minute, burst)
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._max_known = max_known

    def wait(self, ip: str, name: str) -> float:
        """Count an attempt; seconds to wait before one is allowed (0.0: go on)."""
        name = name.lower()
        waits = [self.per_ip.acquire(ip), self.per_pair.acquire(f"{ip}\n{name}")]
        if not self.is_known(ip, name):
            waits.append(self.name_failures.peek(name))
        return max(waits)

    def failed(self, ip: str, name: str) -> None:
        """A wrong password: it counts against the name unless the address is known."""
        name = name.lower()
        if not self.is_known(ip, name):
            self.name_failures.acquire(name)

    def succeeded(self, ip: str, name: str) -> None:
        """Remember the address (the most recent ``max_known`` pairs are kept)."""
        key = (ip, name.lower())
        self._known.pop(key, None)
        self._known[key] = None
        while len(self._known) > self._max_known:
            self._known.popitem(last=False)

    def is_known(self, ip: str, name: str) -> bool:
        return (ip, name.lower()) in self._known
