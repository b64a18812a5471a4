"""Versioned artifact folders written atomically.

A job writes into a hidden temporary folder beside the final one and renames it into place
only when everything is flushed, so a reader never sees a half-written version and a
killed job leaves nothing but a temporary folder that a later run removes: at once when
the folder names its writer and that process is dead on this host, else (a job on another
host sharing the folder, which may still be writing) once it has been left alone for
``abandoned_after_s``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.processes import died_here, writer_marker, writer_of

_VERSION_RE = re.compile(r"^v(\d{4,})$")
_TMP_PREFIX = ".tmp-"
_WRITER_FILE = ".writer.json"  # in a temporary folder: the process writing it
# Writing a version's files takes seconds to minutes; a temporary folder untouched for an
# hour belongs to a job that died, wherever it ran.
_ABANDONED_AFTER_S = 3600.0


def version_name(number: int) -> str:
    return f"v{number:04d}"


def list_versions(root: Path) -> list[Path]:
    """Completed version folders under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
    return sorted(found, key=lambda p: int(p.name[1:]))


def next_version_number(root: Path) -> int:
    versions = list_versions(root)
    return int(versions[-1].name[1:]) + 1 if versions else 1


def remove_stale_temporaries(root: Path, *, abandoned_after_s: float = _ABANDONED_AFTER_S) -> int:
    """Delete temporary folders left by killed jobs; return how many were removed.

    Another job, here or on another host sharing ``root``, may be writing one now: a
    folder goes when its writer is dead on this host, or when it names no writer here and
    nothing touched it for ``abandoned_after_s``.
    """
    if not root.is_dir():
        return 0
    stale = [
        p
        for p in root.iterdir()
        if p.name.startswith(_TMP_PREFIX) and _abandoned(p, abandoned_after_s)
    ]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)


def _abandoned(folder: Path, abandoned_after_s: float) -> bool:
    writer = writer_of(folder / _WRITER_FILE)
    if writer is not None and writer.host == socket.gethostname():
        return died_here(writer)
    try:
        untouched = time.time() - folder.stat().st_mtime
    except OSError:
        return False  # gone meanwhile
    return untouched >= abandoned_after_s


@dataclass
class StagedVersion:
    """A version folder being written: fill ``path``; ``final`` is set once published."""

    path: Path
    final: Path | None = None


@contextlib.contextmanager
def staged_version(root: Path) -> Iterator[StagedVersion]:
    """Yield a temporary folder that becomes ``root/vNNNN`` (the next number) on success.

    On an exception the temporary folder is deleted and nothing is published.
    """
    root.mkdir(parents=True, exist_ok=True)
    staged = StagedVersion(Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=root)))
    try:
        write_json(staged.path / _WRITER_FILE, writer_marker())
        yield staged
    except BaseException:
        shutil.rmtree(staged.path, ignore_errors=True)
        raise
    staged.final = publish_folder(staged.path, root)
    # Named until renamed, so that a job killed just before the rename leaves a folder
    # that says whose it was; not part of the version (a leftover one is harmless).
    (staged.final / _WRITER_FILE).unlink(missing_ok=True)


def publish_folder(tmp: Path, root: Path) -> Path:
    """Rename a finished temporary folder to the next free version name and return it."""
    _fsync_tree(tmp)
    while True:
        final = root / version_name(next_version_number(root))
        try:
            os.rename(tmp, final)  # atomic on POSIX; fails if another job took the name
        except OSError:
            if final.exists():
                continue
            raise
        _fsync_dir(root)
        return final


@contextlib.contextmanager
def updating(path: Path) -> Iterator[None]:
    """Hold ``path`` for a read-modify-write: an exclusive lock (``flock``) on a ``.lock``
    file beside it, so that two processes or threads of this host updating one JSON file
    (an operator choosing the hand-off target while ``calibrate`` saves) do not each write
    what they read before the other wrote and lose its change. Hosts sharing the folder
    over a network file system are not kept apart by it."""
    import fcntl  # POSIX only; imported here so that the module still imports elsewhere

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_json(path: Path, payload: Any) -> None:
    """Write JSON through a temporary file and rename, so readers see old or new, never half.

    The temporary file's name is unique: two writers at once (an operator choosing the
    hand-off target while ``calibrate`` saves, replicas sharing ``indexes/``) must not
    write into the same one; the last rename wins whole."""
    # Not mkstemp: its files are private to their owner, and replicas may run as others.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
