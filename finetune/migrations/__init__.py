"""The Alembic history of the model registry's and the retraining cycles' tables
(:data:`finetune.tables.HISTORY`)."""
