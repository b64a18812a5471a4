"""FAISS vector index: exact while small, HNSW past a threshold, with live add and remove.

Vectors are L2-normalised, so inner product is cosine similarity. Every vector carries the
id of its entry row in the store (``IndexIDMap2``), so a hit maps straight back to its
source. Exact indexes delete for real; HNSW graphs cannot drop nodes, so removals there
are tombstones filtered at search time and dropped at the next rebuild.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

IndexKind = Literal["exact", "hnsw"]
INDEX_FILE = "index.faiss"
_PARALLEL_QUERIES = 4  # fewer queries than this are searched on one thread
META_FILE = "index.json"


@dataclass(frozen=True)
class IndexParams:
    approximate_threshold: int = 20_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 64

    def kind_for(self, size: int) -> IndexKind:
        return "hnsw" if size > self.approximate_threshold else "exact"


class VectorIndex:
    """A FAISS index of (id, vector) pairs; thread-safe for concurrent search and updates."""

    def __init__(self, dimension: int, kind: IndexKind, params: IndexParams) -> None:
        self.dimension = dimension
        self.kind: IndexKind = kind
        self.params = params
        self._index = _new_faiss_index(dimension, kind, params)
        self._ids: set[int] = set()  # every id stored in FAISS, tombstoned ones included
        self._tombstones: set[int] = set()
        self._lock = threading.RLock()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, params: IndexParams, dimension: int
    ) -> VectorIndex:
        """Index ``vectors`` (n, d) under ``ids`` (n,), choosing the kind from n."""
        index = cls(dimension, params.kind_for(len(ids)), params)
        index.add(ids, vectors)
        return index

    # -- updates ----------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors must have shape (n, {self.dimension}), got {vectors.shape}")
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids) == 0:
            return
        new_ids = [int(i) for i in ids]
        with self._lock:
            # Ids are entry rows, never reused; a repeat would return one source twice.
            clash = self._ids.intersection(new_ids)
            if clash or len(set(new_ids)) != len(new_ids):
                raise ValueError(f"ids already indexed or repeated: {sorted(clash)[:5]}")
            self._index.add_with_ids(vectors, ids)
            self._ids.update(new_ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ``ids``; return how many were present."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self._lock:
            present = [
                int(i) for i in ids if int(i) in self._ids and int(i) not in self._tombstones
            ]
            if not present:
                return 0
            if self.kind == "exact":
                self._index.remove_ids(np.asarray(present, dtype=np.int64))
                self._ids.difference_update(present)
            else:
                self._tombstones.update(present)
            return len(present)

    # -- queries ----------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, ids), each (n_queries, k); missing slots have id -1, score -inf."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        with self._lock:
            n_live = len(self)
            if n_live == 0 or k <= 0:
                return _empty(len(queries), k)
            fetch = min(k + len(self._tombstones), self._index.ntotal)
            scores, ids = self._search(queries, fetch)
            if not self._tombstones:
                return _pad(scores, ids, k)
            tombstones = self._tombstones
        keep_scores, keep_ids = _empty(len(queries), k)
        for row in range(len(queries)):
            mask = np.array([i != -1 and int(i) not in tombstones for i in ids[row]])
            row_ids, row_scores = ids[row][mask][:k], scores[row][mask][:k]
            keep_ids[row, : len(row_ids)] = row_ids
            keep_scores[row, : len(row_scores)] = row_scores
        return keep_scores, keep_ids

    def _search(self, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        # FAISS parallelises over queries with OpenMP. For one or two queries the thread
        # team only costs time, and on a small machine it waits on cores that torch's own
        # pool (the query encoder) is still spinning on: p95 latency tripled. The caller
        # holds the lock, so changing the process-wide setting here races with nobody.
        index: Any = self._index
        if len(queries) > _PARALLEL_QUERIES:
            scores, ids = index.search(queries, fetch)
            return scores, ids
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = index.search(queries, fetch)
        finally:
            faiss.omp_set_num_threads(threads)
        return scores, ids

    def __len__(self) -> int:
        with self._lock:
            return int(self._index.ntotal) - len(self._tombstones)

    @property
    def tombstone_share(self) -> float:
        """Share of stored vectors that are removed but still in the HNSW graph."""
        with self._lock:
            return len(self._tombstones) / len(self._ids) if self._ids else 0.0

    def ids(self) -> set[int]:
        """The ids currently searchable."""
        with self._lock:
            return self._ids - self._tombstones

    # -- persistence ------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        with self._lock:
            faiss.write_index(self._index, str(folder / INDEX_FILE))
            meta = {
                "dimension": self.dimension,
                "kind": self.kind,
                "size": len(self),
                "tombstones": sorted(self._tombstones),
                "params": self.params.__dict__,
            }
        (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, params: IndexParams | None = None) -> VectorIndex:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        index = cls.__new__(cls)
        index.dimension = int(meta["dimension"])
        index.kind = meta["kind"]
        index.params = params or IndexParams(**meta["params"])
        index._index = faiss.read_index(str(folder / INDEX_FILE))  # an IndexIDMap2
        index._ids = {int(i) for i in faiss.vector_to_array(index._index.id_map)}
        index._tombstones = {int(i) for i in meta["tombstones"]}
        index._lock = threading.RLock()
        if index.kind == "hnsw":
            _hnsw(index._index).efSearch = index.params.hnsw_ef_search
        return index


def _new_faiss_index(dimension: int, kind: IndexKind, params: IndexParams) -> Any:
    if kind == "exact":
        inner: Any = faiss.IndexFlatIP(dimension)
    else:
        inner = faiss.IndexHNSWFlat(dimension, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = params.hnsw_ef_construction
        inner.hnsw.efSearch = params.hnsw_ef_search
    return faiss.IndexIDMap2(inner)


def _hnsw(index: Any) -> Any:
    inner: Any = faiss.downcast_index(index.index)
    return inner.hnsw


def _empty(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, k), -np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)


def _pad(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if scores.shape[1] >= k:
        return scores[:, :k], ids[:, :k]
    out_scores, out_ids = _empty(len(scores), k)
    out_scores[:, : scores.shape[1]] = scores
    out_ids[:, : ids.shape[1]] = ids
    return out_scores, out_ids
