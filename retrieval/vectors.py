"""The vectors of stored entries, read from the store's cache or computed and cached."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

from retrieval.embedder import Embedder
from retrieval.pacing import while_time_allows
from retrieval.store import KnowledgeStore

_ENCODE_CHUNK = 1024
# Texts embedded between two reads of the clock when a deadline bounds the work: about 3-5 s
# on two busy cores (embedding is batched by length, so smaller chunks cost more: +3% at 256
# against all at once for the hand-off fit's questions, issue 19).
_DEADLINE_CHUNK = 256


class EmbeddingCut(Exception):
    """The deadline came before every text was embedded: ``embedded`` of ``texts`` distinct
    texts have a vector (those computed are cached, for another try to find)."""

    def __init__(self, embedded: int, texts: int) -> None:
        super().__init__(f"{embedded} of {texts} texts embedded by the deadline")
        self.embedded = embedded
        self.texts = texts


class EntryVectors:
    """Entry vectors per embedder, each text embedded once: the store caches them by text
    hash and model id, so another process (another replica) finds what this one computed."""

    def __init__(self, store: KnowledgeStore) -> None:
        self.store = store
        self.computed = 0  # vectors computed (not cached) by this object

    def of(
        self,
        ids: Sequence[int],
        embedder: Embedder,
        *,
        progress: bool = False,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> np.ndarray:
        """Vectors of entries ``ids`` in order, from the cache or computed and cached.

        With ``deadline`` (a ``clock()`` instant; None: none) the missing ones are embedded
        in chunks, each started only while it is expected to end in time, and
        :class:`EmbeddingCut` is raised when some are left without a vector."""
        texts = self.store.embed_texts(ids)
        hashes = [texts[i][0] for i in ids]
        model_id = embedder.model_id
        cached = self.store.cached_vectors(hashes, model_id)
        todo = {h: texts[i][1] for i, h in zip(ids, hashes, strict=True) if h not in cached}
        if todo:
            items = list(todo.items())
            size = _ENCODE_CHUNK if deadline is None else _DEADLINE_CHUNK
            chunks = math.ceil(len(items) / size)
            bar = tqdm(total=len(items), unit="text", desc="embedding", disable=not progress)
            for n in while_time_allows(chunks, deadline, clock):
                chunk = items[n * size : (n + 1) * size]
                vectors = embedder.encode([text for _, text in chunk])
                pairs = [(h, v) for (h, _), v in zip(chunk, vectors, strict=True)]
                self.store.cache_vectors(pairs, model_id)
                cached.update(pairs)
                bar.update(len(chunk))
            bar.close()
            computed = sum(h in cached for h in todo)
            self.computed += computed
            if computed < len(items):
                distinct = len(set(hashes))
                raise EmbeddingCut(distinct - len(items) + computed, distinct)
        if not ids:
            return np.zeros((0, embedder.dimension), dtype=np.float32)
        return np.stack([cached[h] for h in hashes]).astype(np.float32, copy=False)
