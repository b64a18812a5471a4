"""The ``supportbot`` command line: thin commands over the jobs and the server.

Each module registers its commands on the one Typer application; importing this package
imports none of the heavy libraries. The few first-party imports inside the commands
(each marked ``# lazy:``, tests/test_imports.py) are those that would load FAISS or the
server with Slack: at the top, every command (`supportbot --help` included) would start
1,280 modules instead of 983, FAISS and Slack's bolt among them.
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
