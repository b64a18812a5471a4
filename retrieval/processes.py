"""Which process wrote something, and whether it still runs (Linux /proc; elsewhere
only whether the pid exists).

A job names itself by pid, host and start time (a pid is reused; the start time tells
the new process from the old one), so that a later job can tell a folder or lock left by
a killed process from one a live process is still writing. A process on another host is
never judged dead from here.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LockOwner:
    pid: int
    host: str
    start: str  # the process's start time (guards against a reused pid); "" when unknown

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


def this_process() -> LockOwner:
    return LockOwner(os.getpid(), socket.gethostname(), _process_start(os.getpid()))


def writer_marker() -> dict[str, Any]:
    """What a writer file holds for something this process writes (see :func:`writer_of`)."""
    owner = this_process()
    return {"pid": owner.pid, "host": owner.host, "start": owner.start}


def writer_of(path: Path) -> LockOwner | None:
    """The process a writer file at ``path`` names; None when there is none or it is
    unreadable."""
    try:
        with open(path, encoding="utf-8") as fh:
            writer = json.load(fh)
        return LockOwner(int(writer["pid"]), str(writer["host"]), str(writer["start"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def died_here(owner: LockOwner) -> bool:
    """Whether ``owner`` ran on this host and is gone (a process on another host is never
    judged dead from here)."""
    return owner.host == socket.gethostname() and not process_alive(owner.pid, owner.start)


def process_alive(pid: int, start: str) -> bool:
    """Whether process ``pid`` runs, and is the one started at ``start`` (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _stat_fields(pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return not start or not fields or fields[19] == start


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "" elsewhere."""
    fields = _stat_fields(pid)
    return fields[19] if fields else ""


def _stat_fields(pid: int) -> list[str]:
    """Fields 3.. of ``/proc/PID/stat`` (state first), or [] where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return []
    # The command name (field 2) may hold spaces; the fields after its ")" are plain.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields if len(fields) > 19 else []
