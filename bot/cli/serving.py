"""Commands that answer customers: serve, and answer in bulk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.base import app, load_question_file, settings_of
from bot.core.errors import SupportbotError
from bot.core.types import IncomingMessage
from bot.settings import Settings
from bot.store.conversations import ConversationDatabase
from bot.web import ENGINE
from bot.web.connections import serve as serve_guarded
from bot.web.payloads import reply_json


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on \\[default: server.host, 127.0.0.1]")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port to listen on \\[default: server.port, 8080]"),
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Port serving only /healthz and /metrics \\[default: server.health_port, off]",
        ),
    ] = None,
) -> None:
    """Serve the chat API, the widget and its demo page (and Slack, when configured)."""
    from bot.app import create_app  # lazy: Slack (the server's 260 modules)

    settings = settings_of(ctx)
    serve_guarded(
        create_app(settings),
        settings.web,
        host=host or settings.server.host,
        port=settings.server.port if port is None else port,
        health_port=settings.server.health_port if health_port is None else health_port,
        announce=typer.echo,
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

    settings = settings_of(ctx)
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

    from bot.app import create_app, started  # lazy: Slack (the server's 260 modules)

    questions, skipped = load_question_file(in_path)
    with tempfile.TemporaryDirectory(prefix="supportbot-answer-") as scratch:
        store = None if record else ConversationDatabase(Path(scratch) / "answers.db")
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
                await store.aclose()
    return answered, failed, skipped


async def _answer_chunk(web_app: Any, questions: list[Any], concurrency: int) -> list[Any]:
    """Answers (JSON records) or, for a question that failed, the reason as a string."""
    import asyncio

    from bot.app import STORE  # lazy: Slack (the server's 260 modules)

    engine, store = web_app[ENGINE], web_app[STORE]
    gate = asyncio.Semaphore(concurrency)

    async def one(question: Any) -> Any:
        async with gate:
            conversation = await engine.start_conversation("bulk")
            for message in question.context:
                role = "customer" if message.role == "customer" else "agent"
                text = (
                    await engine.scrubber.scrub(message.text)
                    if role == "customer"
                    else message.text
                )
                await store.add_turn(conversation.id, role, text)
            try:
                reply = await engine.reply(IncomingMessage(conversation.id, question.customer_text))
            except SupportbotError as exc:
                return f"{type(exc).__name__}: {exc}"
            record = reply_json(reply)
            del record["turn_id"]
            return {"id": question.id, **record}

    return list(await asyncio.gather(*(one(q) for q in questions)))
