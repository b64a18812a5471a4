"""The knowledge base: stored exchanges, their embeddings and the live FAISS index.

Jobs (ingest, reindex) call :meth:`KnowledgeBase.sync_index`, which publishes a new index
version folder atomically and then marks it live in the store (the home's SQLite file, or
PostgreSQL for replicas on several hosts: :class:`retrieval.store.KnowledgeStore`). A server
calls :meth:`KnowledgeBase.load` at start-up and :meth:`refresh_if_stale` periodically;
curated answers and removals made while it runs are applied to its in-memory index at once
and are persisted in the store, so a restart replays them on top of the live version.

:class:`KnowledgeBase` is the one object callers hold; the work is done by the parts it
composes, each over the same store and the same write lock:

- :class:`retrieval.serving.LiveIndex`: the version served, its embedder and classifier;
- :class:`retrieval.publishing.Publisher`: writing, recording and choosing index versions;
- :class:`retrieval.curated.CuratedAnswers`: operator answers added and removed live;
- :class:`retrieval.search.IndexSearch`: searching what is served (ranking in
  :mod:`retrieval.ranking`);
- :class:`retrieval.vectors.EntryVectors`: entry vectors, cached in the store.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.config import RetrievalConfig
from retrieval.curated import CuratedAnswers
from retrieval.embedder import Embedder
from retrieval.index import IndexParams
from retrieval.publishing import Publisher, SyncReport
from retrieval.records import Conversation, LogMessage, Query, RetrievedExchange
from retrieval.search import IndexSearch
from retrieval.serving import IndexMismatch, LiveIndex
from retrieval.store import IndexVersion, KnowledgeStore, StoredEntry
from retrieval.vectors import EntryVectors
from retrieval.verifier import Verifier, verifier_folder

# Defined with the part that uses them, imported from here as before.
__all__ = ["IndexMismatch", "KnowledgeBase", "Query", "SyncReport"]


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
        self._live = LiveIndex(
            store,
            embedder,
            config,
            self.params,
            EntryVectors(store),
            verifier_folder(index_root) if config.verifier else None,
        )
        self._publisher = Publisher(self._live, index_root)
        self._curated = CuratedAnswers(self._live)
        self._search = IndexSearch(self._live)

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

    # -- serving: retrieval.serving.LiveIndex -----------------------------------------------
    @property
    def version(self) -> IndexVersion | None:
        return self._live.version

    @property
    def embedder(self) -> Embedder:
        """The embedder that serves the live index: a tuned version of the configured one
        when the live index was built with it, else the configured one."""
        return self._live.embedder

    @property
    def loads(self) -> int:
        """Live index versions read from disk by load(): rebuilds, not edits."""
        return self._live.loads

    def embedder_at(self, location: str) -> Embedder:
        return self._live.embedder_at(location)

    def load(self) -> None:
        self._live.load()

    def refresh_if_stale(self) -> bool:
        return self._live.refresh_if_stale()

    def follow_curated(self) -> tuple[int, int]:
        return self._live.follow_curated()

    def follow_verifier(self) -> None:
        self._live.follow_verifier()

    def served_verifier(self) -> Verifier | None:
        """The reply verifier its searches ask (None: none is served)."""
        return self._live.require().verifier

    def serving(self, version: IndexVersion) -> KnowledgeBase:
        """A knowledge base over the same store that searches ``version`` (live or not)
        with its embedder, for judging a candidate before it is live. It shares this one's
        store: close this one, not it. Raises IndexMismatch like :meth:`load`."""
        view = KnowledgeBase(self.store, self.configured_embedder, self.index_root, self.config)
        view._live.serve(version)
        return view

    def classifier_excluding(self, entry_ids: Collection[int]) -> KnowledgeBase:
        """A view of what this one serves whose answer classifier is fitted without the
        entries ``entry_ids``, for validating on questions that are in the index: a
        classifier fitted on a question is surer of it than of a new one. Searches
        should exclude those entries' conversations too. Shares this one's store."""
        serving = self._live.excluding(entry_ids)
        view = KnowledgeBase(self.store, self.configured_embedder, self.index_root, self.config)
        view._live.swap(serving, self._live.version)
        return view

    def verified_by(self, verifier: Verifier) -> KnowledgeBase:
        """A view of what this one serves whose searches ask ``verifier`` instead of the
        one published, for judging a candidate verifier before it is. Shares this one's
        store."""
        serving = replace(self._live.require(), verifier=verifier)
        view = KnowledgeBase(self.store, self.configured_embedder, self.index_root, self.config)
        view._live.swap(serving, self._live.version)
        return view

    # -- publishing index versions (jobs): retrieval.publishing.Publisher -------------------
    def sync_index(self, *, progress: bool = False) -> SyncReport:
        return self._publisher.sync_index(progress=progress)

    def reembed(
        self, embedder: Embedder, *, progress: bool = False, deadline: float | None = None
    ) -> SyncReport:
        return self._publisher.reembed(embedder, progress=progress, deadline=deadline)

    def stage_reembedded(
        self,
        embedder: Embedder,
        *,
        progress: bool = False,
        extra_files: Mapping[str, Any] | None = None,
        deadline: float | None = None,
    ) -> IndexVersion:
        return self._publisher.stage_reembedded(
            embedder, progress=progress, extra_files=extra_files, deadline=deadline
        )

    def make_live(self, version_id: int) -> IndexVersion:
        return self._publisher.make_live(version_id)

    def discard(self, version: IndexVersion) -> None:
        self._publisher.discard(version)

    def rollback(self, to: int | None = None) -> IndexVersion:
        return self._publisher.rollback(to)

    # -- curated answers (live edits): retrieval.curated.CuratedAnswers ---------------------
    def add_curated(
        self,
        source_id: str,
        question: str,
        answer: str,
        *,
        context: Sequence[LogMessage] = (),
    ) -> int:
        return self._curated.add(source_id, question, answer, context=context)

    def follow_source(self, source_id: str) -> tuple[int, int]:
        return self._curated.follow_source(source_id)

    def remove_source(self, source_id: str) -> int:
        return self._curated.remove_source(source_id)

    # -- search: retrieval.search.IndexSearch -----------------------------------------------
    def search(
        self,
        context: Sequence[LogMessage],
        customer_text: str,
        k: int | None = None,
        *,
        exclude_conversation_ids: Collection[str] = (),
    ) -> list[RetrievedExchange]:
        return self._search.search(
            context, customer_text, k, exclude_conversation_ids=exclude_conversation_ids
        )

    def search_batch(
        self,
        queries: Sequence[Query],
        k: int | None = None,
        *,
        exclude_conversation_ids: Sequence[Collection[str]] | None = None,
        query_vectors: np.ndarray | None = None,
        verify: bool = True,
    ) -> list[list[RetrievedExchange]]:
        return self._search.search_batch(
            queries,
            k,
            exclude_conversation_ids=exclude_conversation_ids,
            query_vectors=query_vectors,
            verify=verify,
        )

    def nearest_entries(
        self, texts: Sequence[str], fetch: int
    ) -> tuple[np.ndarray, list[list[tuple[float, StoredEntry]]]]:
        return self._search.nearest_entries(texts, fetch)

    def entries_nearest_entries(
        self, entry_ids: Sequence[int], fetch: int
    ) -> tuple[np.ndarray, list[list[tuple[float, StoredEntry]]]]:
        return self._search.entries_nearest_entries(entry_ids, fetch)

    # -- data for training ------------------------------------------------------------------
    def iter_conversations(self) -> Iterator[Conversation]:
        """Every ingested conversation, PII already scrubbed."""
        return self.store.iter_conversations()
