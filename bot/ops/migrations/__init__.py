"""The Alembic history of the dashboard's tables (:data:`bot.ops.tables.HISTORY`)."""
