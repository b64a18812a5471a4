"""`supportbot settings`: the settings reference, as docs/settings.md holds it."""

from __future__ import annotations

import typer

from bot.cli.base import app
from bot.settings_reference import render_reference


@app.command()
def settings() -> None:
    """Print the settings reference (markdown): every setting's key in supportbot.toml,
    environment variable, type, default and what it does."""
    typer.echo(render_reference(), nl=False)
