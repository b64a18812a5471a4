"""Builds the components from settings, for the CLI jobs and the server alike.

Nothing here loads a model: the objects load lazily, in whichever worker first uses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bot.settings import Settings
from bot.slack import tables as slack_tables
from retrieval.database import SchemaHistory
from retrieval.knowledge import KnowledgeBase
from retrieval.names import NameFinder, load_known_names

if TYPE_CHECKING:
    from finetune.pipeline import GeneratorPaths

# The components whose tables are declared once (SQLAlchemy) with an Alembic history each;
# `migrate-db` copies their tables generically. Issue 17 moves the others here one by one.
DECLARED_TABLES: tuple[SchemaHistory, ...] = (slack_tables.HISTORY,)


def open_knowledge_base(settings: Settings) -> KnowledgeBase:
    """The knowledge base of the home; its tables go to PostgreSQL when
    ``storage.database_url`` names it (replicas on several hosts), else to the home's
    SQLite file."""
    paths = settings.paths.ensure()
    return KnowledgeBase.open(
        paths.database,
        paths.indexes,
        settings.retrieval,
        postgres_url=settings.storage.postgres_url,
    )


def name_finder(settings: Settings) -> NameFinder | None:
    """What finds people's names for the home: the configured recogniser, the keep-words,
    and the names learned from the logs so far; None when PII scrubbing is off."""
    config = settings.retrieval
    if not config.scrub_pii:
        return None
    return NameFinder(
        known_names=load_known_names(known_names_path(settings)),
        keep_words=config.keep_words,
        recognizer="spacy" if config.name_recognizer == "spacy" else None,
        cache=settings.paths.cache,
    )


def known_names_path(settings: Settings) -> Path:
    # Beside the index versions: replicas on several hosts share indexes/.
    return settings.paths.indexes / "known_names.json"


def generator_paths(settings: Settings) -> GeneratorPaths:
    """The home folder's model locations, as the generator's jobs take them; the model
    registry and the cycle log go to PostgreSQL when ``storage.database_url`` names it."""
    from finetune.pipeline import GeneratorPaths

    paths = settings.paths.ensure()
    return GeneratorPaths(
        paths.base_models, paths.adapters, paths.database, settings.storage.postgres_url
    )
