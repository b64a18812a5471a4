"""SQLite tables of the knowledge base: ingested conversations, retrievable entries (whose
row ids are the FAISS ids), the embedding cache and the index versions."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.records import Conversation, ExchangeEntry, LogMessage
from retrieval.sqlite_db import apply_migrations, connect, transaction

MIGRATIONS = [
    """
    CREATE TABLE log_conversations (
        id TEXT PRIMARY KEY,
        content_hash TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        messages TEXT NOT NULL,
        metadata TEXT NOT NULL,
        ingested_at REAL NOT NULL
    );
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        source_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        turn_index INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('log', 'curated')),
        context TEXT NOT NULL,
        customer_text TEXT NOT NULL,
        agent_reply TEXT NOT NULL,
        embed_hash TEXT NOT NULL,
        reply_hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        deleted_at REAL
    );
    CREATE UNIQUE INDEX entries_live_source ON entries(source_id) WHERE deleted_at IS NULL;
    CREATE INDEX entries_conversation ON entries(conversation_id);
    CREATE TABLE embeddings (
        text_hash TEXT NOT NULL,
        model_id TEXT NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (text_hash, model_id)
    );
    CREATE TABLE index_versions (
        id INTEGER PRIMARY KEY,
        folder TEXT NOT NULL,
        embedder_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        entry_count INTEGER NOT NULL,
        max_entry_id INTEGER NOT NULL,
        created_at REAL NOT NULL,
        is_live INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX index_versions_one_live ON index_versions(is_live) WHERE is_live = 1;
    """,
    # An index version names the embedder that must serve it (a tuned embedder folder, or
    # NULL for the configured one) and the configured embedder it derives from, so that the
    # pair is always served together and a change of configured model is still detected.
    """
    ALTER TABLE index_versions ADD COLUMN embedder_location TEXT;
    ALTER TABLE index_versions ADD COLUMN base_embedder TEXT;
    """,
    # A retraining cycle records its candidate version before the gate decides; only a
    # version that was served once is a place to roll back to. Every earlier row was live
    # when it was recorded.
    """
    ALTER TABLE index_versions ADD COLUMN first_live_at REAL;
    UPDATE index_versions SET first_live_at = created_at;
    """,
]


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
    """The knowledge base's tables in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._lock = threading.RLock()
        with self._lock:
            apply_migrations(self._conn, "retrieval", MIGRATIONS)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, transaction(self._conn) as conn:
            yield conn

    # -- conversations and entries ------------------------------------------------------
    def add_conversations(self, conversations: Sequence[Conversation]) -> AddResult:
        """Store scrubbed conversations and their entries in one transaction.

        A conversation whose content was seen before adds nothing; one whose id exists with
        other content (the log grew) replaces its entries.
        """
        from retrieval.entries import entries_of

        result = AddResult()
        now = time.time()
        with self._transaction() as conn:
            for conversation in conversations:
                digest = conversation.content_hash()
                if conn.execute(
                    "SELECT 1 FROM log_conversations WHERE content_hash = ?", (digest,)
                ).fetchone():
                    result.conversations_unchanged += 1
                    continue
                existing = conn.execute(
                    "SELECT 1 FROM log_conversations WHERE id = ?", (conversation.id,)
                ).fetchone()
                if existing:
                    conn.execute(
                        "UPDATE entries SET deleted_at = ? WHERE conversation_id = ?"
                        " AND kind = 'log' AND deleted_at IS NULL",
                        (now, conversation.id),
                    )
                    conn.execute("DELETE FROM log_conversations WHERE id = ?", (conversation.id,))
                    result.conversations_updated += 1
                else:
                    result.conversations_added += 1
                conn.execute(
                    "INSERT INTO log_conversations VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        conversation.id,
                        digest,
                        conversation.source,
                        _messages_json(conversation.messages),
                        json.dumps(dict(conversation.metadata), ensure_ascii=False, default=str),
                        now,
                    ),
                )
                for entry in entries_of(conversation):
                    self._insert_entry(conn, entry, now)
                    result.entries_added += 1
        return result

    def add_entry(self, entry: ExchangeEntry) -> int:
        """Insert one entry (a curated answer); return its id. Replaces a live entry with
        the same source id."""
        now = time.time()
        with self._transaction() as conn:
            conn.execute(
                "UPDATE entries SET deleted_at = ? WHERE source_id = ? AND deleted_at IS NULL",
                (now, entry.source_id),
            )
            return self._insert_entry(conn, entry, now)

    def _insert_entry(self, conn: sqlite3.Connection, entry: ExchangeEntry, now: float) -> int:
        cursor = conn.execute(
            "INSERT INTO entries (source_id, conversation_id, turn_index, kind, context,"
            " customer_text, agent_reply, embed_hash, reply_hash, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.source_id,
                entry.conversation_id,
                entry.turn_index,
                entry.kind,
                _messages_json(entry.context),
                entry.customer_text,
                entry.agent_reply,
                text_hash(entry.embed_text),
                reply_hash(entry.agent_reply),
                now,
            ),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def delete_source(self, source_id: str) -> list[int]:
        """Mark the live entry with ``source_id`` deleted; return the ids removed."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM entries WHERE source_id = ? AND deleted_at IS NULL", (source_id,)
            ).fetchall()
            conn.execute(
                "UPDATE entries SET deleted_at = ? WHERE source_id = ? AND deleted_at IS NULL",
                (time.time(), source_id),
            )
        return [int(r[0]) for r in rows]

    def entry_ids_of_source(self, source_id: str) -> tuple[set[int], set[int]]:
        """(live, deleted) ids of the entries ever stored under ``source_id``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, deleted_at IS NULL FROM entries WHERE source_id = ?", (source_id,)
            ).fetchall()
        live = {int(r[0]) for r in rows if r[1]}
        return live, {int(r[0]) for r in rows} - live

    def live_entry_ids(self, *, kind: str | None = None) -> set[int]:
        sql = "SELECT id FROM entries WHERE deleted_at IS NULL"
        params: tuple[Any, ...] = ()
        if kind is not None:
            sql += " AND kind = ?"
            params = (kind,)
        with self._lock:
            return {int(r[0]) for r in self._conn.execute(sql, params)}

    def entries_by_id(self, ids: Iterable[int]) -> dict[int, StoredEntry]:
        wanted = list({int(i) for i in ids})
        found: dict[int, StoredEntry] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in self._conn.execute(
                    f"SELECT * FROM entries WHERE id IN ({marks})", chunk
                ):
                    found[int(row["id"])] = _stored_entry(row)
        return found

    def embed_texts(self, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """id -> (embed hash, text to embed) for the given entries."""
        stored = self.entries_by_id(ids)
        return {i: (text_hash(s.entry.embed_text), s.entry.embed_text) for i, s in stored.items()}

    def iter_conversations(self) -> Iterator[Conversation]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM log_conversations ORDER BY rowid").fetchall()
        for row in rows:
            yield Conversation(
                id=row["id"],
                messages=_messages_from_json(row["messages"]),
                metadata=json.loads(row["metadata"]),
                source=row["source"],
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            conversations = self._conn.execute("SELECT COUNT(*) FROM log_conversations")
            n_conv = int(conversations.fetchone()[0])
            rows = self._conn.execute(
                "SELECT kind, COUNT(*) FROM entries WHERE deleted_at IS NULL GROUP BY kind"
            ).fetchall()
        by_kind = {r[0]: int(r[1]) for r in rows}
        return {
            "conversations": n_conv,
            "log_entries": by_kind.get("log", 0),
            "curated_entries": by_kind.get("curated", 0),
        }

    # -- embedding cache ----------------------------------------------------------------
    def cached_vectors(self, hashes: Sequence[str], model_id: str) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in self._conn.execute(
                    f"SELECT text_hash, vector FROM embeddings WHERE model_id = ?"
                    f" AND text_hash IN ({marks})",
                    [model_id, *chunk],
                ):
                    found[row[0]] = np.frombuffer(row[1], dtype=np.float32)
        return found

    def cache_vectors(self, items: Sequence[tuple[str, np.ndarray]], model_id: str) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?)",
                [(h, model_id, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items],
            )

    def drop_cached_vectors(self, model_id: str) -> int:
        """Delete the cached vectors of one embedder (a refused candidate); return how many."""
        with self._transaction() as conn:
            cursor = conn.execute("DELETE FROM embeddings WHERE model_id = ?", (model_id,))
            return int(cursor.rowcount)

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
        now = time.time()
        with self._transaction() as conn:
            if live:
                conn.execute("UPDATE index_versions SET is_live = 0 WHERE is_live = 1")
            cursor = conn.execute(
                "INSERT INTO index_versions (folder, embedder_id, kind, entry_count,"
                " max_entry_id, created_at, is_live, embedder_location, base_embedder,"
                " first_live_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(folder),
                    embedder_id,
                    kind,
                    entry_count,
                    max_entry_id,
                    now,
                    int(live),
                    embedder_location,
                    base_embedder,
                    now if live else None,
                ),
            )
            version_id = int(cursor.lastrowid or 0)
        return IndexVersion(
            version_id,
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
        with self._lock:
            row = self._conn.execute("SELECT * FROM index_versions WHERE is_live = 1").fetchone()
        return None if row is None else _index_version(row)

    def index_versions(self) -> list[IndexVersion]:
        """Every recorded index version, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM index_versions ORDER BY id").fetchall()
        return [_index_version(row) for row in rows]

    def set_live_index_version(self, version_id: int) -> IndexVersion:
        """Make a recorded version live again (rollback); raises LookupError if unknown."""
        with self._transaction() as conn:
            row = conn.execute("SELECT id FROM index_versions WHERE id = ?", (version_id,))
            if row.fetchone() is None:
                raise LookupError(f"no index version {version_id}")
            conn.execute("UPDATE index_versions SET is_live = 0 WHERE is_live = 1")
            conn.execute(
                "UPDATE index_versions SET is_live = 1,"
                " first_live_at = COALESCE(first_live_at, ?) WHERE id = ?",
                (time.time(), version_id),
            )
        live = self.live_index_version()
        assert live is not None
        return live

    def delete_index_version(self, version_id: int) -> None:
        """Forget a version that is not live (a refused candidate); raises LookupError for
        an unknown or live one. Its folder is the caller's to delete."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT is_live FROM index_versions WHERE id = ?", (version_id,)
            ).fetchone()
            if row is None or row[0]:
                raise LookupError(f"index version {version_id} is live or unknown")
            conn.execute("DELETE FROM index_versions WHERE id = ?", (version_id,))


def _index_version(row: sqlite3.Row) -> IndexVersion:
    return IndexVersion(
        int(row["id"]),
        Path(row["folder"]),
        row["embedder_id"],
        row["kind"],
        int(row["entry_count"]),
        int(row["max_entry_id"]),
        float(row["created_at"]),
        row["embedder_location"],
        row["base_embedder"],
        bool(row["is_live"]),
        None if row["first_live_at"] is None else float(row["first_live_at"]),
    )


def reply_hash(reply: str) -> str:
    """Replies that differ only in case and spacing count as the same answer."""
    return text_hash(" ".join(reply.lower().split()))


def _messages_json(messages: Sequence[LogMessage]) -> str:
    return json.dumps([[m.role, m.text] for m in messages], ensure_ascii=False)


def _messages_from_json(payload: str) -> tuple[LogMessage, ...]:
    return tuple(LogMessage(role, text) for role, text in json.loads(payload))


def _stored_entry(row: sqlite3.Row) -> StoredEntry:
    entry = ExchangeEntry(
        source_id=row["source_id"],
        conversation_id=row["conversation_id"],
        turn_index=int(row["turn_index"]),
        context=_messages_from_json(row["context"]),
        customer_text=row["customer_text"],
        agent_reply=row["agent_reply"],
        kind=row["kind"],
    )
    return StoredEntry(int(row["id"]), entry, row["reply_hash"])
