"""Curated answers: operator-approved answers stored and made searchable at once in the
live index, and removed from it; another process's edits followed one source at a time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.records import ExchangeEntry, LogMessage
from retrieval.serving import LiveIndex


class CuratedAnswers:
    """Edits to what ``live`` serves, stored first; each holds ``live``'s write lock."""

    def __init__(self, live: LiveIndex) -> None:
        self._live = live
        self.store = live.store
        self._vectors = live.vectors

    def add(
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
        with self._live.write_lock:
            serving = self._live.require()
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

        Cheaper than :meth:`LiveIndex.load`: the other process cached the new entry's
        vector, so nothing is embedded again and the rest of the index is left as it is.
        """
        with self._live.write_lock:
            serving = self._live.require()
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

        Nothing is loaded for it: with no index loaded yet, the next :meth:`LiveIndex.load`
        (here or in a server) leaves the entry out, so a job that only removes needs no
        model.
        """
        with self._live.write_lock:
            ids = self.store.delete_source(source_id)
            serving = self._live.current
            if serving is not None:
                serving.index.remove(np.asarray(ids, dtype=np.int64))
            return len(ids)
