"""Builds the components from settings, for the CLI jobs and the server alike.

Nothing here loads a model: the objects load lazily, in whichever worker first uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.settings import Settings
from retrieval.knowledge import KnowledgeBase

if TYPE_CHECKING:
    from finetune.pipeline import GeneratorPaths


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


def generator_paths(settings: Settings) -> GeneratorPaths:
    """The home folder's model locations, as the generator's jobs take them; the model
    registry and the cycle log go to PostgreSQL when ``storage.database_url`` names it."""
    from finetune.pipeline import GeneratorPaths

    paths = settings.paths.ensure()
    return GeneratorPaths(
        paths.base_models, paths.adapters, paths.database, settings.storage.postgres_url
    )
