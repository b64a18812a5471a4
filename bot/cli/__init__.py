"""The ``supportbot`` command line: thin commands over the jobs and the server.

Each module registers its commands on the one Typer application; importing this package
imports none of the heavy libraries. The few first-party imports inside the commands
(each marked ``# lazy:``, tests/test_imports.py) are those that would load FAISS or the
server with Slack: at the top, every command (`supportbot --help` included) would start
1,280 modules instead of 983, FAISS and Slack's bolt among them.
"""

from __future__ import annotations

import inspect
import os

from typer.core import TyperCommand
from typer.models import CommandInfo

# Imported for what importing them does: each registers its commands on the app.
from bot.cli import (  # noqa: F401
    configuration,
    curated,
    database,
    knowledge,
    models,
    operators,
    privacy,
    serving,
)
from bot.cli.base import ReadmeUsageCommand, app

__all__ = ["app", "main"]


def _registered_commands() -> list[CommandInfo]:
    groups = [group.typer_instance for group in app.registered_groups if group.typer_instance]
    return [c for typer_app in [app, *groups] for c in typer_app.registered_commands]


def _reflow_command_help() -> None:
    """Give each command the help its docstring reads as prose, one line per paragraph.

    Typer's rich help keeps a docstring's line breaks, in the command list and in a
    command's later paragraphs, so `supportbot --help` showed our source's wrapping inside
    its own ("...key in supportbot.toml," then "environment variable, ..." on a line of its
    own). The terminal wraps paragraphs well enough by itself."""
    for command in _registered_commands():
        if command.help is None and command.callback is not None:
            text = inspect.getdoc(command.callback) or ""
            paragraphs = (" ".join(p.split()) for p in text.split("\n\n"))
            command.help = "\n\n".join(paragraphs)


def _name_arguments_as_the_readme_does() -> None:
    """Every command renders its arguments' names as `NAME` (ReadmeUsageCommand says why);
    set here, once, so that a command added later cannot miss it."""
    for command in _registered_commands():
        if command.cls in (None, TyperCommand):  # Typer's default, not a class of our own
            command.cls = ReadmeUsageCommand


_reflow_command_help()
_name_arguments_as_the_readme_does()


def main() -> None:
    # Library progress bars (model loading) are noise on a terminal; ours stay on.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    app()
