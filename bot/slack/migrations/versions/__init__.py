"""The Alembic history of the Slack adapter's tables (:data:`bot.slack.tables.HISTORY`)."""
