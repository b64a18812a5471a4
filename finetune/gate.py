"""The retraining gate within its share of a cycle's budget (issue 19).

The candidate and the live adapter answer the gate set (held-out conversations and the most
recent corrections) as train's evaluation answers its held-out set: a batch at a time while
the next is expected to end in time, each stopped at the deadline even half-way
(:func:`finetune.evaluate.generate_until`, :meth:`ReplyGenerator.generate_within`). The
candidate writes first, in half of the time left; the live adapter then answers only the
cases the candidate finished, by the deadline; both, and copying the top retrieved reply,
are scored on the cases both finished. A comparison the budget cut to fewer than
:data:`finetune.serving_policy.MIN_SCORED_REPLIES` held-out replies decides nothing: the
candidate is kept out (:func:`finetune.retrain.decide`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from finetune.config import GeneratorConfig
from finetune.evaluate import (
    EvalCase,
    Evaluation,
    ReplyWriter,
    copy_top_retrieved,
    counting,
    generate_until,
    score_replies,
)
from finetune.pipeline import GeneratorPaths, load_registered_adapter
from finetune.serving_policy import MIN_SCORED_REPLIES

if TYPE_CHECKING:
    from finetune.registry import AdapterRecord

# Gate parts, in the order their figures are named: f"{part}_rouge_l", ...
PARTS = ("held_out", "corrections")

# Writes an adapter's replies (loading it first: that counts in the gate's time too).
AdapterWriter = Callable[["AdapterRecord"], ReplyWriter]


@dataclass(frozen=True)
class GateSet:
    held_out: list[EvalCase]
    corrections: list[EvalCase]


@dataclass(frozen=True)
class GateResult:
    """Figures of the candidate, the live adapter (None: none is live) and copying, all on
    the cases both adapters finished, and how much of the gate set that was."""

    candidate: dict[str, float]
    live: dict[str, float] | None
    copy: dict[str, float]
    evaluation: Evaluation  # held-out cases: how many, how many compared, how many cut
    corrections: int
    corrections_compared: int

    def as_dict(self) -> dict[str, int]:
        return {
            **self.evaluation.as_dict(),
            "corrections": self.corrections,
            "corrections_scored": self.corrections_compared,
        }


def part_figures(
    part: str, replies: Sequence[str], cases: Sequence[EvalCase], *, handoff_reply: str
) -> dict[str, float]:
    """A gate part's figures for these replies (see :func:`finetune.retrain.gate_figures`)."""
    if not cases:
        return {}
    scores = score_replies(part, replies, cases, handoff_reply=handoff_reply)
    figures = {
        f"{part}_rouge_l": round(scores.rouge_l, 4),
        f"{part}_grounded": round(scores.grounded_share, 4),
    }
    if scores.facts_share is not None:
        figures[f"{part}_facts"] = round(scores.facts_share, 4)
    figures[f"{part}_examples"] = scores.examples
    return figures


def judge(
    candidate: AdapterRecord,
    live: AdapterRecord | None,
    gate: GateSet,
    write_with: AdapterWriter,
    *,
    deadline: float | None,
    batch_size: int,
    handoff_reply: str,
    progress: bool = False,
) -> GateResult:
    """The gate's figures within ``deadline`` (a ``time.monotonic()`` instant; None: every
    case is answered); see the module docstring. Nothing is loaded once it has passed."""
    parts = {"held_out": gate.held_out, "corrections": gate.corrections}
    # The two parts interleaved in proportion, so that a cut leaves a share of each.
    order = sorted(
        ((part, i) for part, cases in parts.items() for i in range(len(cases))),
        key=lambda key: ((key[1] + 0.5) / len(parts[key[0]]), key[0]),
    )
    cases = [parts[part][i] for part, i in order]
    half = deadline
    if deadline is not None and live is not None:
        now = time.monotonic()
        half = now + max(deadline - now, 0.0) / 2.0
    # Replies by case number; a case missing was not reached, None: cut half-written.
    replies = [dict(enumerate(_write(candidate, cases, write_with, half, batch_size, progress)))]
    if live is not None:
        finished = [n for n, reply in replies[0].items() if reply is not None]
        written = _write(
            live, [cases[n] for n in finished], write_with, deadline, batch_size, progress
        )
        replies.append(dict(zip(finished, written, strict=False)))
    both = [n for n in range(len(cases)) if all(r.get(n) is not None for r in replies)]

    def figures(which: int | None) -> dict[str, float]:
        result: dict[str, float] = {}
        for part in PARTS:
            kept = [n for n in both if order[n][0] == part]
            kept_cases = [cases[n] for n in kept]
            if which is None:
                texts = copy_top_retrieved(kept_cases)
            else:
                texts = [str(replies[which][n]) for n in kept]
            result.update(part_figures(part, texts, kept_cases, handoff_reply=handoff_reply))
            if parts[part]:
                result[f"{part}_cases"] = len(parts[part])
        return result

    held_out = [n for n in range(len(cases)) if order[n][0] == "held_out"]
    cut = sum(n in r and r[n] is None for r in replies for n in held_out)
    scored = [n for n in both if n in held_out]
    return GateResult(
        candidate=figures(0),
        live=figures(1) if live is not None else None,
        copy=figures(None),
        evaluation=Evaluation(
            [
                score_replies(
                    "candidate",
                    [str(replies[0][n]) for n in scored],
                    [cases[n] for n in scored],
                    handoff_reply=handoff_reply,
                )
            ],
            len(held_out),
            cut,
        ),
        corrections=len(gate.corrections),
        corrections_compared=len(both) - len(scored),
    )


def too_few_compared(candidate: dict[str, float]) -> str | None:
    """Why a candidate's gate figures decide nothing, or None when they may: the budget cut
    its comparison to fewer than :data:`MIN_SCORED_REPLIES` held-out replies (fewer than the
    whole held-out set). Figures without the counts (tests' scripted ones) may decide."""
    cases = candidate.get("held_out_cases")
    if cases is None:
        return None
    compared = int(candidate.get("held_out_examples", 0))
    if compared >= min(MIN_SCORED_REPLIES, int(cases)):
        return None
    return (
        f"the budget cut the gate: compared on {compared} of {int(cases)} held-out replies,"
        f" fewer than {MIN_SCORED_REPLIES}, too few to judge"
    )


def _write(
    adapter: AdapterRecord,
    cases: Sequence[EvalCase],
    write_with: AdapterWriter,
    deadline: float | None,
    batch_size: int,
    progress: bool,
) -> list[str | None]:
    """``adapter``'s replies to the first of ``cases`` by ``deadline`` (None: cut)."""
    if not cases or (deadline is not None and time.monotonic() >= deadline):
        return []
    with tqdm(
        total=len(cases), desc=f"gate: {adapter.folder.name}", unit="reply", disable=not progress
    ) as bar:
        write = counting(write_with(adapter), bar.update)
        replies, _ = generate_until(cases, write, batch_size, deadline)
    return replies


def adapter_writer(config: GeneratorConfig, paths: GeneratorPaths) -> AdapterWriter:
    """Each adapter merged into its registered base, decoded as the server would."""

    def write_with(adapter: AdapterRecord) -> ReplyWriter:
        from finetune.generation import ReplyGenerator  # lazy: torch

        loaded, serving = load_registered_adapter(adapter, config, paths, merge=True)
        generator: Any = ReplyGenerator.from_config(loaded, serving)

        def write(requests: Sequence[Any], deadline: float | None) -> list[str | None]:
            replies: list[str | None] = generator.generate_within(
                requests, deadline, batch_size=config.max_batch_size
            )
            return replies

        return write

    return write_with
