"""Publishing index versions: each one a folder written atomically (the index, the answer
classifier fitted on it and a manifest) and recorded in the store, live or as a candidate.

Jobs (ingest, reindex) call :meth:`Publisher.sync_index`, which publishes a new version and
marks it live; a retraining cycle stages a re-embedded candidate, makes it live when it is
better and discards it when not; :meth:`Publisher.rollback` serves an earlier one again.
Servers follow the live version at their next poll (:meth:`LiveIndex.refresh_if_stale`).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.artifacts import remove_stale_temporaries, staged_version, write_json
from retrieval.embedder import Embedder
from retrieval.index import VectorIndex
from retrieval.serving import IndexMismatch, LiveIndex, Serving
from retrieval.store import IndexVersion

log = logging.getLogger(__name__)

# Tombstones in an HNSW graph cost search time; past this share the index is rebuilt.
_MAX_TOMBSTONE_SHARE = 0.2


@dataclass(frozen=True)
class SyncReport:
    version: IndexVersion | None
    added: int
    removed: int
    rebuilt: bool
    embedded: int  # vectors computed now (the rest came from the cache)

    def embedded_words(self) -> str:
        """``embedded`` in words: "1592 added ... 1322 embedded" read as if 270 entries had
        no vector, when they share a repeated or cached text's."""
        return f"{self.embedded} new texts embedded, repeated and cached ones reuse their vectors"


class Publisher:
    """Writes and records index versions and chooses the live one, for ``live`` to serve.
    Every method holds ``live``'s write lock."""

    def __init__(self, live: LiveIndex, index_root: Path) -> None:
        self._live = live
        self.index_root = index_root
        self.store = live.store
        self.configured_embedder = live.configured_embedder
        self.config = live.config
        self.params = live.params
        self._vectors = live.vectors

    def sync_index(self, *, progress: bool = False) -> SyncReport:
        """Embed every stored entry missing from the index, drop deleted ones, and publish
        the result as a new live index version (atomically)."""
        with self._live.write_lock:
            remove_stale_temporaries(self.index_root)
            try:
                self._live.load()
                embedder, index = self._live.require().embedder, self._live.require().index
            except IndexMismatch as exc:
                log.warning("%s; rebuilding the index", exc)
                embedder = self.configured_embedder
                index = VectorIndex(embedder.dimension, "exact", self.params)
            before_embedded = self._vectors.computed
            wanted = self.store.live_entry_ids()
            needs_rebuild = (
                index.kind != self.params.kind_for(len(wanted))
                or index.tombstone_share > _MAX_TOMBSTONE_SHARE
            )
            if needs_rebuild:
                ids = sorted(wanted)
                index = VectorIndex.build(
                    np.asarray(ids, dtype=np.int64),
                    self._vectors.of(ids, embedder, progress=progress),
                    self.params,
                    embedder.dimension,
                )
                added, removed = len(ids), 0
            else:
                present = index.ids()
                removed = index.remove(np.fromiter(present - wanted, dtype=np.int64))
                missing = sorted(wanted - present)
                if missing:
                    vectors = self._vectors.of(missing, embedder, progress=progress)
                    index.add(np.asarray(missing, dtype=np.int64), vectors)
                added = len(missing)
            unchanged = not (added or removed or needs_rebuild)
            if unchanged and self._live.version is not None and embedder is self._live.embedder:
                version = self._live.version  # nothing new: keep serving the same version
                current = self._live.current
                serving = Serving(
                    embedder,
                    index,
                    self._live.classifier_of(version, embedder),
                    intent_words=(
                        current.intent_words
                        if current is not None and current.index is index
                        else self._live.fit_intent_words(sorted(index.ids()))
                    ),
                )
            else:
                serving, version = self._publish(index, embedder, max(wanted, default=0))
            self._live.swap(serving, version)
            return SyncReport(
                version, added, removed, needs_rebuild, self._vectors.computed - before_embedded
            )

    def reembed(
        self, embedder: Embedder, *, progress: bool = False, deadline: float | None = None
    ) -> SyncReport:
        """Build the whole index with ``embedder`` (a tuned version of the configured one)
        and publish it as the new live version, served with that embedder from now on.

        The previous version stays on disk and in the store for :meth:`rollback`. A crash
        before the version is recorded leaves the live one untouched, and so does
        ``deadline`` (a ``time.monotonic()`` instant) coming before every entry is
        embedded: :class:`retrieval.vectors.EmbeddingCut` is raised, nothing is published.
        """
        with self._live.write_lock:
            before_embedded = self._vectors.computed
            serving, version = self._build_with(
                embedder, live=True, progress=progress, deadline=deadline
            )
            self._live.swap(serving, version)
            added = len(serving.index)
            return SyncReport(version, added, 0, True, self._vectors.computed - before_embedded)

    def stage_reembedded(
        self,
        embedder: Embedder,
        *,
        progress: bool = False,
        extra_files: Mapping[str, Any] | None = None,
        deadline: float | None = None,
    ) -> IndexVersion:
        """Build the whole index with ``embedder`` and record it as a candidate version that
        nothing serves until :meth:`make_live`; what this object serves is unchanged.
        ``extra_files`` (name -> JSON payload) are written into the version folder;
        ``deadline``: as :meth:`reembed`'s (nothing is recorded when it cuts)."""
        with self._live.write_lock:
            return self._build_with(
                embedder,
                live=False,
                progress=progress,
                extra_files=extra_files,
                deadline=deadline,
            )[1]

    def _build_with(
        self,
        embedder: Embedder,
        *,
        live: bool,
        progress: bool,
        extra_files: Mapping[str, Any] | None = None,
        deadline: float | None = None,
    ) -> tuple[Serving, IndexVersion]:
        remove_stale_temporaries(self.index_root)
        ids = sorted(self.store.live_entry_ids())
        index = VectorIndex.build(
            np.asarray(ids, dtype=np.int64),
            self._vectors.of(ids, embedder, progress=progress, deadline=deadline),
            self.params,
            embedder.dimension,
        )
        return self._publish(
            index, embedder, max(ids, default=0), live=live, extra_files=extra_files
        )

    def make_live(self, version_id: int) -> IndexVersion:
        """Serve a recorded version (a promoted candidate, or a rollback target) from now on,
        here and, at their next poll, in every server. Raises LookupError when it is
        unknown or its folder is gone, IndexMismatch when the settings cannot serve it."""
        with self._live.write_lock:
            target = next((v for v in self.store.index_versions() if v.id == version_id), None)
            if target is None:
                raise LookupError(f"no index version {version_id}")
            if not target.folder.is_dir():
                raise LookupError(f"index version {version_id} was deleted from {target.folder}")
            self._live.embedder_serving(target)  # refuse a version the settings cannot serve
            self.store.set_live_index_version(target.id)
            self._live.load()
            assert self._live.version is not None
            return self._live.version

    def discard(self, version: IndexVersion) -> None:
        """Delete a version that is not live (a refused or abandoned candidate): its record,
        its folder, and its tuned embedder's folder and cached vectors when no other version
        uses that embedder. Raises LookupError for the live version."""
        with self._live.write_lock:
            self.store.delete_index_version(version.id)
            shutil.rmtree(version.folder, ignore_errors=True)
            location = version.embedder_location
            if location is None:
                return
            if any(v.embedder_id == version.embedder_id for v in self.store.index_versions()):
                return
            self.store.drop_cached_vectors(version.embedder_id)
            shutil.rmtree(location, ignore_errors=True)

    def rollback(self, to: int | None = None) -> IndexVersion:
        """Make an earlier index version live again (by default the one before the live
        one), with the embedder it was built with; a running server follows it.

        Raises LookupError when there is no such version or nothing to roll back to.
        """
        with self._live.write_lock:
            versions = self.store.index_versions()
            live = next((v for v in versions if v.is_live), None)
            if to is None:
                # Candidates a retraining cycle refused (or was killed judging) were never
                # served: going back means going to the pair served before this one.
                earlier = [
                    v
                    for v in versions
                    if v.first_live_at is not None and (live is None or v.id < live.id)
                ]
                if not earlier:
                    raise LookupError("no earlier index version to roll back to")
                to = earlier[-1].id
            return self.make_live(to)

    def _publish(
        self,
        index: VectorIndex,
        embedder: Embedder,
        max_entry_id: int,
        *,
        live: bool = True,
        extra_files: Mapping[str, Any] | None = None,
    ) -> tuple[Serving, IndexVersion]:
        """Write ``index`` (with an answer classifier fitted on it) as a new version and
        record it; return what serves it and the version."""
        tuned = embedder is not self.configured_embedder
        classifier = None
        if self.config.answer_classifier:
            classifier = self._live.fit_answer_classifier(sorted(index.ids()), embedder)
        with staged_version(self.index_root) as staged:
            index.save(staged.path)
            if classifier is not None:
                classifier.save(staged.path)
            for name, payload in (extra_files or {}).items():
                write_json(staged.path / name, payload)
            write_json(
                staged.path / "manifest.json",
                {
                    "embedder": embedder.name,
                    "embedder_id": embedder.model_id,
                    "base_embedder": self.configured_embedder.name,
                    "kind": index.kind,
                    "entries": len(index),
                    "max_entry_id": max_entry_id,
                    "counts": self.store.counts(),
                },
            )
        assert staged.final is not None
        version = self.store.record_index_version(
            staged.final,
            embedder.model_id,
            index.kind,
            len(index),
            max_entry_id,
            embedder_location=embedder.name if tuned else None,
            base_embedder=self.configured_embedder.name,
            live=live,
        )
        intent_words = self._live.fit_intent_words(sorted(index.ids()))
        return Serving(embedder, index, classifier, intent_words=intent_words), version
