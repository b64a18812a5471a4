"""The command-line application, its global options and shared helpers."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand

from bot.components import open_knowledge_base
from bot.settings import Settings, SettingsError, load_settings
from retrieval.questions import Question, read_questions
from retrieval.records import ParseIssue

if TYPE_CHECKING:
    # The click that this Typer vendors: the type its commands' methods are declared with.
    from typer._click import Context as ClickContext

    from retrieval.knowledge import KnowledgeBase

app = typer.Typer(
    help="supportbot: a self-hosted customer-service bot that learns from your support logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

log = logging.getLogger("supportbot")


class ReadmeUsageCommand(TyperCommand):
    """A command whose help names its arguments as the README does: `operators add NAME`,
    `ingest PATH...`, an optional one in brackets.

    The Typer we pin writes a required argument as ``{name}`` in the usage line and as
    ``name`` in the Arguments panel, so `supportbot operators add --help` showed
    "[OPTIONS] {name}": braces read as a choice, or a template to fill in, and the name
    differed from the one the README and the error messages use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument) and param.metavar is None and param.name:
                param.metavar = param.name.upper()

    def collect_usage_pieces(self, ctx: ClickContext) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(_argument_usage(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


def _argument_usage(argument: TyperArgument) -> str:
    name = argument.metavar or (argument.name or "").upper()
    if argument.nargs != 1 and not name.endswith("..."):
        name += "..."
    return name if argument.required else f"[{name}]"


class BarAwareHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log lines to the terminal through ``tqdm.write``, which clears the progress bars
    first and draws them again below: written straight after a bar, a line joined it
    ("reading: 0conv [00:00, ?conv/s]2026-12-07 08:41:33,186 INFO ... given names")."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def settings_of(ctx: typer.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def indexed_knowledge(settings: Settings) -> Iterator[KnowledgeBase]:
    """The home's knowledge base, loaded for the block and closed after it; fails the
    command when nothing is indexed yet (the jobs that train or calibrate on it)."""
    knowledge = open_knowledge_base(settings)
    try:
        if knowledge.store.live_index_version() is None:
            raise fail("nothing is indexed yet: run `supportbot ingest PATH` first")
        knowledge.load()
        yield knowledge
    finally:
        knowledge.close()


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(help="Folder holding all state (env SUPPORTBOT_HOME, default ./.supportbot)"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML config file (env SUPPORTBOT_CONFIG, default <home>/supportbot.toml)"
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Global options; every command reads the same settings."""
    try:
        settings = load_settings(config_file=config, home=home)
    except SettingsError as exc:
        raise fail(str(exc)) from None
    handlers: list[logging.Handler] = [BarAwareHandler(sys.stderr)]
    log_file = settings.paths.logs / "supportbot.log"
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        # delay: the file appears with the first record, not with every --help.
        handlers.append(
            RotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=3, delay=True)
        )
    except OSError as exc:  # a read-only home still runs, logging to stderr only
        typer.secho(f"warning: cannot write {log_file}: {exc}", err=True)
    logging.basicConfig(
        level=logging.DEBUG if verbose else getattr(logging, settings.log_level.upper(), 20),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
    )
    # Their per-call INFO lines (model loading, HTTP requests, Alembic's plugin set-up and
    # revisions on every start) would drown ours.
    for noisy in ("sentence_transformers", "transformers", "httpx", "faiss", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ctx.obj = settings


def load_question_file(path: Path) -> tuple[list[Question], int]:
    """The questions of a bulk JSONL file and how many malformed lines were reported and
    skipped."""
    if not path.is_file():
        raise fail(f"no such file: {path}")
    questions: list[Question] = []
    skipped = 0
    for record in read_questions(path):
        if isinstance(record, ParseIssue):
            typer.secho(f"  skipped {record}", fg=typer.colors.YELLOW, err=True)
            skipped += 1
        else:
            questions.append(record)
    return questions, skipped
