"""The knowledge base: stored exchanges, their embeddings and the live FAISS index.

Jobs (ingest, reindex) call :meth:`KnowledgeBase.sync_index`, which publishes a new index
version folder atomically and then marks it live in the store (the home's SQLite file, or
PostgreSQL for replicas on several hosts: :class:`retrieval.store.KnowledgeStore`). A server
calls :meth:`KnowledgeBase.load` at start-up and :meth:`refresh_if_stale` periodically;
curated answers and removals made while it runs are applied to its in-memory index at once
and are persisted in the store, so a restart replays them on top of the live version.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.answer_classifier import AnswerClassifier, fit_answer_classifier
from retrieval.artifacts import remove_stale_temporaries, staged_version, write_json
from retrieval.config import RetrievalConfig
from retrieval.embedder import Embedder
from retrieval.index import IndexParams, VectorIndex
from retrieval.ranking import fetch_size, rank
from retrieval.records import Conversation, ExchangeEntry, LogMessage, RetrievedExchange
from retrieval.store import IndexVersion, KnowledgeStore, StoredEntry
from retrieval.vectors import EntryVectors

log = logging.getLogger(__name__)

# Tombstones in an HNSW graph cost search time; past this share the index is rebuilt.
_MAX_TOMBSTONE_SHARE = 0.2


@dataclass(frozen=True)
class Query:
    """What is searched for: the customer's message and the conversation before it."""

    customer_text: str
    context: tuple[LogMessage, ...] = ()


@dataclass(frozen=True)
class SyncReport:
    version: IndexVersion | None
    added: int
    removed: int
    rebuilt: bool
    embedded: int  # vectors computed now (the rest came from the cache)


class IndexMismatch(RuntimeError):
    """The live index was built with another embedder than the configured one."""


@dataclass(frozen=True)
class _Serving:
    """The embedder, the index built with it and the answer classifier fitted on it:
    swapped together, read together."""

    embedder: Embedder
    index: VectorIndex
    classifier: AnswerClassifier | None = None


class KnowledgeBase:
    """Search over past exchanges and curated answers. Thread-safe; call from workers."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        index_root: Path,
        config: RetrievalConfig,
    ) -> None:
        self.store = store
        self.configured_embedder = embedder
        self.index_root = index_root
        self.config = config
        self.params = IndexParams(
            approximate_threshold=config.approximate_threshold,
            hnsw_m=config.hnsw_m,
            hnsw_ef_construction=config.hnsw_ef_construction,
            hnsw_ef_search=config.hnsw_ef_search,
        )
        self._serving: _Serving | None = None
        self._version: IndexVersion | None = None
        self._write_lock = threading.RLock()
        self._vectors = EntryVectors(store)
        self.loads = 0  # live index versions read from disk by load(): rebuilds, not edits
        self._curated_mark: tuple[int, int] | None = None  # see follow_curated

    @classmethod
    def open(
        cls,
        database: Path,
        index_root: Path,
        config: RetrievalConfig,
        embedder: Embedder | None = None,
        *,
        postgres_url: str | None = None,
    ) -> KnowledgeBase:
        """Open the store (in the SQLite file ``database``, or in PostgreSQL when
        ``postgres_url`` is set); loads no model and no index yet."""
        embedder = embedder or Embedder(
            config.embedder,
            device=config.device,
            batch_size=config.embed_batch_size,
            max_seq_length=config.embed_max_seq_length,
        )
        store = KnowledgeStore.open(database, postgres_url=postgres_url)
        return cls(store, embedder, index_root, config)

    def close(self) -> None:
        self.store.close()

    # -- serving ----------------------------------------------------------------------------
    @property
    def version(self) -> IndexVersion | None:
        return self._version

    @property
    def embedder(self) -> Embedder:
        """The embedder that serves the live index: a tuned version of the configured one
        when the live index was built with it, else the configured one."""
        serving = self._serving
        return serving.embedder if serving is not None else self.configured_embedder

    def embedder_at(self, location: str) -> Embedder:
        """An embedder like the configured one (device, batch, length) loading ``location``."""
        base = self.configured_embedder
        return Embedder(
            location,
            device=base.device,
            batch_size=base.batch_size,
            max_seq_length=base.max_seq_length,
        )

    def _embedder_serving(self, version: IndexVersion) -> Embedder:
        """The embedder the index ``version`` must be searched with; raises IndexMismatch
        when it was built for another configured embedder than the current one."""
        configured = self.configured_embedder
        if version.embedder_location is None or version.base_embedder != configured.name:
            if version.embedder_id != configured.model_id:
                raise IndexMismatch(
                    f"live index {version.folder} was built with {version.embedder_id!r}"
                    f" but the configured embedder is {configured.model_id!r};"
                    " run `supportbot ingest` to re-embed"
                )
            return configured
        current = self._serving.embedder if self._serving is not None else None
        if current is not None and current.model_id == version.embedder_id:
            return current  # already loaded
        embedder = self.embedder_at(version.embedder_location)
        if embedder.model_id != version.embedder_id:
            raise IndexMismatch(
                f"live index {version.folder} was built with {version.embedder_id!r}, which"
                f" cannot be loaded from {version.embedder_location!r} with the current"
                " settings; run `supportbot ingest` to re-embed"
            )
        return embedder

    def load(self) -> None:
        """Load the live index version and replay curated additions and removals since.

        Log entries stored by an ingest that did not finish are not served until the next
        ingest publishes them. Raises IndexMismatch when the live index was built with
        another embedder.
        """
        with self._write_lock:
            self._serve(self.store.live_index_version())
            self.loads += 1

    def _serve(self, version: IndexVersion | None) -> None:
        if version is None:
            embedder = self.configured_embedder
            index = VectorIndex(embedder.dimension, "exact", self.params)
        else:
            embedder = self._embedder_serving(version)
            _ = embedder.dimension  # load the model now, not in a customer's search
            index = VectorIndex.load(version.folder, self.params)
        mark = self.store.curated_mark()  # before: a change made meanwhile is followed later
        self._reconcile(index, embedder, include_logs=False)
        self._serving = _Serving(embedder, index, self._classifier_of(version, embedder))
        self._version = version
        self._curated_mark = mark

    def _classifier_of(
        self, version: IndexVersion | None, embedder: Embedder
    ) -> AnswerClassifier | None:
        if version is None or not self.config.answer_classifier:
            return None
        classifier = AnswerClassifier.load(version.folder)
        if classifier is not None and classifier.embedder_id != embedder.model_id:
            return None  # cannot happen for a published version; never mix vector spaces
        return classifier

    def serving(self, version: IndexVersion) -> KnowledgeBase:
        """A knowledge base over the same store that searches ``version`` (live or not)
        with its embedder, for judging a candidate before it is live. It shares this one's
        store: close this one, not it. Raises IndexMismatch like :meth:`load`."""
        view = KnowledgeBase(self.store, self.configured_embedder, self.index_root, self.config)
        with view._write_lock:
            view._serve(version)
        return view

    def classifier_excluding(self, entry_ids: Collection[int]) -> KnowledgeBase:
        """A view of what this one serves whose answer classifier is fitted without the
        entries ``entry_ids``, for validating on questions that are in the index: a
        classifier fitted on a question is surer of it than of a new one. Searches
        should exclude those entries' conversations too. Shares this one's store."""
        serving = self._require_serving()
        classifier = None
        if serving.classifier is not None:  # else the confidence here must not use one either
            kept = sorted(serving.index.ids() - set(entry_ids))
            classifier = self.fit_answer_classifier(kept, serving.embedder)
        view = KnowledgeBase(self.store, self.configured_embedder, self.index_root, self.config)
        view._serving = _Serving(serving.embedder, serving.index, classifier)
        view._version = self._version
        return view

    def fit_answer_classifier(
        self, entry_ids: Sequence[int], embedder: Embedder
    ) -> AnswerClassifier | None:
        """An answer classifier fitted on the questions of ``entry_ids`` (see
        retrieval.answer_classifier); None when fewer than two answers are frequent enough."""
        from retrieval.tuning_data import normalise_reply

        stored = self.store.entries_by_id(entry_ids)
        ids = [i for i in entry_ids if i in stored]
        if not ids:
            return None
        return fit_answer_classifier(
            self._vectors.of(ids, embedder),
            [stored[i].reply_hash for i in ids],
            [normalise_reply(stored[i].entry.agent_reply) for i in ids],
            embedder_id=embedder.model_id,
            min_members=self.config.answer_classifier_min_questions,
        )

    def refresh_if_stale(self) -> bool:
        """Reload when another process published a newer index version; True if reloaded.

        Otherwise apply the curated answers another process added, replaced or removed
        since (``supportbot curated edit`` or ``withdraw`` while this server runs).
        """
        live = self.store.live_index_version()
        current = self._version.id if self._version else None
        if live is None or live.id == current:
            self.follow_curated()
            return False
        self.load()
        log.info("switched to index version %s (%s)", live.id, live.folder)
        return True

    def follow_curated(self) -> tuple[int, int]:
        """Bring the live index's curated entries in line with the store when any changed
        since this was last called; return (added, removed). One small query when none did.
        """
        with self._write_lock:
            if self._serving is None:
                return 0, 0  # load() reads everything anyway
            mark = self.store.curated_mark()
            if mark == self._curated_mark:
                return 0, 0
            serving = self._serving
            live, deleted = self.store.curated_ids()
            present = serving.index.ids()
            removed = serving.index.remove(np.asarray(sorted(deleted & present), dtype=np.int64))
            missing = sorted(live - present)
            if missing:
                vectors = self._vectors.of(missing, serving.embedder)
                serving.index.add(np.asarray(missing, dtype=np.int64), vectors)
            self._curated_mark = mark
            if missing or removed:
                log.info("curated answers changed: %d added, %d removed", len(missing), removed)
            return len(missing), removed

    def _reconcile(
        self, index: VectorIndex, embedder: Embedder, *, include_logs: bool
    ) -> tuple[int, int]:
        """Bring ``index`` in line with the store; return (added, removed)."""
        present = index.ids()
        wanted = self.store.live_entry_ids(kind=None if include_logs else "curated")
        if not include_logs:
            # Log entries in the loaded version stay unless they were deleted since.
            live_logs = self.store.live_entry_ids(kind="log")
            wanted |= present & live_logs
        removed = index.remove(np.fromiter(present - wanted, dtype=np.int64))
        missing = sorted(wanted - present)
        if missing:
            index.add(np.asarray(missing, dtype=np.int64), self._vectors.of(missing, embedder))
        return len(missing), removed

    def _require_serving(self) -> _Serving:
        if self._serving is None:
            self.load()
        assert self._serving is not None
        return self._serving

    # -- jobs -------------------------------------------------------------------------------
    def sync_index(self, *, progress: bool = False) -> SyncReport:
        """Embed every stored entry missing from the index, drop deleted ones, and publish
        the result as a new live index version (atomically)."""
        with self._write_lock:
            remove_stale_temporaries(self.index_root)
            try:
                self.load()
                embedder, index = self._require_serving().embedder, self._require_serving().index
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
            if unchanged and self._version is not None and embedder is self.embedder:
                version = self._version  # nothing new: keep serving the same version
                serving = _Serving(embedder, index, self._classifier_of(version, embedder))
            else:
                serving, version = self._publish(index, embedder, max(wanted, default=0))
            self._serving, self._version = serving, version
            return SyncReport(
                version, added, removed, needs_rebuild, self._vectors.computed - before_embedded
            )

    def reembed(self, embedder: Embedder, *, progress: bool = False) -> SyncReport:
        """Build the whole index with ``embedder`` (a tuned version of the configured one)
        and publish it as the new live version, served with that embedder from now on.

        The previous version stays on disk and in the store for :meth:`rollback`. A crash
        before the version is recorded leaves the live one untouched.
        """
        with self._write_lock:
            before_embedded = self._vectors.computed
            serving, version = self._build_with(embedder, live=True, progress=progress)
            self._serving, self._version = serving, version
            added = len(serving.index)
            return SyncReport(version, added, 0, True, self._vectors.computed - before_embedded)

    def stage_reembedded(
        self,
        embedder: Embedder,
        *,
        progress: bool = False,
        extra_files: Mapping[str, Any] | None = None,
    ) -> IndexVersion:
        """Build the whole index with ``embedder`` and record it as a candidate version that
        nothing serves until :meth:`make_live`; what this object serves is unchanged.
        ``extra_files`` (name -> JSON payload) are written into the version folder."""
        with self._write_lock:
            return self._build_with(
                embedder, live=False, progress=progress, extra_files=extra_files
            )[1]

    def _build_with(
        self,
        embedder: Embedder,
        *,
        live: bool,
        progress: bool,
        extra_files: Mapping[str, Any] | None = None,
    ) -> tuple[_Serving, IndexVersion]:
        remove_stale_temporaries(self.index_root)
        ids = sorted(self.store.live_entry_ids())
        index = VectorIndex.build(
            np.asarray(ids, dtype=np.int64),
            self._vectors.of(ids, embedder, progress=progress),
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
        with self._write_lock:
            target = next((v for v in self.store.index_versions() if v.id == version_id), None)
            if target is None:
                raise LookupError(f"no index version {version_id}")
            if not target.folder.is_dir():
                raise LookupError(f"index version {version_id} was deleted from {target.folder}")
            self._embedder_serving(target)  # refuse a version the settings cannot serve
            self.store.set_live_index_version(target.id)
            self.load()
            assert self._version is not None
            return self._version

    def discard(self, version: IndexVersion) -> None:
        """Delete a version that is not live (a refused or abandoned candidate): its record,
        its folder, and its tuned embedder's folder and cached vectors when no other version
        uses that embedder. Raises LookupError for the live version."""
        with self._write_lock:
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
        with self._write_lock:
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
    ) -> tuple[_Serving, IndexVersion]:
        """Write ``index`` (with an answer classifier fitted on it) as a new version and
        record it; return what serves it and the version."""
        tuned = embedder is not self.configured_embedder
        classifier = None
        if self.config.answer_classifier:
            classifier = self.fit_answer_classifier(sorted(index.ids()), embedder)
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
        return _Serving(embedder, index, classifier), version

    # -- live edits -------------------------------------------------------------------------
    def add_curated(
        self,
        source_id: str,
        question: str,
        answer: str,
        *,
        context: Sequence[LogMessage] = (),
    ) -> int:
        """Store an operator-approved answer and make it searchable at once; return its id.

        A curated answer with the same ``source_id`` is replaced.
        """
        entry = ExchangeEntry(
            source_id=source_id,
            conversation_id=source_id,
            turn_index=1,
            context=tuple(context),
            customer_text=question,
            agent_reply=answer,
            kind="curated",
        )
        with self._write_lock:
            serving = self._require_serving()
            index = serving.index
            old_ids = [i for i in self.store.delete_source(source_id) if i in index.ids()]
            entry_id = self.store.add_entry(entry)
            index.remove(np.asarray(old_ids, dtype=np.int64))
            vectors = self._vectors.of([entry_id], serving.embedder)
            index.add(np.asarray([entry_id], dtype=np.int64), vectors)
            return entry_id

    def follow_source(self, source_id: str) -> tuple[int, int]:
        """Bring the live index in line with the store for one source that another process
        (another replica) added, replaced or removed; return (added, removed).

        Cheaper than :meth:`load`: the other process cached the new entry's vector, so
        nothing is embedded again and the rest of the index is left as it is.
        """
        with self._write_lock:
            serving = self._require_serving()
            index = serving.index
            live, deleted = self.store.entry_ids_of_source(source_id)
            present = index.ids()
            removed = index.remove(np.asarray(sorted(deleted & present), dtype=np.int64))
            missing = sorted(live - present)
            if missing:
                vectors = self._vectors.of(missing, serving.embedder)
                index.add(np.asarray(missing, dtype=np.int64), vectors)
            return len(missing), removed

    def remove_source(self, source_id: str) -> int:
        """Stop serving the entry with ``source_id``; return how many entries were removed.

        Nothing is loaded for it: with no index loaded yet, the next :meth:`load` (here or
        in a server) leaves the entry out, so a job that only removes needs no model.
        """
        with self._write_lock:
            ids = self.store.delete_source(source_id)
            if self._serving is not None:
                self._serving.index.remove(np.asarray(ids, dtype=np.int64))
            return len(ids)

    # -- search -----------------------------------------------------------------------------
    def search(
        self,
        context: Sequence[LogMessage],
        customer_text: str,
        k: int | None = None,
        *,
        exclude_conversation_ids: Collection[str] = (),
    ) -> list[RetrievedExchange]:
        """The ``k`` best distinct answers for a customer message, best first."""
        query = Query(customer_text, tuple(context))
        return self.search_batch([query], k, exclude_conversation_ids=[exclude_conversation_ids])[0]

    def search_batch(
        self,
        queries: Sequence[Query],
        k: int | None = None,
        *,
        exclude_conversation_ids: Sequence[Collection[str]] | None = None,
        query_vectors: np.ndarray | None = None,
    ) -> list[list[RetrievedExchange]]:
        """Search many queries at once (one embedding batch, one FAISS call).

        Hits with the same reply are merged into one whose ``support`` counts them, so the
        ``k`` results are ``k`` different answers. ``query_vectors`` skips embedding.
        """
        from retrieval.records import query_text

        k = k or self.config.top_k
        serving = self._require_serving()  # one read: never one version's embedder with
        index = serving.index  # another version's index
        if query_vectors is None:
            query_vectors = serving.embedder.encode(
                [query_text(q.context, q.customer_text) for q in queries],
                batch_size=self.config.query_batch_size,
            )
        excluded = exclude_conversation_ids or [()] * len(queries)
        extra = max((len(e) for e in excluded), default=0)
        # Over-fetch: duplicates of one reply collapse and excluded conversations drop out.
        fetch = min(len(index), fetch_size(k, extra))
        scores, ids = index.search(query_vectors, fetch)
        stored = self.store.entries_by_id(int(i) for i in ids.ravel() if i >= 0)
        classifier = serving.classifier
        probabilities = typicality = None
        if classifier is not None:
            probabilities = classifier.probabilities(query_vectors)
            typicality = classifier.typicality(query_vectors)
        return [
            rank(
                row_scores,
                row_ids,
                stored,
                set(excluded[n]),
                k,
                classifier,
                None if probabilities is None else probabilities[n],
                None if typicality is None else float(typicality[n]),
                self.config,
            )
            for n, (row_scores, row_ids) in enumerate(zip(scores, ids, strict=True))
        ]

    def nearest_entries(
        self, texts: Sequence[str], fetch: int
    ) -> tuple[np.ndarray, list[list[tuple[float, StoredEntry]]]]:
        """The vectors of ``texts`` (n, dim) and, for each text, up to ``fetch`` stored
        entries nearest to it (logs and curated answers alike, no merging), nearest first;
        embedded and searched with the same version."""
        serving = self._require_serving()
        vectors = serving.embedder.encode(list(texts), batch_size=self.config.query_batch_size)
        return vectors, self._nearest(serving, vectors, fetch)

    def entries_nearest_entries(
        self, entry_ids: Sequence[int], fetch: int
    ) -> tuple[np.ndarray, list[list[tuple[float, StoredEntry]]]]:
        """As :meth:`nearest_entries` for stored entries: their vectors (from the cache, so
        nothing is embedded again) and each one's nearest entries, itself included."""
        serving = self._require_serving()
        vectors = self._vectors.of(list(entry_ids), serving.embedder)
        return vectors, self._nearest(serving, vectors, fetch)

    def _nearest(
        self, serving: _Serving, vectors: np.ndarray, fetch: int
    ) -> list[list[tuple[float, StoredEntry]]]:
        if len(vectors) == 0 or len(serving.index) == 0:
            return [[] for _ in range(len(vectors))]
        scores, ids = serving.index.search(vectors, min(len(serving.index), fetch))
        stored = self.store.entries_by_id(int(i) for i in ids.ravel() if i >= 0)
        return [
            [
                (float(score), stored[int(i)])
                for score, i in zip(r_scores, r_ids, strict=True)
                if int(i) in stored
            ]
            for r_scores, r_ids in zip(scores, ids, strict=True)
        ]

    # -- data for training ------------------------------------------------------------------
    def iter_conversations(self) -> Iterator[Conversation]:
        """Every ingested conversation, PII already scrubbed."""
        return self.store.iter_conversations()
