"""Regular expressions compiled when first used.

The name finder declares 78 patterns at module level. Compiled at import they
took about half a second, which every ``supportbot`` command paid (the command line imports
the scrubber's modules to build it), whether it then scrubbed anything or not.
"""

from __future__ import annotations

from typing import Any

import regex


class LazyPattern:
    """``regex.compile(pattern, flags)`` on first use; otherwise the compiled pattern."""

    __slots__ = ("_compiled", "_flags", "_pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._pattern = pattern
        self._flags = flags
        self._compiled: Any = None

    def __getattr__(self, name: str) -> Any:
        # Two threads may compile it at once: both get the same pattern.
        if self._compiled is None:
            self._compiled = regex.compile(self._pattern, self._flags)
        return getattr(self._compiled, name)

    def __repr__(self) -> str:
        return f"LazyPattern({self._pattern!r})"


def lazy_compile(pattern: str, flags: int = 0) -> LazyPattern:
    return LazyPattern(pattern, flags)
