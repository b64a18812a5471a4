"""Commands over the generator: train, retrain, rollback."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.base import app, fail, settings_of
from retrieval.records import ParseIssue

if TYPE_CHECKING:
    from bot.settings import Settings
    from finetune.serving_policy import AdapterStatus


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
    tune_embedder: Annotated[
        bool | None,
        typer.Option(
            "--tune-embedder/--no-tune-embedder",
            help="Tune the embedder on the logs first [default: retrieval.tuning.enabled].",
        ),
    ] = None,
    retrieval_only: Annotated[
        bool,
        typer.Option(help="Only tune retrieval and fit the hand-off threshold; no generator."),
    ] = False,
) -> None:
    """Tune retrieval on the logs (embedder, index, hand-off threshold), then train a new
    LoRA adapter on the configured base model (generator.base_model), evaluate it against
    the base model and copying the top retrieved reply, and publish both."""
    import time
    from dataclasses import asdict

    from bot.components import (
        format_served,
        generator_paths,
        name_finder,
        open_knowledge_base,
        served_confidence,
    )
    from finetune.base_models import BaseModelError, gguf_file
    from finetune.pipeline import train_generator
    from finetune.registry import ModelRegistry
    from retrieval.ingest import scrub_conversations
    from retrieval.parsers import read_logs
    from retrieval.training import train_retrieval

    started = time.monotonic()
    settings = settings_of(ctx)
    paths = generator_paths(settings)
    tuning = settings.retrieval.tuning
    if if_missing and not retrieval_only:
        registry = ModelRegistry.open(paths)
        try:
            live = registry.live_adapter()
        finally:
            registry.close()
        if live is not None:
            typer.echo(f"adapter {live.folder} is live; nothing to do (--if-missing)")
            return
    if not retrieval_only:
        try:
            # A packaged model whose package is missing, or a missing .gguf file, fails the
            # job now rather than after the retrieval step has spent its share of the budget.
            gguf_file(settings.generator.base_model)
        except BaseModelError as exc:
            raise fail(str(exc)) from None
    held_out = None
    if eval_path is not None:
        if not eval_path.is_file():
            raise fail(f"no such file: {eval_path}")
        held_out = scrub_conversations(
            [c for c in read_logs(eval_path) if not isinstance(c, ParseIssue)],
            Counter(),
            name_finder(settings),
        )
    knowledge = open_knowledge_base(settings)
    try:
        if knowledge.store.live_index_version() is None:
            raise fail("nothing is indexed yet: run `supportbot ingest PATH` first")
        knowledge.load()
        budget_s = budget_minutes * 60.0
        retrieval_report = train_retrieval(
            knowledge,
            tuning,
            home=settings.home,
            embedders_root=settings.paths.embedders,
            budget_s=budget_s if retrieval_only else budget_s * tuning.budget_share,
            tune=tuning.enabled if tune_embedder is None else tune_embedder,
            progress=progress,
        )
        # What the server will apply after this step: the settings may override the fit.
        served = served_confidence(settings.engine, settings.home, knowledge.embedder.model_id)
        retrieval_figures = {**retrieval_report.as_dict(), "served": asdict(served)}
        typer.echo(retrieval_report.format_table())
        typer.echo(format_served(served))
        typer.echo("")
        if retrieval_only:
            _write_report(report_path, {"retrieval": retrieval_figures})
            return
        # The generator keeps its share of the budget even when the retrieval step ran over
        # it (a slow or busy machine): a model trained for no time at all answers noise.
        remaining_minutes = max(
            budget_minutes - (time.monotonic() - started) / 60.0,
            budget_minutes * (1.0 - tuning.budget_share),
        )
        report = train_generator(
            conversations=list(knowledge.iter_conversations()),
            retriever=knowledge,
            config=settings.generator,
            paths=paths,
            eval_conversations=held_out,
            budget_minutes=max(remaining_minutes, 0.1),
            promote=promote,
            progress=progress,
        )
    except (ValueError, BaseModelError) as exc:
        raise fail(str(exc)) from None
    finally:
        knowledge.close()
    status = _adapter_status(
        settings, {"eval": [s.as_dict() for s in report.scores]}, live=report.promoted
    )
    typer.echo(report.format_table(status))
    _echo_advice(status)
    _write_report(
        report_path,
        {
            **report.as_dict(),
            "serving": {"status": status.label, "reason": status.reason},
            "retrieval": retrieval_figures,
        },
    )


def _adapter_status(settings: Settings, metrics: dict[str, object], *, live: bool) -> AdapterStatus:
    """What the server will send with this adapter: the serving policy's decision, the one
    the server's start-up and the dashboard make too."""
    from finetune.serving_policy import adapter_status

    return adapter_status(
        metrics,
        live=live,
        answer_mode=settings.engine.answer_mode,
        tolerance=settings.engine.auto_tolerance,
    )


def _echo_advice(status: AdapterStatus) -> None:
    if status.live and not status.served and status.reason.startswith("it "):
        typer.echo(
            "\nTrain longer (--budget-minutes) for replies of its own, or set"
            " engine.answer_mode = 'generate' to serve it anyway."
        )


def _write_report(path: Path | None, payload: dict[str, object]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")


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
    tune_embedder: Annotated[
        bool | None,
        typer.Option(
            "--tune-embedder/--no-tune-embedder",
            help="Tune the embedder first, through its own gate (default: retrain.tune_embedder).",
        ),
    ] = None,
) -> None:
    """Run one retraining cycle: tune the embedder and re-embed the index (promoted only if
    retrieval is not worse), then train a new adapter from the logs and the operators'
    feedback, warm-started from the live one, and promote it only if it is not worse."""
    from dataclasses import asdict

    from bot.learning import NothingIndexedError, run_retrain_cycle
    from finetune.base_models import BaseModelError
    from finetune.cycles import CycleLockedError
    from retrieval.embedder_retraining import format_step

    settings = settings_of(ctx)
    try:
        report = run_retrain_cycle(
            settings, budget_minutes=budget_minutes, progress=progress, tune_embedder=tune_embedder
        )
    except CycleLockedError as exc:
        raise fail(str(exc), code=3) from None
    except (NothingIndexedError, ValueError, BaseModelError) as exc:
        raise fail(str(exc)) from None
    embedder_step = report.record.figures.get("embedder")
    if embedder_step:
        typer.echo(format_step(embedder_step) + "\n")
    typer.echo(report.format_table())
    figures = report.record.figures
    if report.record.status == "promoted" and figures.get("candidate") and figures.get("copy"):
        status = _adapter_status(
            settings,
            {"gate": {"candidate": figures["candidate"], "copy": figures["copy"]}},
            live=True,
        )
        name = report.live_after.folder.name if report.live_after else "the candidate"
        typer.echo(f"\nadapter:     {name}: {status.sentence()}")
        _echo_advice(status)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(asdict(report.record), indent=2), encoding="utf-8")


@app.command()
def rollback(
    ctx: typer.Context,
    to: Annotated[
        int | None,
        typer.Option(
            help="Adapter (or with --retrieval, index version) id to make live"
            " [default: the one before the live one]."
        ),
    ] = None,
    retrieval: Annotated[
        bool,
        typer.Option(
            "--retrieval",
            help="Roll back the search index and the embedder it was built with instead.",
        ),
    ] = False,
) -> None:
    """Make the previous adapter version live again; a running server follows it."""
    from bot.learning import rollback_generator

    if retrieval:
        from bot.components import open_knowledge_base

        knowledge = open_knowledge_base(settings_of(ctx))
        try:
            version = knowledge.rollback(to)
        except LookupError as exc:
            raise fail(str(exc)) from None
        finally:
            knowledge.close()
        typer.echo(
            f"index version {version.id} ({version.folder}) is live,"
            f" served with {version.embedder_location or 'the configured embedder'}"
        )
        return

    try:
        record = rollback_generator(settings_of(ctx), to=to)
    except LookupError as exc:  # nothing to roll back to, or no such adapter
        raise fail(str(exc)) from None
    typer.echo(record.reason)
