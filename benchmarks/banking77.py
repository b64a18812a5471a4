"""Loading the Banking77 benchmark data as support logs (read from ../shared, never copied).

Source: PolyAI-LDN/task-specific-datasets (Casanueva et al., 2020), CC BY 4.0.
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "banking77"
KB_CODE = re.compile(r"KB-\d{4}")


@dataclass(frozen=True)
class Row:
    text: str
    category: str


def load_rows(split: str, data: Path = DATA) -> list[Row]:
    with open(data / f"{split}.csv", encoding="utf-8", newline="") as fh:
        return [Row(r["text"], r["category"]) for r in csv.DictReader(fh)]


def load_answers(data: Path = DATA) -> dict[str, str]:
    with open(data / "answers.json", encoding="utf-8") as fh:
        answers: dict[str, str] = json.load(fh)
    return answers


def code_of(category: str, answers: dict[str, str]) -> str:
    match = KB_CODE.search(answers[category])
    assert match, category
    return match.group(0)


def write_logs(rows: list[Row], answers: dict[str, str], path: Path, prefix: str = "b77") -> Path:
    """Write rows as JSONL support logs: the customer's text, then the canonical reply."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for n, row in enumerate(rows):
            record = {
                "id": f"{prefix}-{n}",
                "messages": [
                    {"role": "customer", "text": row.text},
                    {"role": "agent", "text": answers[row.category]},
                ],
                "category": row.category,
            }
            fh.write(json.dumps(record) + "\n")
    return path


def held_out_intents(answers: dict[str, str], n: int = 20, seed: int = 77) -> set[str]:
    """The README's out-of-scope protocol: ``n`` intents chosen with a fixed seed."""
    return set(random.Random(seed).sample(sorted(answers), n))
