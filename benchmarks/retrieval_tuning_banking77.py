"""Banking77: retrieval and hand-off before and after tuning the embedder (issue 9).

    python benchmarks/retrieval_tuning_banking77.py                      # train --budget-minutes 30
    python benchmarks/retrieval_tuning_banking77.py --retrieval-only --budget-minutes 12

Protocol (../shared/datasets/banking77/README.md): 20 intents chosen with a fixed seed are
held out (none of their train rows is ingested); every test row is asked. Retrieval top-1
and recall@5 count in-scope test rows whose best (or five best) retrieved answers carry
their intent's KB code. Hand-off: confidence weights and threshold are the ones
`supportbot train` fitted on train only (validation split, held-out topics standing in for
out-of-scope questions) for each (embedder, index) pair; the table shows what they give on
the test split, and also what the same confidence gives at exactly the target hand-off
recall on the test split ("at 0.90 recall"). In-scope accuracy is the share of answered
in-scope questions whose answer is right; wrong answers count answered out-of-scope
questions and wrong in-scope answers, over all test questions.

"before" is the served pair after ingest (the offline MiniLM); "after" is the pair
`supportbot train` leaves live. Banking77: Casanueva et al. (2020), CC BY 4.0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.answer_banking77 import RESULTS, supportbot  # noqa: E402
from benchmarks.banking77 import (  # noqa: E402
    KB_CODE,
    held_out_intents,
    load_answers,
    load_rows,
    write_logs,
)


def evaluate(
    home: Path, texts: list[str], codes: list[str | None], target: float
) -> dict[str, Any]:
    """Search every test row in the pair served from ``home`` and score it."""
    from bot.adapters.retrieval import to_source
    from bot.components import calibrated_engine_config, open_knowledge_base
    from bot.settings import Settings
    from retrieval.confidence import confidence_of, fit_threshold, retrieval_features
    from retrieval.knowledge import Query

    settings = Settings(home=home)
    knowledge = open_knowledge_base(settings)
    try:
        knowledge.load()
        embedder_id = knowledge.embedder.model_id
        started = time.perf_counter()
        hits = knowledge.search_batch([Query(t) for t in texts], 5)
        search_s = time.perf_counter() - started
    finally:
        knowledge.close()
    engine = calibrated_engine_config(settings.engine, home, embedder_id)
    weights, threshold = engine.confidence_weights, engine.confidence_threshold

    in_scope = top1 = recall5 = 0
    in_conf: list[float] = []
    in_right: list[bool] = []
    oos_conf: list[float] = []
    for row_hits, code in zip(hits, codes, strict=True):
        features = retrieval_features([to_source(h) for h in row_hits])
        confidence = 0.0 if features is None else confidence_of(features, weights)
        if code is None:
            oos_conf.append(confidence)
            continue
        found = [set(KB_CODE.findall(h.agent_reply)) for h in row_hits]
        right = bool(found) and found[0] == {code}
        in_scope += 1
        top1 += right
        recall5 += any(f == {code} for f in found)
        in_conf.append(confidence)
        in_right.append(right)

    def at(threshold: float) -> dict[str, float]:
        answered = [ok for c, ok in zip(in_conf, in_right, strict=True) if c >= threshold]
        oos_answered = sum(c >= threshold for c in oos_conf)
        wrong = oos_answered + sum(not ok for ok in answered)
        return {
            "threshold": threshold,
            "handoff_recall": 1 - oos_answered / len(oos_conf),
            "in_scope_answered": len(answered) / len(in_conf),
            "in_scope_accuracy": sum(answered) / len(answered) if answered else 1.0,
            "in_scope_correct_of_all": sum(answered) / len(in_conf),
            "wrong_answer_rate": wrong / (len(in_conf) + len(oos_conf)),
        }

    oracle = fit_threshold(in_conf, oos_conf, target, in_scope_correct=in_right).threshold
    return {
        "embedder": embedder_id,
        "top1": top1 / in_scope,
        "recall_at_5": recall5 / in_scope,
        "calibrated": at(threshold),
        f"at_{target:.2f}_recall": at(oracle),
        "search_ms_per_query": 1000 * search_s / len(texts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-minutes", type=float, default=30.0)
    parser.add_argument(
        "--retrieval-only",
        action="store_true",
        help="pass --retrieval-only to train (the whole budget goes to retrieval)",
    )
    parser.add_argument("--target-recall", type=float, default=0.9)
    parser.add_argument("--home", type=Path, help="keep the home here (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=RESULTS / "retrieval_tuning_banking77.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    answers = load_answers()
    codes = {c: KB_CODE.search(t).group(0) for c, t in answers.items()}  # type: ignore[union-attr]
    held_out = held_out_intents(answers, 20, seed=77)
    train = [r for r in load_rows("train") if r.category not in held_out]
    test = load_rows("test")
    texts = [r.text for r in test]
    expected = [None if r.category in held_out else codes[r.category] for r in test]

    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        started = time.perf_counter()
        supportbot(home, "ingest", str(write_logs(train, answers, Path(tmp) / "train.jsonl")))
        # Fit the hand-off threshold for the untuned pair the same way train fits it.
        supportbot(home, "train", "--retrieval-only", "--no-tune-embedder", "--budget-minutes", "1")
        before = evaluate(home, texts, expected, args.target_recall)
        train_args = ["train", "--budget-minutes", str(args.budget_minutes), "--no-progress"]
        if args.retrieval_only:
            train_args.append("--retrieval-only")
        train_started = time.perf_counter()
        train_out = supportbot(home, *train_args, "--report", str(Path(tmp) / "report.json"))
        train_s = time.perf_counter() - train_started
        report = json.loads((Path(tmp) / "report.json").read_text())
        after = evaluate(home, texts, expected, args.target_recall)
        total_s = time.perf_counter() - started

    result = {
        "budget_minutes": args.budget_minutes,
        "retrieval_only": args.retrieval_only,
        "train_rows": len(train),
        "test_rows": len(test),
        "held_out_intents": len(held_out),
        "before": before,
        "after": after,
        "tuning": report["retrieval"].get("tuning"),
        "validation": {
            "before": report["retrieval"]["before"],
            "after": report["retrieval"]["after"],
        },
        "train_seconds": round(train_s, 1),
        "total_seconds": round(total_s, 1),
        "train_output": train_out.strip().splitlines(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print_table(result, args.target_recall)
    print(f"wrote {args.out}")


def print_table(result: dict[str, Any], target: float) -> None:
    key = f"at_{target:.2f}_recall"
    print(
        f"\nBanking77 retrieval, {result['test_rows']} test rows, {result['held_out_intents']}"
        f" intents held out; `supportbot train --budget-minutes {result['budget_minutes']:g}`"
        + (" --retrieval-only" if result["retrieval_only"] else "")
        + f" took {result['train_seconds']:.0f} s"
    )
    tuning = result.get("tuning") or {}
    if tuning:
        print(
            f"embedder tuning: {tuning['steps']} steps ({tuning['epochs']} epochs),"
            f" {tuning['examples']} examples, {tuning['seconds']:.0f} s, stopped by"
            f" {tuning['stopped']}"
        )
    header = f"{'':34}{'before':>10}{'after':>10}"
    print(header)
    rows = [
        ("top-1", lambda r: r["top1"]),
        ("recall@5", lambda r: r["recall_at_5"]),
    ]
    for label, block in (("calibrated on train", "calibrated"), (f"at {target:.2f} recall", key)):
        rows += [
            (f"{label}: hand-off recall", lambda r, b=block: r[b]["handoff_recall"]),
            (f"{label}: answered", lambda r, b=block: r[b]["in_scope_answered"]),
            (f"{label}: accuracy", lambda r, b=block: r[b]["in_scope_accuracy"]),
            (f"{label}: wrong", lambda r, b=block: r[b]["wrong_answer_rate"]),
        ]
    for label, get in rows:
        print(f"{label:34}{get(result['before']):>10.4f}{get(result['after']):>10.4f}")


if __name__ == "__main__":
    main()
