"""How a row records a folder the jobs wrote (an index version, a tuned embedder, an
adapter): relative to the home, the folder that holds the SQLite file, when it lies
inside it, and found again under the reader's own home. Replicas on several hosts, each
naming the shared folders where they are mounted there, and jobs started from another
working directory find the same folder, and a home can move.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path


def recorded(folder: Path, home: Path) -> str:
    """How ``folder`` is written into a row: relative to ``home`` when inside it (as this
    process names both), else absolute."""
    inside = inside_home(folder, home)
    return inside if inside is not None else os.path.abspath(folder)


def found(recorded: str, home: Path) -> Path:
    """The folder a row names, as this process reaches it from its ``home``."""
    path = Path(recorded)
    return path if path.is_absolute() else home / path


def relative_to_home(recorded: str, home: Path, layout: Collection[tuple[str, ...]]) -> str:
    """A folder as a SQLite database of an earlier release recorded it, as rows record it
    now: relative to ``home``, the folder holding the SQLite file.

    Those releases kept paths as given to the job that wrote them: absolute, or relative to
    that job's working directory, which is unknown here. Such a path counts as the home's
    when it lies in the home seen from this working directory, or else when its parent ends
    in one of the home's ``layout`` folders (``("models", "adapters")`` for
    ``models/adapters/<version>``). Any other path becomes absolute.
    """
    folder = Path(recorded)
    inside = inside_home(folder, home)
    if inside is not None:
        return inside
    for parts in layout:
        if folder.parent.parts[-len(parts) :] == parts:
            return Path(*folder.parts[-len(parts) - 1 :]).as_posix()
    return os.path.abspath(folder)


def inside_home(folder: Path, home: Path) -> str | None:
    """``folder`` relative to ``home``, or None when it lies outside."""
    for path, root in (
        (Path(os.path.abspath(folder)), Path(os.path.abspath(home))),
        (folder.resolve(), home.resolve()),  # one of the two named through a link
    ):
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return None
