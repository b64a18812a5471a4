"""Whether a store can write, shared by the stores that find out (SQLite and PostgreSQL
alike) and the health check.

A full disk fails every write, often many a second. Its cause is logged once, with the
file, when the store stops being writable, and once more when it is writable again; in
between each failed write only counts, so the log is not flooded and the cause is not
buried. Reads keep working meanwhile, so only a successful write clears the state, and
only once no write has been refused for ``settle_s``: a small write that fits in the
file's free pages can succeed between refused ones, and the state must not flap with it.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.core.errors import StorageUnavailable

log = logging.getLogger(__name__)


# PostgreSQL's SQLSTATE when a file cannot grow or be written for lack of room (psycopg's
# errors.DiskFull: "could not extend file ...: No space left on device"; a quota reads the
# same). The rest of its class 53, insufficient_resources, is not a full disk: out of
# memory (53200), too many connections (53300), a configured limit such as
# temp_file_limit (53400), and 53000 itself for exhausted slots (background workers,
# prepared transactions, locks). Those pass or need a setting changed, not room freed, so
# they stay errors rather than being called a full disk.
POSTGRES_DISK_FULL = "53100"


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the database's size limit) is full."""
    driver_error = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
    if isinstance(driver_error, BaseException):
        return out_of_space(driver_error)
    if isinstance(exc, sqlite3.Error):
        # Extended result codes keep the primary code in the low byte.
        return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_FULL
    sqlstate = getattr(exc, "sqlstate", None)  # a psycopg.Error, without importing psycopg
    if isinstance(sqlstate, str):
        return sqlstate == POSTGRES_DISK_FULL
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class StorageHealth:
    """The writable state of the store at ``where`` (a path or a database name).

    Thread-safe: the SQLite store reports from its worker thread, the web adapter reads
    from the event loop. A store runs each unit of work inside :meth:`refusing_when_full`
    and calls :meth:`wrote` after one that wrote.
    """

    def __init__(
        self, where: str, *, settle_s: float = 30.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.where = where
        self.settle_s = settle_s
        self._clock = clock
        self._last_refusal = 0.0
        self._lock = threading.Lock()
        self._failing_since: float | None = None
        self._cause = ""
        self._failed_before_outage = 0
        self.failed_writes = 0  # since start-up, for metrics

    @property
    def writable(self) -> bool:
        return self._failing_since is None

    @property
    def failing_since(self) -> float | None:
        """When the current outage began (epoch seconds), or None while writable."""
        return self._failing_since

    @contextmanager
    def refusing_when_full(self) -> Iterator[None]:
        """Raise StorageUnavailable instead of an error that says the disk is full.

        The failed work stored nothing (its transaction was rolled back) and everything
        stored before is intact, which is what StorageUnavailable promises.
        """
        try:
            yield
        except Exception as exc:
            if out_of_space(exc):
                raise self.write_failed(exc) from exc
            raise

    def write_failed(self, cause: BaseException) -> StorageUnavailable:
        """Record a write that failed for lack of space; return the domain error to raise."""
        with self._lock:
            self.failed_writes += 1
            self._last_refusal = self._clock()
            first = self._failing_since is None
            if first:
                self._failing_since = self._clock()
                self._failed_before_outage = self.failed_writes - 1
                self._cause = f"{type(cause).__name__}: {cause}"
        if first:
            log.error(
                "storage at %s is full, nothing more can be stored (%s); customers are "
                "asked to retry until there is room again",
                self.where,
                self._cause,
            )
        return StorageUnavailable(f"the store at {self.where} is full")

    def wrote(self) -> None:
        """A write succeeded: the store is writable again once none was refused lately."""
        if self._failing_since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._clock() - self._last_refusal < self.settle_s:
                return
            since, self._failing_since = self._failing_since, None
            failed = self.failed_writes - self._failed_before_outage
        if since is not None:
            log.warning(
                "storage at %s is writable again after %.0f s (%d writes refused)",
                self.where,
                self._clock() - since,
                failed,
            )
