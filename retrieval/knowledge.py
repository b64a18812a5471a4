"""The knowledge base: stored exchanges, their embeddings and the live FAISS index.

Jobs (ingest, reindex) call :meth:`KnowledgeBase.sync_index`, which publishes a new index
version folder atomically and then marks it live in SQLite. A server calls
:meth:`KnowledgeBase.load` at start-up and :meth:`refresh_if_stale` periodically; curated
answers and removals made while it runs are applied to its in-memory index at once and are
persisted in SQLite, so a restart replays them on top of the live version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from retrieval.artifacts import remove_stale_temporaries, staged_version, write_json
from retrieval.config import RetrievalConfig
from retrieval.embedder import Embedder
from retrieval.index import IndexParams, VectorIndex
from retrieval.records import Conversation, ExchangeEntry, LogMessage, RetrievedExchange
from retrieval.store import IndexVersion, KnowledgeStore, StoredEntry

log = logging.getLogger(__name__)

# Tombstones in an HNSW graph cost search time; past this share the index is rebuilt.
_MAX_TOMBSTONE_SHARE = 0.2
_ENCODE_CHUNK = 1024


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
        self.embedder = embedder
        self.index_root = index_root
        self.config = config
        self.params = IndexParams(
            approximate_threshold=config.approximate_threshold,
            hnsw_m=config.hnsw_m,
            hnsw_ef_construction=config.hnsw_ef_construction,
            hnsw_ef_search=config.hnsw_ef_search,
        )
        self._index: VectorIndex | None = None
        self._version: IndexVersion | None = None
        self._write_lock = threading.RLock()
        self._embedded_count = 0  # vectors computed (not cached) by this object

    @classmethod
    def open(
        cls,
        database: Path,
        index_root: Path,
        config: RetrievalConfig,
        embedder: Embedder | None = None,
    ) -> KnowledgeBase:
        """Open the store; loads no model and no index yet."""
        embedder = embedder or Embedder(
            config.embedder,
            device=config.device,
            batch_size=config.embed_batch_size,
            max_seq_length=config.embed_max_seq_length,
        )
        return cls(KnowledgeStore(database), embedder, index_root, config)

    def close(self) -> None:
        self.store.close()

    # -- serving ----------------------------------------------------------------------------
    @property
    def version(self) -> IndexVersion | None:
        return self._version

    def load(self) -> None:
        """Load the live index version and replay curated additions and removals since.

        Log entries stored by an ingest that did not finish are not served until the next
        ingest publishes them. Raises IndexMismatch when the live index was built with
        another embedder.
        """
        with self._write_lock:
            version = self.store.live_index_version()
            if version is None:
                index = VectorIndex(self.embedder.dimension, "exact", self.params)
            else:
                if version.embedder_id != self.embedder.model_id:
                    raise IndexMismatch(
                        f"live index {version.folder} was built with {version.embedder_id!r}"
                        f" but the configured embedder is {self.embedder.model_id!r};"
                        " run `supportbot ingest` to re-embed"
                    )
                index = VectorIndex.load(version.folder, self.params)
            self._reconcile(index, include_logs=False)
            self._index, self._version = index, version

    def refresh_if_stale(self) -> bool:
        """Reload when another process published a newer index version; True if reloaded."""
        live = self.store.live_index_version()
        current = self._version.id if self._version else None
        if live is None or live.id == current:
            return False
        self.load()
        log.info("switched to index version %s (%s)", live.id, live.folder)
        return True

    def _reconcile(self, index: VectorIndex, *, include_logs: bool) -> tuple[int, int]:
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
            index.add(np.asarray(missing, dtype=np.int64), self._vectors_for(missing))
        return len(missing), removed

    def _require_index(self) -> VectorIndex:
        if self._index is None:
            self.load()
        assert self._index is not None
        return self._index

    # -- jobs -------------------------------------------------------------------------------
    def sync_index(self, *, progress: bool = False) -> SyncReport:
        """Embed every stored entry missing from the index, drop deleted ones, and publish
        the result as a new live index version (atomically)."""
        with self._write_lock:
            remove_stale_temporaries(self.index_root)
            try:
                self.load()
                index = self._require_index()
            except IndexMismatch as exc:
                log.warning("%s; rebuilding the index", exc)
                index = VectorIndex(self.embedder.dimension, "exact", self.params)
            before_embedded = self._embedded_count
            wanted = self.store.live_entry_ids()
            needs_rebuild = (
                index.kind != self.params.kind_for(len(wanted))
                or index.tombstone_share > _MAX_TOMBSTONE_SHARE
            )
            if needs_rebuild:
                ids = sorted(wanted)
                index = VectorIndex.build(
                    np.asarray(ids, dtype=np.int64),
                    self._vectors_for(ids, progress=progress),
                    self.params,
                    self.embedder.dimension,
                )
                added, removed = len(ids), 0
            else:
                present = index.ids()
                removed = index.remove(np.fromiter(present - wanted, dtype=np.int64))
                missing = sorted(wanted - present)
                if missing:
                    vectors = self._vectors_for(missing, progress=progress)
                    index.add(np.asarray(missing, dtype=np.int64), vectors)
                added = len(missing)
            unchanged = not (added or removed or needs_rebuild)
            if unchanged and self._version is not None:
                version = self._version  # nothing new: keep serving the same version
            else:
                version = self._publish(index, max(wanted, default=0))
            self._index, self._version = index, version
            return SyncReport(
                version, added, removed, needs_rebuild, self._embedded_count - before_embedded
            )

    def _publish(self, index: VectorIndex, max_entry_id: int) -> IndexVersion:
        with staged_version(self.index_root) as staged:
            index.save(staged.path)
            write_json(
                staged.path / "manifest.json",
                {
                    "embedder": self.embedder.name,
                    "embedder_id": self.embedder.model_id,
                    "kind": index.kind,
                    "entries": len(index),
                    "max_entry_id": max_entry_id,
                    "counts": self.store.counts(),
                },
            )
        assert staged.final is not None
        return self.store.record_index_version(
            staged.final, self.embedder.model_id, index.kind, len(index), max_entry_id
        )

    # -- embeddings -------------------------------------------------------------------------
    def _vectors_for(self, ids: Sequence[int], *, progress: bool = False) -> np.ndarray:
        """Vectors of entries ``ids`` in order, from the cache or computed and cached."""
        texts = self.store.embed_texts(ids)
        hashes = [texts[i][0] for i in ids]
        model_id = self.embedder.model_id
        cached = self.store.cached_vectors(hashes, model_id)
        todo = {h: texts[i][1] for i, h in zip(ids, hashes, strict=True) if h not in cached}
        if todo:
            items = list(todo.items())
            bar = tqdm(total=len(items), unit="text", desc="embedding", disable=not progress)
            for start in range(0, len(items), _ENCODE_CHUNK):
                chunk = items[start : start + _ENCODE_CHUNK]
                vectors = self.embedder.encode([text for _, text in chunk])
                pairs = [(h, v) for (h, _), v in zip(chunk, vectors, strict=True)]
                self.store.cache_vectors(pairs, model_id)
                cached.update(pairs)
                bar.update(len(chunk))
            bar.close()
            self._embedded_count += len(items)
        if not ids:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.stack([cached[h] for h in hashes]).astype(np.float32, copy=False)

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
            index = self._require_index()
            old_ids = [i for i in self.store.delete_source(source_id) if i in index.ids()]
            entry_id = self.store.add_entry(entry)
            index.remove(np.asarray(old_ids, dtype=np.int64))
            index.add(np.asarray([entry_id], dtype=np.int64), self._vectors_for([entry_id]))
            return entry_id

    def remove_source(self, source_id: str) -> int:
        """Stop serving the entry with ``source_id``; return how many entries were removed."""
        with self._write_lock:
            index = self._require_index()
            ids = self.store.delete_source(source_id)
            index.remove(np.asarray(ids, dtype=np.int64))
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
        index = self._require_index()
        if query_vectors is None:
            query_vectors = self.embedder.encode(
                [query_text(q.context, q.customer_text) for q in queries]
            )
        excluded = exclude_conversation_ids or [()] * len(queries)
        extra = max((len(e) for e in excluded), default=0)
        # Over-fetch: duplicates of one reply collapse and excluded conversations drop out.
        fetch = min(len(index), 4 * k + 8 * extra + 8)
        scores, ids = index.search(query_vectors, fetch)
        stored = self.store.entries_by_id(int(i) for i in ids.ravel() if i >= 0)
        return [
            self._rank(row_scores, row_ids, stored, set(excluded[n]), k)
            for n, (row_scores, row_ids) in enumerate(zip(scores, ids, strict=True))
        ]

    def _rank(
        self,
        scores: np.ndarray,
        ids: np.ndarray,
        stored: dict[int, StoredEntry],
        excluded: set[str],
        k: int,
    ) -> list[RetrievedExchange]:
        best: dict[str, tuple[float, StoredEntry]] = {}
        support: dict[str, int] = {}
        for score, entry_id in zip(scores, ids, strict=True):
            item = stored.get(int(entry_id))
            if item is None or item.entry.conversation_id in excluded:
                continue
            value = float(score)
            if item.entry.kind == "curated":
                value += self.config.curated_bonus
            key = item.reply_hash
            support[key] = support.get(key, 0) + 1
            if key not in best or value > best[key][0]:
                best[key] = (value, item)
        ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)[:k]
        return [
            RetrievedExchange(
                score=value,
                source_id=item.entry.source_id,
                customer_text=item.entry.customer_text,
                agent_reply=item.entry.agent_reply,
                kind=item.entry.kind,
                conversation_id=item.entry.conversation_id,
                context=item.entry.context,
                support=support[key],
            )
            for key, (value, item) in ranked
        ]

    # -- data for training ------------------------------------------------------------------
    def iter_conversations(self) -> Iterator[Conversation]:
        """Every ingested conversation, PII already scrubbed."""
        return self.store.iter_conversations()
