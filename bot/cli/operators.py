"""`supportbot operators`: accounts of the review dashboard."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bot.cli.base import app, fail, settings_of
from bot.ops.passwords import WeakPassword
from bot.ops.storage import DashboardStore, InvalidOperatorName, OperatorExists, UnknownOperator

operators_app = typer.Typer(
    help="Operator accounts of the review dashboard (/ops).", no_args_is_help=True
)
app.add_typer(operators_app, name="operators")


@operators_app.command("add")
def operators_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Login name (letters, digits, . _ @ -).")],
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
) -> None:
    """Create an operator account; asks for the password twice (hashed with scrypt)."""

    settings = settings_of(ctx)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = DashboardStore.open(
        settings.paths.ensure().database, postgres_url=settings.storage.postgres_url
    )
    try:
        operator = store.add_operator(name, password)
    except (InvalidOperatorName, WeakPassword, OperatorExists) as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    typer.echo(f"added operator {operator.name}; log in at /ops/")


@operators_app.command("list")
def operators_list(ctx: typer.Context) -> None:
    """List the operator accounts with their last login."""
    from datetime import UTC, datetime

    settings = settings_of(ctx)
    store = DashboardStore.open(
        settings.paths.ensure().database, postgres_url=settings.storage.postgres_url
    )
    try:
        operators = store.operators()
    finally:
        store.close()
    if not operators:
        typer.echo("no operators yet: add one with `supportbot operators add NAME`")
    for operator in operators:
        last = operator.last_login_at
        when = None if last is None else datetime.fromtimestamp(last, UTC)
        seen = "never" if when is None else f"{when:%Y-%m-%d %H:%M} UTC"
        typer.echo(f"{operator.name}\tlast login: {seen}")


@operators_app.command("remove")
def operators_remove(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Login name.")]
) -> None:
    """Delete an operator account and end its sessions (the review log keeps the name)."""

    settings = settings_of(ctx)
    store = DashboardStore.open(
        settings.paths.ensure().database, postgres_url=settings.storage.postgres_url
    )
    try:
        store.remove_operator(name)
    except UnknownOperator as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    typer.echo(f"removed operator {name}")
