"""Whether an adapter's replies should reach customers: only if it is not worse than
copying the best retrieved answer.

A model trained for a few CPU minutes can write fluent-looking text that answers nothing
("I'm sorry, and the item is free."); the grounding check cannot catch it, since it states
no fact to check. Every adapter is evaluated when it is made (by ``supportbot train`` on
the held-out split, and by the retraining gate on its held-out set), beside the baseline
that copies the top retrieved reply. In ``auto`` answer mode the server generates only with
an adapter whose answer match and facts share are within a tolerance of that baseline's
(an evaluation that its budget stopped early, ``supportbot train``'s or the retraining
gate's, must also have scored at least :data:`MIN_SCORED_REPLIES` replies); otherwise it
copies, as it does before any adapter exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

COPY_SYSTEM = "copy top retrieved"  # the baseline's name in ``supportbot train``'s table
# Fewest held-out replies ``supportbot train``'s evaluation must have scored for its figures
# to serve an adapter: its budget may stop it after a handful (a busy machine, a short
# budget), and a tolerance of 0.05 on a mean is finer than a handful of replies pins down.
# Before the budget could stop a batch half-way, one whole batch (8 replies by default) was
# always scored; this asks for two.
MIN_SCORED_REPLIES = 16


@dataclass(frozen=True)
class SystemFigures:
    rouge_l: float
    facts_share: float | None  # None when no reference stated a fact
    # Replies the figures were computed on, where a budget cut the evaluation (always
    # recorded for ``supportbot train``'s, for the retraining gate's when it was cut);
    # None: the whole evaluation set.
    scored: int | None = None


@dataclass(frozen=True)
class ServingVerdict:
    serve: bool
    reason: str


@dataclass(frozen=True)
class AdapterStatus:
    """Whether an adapter's replies reach customers, in the words that ``supportbot
    train``, the server's start-up log and the dashboard all print (one wording, so that
    "live" never sits beside "not sent to customers" unexplained)."""

    live: bool
    would_serve: bool  # what the answer mode makes of it, were it live
    reason: str

    @property
    def served(self) -> bool:
        return self.live and self.would_serve

    @property
    def label(self) -> str:
        if not self.live:
            return "not live"
        return "live, served" if self.would_serve else "live, not served"

    def sentence(self) -> str:
        if self.served:
            return f"live, served: customers get its replies; {self.reason}"
        if self.live:
            return (
                "live, not served: customers get copies of the best retrieved answer;"
                f" {self.reason}"
            )
        if self.would_serve:
            return f"not live; if made live it would be served: {self.reason}"
        return f"not live; if made live it would not be served: {self.reason}"


def adapter_status(
    metrics: Mapping[str, Any], *, live: bool, answer_mode: str, tolerance: float
) -> AdapterStatus:
    """What the server does with an adapter whose recorded ``metrics`` these are, under
    ``engine.answer_mode`` and ``engine.auto_tolerance``; see the module docstring."""
    if answer_mode == "copy":
        return AdapterStatus(
            live, False, "engine.answer_mode = 'copy' sends the best retrieved answer"
        )
    if answer_mode == "generate":
        return AdapterStatus(
            live, True, "engine.answer_mode = 'generate' sends it whatever its evaluation"
        )
    verdict = serving_verdict(metrics, tolerance)
    if verdict is None:
        return AdapterStatus(live, True, "no evaluation beside copying was recorded")
    return AdapterStatus(live, verdict.serve, f"it {verdict.reason}")


def serving_verdict(metrics: Mapping[str, Any], tolerance: float) -> ServingVerdict | None:
    """Serve the adapter whose recorded ``metrics`` these are? None when they hold no
    evaluation beside the copy baseline (the caller decides; see the module docstring)."""
    figures = recorded_figures(metrics)
    if figures is None:
        return None
    adapter, copy = figures
    shortfalls = []
    if adapter.rouge_l < copy.rouge_l - tolerance:
        shortfalls.append(f"answer match (ROUGE-L) {adapter.rouge_l:.3f} vs {copy.rouge_l:.3f}")
    if (
        adapter.facts_share is not None
        and copy.facts_share is not None
        and adapter.facts_share < copy.facts_share - tolerance
    ):
        shortfalls.append(f"facts stated {adapter.facts_share:.1%} vs {copy.facts_share:.1%}")
    if adapter.scored is not None and adapter.scored < MIN_SCORED_REPLIES:
        below = f" (below it on those: {'; '.join(shortfalls)})" if shortfalls else ""
        return ServingVerdict(
            False,
            f"was evaluated on {adapter.scored} held-out replies, fewer than"
            f" {MIN_SCORED_REPLIES}: too few to compare with copying the best retrieved"
            f" answer{below}",
        )
    if shortfalls:
        return ServingVerdict(
            False,
            "evaluates below copying the best retrieved answer: " + "; ".join(shortfalls),
        )
    return ServingVerdict(
        True,
        f"evaluates within {tolerance} of copying the best retrieved answer"
        f" (ROUGE-L {adapter.rouge_l:.3f} vs {copy.rouge_l:.3f})",
    )


def recorded_figures(metrics: Mapping[str, Any]) -> tuple[SystemFigures, SystemFigures] | None:
    """The adapter's and the copy baseline's figures from its newest evaluation: the
    retraining gate's (``gate``) when it went through one, else ``supportbot train``'s."""
    gate = metrics.get("gate")
    if isinstance(gate, Mapping) and gate.get("candidate") and gate.get("copy"):
        return _gate_figures(gate["candidate"]), _gate_figures(gate["copy"])
    rows = {row.get("name"): row for row in metrics.get("eval") or () if isinstance(row, Mapping)}
    if "adapter" in rows and COPY_SYSTEM in rows:
        return _eval_figures(rows["adapter"]), _eval_figures(rows[COPY_SYSTEM])
    return None


def _gate_figures(figures: Mapping[str, Any]) -> SystemFigures:
    # A gate the budget cut counts the held-out replies it compared (finetune.gate).
    cases, scored = figures.get("held_out_cases"), figures.get("held_out_examples", 0)
    cut = cases is not None and int(scored) < int(cases)
    return _figures(
        # None compared: no figure at all, and 0 of them decides (not served).
        figures.get("held_out_rouge_l", 0.0),
        figures.get("held_out_facts"),
        int(scored) if cut else None,
    )


def _eval_figures(row: Mapping[str, Any]) -> SystemFigures:
    scored = row.get("examples")
    return _figures(row["rouge_l"], row.get("facts_share"), None if scored is None else int(scored))


def _figures(rouge_l: Any, facts_share: Any, scored: int | None = None) -> SystemFigures:
    share = None if facts_share is None else float(facts_share)
    return SystemFigures(float(rouge_l), share, scored)
