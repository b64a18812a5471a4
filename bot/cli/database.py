"""`supportbot migrate-db`: move the conversation store from SQLite to PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.base import app, fail, settings_of
from bot.components import DECLARED_TABLES
from bot.store.migrate import (
    CountMismatch,
    SourceNotFound,
    TableCount,
    migrate_sqlite_to_postgres,
)


@app.command("migrate-db")
def migrate_db(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Option("--to", help="postgresql://user@host:port/database to copy it into."),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="sqlite:///path of the store to copy \\[default: the home's supportbot.db]",
        ),
    ] = None,
) -> None:
    """Copy conversations, turns, ratings, flags, corrections, Slack threads, the model
    registry, the retraining cycles, the knowledge base and the dashboard's accounts into
    PostgreSQL.

    Safe to run again (rows are upserted by id): run it while the old server still serves,
    stop that server, run it once more, then start the replicas with
    SUPPORTBOT_STORAGE__DATABASE_URL set to the target. Fails unless every table has the
    same number of rows on both sides. The Slack adapter's threads and handled events,
    which adapter is live, the knowledge base's entries, embedding cache and index versions,
    and the dashboard's operators, sessions and review log are copied too.
    """
    settings = settings_of(ctx)
    if not target.startswith(("postgresql://", "postgres://")):
        raise fail("--to must be a postgresql:// URL")
    if source is not None and not source.startswith("sqlite:///"):
        raise fail(f"--from: not a sqlite:/// URL: {source.split('@')[-1]!r}")
    # Four slashes for an absolute path.
    path = settings.paths.database if source is None else Path(source.removeprefix("sqlite:///"))
    copied: dict[str, int] = {}

    def progress(table: str, rows: int) -> None:
        copied[table] = copied.get(table, 0) + rows
        typer.echo(f"  {table}: {copied[table]} rows copied", err=True)

    try:
        counts = migrate_sqlite_to_postgres(
            path, target, declared=DECLARED_TABLES, on_batch=progress
        )
    except SourceNotFound as exc:
        raise fail(str(exc)) from None
    except CountMismatch as exc:
        _print_counts(exc.counts)
        raise fail(f"{exc}; run migrate-db again once the old server is stopped", 1) from None
    _print_counts(counts)
    typer.echo("every table has the same number of rows on both sides")


def _print_counts(counts: Sequence[TableCount]) -> None:
    typer.echo(f"{'table':<24}{'sqlite':>10}{'postgresql':>12}")
    for count in counts:
        mark = "" if count.matches else "  <- differs"
        typer.echo(f"{count.table:<24}{count.source:>10}{count.target:>12}{mark}")
