"""The Alembic history of the conversation store's tables (:data:`bot.store.tables.HISTORY`)."""
