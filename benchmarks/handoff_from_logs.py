"""Does the hand-off fit `train` makes from the logs alone transfer to labelled questions?
(issue 19 item 4, "hand-off that misses its own target")

    python benchmarks/handoff_from_logs.py                 # ingests data/sample; 5-15 min
    python benchmarks/handoff_from_logs.py --home COPY --seeds 0

A user with only logs runs `supportbot ingest LOGS` then `supportbot train`, whose
retrieval step splits the logs into validation conversations and held-out topics and fits
the confidence weights and the hand-off threshold on them (retrieval/figures.py
`tuning_split`, `measure`). Here that fit (one per split seed) is applied, not refitted,
to the sample's labelled files: data/sample/eval.jsonl (in-scope conversations, judged by
calibration.ReplyJudge) and data/sample/out_of_scope.jsonl. Beside it, the fit
`supportbot calibrate` makes on those files themselves, at its own threshold and at the
threshold that hands off as many out-of-scope questions as the logs' fit (the wrong-answer
share there is what the logs' fit should not exceed), and at the one that answers as many
in-scope questions (the same trade-off curve, or a worse one?).

``--home`` takes an ingested home of the sample and writes into it (the replies' vectors
are cached in its store): pass a copy. The JSON goes to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE = REPO / "data" / "sample"
EVAL = SAMPLE / "eval.jsonl"
OUT_OF_SCOPE = SAMPLE / "out_of_scope.jsonl"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Applied:
    """What a fit (weights, threshold) does on the labelled files."""

    in_scope_answered: float
    answered_right: float
    wrong_of_all: float
    out_of_scope_handed_off: float

    def row(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}


def applied(cases: list[Any], weights: Any, threshold: float) -> Applied:
    from retrieval.confidence import confidence_of

    inside = [c for c in cases if c.in_scope]
    outside = [c for c in cases if not c.in_scope]
    answered = [c for c in cases if confidence_of(c.features, weights) >= threshold]
    right = sum(1 for c in answered if c.in_scope and c.correct)
    return Applied(
        in_scope_answered=sum(1 for c in answered if c.in_scope) / len(inside),
        answered_right=right / max(len(answered), 1),
        wrong_of_all=(len(answered) - right) / len(cases),
        out_of_scope_handed_off=1 - sum(1 for c in answered if not c.in_scope) / len(outside),
    )


def threshold_for_handoff(cases: list[Any], weights: Any, handed_off: float) -> float:
    """The lowest threshold under ``weights`` that hands off at least ``handed_off`` of the
    out-of-scope cases."""
    from retrieval.confidence import confidence_of

    scores = sorted(confidence_of(c.features, weights) for c in cases if not c.in_scope)
    needed = min(len(scores), round(handed_off * len(scores)))
    if needed == 0:
        return 0.0
    return math.nextafter(scores[needed - 1], 2.0)


def threshold_for_answered(cases: list[Any], weights: Any, answered: float) -> float:
    """The highest threshold under ``weights`` that answers at least ``answered`` of the
    in-scope cases."""
    from retrieval.confidence import confidence_of

    scores = sorted((confidence_of(c.features, weights) for c in cases if c.in_scope), reverse=True)
    needed = max(1, math.ceil(answered * len(scores) - 1e-9))
    return scores[min(needed, len(scores)) - 1]


def ingest_sample(home: Path) -> None:
    """The sample's logs (never its labelled files) into ``home``, as a user would."""
    logs = [str(SAMPLE / name) for name in ("conversations.jsonl", "faq.csv", "slack_export")]
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "--home", str(home), "ingest", *logs, "--no-progress"],
        check=True,
        cwd=REPO,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, help="an ingested copy of the sample (written to)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--out", type=Path, default=RESULTS / "handoff_from_logs.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="handoff-") as scratch:
        home = args.home
        if home is None:
            home = Path(scratch) / "home"
            ingest_sample(home)
        report = run(home, args.seeds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def run(home: Path, seeds: list[int]) -> dict[str, Any]:
    from retrieval import figures
    from retrieval.calibration import build_cases, generic_off_topic_features, signals_used
    from retrieval.confidence import calibrate
    from retrieval.config import RetrievalConfig, TuningConfig
    from retrieval.knowledge import KnowledgeBase

    knowledge = KnowledgeBase.open(home / "supportbot.db", home / "indexes", RetrievalConfig())
    knowledge.load()
    cases = build_cases(knowledge, EVAL, OUT_OF_SCOPE).cases
    generic = generic_off_topic_features(knowledge)
    own = calibrate(cases, 0.9, generic=generic)
    assert own.weights is not None
    rows: list[dict[str, Any]] = []
    header = (
        f"{'fit':<34} {'in-scope answered':>17} {'answered right':>14} {'wrong of all':>12}"
        f" {'oos handed off':>14}"
    )
    print(header)
    print("-" * len(header))

    def show(name: str, result: Applied, **extra: Any) -> None:
        print(
            f"{name:<34} {result.in_scope_answered:>17.3f} {result.answered_right:>14.3f}"
            f" {result.wrong_of_all:>12.3f} {result.out_of_scope_handed_off:>14.3f}"
        )
        rows.append({"fit": name, **result.row(), **extra})

    files_fit = applied(cases, own.weights, own.threshold)
    show("files' own fit (calibrate)", files_fit, signals=signals_used(own.weights))
    for seed in seeds:
        config = TuningConfig(seed=seed)
        _, split = figures.tuning_split(knowledge, config)
        found = figures.measure(knowledge, split, config)
        fit = found.calibration
        assert fit is not None and fit.weights is not None
        logs = applied(cases, fit.weights, fit.threshold)
        show(
            f"logs' fit, split seed {seed}",
            logs,
            signals=signals_used(fit.weights),
            validation=found.row(),
            held_out_topics=len(split.held_out_topics),
            held_out_questions=sum(len(m) for m in split.held_out_topics.values()),
        )
        same = threshold_for_handoff(cases, own.weights, logs.out_of_scope_handed_off)
        show("  files' fit at that hand-off", applied(cases, own.weights, same))
        alike = threshold_for_answered(cases, own.weights, logs.in_scope_answered)
        show("  files' fit answering as many", applied(cases, own.weights, alike))
    logs_rows = [r for r in rows if r["fit"].startswith("logs'")]
    mean = {
        key: round(statistics.fmean(r[key] for r in logs_rows), 3)
        for key in Applied.__dataclass_fields__
    }
    show("logs' fit, mean over seeds", Applied(**mean))
    rows.pop()  # the mean is reported apart
    return {
        "home": str(home),
        "embedder": knowledge.embedder.model_id,
        "eval_questions": len(cases),
        "rows": rows,
        "logs_fit_mean": mean,
    }


if __name__ == "__main__":
    main()
