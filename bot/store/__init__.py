"""Storage of conversations, turns, ratings, flags and corrections behind the
``ConversationStore`` port (:mod:`bot.core.ports`)."""

from bot.store.sqlite import SqliteConversationStore

__all__ = ["SqliteConversationStore"]
