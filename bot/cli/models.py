"""Commands over the generator: train, retrain, rollback."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.base import app, fail, indexed_knowledge, settings_of
from bot.components import (
    format_served,
    generator_paths,
    name_finder,
    open_knowledge_base,
    served_confidence,
    tuning_config,
    verifier_recipe,
)
from bot.feedback import export_feedback
from finetune.base_models import BaseModelError, gguf_file
from finetune.cycles import CycleLockedError
from finetune.registry import ModelRegistry
from finetune.retrain import RetrainPolicy
from finetune.retrain import rollback as rollback_adapter
from finetune.serving_policy import AdapterStatus, adapter_status
from retrieval.parsers import read_logs
from retrieval.records import ParseIssue

if TYPE_CHECKING:
    from bot.settings import Settings
    from finetune.learning import CyclePlan
    from retrieval.training import RetrievalTrainingReport


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
            help="Tune the embedder on the logs first \\[default: retrieval.tuning.enabled].",
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

    from finetune.learning import GeneratorJob, train_from_logs  # lazy: faiss
    from retrieval.ingest import scrub_conversations  # lazy: faiss

    started = time.monotonic()
    settings = settings_of(ctx)
    paths = generator_paths(settings)
    tuning = tuning_config(settings)  # the hand-off target an operator chose, if one did
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
    retrieval_figures: dict[str, object] = {}
    try:
        with indexed_knowledge(settings) as knowledge:

            def show_retrieval(retrieval: RetrievalTrainingReport) -> None:
                # Shown before the generator trains for minutes: the step's figures and
                # what the server will apply after it (the settings may override the fit).
                embedder_id = knowledge.embedder.model_id
                served = served_confidence(settings.engine, settings.home, embedder_id)
                retrieval_figures.update(retrieval.as_dict(), served=asdict(served))
                typer.echo(retrieval.format_table())
                typer.echo(format_served(served))
                typer.echo("")

            _, report = train_from_logs(
                knowledge,
                tuning,
                home=settings.home,
                embedders_root=settings.paths.embedders,
                budget_minutes=budget_minutes,
                tune_embedder=tuning.enabled if tune_embedder is None else tune_embedder,
                generator=None
                if retrieval_only
                else GeneratorJob(settings.generator, paths, held_out, promote),
                progress=progress,
                started=started,
                retrieval_done=show_retrieval,
                verifier=verifier_recipe(settings),
                withhold_claims=settings.engine.hand_off_claimed_actions,
            )
    except (ValueError, BaseModelError) as exc:
        raise fail(str(exc)) from None
    if report is None:  # --retrieval-only
        _write_report(report_path, {"retrieval": retrieval_figures})
        return
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

    return adapter_status(
        metrics,
        live=live,
        answer_mode=settings.engine.answer_mode,
        tolerance=settings.engine.auto_tolerance,
    )


def _echo_advice(status: AdapterStatus) -> None:
    if status.live and not status.served and status.reason.startswith("it "):
        # `--promote` named: a second train leaves the live adapter live without it, and
        # `make run` trains only while none exists (--if-missing).
        typer.echo(
            "\nTrain longer for replies of its own (supportbot train --budget-minutes 30"
            " --promote; without --promote the new adapter is not made live while this one"
            " is), or set engine.answer_mode = 'generate' to serve it anyway."
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
        typer.Option(min=0.1, help="Training budget \\[default: retrain.budget_minutes]."),
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
    retrieval is not worse; a reply verifier trained for the promoted pair when its hand-off
    fit could not weigh the one served), then train a new adapter from the logs and the operators'
    feedback, warm-started from the live one, and promote it only if it is not worse."""
    from dataclasses import asdict

    from finetune.learning import run_learning_cycle  # lazy: faiss
    from retrieval.embedder_retraining import format_step  # lazy: faiss
    from retrieval.verifier_retraining import format_verifier_step  # lazy: faiss

    settings = settings_of(ctx)
    plan = retrain_plan(settings, budget_minutes=budget_minutes, tune_embedder=tune_embedder)
    try:
        with indexed_knowledge(settings) as knowledge:
            feedback = export_feedback(plan.paths.database, postgres_url=plan.paths.postgres_url)
            report = run_learning_cycle(knowledge, feedback, plan, progress=progress)
    except CycleLockedError as exc:
        raise fail(str(exc), code=3) from None
    except (ValueError, BaseModelError) as exc:
        raise fail(str(exc)) from None
    embedder_step = report.record.figures.get("embedder")
    if embedder_step:
        typer.echo(format_step(embedder_step) + "\n")
    verifier_step = report.record.figures.get("verifier")
    if verifier_step:
        typer.echo(format_verifier_step(verifier_step) + "\n")
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


def retrain_plan(
    settings: Settings,
    *,
    budget_minutes: float | None = None,
    tune_embedder: bool | None = None,
) -> CyclePlan:
    """What a retraining cycle of this home does (``retrain.*``), as
    :func:`finetune.learning.run_learning_cycle` takes it; ``budget_minutes`` and
    ``tune_embedder`` override ``retrain.budget_minutes`` and ``retrain.tune_embedder``."""
    from finetune.learning import CyclePlan, EmbedderStepPlan, VerifierStepPlan  # lazy: faiss
    from retrieval.embedder_retraining import EmbedderStepPolicy  # lazy: faiss

    config = settings.retrain
    policy = RetrainPolicy(
        tolerance=config.tolerance,
        approved_weight=config.approved_weight,
        corrected_weight=config.corrected_weight,
        feedback_share=config.feedback_share,
        budget_minutes=config.budget_minutes if budget_minutes is None else budget_minutes,
        lock_stale_s=config.lock_stale_minutes * 60.0,
        eval_corrections=config.eval_corrections,
    )
    embedder = None
    if config.tune_embedder if tune_embedder is None else tune_embedder:
        embedder = EmbedderStepPlan(
            EmbedderStepPolicy(
                tuning_config(settings),
                config.embedder_tolerance,
                config.eval_corrections,
                withhold_claims=settings.engine.hand_off_claimed_actions,
            ),
            budget_share=config.embedder_budget_share,
            home=settings.home,
            embedders_root=settings.paths.embedders,
        )
    recipe = verifier_recipe(settings)
    verifier = None
    if embedder is not None and recipe is not None and config.verifier_budget_share > 0:
        verifier = VerifierStepPlan(recipe, config.verifier_budget_share)
    return CyclePlan(settings.generator, generator_paths(settings), policy, embedder, verifier)


@app.command()
def rollback(
    ctx: typer.Context,
    to: Annotated[
        int | None,
        typer.Option(
            help="Adapter (or with --retrieval, index version) id to make live"
            " \\[default: the one before the live one]."
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
    """Make the previous adapter version (or, with --retrieval, index version) live again;
    a running server follows it."""
    if retrieval:
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
        record = rollback_adapter(generator_paths(settings_of(ctx)), to=to)
    except LookupError as exc:  # nothing to roll back to, or no such adapter
        raise fail(str(exc)) from None
    typer.echo(record.reason)
