"""Which conversation store a database URL names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.store.postgres import PostgresConversationStore
    from bot.store.sqlite import SqliteConversationStore

    AnyConversationStore = SqliteConversationStore | PostgresConversationStore


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path_of(url: str) -> Path:
    """The file of a ``sqlite:///path`` URL (four slashes for an absolute path)."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite:/// URL: {url.split('@')[-1]!r}")
    return Path(url.removeprefix("sqlite:///"))


def conversation_store(url: str, *, pool_size: int = 10) -> AnyConversationStore:
    """The store for ``sqlite:///path`` or ``postgresql://...``; not opened yet.

    psycopg is imported only for a PostgreSQL URL. Raises ValueError for another scheme.
    """
    if is_postgres_url(url):
        from bot.store.postgres import PostgresConversationStore

        return PostgresConversationStore(url, pool_size=pool_size)
    from bot.store.sqlite import SqliteConversationStore

    return SqliteConversationStore(sqlite_path_of(url))
