"""The ``supportbot`` command line: thin commands over the jobs and the server.

Each module registers its commands on the one Typer application; importing this package
imports none of the heavy libraries (they load inside the commands that need them).
"""

from __future__ import annotations

import os

from bot.cli import curated, database, knowledge, models, operators, privacy, serving
from bot.cli.base import app

__all__ = ["app", "main"]
_COMMAND_MODULES = (curated, database, knowledge, models, operators, privacy, serving)


def main() -> None:
    # Library progress bars (model loading) are noise on a terminal; ours stay on.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    app()
