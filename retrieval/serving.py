"""What a process serves: the live index version, the embedder that searches it and the
answer classifier fitted on it, loaded from the store and kept in line with it.

A server calls :meth:`LiveIndex.load` at start-up and :meth:`LiveIndex.refresh_if_stale`
periodically; curated answers added or removed by another process since the version was
published are replayed on top of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from retrieval.answer_classifier import AnswerClassifier, fit_answer_classifier
from retrieval.config import RetrievalConfig
from retrieval.embedder import Embedder
from retrieval.index import IndexParams, VectorIndex
from retrieval.intent_words import IntentWords, fit_intent_words
from retrieval.store import IndexVersion, KnowledgeStore
from retrieval.tuning_data import normalise_reply
from retrieval.vectors import EntryVectors
from retrieval.verifier import Verifier

log = logging.getLogger(__name__)


# The verifier loaded from each folder. The views of one knowledge base (a candidate index
# version judged before it is live, validation without some entries) serve the same one:
# one copy of the model in memory, loaded once.
_LOADED_VERIFIERS: dict[Path, Verifier] = {}


class IndexMismatch(RuntimeError):
    """The live index was built with another embedder than the configured one."""


@dataclass(frozen=True)
class Serving:
    """The embedder, the index built with it and the answer classifier fitted on it:
    swapped together, read together; and the reply verifier, which reads texts and fits any
    of them."""

    embedder: Embedder
    index: VectorIndex
    classifier: AnswerClassifier | None = None
    verifier: Verifier | None = None
    # Fitted on the entries' texts (see retrieval.intent_words); None: not used.
    intent_words: IntentWords | None = None


class LiveIndex:
    """The index version this process serves. ``write_lock`` is held by every change to
    it (loading, publishing, curated edits); searches take no lock and read
    :attr:`current` once, so they never pair one version's embedder with another's index.
    """

    def __init__(
        self,
        store: KnowledgeStore,
        configured_embedder: Embedder,
        config: RetrievalConfig,
        params: IndexParams,
        vectors: EntryVectors,
        verifier_folder: Path | None = None,
    ) -> None:
        self.store = store
        self.verifier_folder = verifier_folder  # None: no verifier is used
        self.configured_embedder = configured_embedder
        self.config = config
        self.params = params
        self.vectors = vectors
        self.write_lock = threading.RLock()
        self._serving: Serving | None = None
        self.version: IndexVersion | None = None
        self.loads = 0  # live index versions read from disk by load(): rebuilds, not edits
        self._curated_mark: tuple[int, int] | None = None  # see follow_curated

    @property
    def current(self) -> Serving | None:
        """What is served now; None before anything was loaded."""
        return self._serving

    def swap(self, serving: Serving, version: IndexVersion | None) -> None:
        """Serve ``serving`` (built for ``version``) from now on."""
        self._serving, self.version = serving, version

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

    def embedder_serving(self, version: IndexVersion) -> Embedder:
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
        with self.write_lock:
            self.serve(self.store.live_index_version())
            self.loads += 1

    def serve(self, version: IndexVersion | None) -> None:
        """Serve ``version`` (live or not; None: an empty index) with its embedder, with the
        curated changes made since it was published. Raises IndexMismatch like :meth:`load`.
        """
        with self.write_lock:
            if version is None:
                embedder = self.configured_embedder
                index = VectorIndex(embedder.dimension, "exact", self.params)
            else:
                embedder = self.embedder_serving(version)
                _ = embedder.dimension  # load the model now, not in a customer's search
                index = VectorIndex.load(version.folder, self.params)
            mark = self.store.curated_mark()  # before: a change made meanwhile is followed later
            self._reconcile(index, embedder, include_logs=False)
            self._serving = Serving(
                embedder,
                index,
                self.classifier_of(version, embedder),
                self._published_verifier(),
                self.fit_intent_words(sorted(index.ids())),
            )
            self.version = version
            self._curated_mark = mark

    def classifier_of(
        self, version: IndexVersion | None, embedder: Embedder
    ) -> AnswerClassifier | None:
        """The answer classifier published with ``version``, when the settings use one."""
        if version is None or not self.config.answer_classifier:
            return None
        classifier = AnswerClassifier.load(version.folder)
        if classifier is not None and classifier.embedder_id != embedder.model_id:
            return None  # cannot happen for a published version; never mix vector spaces
        return classifier

    def excluding(self, entry_ids: Collection[int]) -> Serving:
        """What this serves with an answer classifier fitted without the entries
        ``entry_ids``, for validating on questions that are in the index: a classifier
        fitted on a question is surer of it than of a new one. The intent words are
        fitted without them too: their replies would vouch for their own words."""
        serving = self.require()
        kept = sorted(serving.index.ids() - set(entry_ids))
        classifier = None
        if serving.classifier is not None:  # else the confidence here must not use one either
            classifier = self.fit_answer_classifier(kept, serving.embedder)
        intent_words = None if serving.intent_words is None else self.fit_intent_words(kept)
        return Serving(serving.embedder, serving.index, classifier, serving.verifier, intent_words)

    def follow_verifier(self) -> None:
        """Serve the verifier published since the index was loaded (``supportbot calibrate``
        trains one and then calibrates with it)."""
        with self.write_lock:
            if self._serving is not None:
                self._serving = replace(self._serving, verifier=self._published_verifier())

    def _published_verifier(self) -> Verifier | None:
        """The verifier published now, loaded; the one already loaded while it is the same."""
        if self.verifier_folder is None:
            return None
        published = Verifier.published(self.verifier_folder)
        if published is None:
            _LOADED_VERIFIERS.pop(self.verifier_folder, None)
            return None
        loaded = _LOADED_VERIFIERS.get(self.verifier_folder)
        if loaded is None or loaded.folder != published.folder:
            published.load()  # now, not in a customer's search
            _LOADED_VERIFIERS[self.verifier_folder] = loaded = published
        return loaded

    def fit_answer_classifier(
        self, entry_ids: Sequence[int], embedder: Embedder
    ) -> AnswerClassifier | None:
        """An answer classifier fitted on the questions of ``entry_ids`` (see
        retrieval.answer_classifier); None when fewer than two answers are frequent enough."""

        stored = self.store.entries_by_id(entry_ids)
        ids = [i for i in entry_ids if i in stored]
        if not ids:
            return None
        return fit_answer_classifier(
            self.vectors.of(ids, embedder),
            [stored[i].reply_hash for i in ids],
            [normalise_reply(stored[i].entry.agent_reply) for i in ids],
            embedder_id=embedder.model_id,
            min_members=self.config.answer_classifier_min_questions,
        )

    def fit_intent_words(self, entry_ids: Sequence[int]) -> IntentWords | None:
        """The intent words of the questions of ``entry_ids`` and their replies (see
        retrieval.intent_words); None when the settings use none or too few entries are
        stored. Curated answers added later are ranked with these until the next load."""
        if self.config.intent_words_weight <= 0.0:
            return None
        stored = self.store.entries_by_id(entry_ids)
        entries = [stored[i].entry for i in entry_ids if i in stored]
        return fit_intent_words(
            [e.customer_text for e in entries], [e.agent_reply for e in entries]
        )

    def refresh_if_stale(self) -> bool:
        """Reload when another process published a newer index version; True if reloaded.

        Otherwise apply the curated answers another process added, replaced or removed
        since (``supportbot curated edit`` or ``withdraw`` while this server runs).
        """
        live = self.store.live_index_version()
        current = self.version.id if self.version else None
        if live is None or live.id == current:
            self.follow_curated()
            # `supportbot calibrate` may have trained another verifier, and the server
            # follows the calibration fitted with it at the same poll (one listing of its
            # folder when not).
            self.follow_verifier()
            return False
        self.load()
        log.info("switched to index version %s (%s)", live.id, live.folder)
        return True

    def follow_curated(self) -> tuple[int, int]:
        """Bring the live index's curated entries in line with the store when any changed
        since this was last called; return (added, removed). One small query when none did.
        """
        with self.write_lock:
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
                vectors = self.vectors.of(missing, serving.embedder)
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
            index.add(np.asarray(missing, dtype=np.int64), self.vectors.of(missing, embedder))
        return len(missing), removed

    def require(self) -> Serving:
        """What is served, loading the live version first when nothing is yet."""
        if self._serving is None:
            self.load()
        assert self._serving is not None
        return self._serving
