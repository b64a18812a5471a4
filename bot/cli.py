"""The ``supportbot`` command line: thin commands over the jobs and the server."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.settings import Settings, SettingsError, load_settings
from retrieval.records import ParseIssue

app = typer.Typer(
    help="supportbot: a self-hosted customer-service bot that learns from your support logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

log = logging.getLogger("supportbot")


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(help="Folder holding all state [env SUPPORTBOT_HOME, default ./.supportbot]"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML config file [env SUPPORTBOT_CONFIG, default <home>/supportbot.toml]"
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Global options; every command reads the same settings."""
    try:
        settings = load_settings(config_file=config, home=home)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    logging.basicConfig(
        level=logging.DEBUG if verbose else getattr(logging, settings.log_level.upper(), 20),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The embedder and models must never be fetched from a hub at run time.
    for noisy in ("sentence_transformers", "transformers", "httpx", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ctx.obj = settings


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="JSONL or CSV log files, or Slack export folders.")
    ],
    question_column: Annotated[
        str | None, typer.Option(help="CSV column holding the customer's question.")
    ] = None,
    answer_column: Annotated[
        str | None, typer.Option(help="CSV column holding the agent's answer.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Read support logs, scrub PII, store them and publish a new search index."""
    from bot.components import open_knowledge_base
    from retrieval.ingest import ingest_paths
    from retrieval.parsers import ParseOptions, UnsupportedLogFormat

    settings = _settings(ctx)
    options = ParseOptions(
        csv_question_column=question_column or settings.retrieval.csv_question_column,
        csv_answer_column=answer_column or settings.retrieval.csv_answer_column,
    )
    knowledge = open_knowledge_base(settings)
    try:
        report = ingest_paths(
            paths,
            knowledge,
            options=options,
            scrub_pii=settings.retrieval.scrub_pii,
            progress=progress,
        )
    except UnsupportedLogFormat as exc:
        raise _fail(str(exc)) from None
    finally:
        knowledge.close()
    for line in report.summary_lines():
        typer.echo(line)
    shown = report.issues[:20]
    for issue in shown:
        typer.secho(f"  skipped {issue}", fg=typer.colors.YELLOW, err=True)
    if len(report.issues) > len(shown):
        typer.secho(f"  ... and {len(report.issues) - len(shown)} more", err=True)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="A customer message.")] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="Number of hits.")] = None,
    in_path: Annotated[
        Path | None,
        typer.Option(
            "--in", help='JSONL of questions {"id", "messages": [...]} to search in bulk.'
        ),
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Where bulk hits are written (JSONL).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
) -> None:
    """Show the past exchanges closest to a message, with scores and source ids."""
    from bot.components import open_knowledge_base
    from retrieval.knowledge import IndexMismatch

    if (query is None) == (in_path is None):
        raise _fail("give either a QUERY or --in FILE (with --out FILE)")
    if in_path is not None and out_path is None:
        raise _fail("--in needs --out")
    settings = _settings(ctx)
    knowledge = open_knowledge_base(settings)
    try:
        if knowledge.store.live_index_version() is None:
            raise _fail("nothing is indexed yet: run `supportbot ingest PATH` first")
        if query is not None:
            hits = knowledge.search((), query, k)
            _print_hits(query, [_hit_json(h) for h in hits], as_json)
        else:
            assert in_path is not None and out_path is not None
            _bulk_search(knowledge, in_path, out_path, k or settings.retrieval.top_k)
    except IndexMismatch as exc:
        raise _fail(str(exc)) from None
    finally:
        knowledge.close()


def _hit_json(hit: Any) -> dict[str, Any]:
    return {
        "score": round(float(hit.score), 4),
        "source_id": hit.source_id,
        "customer_text": hit.customer_text,
        "agent_reply": hit.agent_reply,
    }


def _print_hits(query: str, hits: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"query": query, "hits": hits}, ensure_ascii=False, indent=2))
        return
    if not hits:
        typer.echo("no hits")
    for rank, hit in enumerate(hits, start=1):
        typer.secho(f"{rank}. {hit['score']:.3f}  {hit['source_id']}", bold=True)
        typer.echo(f"   customer: {_clip(hit['customer_text'])}")
        typer.echo(f"   agent:    {_clip(hit['agent_reply'])}")


def _clip(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _bulk_search(knowledge: Any, in_path: Path, out_path: Path, k: int) -> None:
    from tqdm import tqdm

    from retrieval.knowledge import Query
    from retrieval.questions import Question, read_questions
    from retrieval.records import ParseIssue

    if not in_path.is_file():
        raise _fail(f"no such file: {in_path}")
    questions: list[Question] = []
    issues: list[ParseIssue] = []
    for record in read_questions(in_path):
        if isinstance(record, ParseIssue):
            issues.append(record)
        else:
            questions.append(record)
    for issue in issues:
        typer.secho(f"  skipped {issue}", fg=typer.colors.YELLOW, err=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with (
        open(tmp, "w", encoding="utf-8") as out,
        tqdm(total=len(questions), unit="q", desc="searching") as bar,
    ):
        for start in range(0, len(questions), 256):
            chunk = questions[start : start + 256]
            results = knowledge.search_batch([Query(q.customer_text, q.context) for q in chunk], k)
            for question, hits in zip(chunk, results, strict=True):
                result = {"id": question.id, "hits": [_hit_json(h) for h in hits]}
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
            bar.update(len(chunk))
    tmp.replace(out_path)
    typer.echo(f"wrote {len(questions)} results to {out_path} ({len(issues)} lines skipped)")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on [default: server.host, 127.0.0.1]")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port to listen on [default: server.port, 8080]"),
    ] = None,
) -> None:
    """Serve the chat API, the widget and its demo page (and Slack, when configured)."""
    from aiohttp import web

    from bot.app import create_app

    settings = _settings(ctx)
    web.run_app(
        create_app(settings),
        host=host or settings.server.host,
        port=settings.server.port if port is None else port,
        print=typer.echo,
    )


@app.command()
def answer(
    ctx: typer.Context,
    in_path: Annotated[
        Path,
        typer.Option("--in", help='JSONL of questions {"id", "messages": [{"role", "text"}]}.'),
    ],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out", help='Where answers {"id", "reply", "sources", "confidence", "handoff"} go.'
        ),
    ],
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="Questions answered at the same time.")
    ] = 4,
    record: Annotated[
        bool,
        typer.Option(
            help="Keep the conversations in the home database (they would reach the "
            "review queue); by default they go to a temporary database."
        ),
    ] = False,
) -> None:
    """Answer questions in bulk through the same engine as the server (benchmarks, evals)."""
    import asyncio

    if not in_path.is_file():
        raise _fail(f"no such file: {in_path}")
    settings = _settings(ctx)
    answered, failed, skipped = asyncio.run(
        _answer_file(settings, in_path, out_path, concurrency=concurrency, record=record)
    )
    typer.echo(
        f"wrote {answered} answers to {out_path} "
        f"({skipped} lines skipped, {failed} questions failed)"
    )


async def _answer_file(
    settings: Settings, in_path: Path, out_path: Path, *, concurrency: int, record: bool
) -> tuple[int, int, int]:
    """Answer every question of ``in_path`` into ``out_path`` (atomically, in file order);
    return (answered, failed, skipped lines)."""
    import tempfile

    from tqdm import tqdm

    from bot.app import create_app, started
    from bot.store.sqlite import SqliteConversationStore
    from retrieval.questions import Question, read_questions
    from retrieval.records import ParseIssue

    questions: list[Question] = []
    issues: list[ParseIssue] = []
    for item in read_questions(in_path):
        if isinstance(item, ParseIssue):
            issues.append(item)
        else:
            questions.append(item)
    for issue in issues:
        typer.secho(f"  skipped {issue}", fg=typer.colors.YELLOW, err=True)
    with tempfile.TemporaryDirectory(prefix="supportbot-answer-") as scratch:
        store = None if record else SqliteConversationStore(Path(scratch) / "answers.db")
        try:
            # A bulk job must not connect to Slack and answer live events.
            offline = settings.model_copy(
                update={"slack": settings.slack.model_copy(update={"mode": "off"})}
            )
            async with started(create_app(offline, store=store)) as web_app:
                out_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = out_path.with_name(out_path.name + ".tmp")
                with (
                    open(tmp, "w", encoding="utf-8") as out,
                    tqdm(total=len(questions), unit="q", desc="answering") as bar,
                ):
                    answered = failed = 0
                    for start in range(0, len(questions), 64 * concurrency):
                        chunk = questions[start : start + 64 * concurrency]
                        results = await _answer_chunk(web_app, chunk, concurrency)
                        for question, result in zip(chunk, results, strict=True):
                            if isinstance(result, str):
                                failed += 1
                                typer.secho(f"  {question.id}: {result}", fg="yellow", err=True)
                                continue
                            out.write(json.dumps(result, ensure_ascii=False) + "\n")
                            answered += 1
                        bar.update(len(chunk))
                tmp.replace(out_path)
        finally:
            if store is not None:
                store.close()
    return answered, failed, len(issues)


async def _answer_chunk(web_app: Any, questions: list[Any], concurrency: int) -> list[Any]:
    """Answers (JSON records) or, for a question that failed, the reason as a string."""
    import asyncio

    from bot.app import SETTINGS, STORE, pii_scrubber
    from bot.core.errors import SupportbotError
    from bot.core.types import IncomingMessage
    from bot.web import ENGINE
    from bot.web.payloads import reply_json

    engine, store = web_app[ENGINE], web_app[STORE]
    scrub = pii_scrubber(web_app[SETTINGS])
    gate = asyncio.Semaphore(concurrency)

    async def one(question: Any) -> Any:
        async with gate:
            conversation = await engine.start_conversation("bulk")
            for message in question.context:
                role = "customer" if message.role == "customer" else "agent"
                text = scrub(message.text) if role == "customer" else message.text
                await store.add_turn(conversation.id, role, text)
            try:
                reply = await engine.reply(IncomingMessage(conversation.id, question.customer_text))
            except SupportbotError as exc:
                return f"{type(exc).__name__}: {exc}"
            record = reply_json(reply)
            del record["turn_id"]
            return {"id": question.id, **record}

    return list(await asyncio.gather(*(one(q) for q in questions)))


@app.command()
def train(
    ctx: typer.Context,
    budget_minutes: Annotated[
        float, typer.Option(min=0.1, help="Wall-clock budget for building and training.")
    ] = 30.0,
    eval_path: Annotated[
        Path | None,
        typer.Option(
            "--eval", help="Held-out conversations (JSONL); default: a fixed share of the logs."
        ),
    ] = None,
    rebuild_base: Annotated[
        bool, typer.Option(help="Bootstrap a new base model even if one exists.")
    ] = False,
    promote: Annotated[
        bool | None,
        typer.Option(
            "--promote/--no-promote",
            help="Make the new adapter live (default: only if none is live yet).",
        ),
    ] = None,
    if_missing: Annotated[
        bool, typer.Option(help="Do nothing when an adapter is already live.")
    ] = False,
    report_path: Annotated[
        Path | None, typer.Option("--report", help="Also write the report as JSON here.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train a new LoRA adapter (bootstrapping a small base model offline if needed),
    evaluate it against the base model and copying the top retrieved reply, and publish it."""
    from bot.components import generator_paths, open_knowledge_base
    from finetune.pipeline import train_generator
    from finetune.registry import ModelRegistry
    from retrieval.ingest import scrub_conversation
    from retrieval.parsers import read_logs

    settings = _settings(ctx)
    paths = generator_paths(settings)
    if if_missing:
        registry = ModelRegistry.open(paths.database)
        try:
            live = registry.live_adapter()
        finally:
            registry.close()
        if live is not None:
            typer.echo(f"adapter {live.folder} is live; nothing to do (--if-missing)")
            return
    held_out = None
    if eval_path is not None:
        if not eval_path.is_file():
            raise _fail(f"no such file: {eval_path}")
        pii: Counter[str] = Counter()
        held_out = [
            scrub_conversation(c, pii)
            for c in read_logs(eval_path)
            if not isinstance(c, ParseIssue)
        ]
    knowledge = open_knowledge_base(settings)
    try:
        if knowledge.store.live_index_version() is None:
            raise _fail("nothing is indexed yet: run `supportbot ingest PATH` first")
        knowledge.load()
        report = train_generator(
            conversations=list(knowledge.iter_conversations()),
            retriever=knowledge,
            config=settings.generator,
            paths=paths,
            eval_conversations=held_out,
            budget_minutes=budget_minutes,
            rebuild_base=rebuild_base,
            promote=promote,
            progress=progress,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    finally:
        knowledge.close()
    typer.echo(report.format_table())
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")


@app.command()
def retrain(
    ctx: typer.Context,
    budget_minutes: Annotated[
        float | None,
        typer.Option(min=0.1, help="Training budget [default: retrain.budget_minutes]."),
    ] = None,
    report_path: Annotated[
        Path | None, typer.Option("--report", help="Also write the cycle record as JSON here.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run one retraining cycle: train a new adapter from the logs and the operators'
    feedback, warm-started from the live one, and promote it only if it is not worse."""
    from dataclasses import asdict

    from bot.learning import NothingIndexedError, run_retrain_cycle
    from finetune.cycles import CycleLockedError

    settings = _settings(ctx)
    try:
        report = run_retrain_cycle(settings, budget_minutes=budget_minutes, progress=progress)
    except CycleLockedError as exc:
        raise _fail(str(exc), code=3) from None
    except (NothingIndexedError, ValueError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(report.format_table())
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(asdict(report.record), indent=2), encoding="utf-8")


@app.command()
def rollback(
    ctx: typer.Context,
    to: Annotated[
        int | None,
        typer.Option(help="Adapter id to make live [default: the one before the live one]."),
    ] = None,
) -> None:
    """Make the previous adapter version live again; a running server follows it."""
    from bot.learning import rollback_generator

    try:
        record = rollback_generator(_settings(ctx), to=to)
    except LookupError as exc:  # nothing to roll back to, or no such adapter
        raise _fail(str(exc)) from None
    typer.echo(record.reason)


@app.command()
def calibrate(
    ctx: typer.Context,
    eval_path: Annotated[
        Path, typer.Option("--eval", help="Held-out conversations (JSONL) as in-scope cases.")
    ],
    out_of_scope: Annotated[
        Path,
        typer.Option(help='Questions the logs do not cover (JSONL {"id", "messages"}).'),
    ],
    target_recall: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of out-of-scope questions to hand off."),
    ] = 0.9,
) -> None:
    """Fit the confidence weights and hand-off threshold on a validation split."""
    from bot.calibration import format_result, run_calibration
    from bot.components import open_knowledge_base

    settings = _settings(ctx)
    for path in (eval_path, out_of_scope):
        if not path.is_file():
            raise _fail(f"no such file: {path}")
    knowledge = open_knowledge_base(settings)
    try:
        if knowledge.store.live_index_version() is None:
            raise _fail("nothing is indexed yet: run `supportbot ingest PATH` first")
        knowledge.load()
        calibration, issues = run_calibration(
            knowledge, eval_path, out_of_scope, settings.home, target_handoff_recall=target_recall
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    finally:
        knowledge.close()
    for issue in issues:
        typer.secho(f"  skipped {issue}", fg=typer.colors.YELLOW, err=True)
    for line in format_result(calibration.result, target_recall):
        typer.echo(line)
    typer.echo(f"saved to {settings.home / 'calibration.json'}")


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
    from bot.ops.passwords import WeakPassword
    from bot.ops.storage import DashboardStore, InvalidOperatorName, OperatorExists

    settings = _settings(ctx)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = DashboardStore.open(settings.paths.ensure().database)
    try:
        operator = store.add_operator(name, password)
    except (InvalidOperatorName, WeakPassword, OperatorExists) as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
    typer.echo(f"added operator {operator.name}; log in at /ops/")


@operators_app.command("list")
def operators_list(ctx: typer.Context) -> None:
    """List the operator accounts with their last login."""
    from datetime import UTC, datetime

    from bot.ops.storage import DashboardStore

    settings = _settings(ctx)
    store = DashboardStore.open(settings.paths.ensure().database)
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
    from bot.ops.storage import DashboardStore, UnknownOperator

    settings = _settings(ctx)
    store = DashboardStore.open(settings.paths.ensure().database)
    try:
        store.remove_operator(name)
    except UnknownOperator as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
    typer.echo(f"removed operator {name}")


def main() -> None:
    # Library progress bars (model loading) are noise on a terminal; ours stay on.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    app()


if __name__ == "__main__":
    main()
