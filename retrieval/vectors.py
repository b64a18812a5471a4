"""The vectors of stored entries, read from the store's cache or computed and cached."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from retrieval.embedder import Embedder
from retrieval.store import KnowledgeStore

_ENCODE_CHUNK = 1024


class EntryVectors:
    """Entry vectors per embedder, each text embedded once: the store caches them by text
    hash and model id, so another process (another replica) finds what this one computed."""

    def __init__(self, store: KnowledgeStore) -> None:
        self.store = store
        self.computed = 0  # vectors computed (not cached) by this object

    def of(self, ids: Sequence[int], embedder: Embedder, *, progress: bool = False) -> np.ndarray:
        """Vectors of entries ``ids`` in order, from the cache or computed and cached."""
        texts = self.store.embed_texts(ids)
        hashes = [texts[i][0] for i in ids]
        model_id = embedder.model_id
        cached = self.store.cached_vectors(hashes, model_id)
        todo = {h: texts[i][1] for i, h in zip(ids, hashes, strict=True) if h not in cached}
        if todo:
            items = list(todo.items())
            bar = tqdm(total=len(items), unit="text", desc="embedding", disable=not progress)
            for start in range(0, len(items), _ENCODE_CHUNK):
                chunk = items[start : start + _ENCODE_CHUNK]
                vectors = embedder.encode([text for _, text in chunk])
                pairs = [(h, v) for (h, _), v in zip(chunk, vectors, strict=True)]
                self.store.cache_vectors(pairs, model_id)
                cached.update(pairs)
                bar.update(len(chunk))
            bar.close()
            self.computed += len(items)
        if not ids:
            return np.zeros((0, embedder.dimension), dtype=np.float32)
        return np.stack([cached[h] for h in hashes]).astype(np.float32, copy=False)
