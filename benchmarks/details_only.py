"""Messages that only give the customer's details ("it's JO-771204") on real text: false
positives and reach of retrieval.details_only (issues 16 and 19).

    python benchmarks/details_only.py

* Banking77 (../shared/datasets/banking77, Casanueva et al. 2020, CC BY 4.0; read, never
  copied): every test and train message asks something or reports a problem, so every one
  recognised (after scrubbing, as the engine reads it) is a false positive; they are printed.
* The sample corpus (data/sample/conversations.jsonl and eval.jsonl, read as raw JSONL):
  every customer turn recognised, printed to be read by hand, counted apart as a first
  message (none of the sample's opens with its details only: each one recognised there is
  a false positive) and after an agent's reply (the details an agent asked for).

Writes benchmarks/results/details_only.json. Not run in CI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.banking77 import load_rows
from benchmarks.small_talk_closers import SAMPLE, customer_turns
from retrieval.details_only import gives_details_only
from retrieval.pii import scrub

RESULTS = Path(__file__).resolve().parent / "results"


def banking77_figures(split: str) -> dict[str, object]:
    texts = [row.text for row in load_rows(split)]
    matched = [t for t in texts if gives_details_only(scrub(t).text)]
    return {"messages": len(texts), "matched": len(matched), "matches": matched}


def sample_figures() -> dict[str, object]:
    turns, first_messages, matches = 0, 0, []
    for path in SAMPLE:
        seen: set[str] = set()
        for conversation, answered, text in customer_turns(path):
            turns += 1
            first = conversation not in seen
            seen.add(conversation)
            first_messages += first
            if gives_details_only(scrub(text).text):
                matches.append(
                    {"conversation": conversation, "first": first, "after_answer": answered,
                     "text": text}
                )  # fmt: skip
    return {
        "customer_turns": turns,
        "first_messages": first_messages,
        "matched_first_messages": sum(m["first"] for m in matches),
        "matched_after_an_answer": sum(m["after_answer"] for m in matches),
        "matches": matches,
    }


def main() -> None:
    banking = {split: banking77_figures(split) for split in ("test", "train")}
    sample = sample_figures()
    for split, figures in banking.items():
        print(
            f"Banking77 {split}: {figures['matched']} of {figures['messages']} messages read as"
            " details only (all false positives)"
        )
        for text in figures["matches"]:  # type: ignore[attr-defined]
            print(f"  {text!r}")
    print("sample corpus: customer turns read as details only")
    for match in sample["matches"]:  # type: ignore[attr-defined]
        where = "first message" if match["first"] else "after a reply"
        print(f"  {match['conversation']} [{where}] {match['text']!r}")
    print(
        f"  {sample['customer_turns']} turns, {sample['first_messages']} first messages;"
        f" read as details only: {sample['matched_first_messages']} first messages (false"
        f" positives), {sample['matched_after_an_answer']} after an agent's reply"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "details_only.json"
    out.write_text(json.dumps({"banking77": banking, "sample": sample}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
