"""The Alembic history of the knowledge base's tables (:data:`retrieval.tables.HISTORY`)."""
