"""Searching what is served: embed the queries, search the live index once for all of them
and rank each query's hits into distinct answers (retrieval.ranking)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import replace

import numpy as np

from retrieval.embedder import Embedder
from retrieval.ranking import fetch_size, rank
from retrieval.records import LogMessage, Query, RetrievedExchange, query_text
from retrieval.serving import LiveIndex, Serving
from retrieval.store import StoredEntry

# Texts whose vectors nearest_entries keeps: the dashboard's suggestion page embeds up to a
# few hundred live customer messages for every correction it shows, mostly the same ones
# from one view to the next. About 1.5 KB each with MiniLM's 384 dimensions.
_TEXT_VECTORS_KEPT = 4096


class IndexSearch:
    """Searches what ``live`` serves without taking its lock: each search reads
    :meth:`LiveIndex.require` once and uses that embedder, index and classifier together."""

    def __init__(self, live: LiveIndex) -> None:
        self._live = live
        self.store = live.store
        self.config = live.config
        self._vectors = live.vectors
        self._text_vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._text_vectors_lock = threading.Lock()

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
        verify: bool = True,
    ) -> list[list[RetrievedExchange]]:
        """Search many queries at once (one embedding batch, one FAISS call).

        Hits with the same reply are merged into one whose ``support`` counts them, so the
        ``k`` results are ``k`` different answers. ``query_vectors`` skips embedding.
        Without ``verify`` the verifier is not asked (its own training searches, and
        figures that leave its say out).
        """

        k = k or self.config.top_k
        serving = self._live.require()  # one read: never one version's embedder with
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
        ranked = [
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
                queries[n].customer_text,
                serving.intent_words,
            )
            for n, (row_scores, row_ids) in enumerate(zip(scores, ids, strict=True))
        ]
        if verify and serving.verifier is not None:
            # The first answer's only: it is the one the confidence judges.
            rows = [n for n, hits in enumerate(ranked) if hits]
            verified = serving.verifier.probabilities(
                [queries[n].customer_text for n in rows], [ranked[n][0] for n in rows]
            )
            for n, probability in zip(rows, verified, strict=True):
                ranked[n][0] = replace(ranked[n][0], verifier_probability=probability)
        return ranked

    def nearest_entries(
        self, texts: Sequence[str], fetch: int
    ) -> tuple[np.ndarray, list[list[tuple[float, StoredEntry]]]]:
        """The vectors of ``texts`` (n, dim) and, for each text, up to ``fetch`` stored
        entries nearest to it (logs and curated answers alike, no merging), nearest first;
        embedded and searched with the same version."""
        serving = self._live.require()
        vectors = self._embedded(serving.embedder, texts)
        return vectors, self._nearest(serving, vectors, fetch)

    def _embedded(self, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts`` (n, dim), embedding only those not kept from before
        (for this embedder: a tuned one going live starts afresh)."""
        if not texts:
            return embedder.encode([], batch_size=self.config.query_batch_size)
        keys = [(embedder.model_id, text) for text in texts]
        with self._text_vectors_lock:
            kept = {k: self._text_vectors[k] for k in keys if k in self._text_vectors}
        missing = list(dict.fromkeys(k for k in keys if k not in kept))
        if missing:
            fresh = embedder.encode(
                [text for _, text in missing], batch_size=self.config.query_batch_size
            )
            kept.update(zip(missing, fresh, strict=True))
        with self._text_vectors_lock:
            for key in keys:
                self._text_vectors[key] = kept[key]
                self._text_vectors.move_to_end(key)
            while len(self._text_vectors) > _TEXT_VECTORS_KEPT:
                self._text_vectors.popitem(last=False)
        return np.stack([kept[key] for key in keys])

    def entries_nearest_entries(
        self, entry_ids: Sequence[int], fetch: int
    ) -> tuple[np.ndarray, list[list[tuple[float, StoredEntry]]]]:
        """As :meth:`nearest_entries` for stored entries: their vectors (from the cache, so
        nothing is embedded again) and each one's nearest entries, itself included."""
        serving = self._live.require()
        vectors = self._vectors.of(list(entry_ids), serving.embedder)
        return vectors, self._nearest(serving, vectors, fetch)

    def _nearest(
        self, serving: Serving, vectors: np.ndarray, fetch: int
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
