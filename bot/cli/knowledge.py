"""Commands over the knowledge base: ingest, search, calibrate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.base import app, fail, indexed_knowledge, load_question_file, settings_of
from bot.components import (
    format_served,
    known_names_path,
    name_finder,
    open_knowledge_base,
    served_confidence,
    tuning_config,
    verifier_recipe,
)
from retrieval.calibration import (
    calibration_path,
    format_result,
    format_trade_offs,
    load_calibration,
    run_calibration,
)
from retrieval.names import save_known_names
from retrieval.parsers import ParseOptions, UnsupportedLogFormat
from retrieval.records import Query


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH...", help="JSONL or CSV log files, or Slack export folders."),
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
    from retrieval.ingest import ingest_paths  # lazy: faiss

    settings = settings_of(ctx)
    options = ParseOptions(
        csv_question_column=question_column or settings.retrieval.csv_question_column,
        csv_answer_column=answer_column or settings.retrieval.csv_answer_column,
    )
    knowledge = open_knowledge_base(settings)
    names = name_finder(settings)
    try:
        report = ingest_paths(
            paths,
            knowledge,
            options=options,
            scrub_pii=settings.retrieval.scrub_pii,
            names=names,
            progress=progress,
        )
    except UnsupportedLogFormat as exc:
        raise fail(str(exc)) from None
    finally:
        knowledge.close()
        if names is not None:
            # Kept even when the run failed half-way: what it stored was scrubbed with them.
            save_known_names(known_names_path(settings), names.known_names)
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
    from retrieval.knowledge import IndexMismatch  # lazy: faiss

    if (query is None) == (in_path is None):
        raise fail("give either a QUERY or --in FILE (with --out FILE)")
    if in_path is not None and out_path is None:
        raise fail("--in needs --out")
    settings = settings_of(ctx)
    knowledge = open_knowledge_base(settings)
    try:
        if knowledge.store.live_index_version() is None:
            raise fail("nothing is indexed yet: run `supportbot ingest PATH` first")
        if query is not None:
            hits = knowledge.search((), query, k)
            _print_hits(query, [_hit_json(h) for h in hits], as_json)
        else:
            assert in_path is not None and out_path is not None
            _bulk_search(knowledge, in_path, out_path, k or settings.retrieval.top_k)
    except IndexMismatch as exc:
        raise fail(str(exc)) from None
    finally:
        knowledge.close()


def _hit_json(hit: Any) -> dict[str, Any]:
    found = {
        "score": round(float(hit.score), 4),
        "source_id": hit.source_id,
        "customer_text": hit.customer_text,
        "agent_reply": hit.agent_reply,
    }
    if hit.verifier_probability is not None:  # the first hit's, when a verifier is trained
        found["verifier_probability"] = round(float(hit.verifier_probability), 4)
    return found


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
        if "verifier_probability" in hit:
            typer.echo(f"   verifier: {hit['verifier_probability']:.2f} that this reply answers it")


def _clip(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _bulk_search(knowledge: Any, in_path: Path, out_path: Path, k: int) -> None:
    from tqdm import tqdm

    questions, skipped = load_question_file(in_path)
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
    typer.echo(f"wrote {len(questions)} results to {out_path} ({skipped} lines skipped)")


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
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of out-of-scope questions to hand off; kept for later fits, as a"
            " target chosen on the dashboard is \\[default: the target chosen last, else"
            " retrieval.tuning.target_handoff_recall]",
        ),
    ] = None,
    wrong_answer_cost: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="How many right answers one wrong answer is worth giving up when the"
            " confidence signals are chosen \\[default: retrieval.tuning.wrong_answer_cost]",
        ),
    ] = None,
) -> None:
    """Fit the confidence weights and hand-off threshold on a validation split."""
    settings = settings_of(ctx)
    chosen_by = None if target_recall is None else "supportbot calibrate --target-recall"
    target = (
        tuning_config(settings).target_handoff_recall if target_recall is None else target_recall
    )
    for path in (eval_path, out_of_scope):
        if not path.is_file():
            raise fail(f"no such file: {path}")
    try:
        with indexed_knowledge(settings) as knowledge:
            recipe = verifier_recipe(settings)
            if recipe is not None:
                typer.echo(recipe.train(knowledge).line())
            calibration, issues = run_calibration(
                knowledge,
                eval_path,
                out_of_scope,
                settings.home,
                target_handoff_recall=target,
                chosen_by=chosen_by,
                wrong_answer_cost=(
                    settings.retrieval.tuning.wrong_answer_cost
                    if wrong_answer_cost is None
                    else wrong_answer_cost
                ),
                withhold_claims=settings.engine.hand_off_claimed_actions,
            )
    except ValueError as exc:
        raise fail(str(exc)) from None
    for issue in issues:
        typer.secho(f"  skipped {issue}", fg=typer.colors.YELLOW, err=True)
    saved = load_calibration(settings.home) or {}
    for line in format_result(
        calibration.result,
        target,
        saved.get("set_replies_left_out", 0),
        saved.get("withheld_in_scope", 0),
    ):
        typer.echo(line)
    for line in format_trade_offs(saved):
        typer.echo(line)
    typer.echo(f"saved to {calibration_path(settings.home)}")
    # What the server will apply, read back as it reads it: the settings may override.
    typer.echo(
        format_served(served_confidence(settings.engine, settings.home, calibration.embedder_id))
    )
