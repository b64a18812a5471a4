"""Child processes killed in the middle of a job."""

from __future__ import annotations

import textwrap

# The child ingests with one function replaced by one that SIGKILLs the process at the
# worst moment: after the store committed, or with the new index folder fully written but
# not yet renamed into place.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import retrieval.artifacts as artifacts
    from retrieval.config import RetrievalConfig
    from retrieval.ingest import ingest_paths
    from retrieval.knowledge import KnowledgeBase

    home, logs, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    url = (sys.argv[4] or None) if len(sys.argv) > 4 else None  # PostgreSQL, or SQLite

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "before-index":
        KnowledgeBase.sync_index = die
    elif point == "before-rename":
        artifacts.publish_folder = die  # looked up at call time by staged_version
    kb = KnowledgeBase.open(
        home / "supportbot.db", home / "indexes", RetrievalConfig(), postgres_url=url
    )
    ingest_paths([logs], kb)
    """
)
