"""Does `supportbot retrain --budget-minutes N` end within its budget, each step within its
share? (issue 19)

    python benchmarks/retrain_budget.py                    # 5 minutes
    python benchmarks/retrain_budget.py --budget-minutes 10 --home /tmp/h
    python benchmarks/retrain_budget.py --embedder-share 0.6 --min-tuning-s 30  # tunes in 5

On the sample corpus, in a fresh home (or ``--home``, ingested there when it is empty):
ingest, then one `retrain --budget-minutes N` cycle, timed from outside. Prints, from the
cycle's record, each step's share of the budget (the time it was given) beside the time it
took: the embedder step (split, measuring the live pair, tuning, re-embedding, measuring
the candidate) and the adapter's (building examples, loading the base, LoRA, publishing,
then the gate: the gate set's evidence and both adapters' replies). The target is the
total within 5% of the budget plus loading the base model, which the table shows apart;
writes the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.answer_banking77 import RESULTS  # noqa: E402
from benchmarks.train_budget import ingest_sample, timed  # noqa: E402


def rows_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """(step, share, seconds) rows from a cycle's record, parts indented under their step."""
    figures = record["figures"]
    rows: list[dict[str, Any]] = []
    embedder = figures.get("embedder")
    if embedder:
        rows.append(
            {
                "step": "embedder step",
                "share_s": embedder.get("budget_s"),
                "seconds": embedder["seconds"],
                "note": f"{embedder['status']}: {embedder['reason']}",
            }
        )
        shares = embedder.get("shares") or {}
        for part, seconds in embedder.get("steps") or []:
            rows.append({"step": f"  {part}", "share_s": shares.get(part), "seconds": seconds})
    budget = figures.get("budget") or {}
    shares = budget.get("shares_s") or {}
    for part, seconds in budget.get("steps_s") or []:
        indent = "  " if part not in ("train candidate", "gate") else ""
        rows.append({"step": f"{indent}{part}", "share_s": shares.get(part), "seconds": seconds})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-minutes", type=float, default=5.0)
    parser.add_argument("--home", type=Path, help="keep the home here (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None)
    # The embedder step tunes only when its share leaves retrieval.tuning.min_budget_s
    # (180 s) after measuring and what re-embedding is foreseen to take: with the defaults,
    # not below a cycle of about 20 minutes on the sample. These show its parts in less.
    parser.add_argument(
        "--embedder-share", type=float, help="retrain.embedder_budget_share (default 0.3)"
    )
    parser.add_argument(
        "--min-tuning-s", type=float, help="retrieval.tuning.min_budget_s (default 180)"
    )
    args = parser.parse_args()
    if args.embedder_share is not None:
        os.environ["SUPPORTBOT_RETRAIN__EMBEDDER_BUDGET_SHARE"] = str(args.embedder_share)
    if args.min_tuning_s is not None:
        os.environ["SUPPORTBOT_RETRIEVAL__TUNING__MIN_BUDGET_S"] = str(args.min_tuning_s)
    budget_s = args.budget_minutes * 60.0
    out = args.out or RESULTS / f"retrain_budget_{args.budget_minutes:g}min.json"

    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        ingest_s = None
        if not (home / "supportbot.db").exists():
            ingest_s = ingest_sample(home)
        report_path = Path(tmp) / "cycle.json"
        # As `make run` evaluates: 50 held-out replies, not 200.
        os.environ["SUPPORTBOT_GENERATOR__EVAL_MAX_EXAMPLES"] = "50"
        retrain_s = timed(
            home,
            "retrain",
            "--budget-minutes",
            f"{args.budget_minutes:g}",
            "--no-progress",
            "--report",
            str(report_path),
        )
        record = json.loads(report_path.read_text())

    rows = rows_of(record)
    top = [r for r in rows if not r["step"].startswith(" ")]
    accounted = sum(float(r["seconds"]) for r in top)
    rows.append(
        {"step": "start-up and the rest", "share_s": None, "seconds": retrain_s - accounted}
    )
    loading = sum(float(r["seconds"]) for r in rows if r["step"].strip() == "load base")
    result: dict[str, Any] = {
        "budget_s": budget_s,
        "retrain_wall_s": round(retrain_s, 1),
        "over_budget": round(retrain_s / budget_s - 1.0, 4),
        "over_budget_after_loading": round((retrain_s - loading) / budget_s - 1.0, 4),
        "steps": [
            {
                **r,
                "seconds": round(float(r["seconds"]), 1),
                "share_s": None if r["share_s"] is None else round(float(r["share_s"]), 1),
            }
            for r in rows
        ],
        "settings": {"embedder_share": args.embedder_share, "min_tuning_s": args.min_tuning_s},
        "cycle": {k: record[k] for k in ("status", "reason")},
        "gate": record["figures"].get("evaluation"),
        "ingest_s": None if ingest_s is None else round(ingest_s, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\n`supportbot retrain --budget-minutes {args.budget_minutes:g}` on the sample corpus")
    print(f"{'step':30}{'share s':>10}{'took s':>10}")
    for row in rows:
        share = "" if row["share_s"] is None else f"{float(row['share_s']):.1f}"
        over = (
            "  over"
            if row["share_s"] is not None and float(row["seconds"]) > float(row["share_s"])
            else ""
        )
        print(f"{row['step']:30}{share:>10}{float(row['seconds']):>10.1f}{over}")
    print(f"{'total (wall, from outside)':30}{budget_s:>10.1f}{retrain_s:>10.1f}")
    print(
        f"budget {budget_s:.0f} s: {result['over_budget']:+.1%} in all,"
        f" {result['over_budget_after_loading']:+.1%} without loading the base"
        " (target: within +5% of the budget plus loading)"
    )
    print(f"cycle: {record['status']} ({record['reason']})")
    embedder = record["figures"].get("embedder")
    if embedder:
        print(f"embedder step: {embedder['status']} ({embedder['reason']})")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
