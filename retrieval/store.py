"""The knowledge base's tables (:mod:`retrieval.tables`): ingested conversations,
retrievable entries (whose row ids are the FAISS ids), the embedding cache and the index
versions. In the home's SQLite file, or in the PostgreSQL database replicas on several
hosts share (``storage.database_url``); the same statements serve both."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from retrieval import tables
from retrieval.database import database_url, insert, lock_key, migrated_engine, reading
from retrieval.entries import entries_of
from retrieval.folders import found, recorded
from retrieval.records import Conversation, ExchangeEntry, LogMessage

# Writers queue on this advisory lock in PostgreSQL, in every process on every host (the
# releases before took the same one); in SQLite every transaction begins IMMEDIATE.
_WRITE_LOCK = "retrieval:write"
# Ids or hashes in one IN (...) list.
_CHUNK = 500
# Every search reads its hits' entries: the statement is built once (SQLAlchemy would build
# and cache-key it again at each call, a millisecond of a chat message).
_ENTRIES_BY_ID = sa.select(tables.entries).where(
    tables.entries.c.id.in_(sa.bindparam("ids", expanding=True))
)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredEntry:
    id: int
    entry: ExchangeEntry
    reply_hash: str


@dataclass(frozen=True)
class IndexVersion:
    id: int
    folder: Path
    embedder_id: str
    kind: str
    entry_count: int
    max_entry_id: int
    created_at: float
    embedder_location: str | None = None  # None: the configured embedder
    base_embedder: str | None = None  # the configured embedder name (None: older rows)
    is_live: bool = False
    first_live_at: float | None = None  # None: a candidate never served


@dataclass
class AddResult:
    conversations_added: int = 0
    conversations_updated: int = 0
    conversations_unchanged: int = 0
    entries_added: int = 0


class KnowledgeStore:
    """The knowledge base's tables over the engine it is given (and closes); safe to share
    between threads. Writes that belong together are one transaction, so a job killed
    half-way leaves the store as it was before that transaction. Folders are recorded
    relative to the home, the folder of the SQLite file ``path``."""

    def __init__(self, engine: sa.Engine, path: Path) -> None:
        self.path = path  # the home's SQLite file (where the tables are, without PostgreSQL)
        self._engine = engine
        self._home = path.parent

    @classmethod
    def open(cls, path: Path, *, postgres_url: str | None = None) -> KnowledgeStore:
        """The store in the SQLite file ``path``, or in PostgreSQL when ``postgres_url`` is
        set, migrated."""
        return cls(migrated_engine(database_url(path, postgres_url), tables.HISTORY), path)

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """A transaction, after the writers before it committed or rolled back."""
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key(_WRITE_LOCK))))
            yield conn

    # -- conversations and entries ------------------------------------------------------
    def add_conversations(
        self, conversations: Sequence[Conversation], raw_hashes: Sequence[str] | None = None
    ) -> AddResult:
        """Store scrubbed conversations and their entries in one transaction.

        A conversation whose content was seen before adds nothing; one whose id exists with
        other content (the log grew) replaces its entries. ``raw_hashes``, one for each
        conversation, name them as they were read (before scrubbing): such a hash is
        :meth:`known_raw_hashes` while what its conversation scrubbed to stays stored.
        """
        c = tables.log_conversations.c
        result = AddResult()
        now = time.time()
        hashes: Sequence[str | None] = [None] * len(conversations)
        if raw_hashes is not None:
            hashes = raw_hashes
        with self._writing() as conn:
            for conversation, raw_hash in zip(conversations, hashes, strict=True):
                digest = conversation.content_hash()
                if _exists(conn, c.content_hash == digest):
                    result.conversations_unchanged += 1
                else:
                    if _exists(conn, c.id == conversation.id):
                        _forget_conversation(conn, conversation.id, now)
                        result.conversations_updated += 1
                    else:
                        result.conversations_added += 1
                    result.entries_added += _insert_conversation(conn, conversation, digest, now)
                if raw_hash is not None:
                    _remember_raw_hash(conn, raw_hash, digest)
        return result

    def known_raw_hashes(self, raw_hashes: Sequence[str]) -> set[str]:
        """Those of ``raw_hashes`` (see :meth:`add_conversations`) whose conversation's
        scrubbed content is stored: reading them again would add nothing."""
        r, t = tables.raw_conversations, tables.log_conversations
        known: set[str] = set()
        unique = list(dict.fromkeys(raw_hashes))
        with reading(self._engine) as conn:
            for start in range(0, len(unique), _CHUNK):
                query = (
                    sa.select(r.c.raw_hash)
                    .join(t, t.c.content_hash == r.c.content_hash)
                    .where(r.c.raw_hash.in_(unique[start : start + _CHUNK]))
                )
                known.update(conn.execute(query).scalars())
        return known

    def replace_conversations(self, conversations: Sequence[Conversation]) -> int:
        """Store rewritten versions of stored conversations (re-scrubbed) in one
        transaction: each one's live entries are marked deleted and rebuilt from the new
        text, or only its metadata is updated when the text is the same. A conversation
        whose new text is already stored under another id is dropped with its entries, as
        ingest would have skipped it; returns how many were. The logs the old text was read
        from are still known by their raw hashes: ingest finds them unchanged."""
        t, r = tables.log_conversations, tables.raw_conversations
        now = time.time()
        dropped = 0
        with self._writing() as conn:
            for conversation in conversations:
                digest = conversation.content_hash()
                same_text = t.update().where(t.c.id == conversation.id, t.c.content_hash == digest)
                if conn.execute(same_text.values(metadata=_metadata_json(conversation))).rowcount:
                    continue
                old = sa.select(t.c.content_hash).where(t.c.id == conversation.id)
                conn.execute(
                    r.update()
                    .where(r.c.content_hash == old.scalar_subquery())
                    .values(content_hash=digest)
                )
                _forget_conversation(conn, conversation.id, now)
                if _exists(conn, t.c.content_hash == digest):
                    dropped += 1
                    continue
                _insert_conversation(conn, conversation, digest, now)
        return dropped

    def add_entry(self, entry: ExchangeEntry) -> int:
        """Insert one entry (a curated answer); return its id. Replaces a live entry with
        the same source id."""
        now = time.time()
        with self._writing() as conn:
            _delete_live_entries(conn, tables.entries.c.source_id == entry.source_id, now)
            return _insert_entry(conn, entry, now)

    def delete_source(self, source_id: str) -> list[int]:
        """Mark the live entry with ``source_id`` deleted; return the ids removed."""
        with self._writing() as conn:
            where = tables.entries.c.source_id == source_id
            return _delete_live_entries(conn, where, time.time())

    def entry_ids_of_source(self, source_id: str) -> tuple[set[int], set[int]]:
        """(live, deleted) ids of the entries ever stored under ``source_id``."""
        return self._live_and_deleted(tables.entries.c.source_id == source_id)

    def curated_ids(self) -> tuple[set[int], set[int]]:
        """(live, deleted) ids of every curated entry ever stored."""
        return self._live_and_deleted(tables.entries.c.kind == "curated")

    def _live_and_deleted(self, which: sa.ColumnElement[bool]) -> tuple[set[int], set[int]]:
        e = tables.entries
        with reading(self._engine) as conn:
            rows = conn.execute(sa.select(e.c.id, e.c.deleted_at.is_(None)).where(which)).all()
        live = {int(id_) for id_, is_live in rows if is_live}
        return live, {int(id_) for id_, _ in rows} - live

    def curated_mark(self) -> tuple[int, int]:
        """Changes whenever a curated entry is added, replaced or removed (by any process):
        (the newest curated entry's id, how many were removed)."""
        e = tables.entries
        query = sa.select(sa.func.coalesce(sa.func.max(e.c.id), 0), sa.func.count(e.c.deleted_at))
        with reading(self._engine) as conn:
            newest, removed = conn.execute(query.where(e.c.kind == "curated")).one()
        return int(newest), int(removed)

    def live_entry_ids(self, *, kind: str | None = None) -> set[int]:
        e = tables.entries
        query = sa.select(e.c.id).where(e.c.deleted_at.is_(None))
        if kind is not None:
            query = query.where(e.c.kind == kind)
        with reading(self._engine) as conn:
            return {int(i) for i in conn.execute(query).scalars()}

    def entries_by_id(self, ids: Iterable[int]) -> dict[int, StoredEntry]:
        wanted = list({int(i) for i in ids})
        stored: dict[int, StoredEntry] = {}
        with reading(self._engine) as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                for row in conn.execute(_ENTRIES_BY_ID, {"ids": chunk}):
                    stored[int(row.id)] = _stored_entry(row)
        return stored

    def entry_rows(self, after: int, limit: int) -> list[tuple[StoredEntry, bool]]:
        """Up to ``limit`` entry rows with ids above ``after``, in id order, deleted ones
        too (older index versions still hold them), each with whether it is live."""
        e = tables.entries
        query = sa.select(e).where(e.c.id > after).order_by(e.c.id).limit(limit)
        with reading(self._engine) as conn:
            rows = conn.execute(query).all()
        return [(_stored_entry(row), row.deleted_at is None) for row in rows]

    def rewrite_entries(self, rewritten: Sequence[tuple[int, ExchangeEntry]]) -> None:
        """Replace the text of stored entry rows in place (re-scrubbed), in one transaction.

        The hashes stay: they name the vectors and the answer classes that the index
        versions holding these rows were built with, so those versions still serve them."""
        if not rewritten:
            return
        e = tables.entries
        statement = (
            e.update()
            .where(e.c.id == sa.bindparam("entry_id"))
            .values(
                context=sa.bindparam("new_context"),
                customer_text=sa.bindparam("new_customer_text"),
                agent_reply=sa.bindparam("new_agent_reply"),
            )
        )
        rows = [
            {
                "entry_id": entry_id,
                "new_context": _messages_json(entry.context),
                "new_customer_text": entry.customer_text,
                "new_agent_reply": entry.agent_reply,
            }
            for entry_id, entry in rewritten
        ]
        with self._writing() as conn:
            conn.execute(statement, rows)

    def embed_texts(self, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """id -> (embed hash, text to embed) for the given entries."""
        stored = self.entries_by_id(ids)
        return {i: (text_hash(s.entry.embed_text), s.entry.embed_text) for i, s in stored.items()}

    def iter_conversations(self) -> Iterator[Conversation]:
        """Every stored conversation, in the order they were stored."""
        t = tables.log_conversations
        with reading(self._engine) as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.rowid)).all()
        for row in rows:
            yield Conversation(
                id=row.id,
                messages=_messages_from_json(row.messages),
                metadata=json.loads(row.metadata),
                source=row.source,
            )

    def counts(self) -> dict[str, int]:
        e = tables.entries
        live_by_kind = (
            sa.select(e.c.kind, sa.func.count()).where(e.c.deleted_at.is_(None)).group_by(e.c.kind)
        )
        with reading(self._engine) as conn:
            conversations = conn.scalar(
                sa.select(sa.func.count()).select_from(tables.log_conversations)
            )
            by_kind = {kind: int(n) for kind, n in conn.execute(live_by_kind).all()}
        return {
            "conversations": int(conversations or 0),
            "log_entries": by_kind.get("log", 0),
            "curated_entries": by_kind.get("curated", 0),
        }

    # -- embedding cache ----------------------------------------------------------------
    def cached_vectors(self, hashes: Sequence[str], model_id: str) -> dict[str, np.ndarray]:
        v = tables.embeddings
        vectors: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with reading(self._engine) as conn:
            for start in range(0, len(unique), _CHUNK):
                query = sa.select(v.c.text_hash, v.c.vector).where(
                    v.c.model_id == model_id, v.c.text_hash.in_(unique[start : start + _CHUNK])
                )
                for digest, vector in conn.execute(query).all():
                    vectors[digest] = np.frombuffer(bytes(vector), dtype=np.float32)
        return vectors

    def cache_vectors(self, items: Sequence[tuple[str, np.ndarray]], model_id: str) -> None:
        if not items:
            return
        rows = [
            {"text_hash": h, "model_id": model_id, "vector": np.asarray(v, np.float32).tobytes()}
            for h, v in items
        ]
        with self._writing() as conn:
            conn.execute(insert(conn.dialect, tables.embeddings).on_conflict_do_nothing(), rows)

    def drop_cached_vectors(self, model_id: str) -> int:
        """Delete the cached vectors of one embedder (a refused candidate); return how many."""
        v = tables.embeddings
        with self._writing() as conn:
            return conn.execute(v.delete().where(v.c.model_id == model_id)).rowcount

    # -- index versions -----------------------------------------------------------------
    def record_index_version(
        self,
        folder: Path,
        embedder_id: str,
        kind: str,
        entry_count: int,
        max_entry_id: int,
        *,
        embedder_location: str | None = None,
        base_embedder: str | None = None,
        live: bool = True,
    ) -> IndexVersion:
        """Record a published index folder and make it the live one, atomically; with
        ``live=False`` record it as a candidate that :meth:`set_live_index_version` may
        make live later."""
        iv = tables.index_versions
        now = time.time()
        location = None if embedder_location is None else Path(embedder_location)
        with self._writing() as conn:
            if live:
                conn.execute(iv.update().where(iv.c.is_live == 1).values(is_live=0))
            version_id = conn.execute(
                iv.insert()
                .values(
                    folder=recorded(folder, self._home),
                    embedder_id=embedder_id,
                    kind=kind,
                    entry_count=entry_count,
                    max_entry_id=max_entry_id,
                    created_at=now,
                    is_live=int(live),
                    embedder_location=None if location is None else recorded(location, self._home),
                    base_embedder=base_embedder,
                    first_live_at=now if live else None,
                )
                .returning(iv.c.id)
            ).scalar_one()
        return IndexVersion(
            int(version_id),
            folder,
            embedder_id,
            kind,
            entry_count,
            max_entry_id,
            now,
            embedder_location,
            base_embedder,
            live,
            now if live else None,
        )

    def live_index_version(self) -> IndexVersion | None:
        iv = tables.index_versions
        with reading(self._engine) as conn:
            row = conn.execute(sa.select(iv).where(iv.c.is_live == 1)).first()
        return None if row is None else self._index_version(row)

    def index_versions(self) -> list[IndexVersion]:
        """Every recorded index version, oldest first."""
        iv = tables.index_versions
        with reading(self._engine) as conn:
            rows = conn.execute(sa.select(iv).order_by(iv.c.id)).all()
        return [self._index_version(row) for row in rows]

    def set_live_index_version(self, version_id: int) -> IndexVersion:
        """Make a recorded version live again (rollback); raises LookupError if unknown."""
        iv = tables.index_versions
        with self._writing() as conn:
            if not _exists(conn, iv.c.id == version_id):
                raise LookupError(f"no index version {version_id}")
            conn.execute(iv.update().where(iv.c.is_live == 1).values(is_live=0))
            conn.execute(
                iv.update()
                .where(iv.c.id == version_id)
                .values(is_live=1, first_live_at=sa.func.coalesce(iv.c.first_live_at, time.time()))
            )
        live = self.live_index_version()
        assert live is not None
        return live

    def delete_index_version(self, version_id: int) -> None:
        """Forget a version that is not live (a refused candidate); raises LookupError for
        an unknown or live one. Its folder is the caller's to delete."""
        iv = tables.index_versions
        with self._writing() as conn:
            gone = conn.execute(iv.delete().where(iv.c.id == version_id, iv.c.is_live == 0))
            if not gone.rowcount:
                raise LookupError(f"index version {version_id} is live or unknown")

    def _index_version(self, row: sa.Row[tuple[object, ...]]) -> IndexVersion:
        location = row.embedder_location
        return IndexVersion(
            int(row.id),
            found(row.folder, self._home),
            row.embedder_id,
            row.kind,
            int(row.entry_count),
            int(row.max_entry_id),
            float(row.created_at),
            None if location is None else str(found(location, self._home)),
            row.base_embedder,
            bool(row.is_live),
            None if row.first_live_at is None else float(row.first_live_at),
        )


def reply_hash(reply: str) -> str:
    """Replies that differ only in case and spacing count as the same answer."""
    return text_hash(" ".join(reply.lower().split()))


def _exists(conn: sa.Connection, where: sa.ColumnElement[bool]) -> bool:
    return bool(conn.scalar(sa.select(sa.exists().where(where))))


def _forget_conversation(conn: sa.Connection, conversation_id: str, now: float) -> None:
    """Delete a stored conversation and the raw hashes of what was read as it; its log
    entries are marked deleted."""
    e, t, r = tables.entries, tables.log_conversations, tables.raw_conversations
    ingested = (e.c.conversation_id == conversation_id) & (e.c.kind == "log")
    _delete_live_entries(conn, ingested, now)
    stored = sa.select(t.c.content_hash).where(t.c.id == conversation_id)
    conn.execute(r.delete().where(r.c.content_hash == stored.scalar_subquery()))
    conn.execute(t.delete().where(t.c.id == conversation_id))


def _remember_raw_hash(conn: sa.Connection, raw_hash: str, content_hash: str) -> None:
    """Record what a conversation read as ``raw_hash`` scrubbed to (today's scrubber may
    make other text of it than the one that read it before)."""
    r = tables.raw_conversations
    statement = insert(conn.dialect, r).values(raw_hash=raw_hash, content_hash=content_hash)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[r.c.raw_hash], set_={"content_hash": content_hash}
        )
    )


def _delete_live_entries(
    conn: sa.Connection, which: sa.ColumnElement[bool], now: float
) -> list[int]:
    """Mark the live entries ``which`` selects deleted; return their ids."""
    e = tables.entries
    deleted = e.update().where(which, e.c.deleted_at.is_(None)).values(deleted_at=now)
    return [int(i) for i in conn.execute(deleted.returning(e.c.id)).scalars()]


def _insert_conversation(
    conn: sa.Connection, conversation: Conversation, digest: str, now: float
) -> int:
    """Insert the conversation and its entries; return how many entries."""

    conn.execute(
        tables.log_conversations.insert().values(
            id=conversation.id,
            content_hash=digest,
            source=conversation.source,
            messages=_messages_json(conversation.messages),
            metadata=_metadata_json(conversation),
            ingested_at=now,
        )
    )
    exchanges = entries_of(conversation)
    for entry in exchanges:
        _insert_entry(conn, entry, now)
    return len(exchanges)


def _insert_entry(conn: sa.Connection, entry: ExchangeEntry, now: float) -> int:
    e = tables.entries
    inserted = conn.execute(
        e.insert()
        .values(
            source_id=entry.source_id,
            conversation_id=entry.conversation_id,
            turn_index=entry.turn_index,
            kind=entry.kind,
            context=_messages_json(entry.context),
            customer_text=entry.customer_text,
            agent_reply=entry.agent_reply,
            embed_hash=text_hash(entry.embed_text),
            reply_hash=reply_hash(entry.agent_reply),
            created_at=now,
        )
        .returning(e.c.id)
    )
    return int(inserted.scalar_one())


def _messages_json(messages: Sequence[LogMessage]) -> str:
    return json.dumps([[m.role, m.text] for m in messages], ensure_ascii=False)


def _metadata_json(conversation: Conversation) -> str:
    return json.dumps(dict(conversation.metadata), ensure_ascii=False, default=str)


def _messages_from_json(payload: str) -> tuple[LogMessage, ...]:
    return tuple(LogMessage(role, text) for role, text in json.loads(payload))


def _stored_entry(row: sa.Row[tuple[object, ...]]) -> StoredEntry:
    entry = ExchangeEntry(
        source_id=row.source_id,
        conversation_id=row.conversation_id,
        turn_index=int(row.turn_index),
        context=_messages_from_json(row.context),
        customer_text=row.customer_text,
        agent_reply=row.agent_reply,
        kind=row.kind,
    )
    return StoredEntry(int(row.id), entry, row.reply_hash)
