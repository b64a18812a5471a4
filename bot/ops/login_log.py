"""What the log says about failed and refused logins, in lines a guesser cannot multiply.

Each failed login and each login the limits refuse is one short line with the client's
address (as the rate limits find it) and the name tried. The name is written only when it
is an operator's (as stored, so plain ASCII): a name that is no operator's is often a
password typed into the wrong box, and a hostile one could forge log lines; its length is
all the line says of it.

A guessing flood sends thousands of attempts: a client's refusals (by the limits, or of a
form without its token) are logged at most once per minute each (they are what it keeps
sending once refused), and all these lines together at most ``lines_per_minute`` a minute,
from however many addresses. The next line written says how many were left out.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable

from bot.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# Enough for an operator's typos and a small attack told line by line; a flood beyond it
# is told by the count of lines left out.
LINES_PER_MINUTE = 30
REFUSALS_PER_ADDRESS_PER_MINUTE = 1.0
_ALL = "*"
_SHOWN_ADDRESS_CHARS = 64


class LoginLog:
    """The login lines of one dashboard; only used from the event loop."""

    def __init__(
        self,
        *,
        lines_per_minute: int = LINES_PER_MINUTE,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lines = RateLimiter(lines_per_minute, lines_per_minute, clock=clock)
        self._refusals = RateLimiter(
            REFUSALS_PER_ADDRESS_PER_MINUTE, 1, max_keys=max_addresses, clock=clock
        )
        self.left_out = 0  # lines not written since the last one that was

    def will_log_failure(self) -> bool:
        """Whether a failed login now gets its line (the caller then looks up the name)."""
        return self._take_line()

    def will_log_refusal(self, address: str) -> bool:
        """Whether a login the limits refused from ``address`` now gets its line."""
        return self._take_client_line(f"limits\n{address}")

    def stale_form(self, address: str) -> None:
        """A login form without its double-submit token (from another site, expired, or
        posted by a script that never fetched it): logged as a refusal is."""
        if self._take_client_line(f"form\n{address}"):
            log.warning(
                "refused a login form from another site or an expired page from %s%s",
                shown_address(address),
                self._left_out_note(),
            )

    def failed(self, address: str, name: str, operator: str | None) -> None:
        """Write a failed login's line (after :meth:`will_log_failure` said yes)."""
        log.info(
            "failed login for %s from %s%s",
            shown_name(name, operator),
            shown_address(address),
            self._left_out_note(),
        )

    def refused(self, address: str, name: str, operator: str | None, wait_s: float) -> None:
        """Write a refused login's line (after :meth:`will_log_refusal` said yes)."""
        log.warning(
            "login refused by the attempt limits for %s from %s (retry in %s s)%s",
            shown_name(name, operator),
            shown_address(address),
            RateLimiter.retry_after_header(wait_s),
            self._left_out_note(),
        )

    def _take_client_line(self, key: str) -> bool:
        if self._refusals.peek(key) > 0.0:  # this client's line of the minute is written
            self.left_out += 1
            return False
        if not self._take_line():
            return False
        self._refusals.acquire(key)
        return True

    def _take_line(self) -> bool:
        if self._lines.acquire(_ALL) > 0.0:
            self.left_out += 1
            return False
        return True

    def _left_out_note(self) -> str:
        left_out, self.left_out = self.left_out, 0
        return f"; {left_out} more login lines left out before this one" if left_out else ""


def shown_name(name: str, operator: str | None) -> str:
    """``operator`` (the stored name ``name`` matched) quoted, or only the typed length."""
    if operator is not None:
        return f"operator {operator!r}"
    return f"a name that is no operator's ({len(name)} characters)"


def shown_address(address: str) -> str:
    """An IP address as it is; anything else a proxy header held, escaped and cut short."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return ascii(address[:_SHOWN_ADDRESS_CHARS])
