"""The ``supportbot`` command line: thin commands over the jobs and the server.

Each module registers its commands on the one Typer application; importing this package
imports none of the heavy libraries. The first-party imports inside the commands are the
ones that would load FAISS, torch, psycopg, scikit-learn, the server or Slack: at the top,
every command (`supportbot --help` included) would start 1,225 modules instead of 939.
"""

from __future__ import annotations

import os

from bot.cli import (
    configuration,
    curated,
    database,
    knowledge,
    models,
    operators,
    privacy,
    serving,
)
from bot.cli.base import app

__all__ = ["app", "main"]
_COMMAND_MODULES = (
    configuration,
    curated,
    database,
    knowledge,
    models,
    operators,
    privacy,
    serving,
)


def main() -> None:
    # Library progress bars (model loading) are noise on a terminal; ours stay on.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    app()
