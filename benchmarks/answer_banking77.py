"""Banking77 end to end through `supportbot answer`, with hand-off (issues 4 and 9).

    python benchmarks/answer_banking77.py                       # copy mode (no generator)
    python benchmarks/answer_banking77.py --train-minutes 30    # with a trained generator
    python benchmarks/answer_banking77.py --quick               # 1,000 test rows

Protocol (../shared/datasets/banking77/README.md): 20 intents chosen with a fixed seed are
held out; none of their train rows is ingested, and their test rows count as handled only
when the bot hands off. Every other test row counts as correct when the reply carries its
intent's KB code, and as wrong when it carries another or an invented code.

Calibration is tuned on train only: 10% of the kept intents' train rows are set aside as
in-scope validation questions, and 10 further intents (chosen with another fixed seed) are
left out of a calibration home so that their train rows stand in for out-of-scope
questions; the fitted threshold is then copied into the serving home, whose knowledge base
holds every train row of the 57 kept intents.

Banking77: Casanueva et al. (2020), PolyAI-LDN/task-specific-datasets, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.banking77 import (  # noqa: E402
    KB_CODE,
    Row,
    held_out_intents,
    load_answers,
    load_rows,
    write_logs,
)
from retrieval.calibration import calibration_path  # noqa: E402
from retrieval.verifier import verifier_folder  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def supportbot(home: Path, *args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    command = [sys.executable, "-m", "bot.cli", "--home", str(home), *args]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:1])} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def write_questions(rows: list[Row], path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for n, row in enumerate(rows):
            record = {"id": str(n), "messages": [{"role": "customer", "text": row.text}]}
            fh.write(json.dumps(record) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train-minutes",
        type=float,
        default=0.0,
        help="train a generator first (0: copy the best retrieved answer)",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 test rows")
    parser.add_argument("--target-recall", type=float, default=0.9)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS / "answer_banking77.json")
    args = parser.parse_args()

    answers = load_answers()
    codes = {category: KB_CODE.search(text).group(0) for category, text in answers.items()}  # type: ignore[union-attr]
    held_out = held_out_intents(answers, 20, seed=77)
    kept = sorted(set(answers) - held_out)
    pseudo_oos = set(random.Random(7).sample(kept, 10))
    train, test = load_rows("train"), load_rows("test")
    if args.quick:
        test = random.Random(1).sample(test, 1000)
    rng = random.Random(5)
    kept_train = [r for r in train if r.category not in held_out]
    validation = {id(r) for r in kept_train if rng.random() < 0.1}

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # 1. Calibration home: kept intents minus validation rows and pseudo-OOS intents.
        calib_home = work / "calibration-home"
        calib_logs = [
            r for r in kept_train if id(r) not in validation and r.category not in pseudo_oos
        ]
        supportbot(
            calib_home,
            "ingest",
            str(write_logs(calib_logs, answers, work / "c.jsonl")),
            "--no-progress",
        )
        in_scope = [r for r in kept_train if id(r) in validation and r.category not in pseudo_oos]
        oos = [r for r in kept_train if r.category in pseudo_oos]
        calibration = supportbot(
            calib_home,
            "calibrate",
            "--eval",
            str(write_logs(in_scope, answers, work / "val.jsonl", prefix="val")),
            "--out-of-scope",
            str(write_questions(oos, work / "oos.jsonl")),
            "--target-recall",
            str(args.target_recall),
        )
        # 2. Serving home: every train row of the kept intents, same calibration.
        home = work / "home"
        ingest = supportbot(
            home,
            "ingest",
            str(write_logs(kept_train, answers, work / "train.jsonl")),
            "--no-progress",
        )
        (home / "indexes").mkdir(parents=True, exist_ok=True)
        shutil.copy(calibration_path(calib_home), calibration_path(home))
        # The reply verifier `calibrate` trained is part of that calibration: its weight
        # in calibration.json means nothing without it.
        trained = verifier_folder(calib_home / "indexes")
        if trained.is_dir():
            shutil.copytree(trained, verifier_folder(home / "indexes"))
        if args.train_minutes > 0:
            supportbot(home, "train", "--budget-minutes", str(args.train_minutes), "--no-progress")
            # The generator's replies are measured, even where 'auto' answer mode would copy
            # instead of serving an adapter that evaluates below copying.
            with open(home / "supportbot.toml", "a", encoding="utf-8") as toml:
                toml.write('\n[engine]\nanswer_mode = "generate"\n')
        questions = write_questions(test, work / "test.jsonl")
        out = work / "answers.jsonl"
        answer_start = time.perf_counter()
        supportbot(
            home,
            "answer",
            "--in",
            str(questions),
            "--out",
            str(out),
            "--concurrency",
            str(args.concurrency),
        )
        answer_seconds = time.perf_counter() - answer_start
        replies = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}

    in_n = correct = wrong = in_handoff = oos_n = oos_handoff = 0
    for n, row in enumerate(test):
        reply = replies[str(n)]
        found = set(KB_CODE.findall(reply["reply"] or ""))
        if row.category in held_out:
            oos_n += 1
            oos_handoff += bool(reply["handoff"])
            continue
        in_n += 1
        if reply["handoff"]:
            in_handoff += 1
        elif found == {codes[row.category]}:
            correct += 1
        elif found:
            wrong += 1
    result = {
        "mode": "generate" if args.train_minutes > 0 else "copy",
        "test_rows": len(test),
        "in_scope_rows": in_n,
        "out_of_scope_rows": oos_n,
        "in_scope_accuracy": correct / in_n,
        "in_scope_handoff_rate": in_handoff / in_n,
        "wrong_code_rate_in_scope": wrong / in_n,
        "out_of_scope_handoff_recall": oos_handoff / oos_n,
        "wrong_answers_all": (wrong + oos_n - oos_handoff) / len(test),
        "answer_seconds": round(answer_seconds, 1),
        "replies_per_s": round(len(test) / answer_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "calibration": calibration.strip().splitlines(),
        "ingest": ingest.strip().splitlines(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(
        f"\nBanking77 through `supportbot answer` ({result['mode']} mode, "
        f"{len(test)} test rows, 20 intents held out)"
    )
    for key in (
        "in_scope_accuracy",
        "in_scope_handoff_rate",
        "wrong_code_rate_in_scope",
        "out_of_scope_handoff_recall",
        "wrong_answers_all",
        "replies_per_s",
    ):
        print(f"{key:<32}{result[key]:>10.4f}")
    print("calibration (on train only):")
    for line in result["calibration"]:
        print(f"  {line}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
