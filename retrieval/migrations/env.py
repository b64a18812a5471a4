"""Alembic's entry point for this history: run by :func:`retrieval.database.upgrade`."""

from retrieval.database import run_migrations

run_migrations()
