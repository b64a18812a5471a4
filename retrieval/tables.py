"""The knowledge base's tables, declared once for SQLite and PostgreSQL, and their history.

``migrations/`` builds them (Alembic, version table ``alembic_version_knowledge``). A
database that the hand-written migrations built (``schema_migrations``, component
``retrieval``, versions 1 to 3) is stamped with the revision that builds the same, keeping
its rows, and upgraded from there.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from retrieval.database import RESET_BEFORE_COPY, Id, SchemaHistory, Seconds

metadata = sa.MetaData()

# Ingested conversations, scrubbed; messages and metadata are JSON. rowid keeps the order
# they were stored in: SQLite's own, an identity column in PostgreSQL.
log_conversations = sa.Table(
    "log_conversations",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("content_hash", sa.Text, nullable=False, unique=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("messages", sa.Text, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("ingested_at", Seconds, nullable=False),
    sa.Column("rowid", Id, sa.Identity(), nullable=False),
)

# The conversations ingest read, by a keyed hash of what it read (never the text: that is
# unscrubbed; the key is kept outside the database, see retrieval.ingest.raw_hash_key), and
# the content hash of what scrubbing made of them. A conversation read again whose scrubbed
# content is still stored is known without scrubbing it again.
raw_conversations = sa.Table(
    "raw_conversations",
    metadata,
    sa.Column("raw_hash", sa.Text, primary_key=True),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Index("raw_conversations_content", "content_hash"),
)

# What is retrieved: an exchange of a conversation, or a curated answer. An entry's id is
# its id in every FAISS index built with it, so entries are never deleted, only marked:
# older index versions still hold them. One live entry per source id.
entries = sa.Table(
    "entries",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column("source_id", sa.Text, nullable=False),
    sa.Column("conversation_id", sa.Text, nullable=False),
    sa.Column("turn_index", sa.Integer, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("context", sa.Text, nullable=False),  # JSON [[role, text], ...]
    sa.Column("customer_text", sa.Text, nullable=False),
    sa.Column("agent_reply", sa.Text, nullable=False),
    sa.Column("embed_hash", sa.Text, nullable=False),
    sa.Column("reply_hash", sa.Text, nullable=False),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("deleted_at", Seconds),
    sa.CheckConstraint("kind IN ('log', 'curated')"),
    sa.Index(
        "entries_live_source",
        "source_id",
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    ),
    sa.Index("entries_conversation", "conversation_id"),
)

# The embedding cache: a text's vector (float32 bytes) per embedder.
embeddings = sa.Table(
    "embeddings",
    metadata,
    sa.Column("text_hash", sa.Text, primary_key=True),
    sa.Column("model_id", sa.Text, primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)

# Published index folders, one live at most. Folders (the index's, a tuned embedder's) are
# recorded relative to the home when inside it (retrieval.folders.recorded). An index
# version names the embedder that must serve it (embedder_location, NULL: the configured
# one) and the configured embedder it derives from (base_embedder), so that the pair is
# always served together. first_live_at is NULL for a candidate never served: only a
# version served once is a place to roll back to.
index_versions = sa.Table(
    "index_versions",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column("folder", sa.Text, nullable=False),
    sa.Column("embedder_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("entry_count", sa.Integer, nullable=False),
    sa.Column("max_entry_id", Id, nullable=False),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("is_live", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("embedder_location", sa.Text),
    sa.Column("base_embedder", sa.Text),
    sa.Column("first_live_at", Seconds),
    sa.Index(
        "index_versions_one_live",
        "is_live",
        unique=True,
        sqlite_where=sa.text("is_live = 1"),
        postgresql_where=sa.text("is_live = 1"),
    ),
    # A copy (supportbot migrate-db) into a database whose live version is another.
    info={RESET_BEFORE_COPY: {"is_live": 0}},
)

HISTORY = SchemaHistory(
    metadata,
    Path(__file__).with_name("migrations"),
    version_table="alembic_version_knowledge",
    legacy_component="retrieval",
    legacy_revisions={1: "knowledge_0001", 2: "knowledge_0002", 3: "knowledge_0003"},
)
