"""Builds the components from settings, for the CLI jobs and the server alike.

Nothing here loads a model: the objects load lazily, in whichever worker first uses them.
"""

from __future__ import annotations

from bot.settings import Settings
from retrieval.knowledge import KnowledgeBase


def open_knowledge_base(settings: Settings) -> KnowledgeBase:
    paths = settings.paths.ensure()
    return KnowledgeBase.open(paths.database, paths.indexes, settings.retrieval)
