"""Storage of conversations, turns, ratings, flags and corrections behind the
``ConversationStore`` port (:mod:`bot.core.ports`): :mod:`bot.store.conversations`."""
