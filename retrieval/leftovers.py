"""Folders a killed retraining cycle left that nothing references, and how to find them.

A cycle publishes candidate folders (an adapter, a tuned embedder, an index) and records
them a moment or, for an embedder being re-embedded, minutes later. Killed in between, it
leaves a version folder that no record names. Each candidate folder a cycle writes holds
:data:`WRITER_FILE`, naming the process that wrote it; a later cycle deletes an
unreferenced folder only when that process is dead, so a folder another job (a live
``supportbot train``, another cycle) is still about to record is never touched, and
neither is any folder without the file. Referenced folders (live, previously live, or
candidates recorded with their cycle) are never candidates for deletion.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

from retrieval.artifacts import list_versions
from retrieval.processes import died_here, writer_of

log = logging.getLogger(__name__)

WRITER_FILE = "cycle_writer.json"


def written_by_dead_process(folder: Path) -> bool:
    """True when ``folder`` names its writer (:data:`WRITER_FILE`, holding
    ``retrieval.processes.writer_marker()``) and that process is gone from this host."""
    writer = writer_of(folder / WRITER_FILE)
    return writer is not None and died_here(writer)


def dead_writers_folders(root: Path, referenced: Iterable[Path | str]) -> list[Path]:
    """Version folders under ``root`` that no record names and whose writer is dead.

    Records hold paths as they were given (relative to the working directory of the job
    that wrote them, when the home was given relative), so a folder counts as referenced
    when any record names a folder of the same version name: wrong only towards keeping.
    """
    names = {Path(p).name for p in referenced}
    return [
        folder
        for folder in list_versions(root)
        if folder.name not in names and written_by_dead_process(folder)
    ]


def remove_dead_writers_folders(root: Path, referenced: Iterable[Path | str]) -> list[Path]:
    """Delete :func:`dead_writers_folders`; return them."""
    removed = dead_writers_folders(root, referenced)
    for folder in removed:
        log.warning("deleting %s: left by a killed cycle, referenced by nothing", folder)
        shutil.rmtree(folder, ignore_errors=True)
    return removed
