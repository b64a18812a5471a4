"""How well calibrate's reply judge agrees with replies read by hand (issue 19).

    python benchmarks/reply_judge.py

benchmarks/data/reply_judge_pairs.jsonl holds 264 pairs from the sample corpus's
evaluation turns (data/sample/eval.jsonl): the reply the logs hold for a turn (reference)
beside a reply retrieval found for it (candidate: the first hit of each of the 178 turns
that are not small talk, the second of 86 of them), searched in a home with the sample
ingested. Each pair was labelled by reading, blind to both judges: does the candidate give
the customer the same answer as the reference (same information, outcome or next step;
wording, greetings and sign-offs aside)? Two labelling passes, in opposite orders, agreed
on every pair; both were made by helper agents, not by independent people.

The cosine cutoff of :class:`retrieval.calibration.ReplyJudge` (SAME_MEANING_AT) was
chosen on the even-numbered pairs; the odd ones were not looked at to choose it. Prints
the agreement of word overlap alone (:func:`retrieval.calibration.answers_match`) and of
the judge on each half, with the misjudged pairs of each kind, and writes
benchmarks/results/reply_judge.json. Not run in CI.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from retrieval.calibration import ReplyJudge, answers_match

PAIRS = Path(__file__).resolve().parent / "data" / "reply_judge_pairs.jsonl"
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    same = [bool(p["same_answer"]) for p in pairs]
    pairs_text = [(p["reference"], p["candidate"]) for p in pairs]
    verdicts = {
        "word overlap (answers_match)": [answers_match(r, c) for r, c in pairs_text],
        "ReplyJudge": ReplyJudge().judged(pairs_text),
    }
    rows = []
    header = (
        f"{'judge':<30} {'even (chosen on)':>16} {'odd (held out)':>14} {'all':>6}"
        f" {'same called different':>22} {'different called same':>22}"
    )
    print(header)
    print("-" * len(header))
    for name, said in verdicts.items():
        agree = [s == y for s, y in zip(said, same, strict=True)]
        halves = {
            half: [a for p, a in zip(pairs, agree, strict=True) if p["id"] % 2 == parity]
            for half, parity in (("even", 0), ("odd", 1))
        }
        row = {
            "judge": name,
            "even": round(sum(halves["even"]) / len(halves["even"]), 3),
            "odd": round(sum(halves["odd"]) / len(halves["odd"]), 3),
            "all": round(sum(agree) / len(agree), 3),
            "same_called_different": sum(y and not s for s, y in zip(said, same, strict=True)),
            "different_called_same": sum(s and not y for s, y in zip(said, same, strict=True)),
            "same_pairs": sum(same),
            "different_pairs": len(same) - sum(same),
        }
        rows.append(row)
        print(
            f"{name:<30} {row['even']:>16.3f} {row['odd']:>14.3f} {row['all']:>6.3f}"
            f" {row['same_called_different']:>22} {row['different_called_same']:>22}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "reply_judge.json"
    out.write_text(json.dumps({"pairs": len(pairs), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
