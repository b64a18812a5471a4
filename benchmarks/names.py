"""Name detection on a labelled set of support messages (issue 18): recall and false scrubs.

    python benchmarks/names.py            # prints a table, writes benchmarks/results/names.json

``benchmarks/data/names_labelled.jsonl`` holds support messages with the people's names
they contain (greetings, sign-offs, introductions, running text); every listed name must
be scrubbed. ``benchmarks/data/non_names_labelled.jsonl`` holds messages with capitalised
words that are no one's name (products, places, months, "Will it ...", team sign-offs);
nothing in them may be scrubbed. The set was written apart from the detector, by someone
who had not read it. Each way of finding names is measured alone and combined:

* recall: the share of labelled names whose every character a found span covers;
* names sentences over-scrubbed: sentences where a span covers a word of no labelled name;
* non-names scrubbed: the share of non-name sentences where anything is found, and the
  share of their capitalised words found.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import regex

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from retrieval.names import NameFinder, NameLexicon, NameSpan

DATA = Path(__file__).resolve().parent / "data"
RESULTS = Path(__file__).resolve().parent / "results"
_CAPITALISED = regex.compile(r"\b\p{Lu}[\p{L}'’-]*")


def load(name: str) -> list[dict[str, Any]]:
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def name_positions(text: str, names: list[str]) -> list[tuple[int, int]]:
    """Every occurrence of every labelled name; where a name also stands inside a longer
    labelled name, the longer one's occurrence counts."""
    spans: list[tuple[int, int]] = []
    for name in sorted(names, key=len, reverse=True):
        for match in regex.finditer(rf"(?<!\p{{L}}){regex.escape(name)}(?!\p{{L}})", text):
            if not any(s <= match.start() and match.end() <= e for s, e in spans):
                spans.append(match.span())
    return spans


def covered(span: tuple[int, int], found: list[NameSpan]) -> bool:
    start, end = span
    return all(any(f.start <= i < f.end for f in found) for i in range(start, end) if i < end)


def over_scrubbed(text: str, found: list[NameSpan], names: list[tuple[int, int]]) -> bool:
    """Whether a found span covers a letter of a word that belongs to no labelled name."""
    for f in found:
        for i in range(f.start, f.end):
            if text[i].isalpha() and not any(s <= i < e for s, e in names):
                return True
    return False


def measure(finder: NameFinder, named: list[dict[str, Any]], plain: list[dict[str, Any]]) -> dict:
    started = time.perf_counter()
    found_named = finder.find_batch([row["text"] for row in named])
    found_plain = finder.find_batch([row["text"] for row in plain])
    seconds = time.perf_counter() - started
    total = hits = sentences_over = 0
    missed: list[str] = []
    for row, found in zip(named, found_named, strict=True):
        positions = name_positions(row["text"], row["names"])
        for span in positions:
            total += 1
            if covered(span, found):
                hits += 1
            else:
                missed.append(row["text"][span[0] : span[1]])
        sentences_over += over_scrubbed(row["text"], found, positions)
    false_sentences = sum(bool(found) for found in found_plain)
    capitalised = sum(len(_CAPITALISED.findall(row["text"])) for row in plain)
    false_words = sum(
        sum(1 for m in _CAPITALISED.finditer(row["text"]) if covered(m.span(), found))
        for row, found in zip(plain, found_plain, strict=True)
    )
    examples = [
        row["text"][f.start : f.end]
        for row, found in zip(plain, found_plain, strict=True)
        for f in found
    ]
    return {
        "names": total,
        "recall": hits / total,
        "named_sentences_over_scrubbed": sentences_over / len(named),
        "non_name_sentences": len(plain),
        "non_name_sentences_scrubbed": false_sentences / len(plain),
        "capitalised_non_name_words": capitalised,
        "capitalised_non_names_scrubbed": false_words / capitalised,
        "ms_per_message": 1000 * seconds / (len(named) + len(plain)),
        "missed_names": missed,
        "false_scrubs": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show", type=int, default=15, help="missed names and false scrubs shown")
    args = parser.parse_args()
    named, plain = load("names_labelled.jsonl"), load("non_names_labelled.jsonl")
    spacy_finder = NameFinder()
    spacy_finder.find("warm up: load the pipeline before timing")
    finders = {
        "rules": NameFinder(recognizer=None),
        "rules + name lexicon": NameFinder(recognizer=None, lexicon=spacy_finder._lexicon_loaded()),
        "spaCy NER alone": _ner_only(spacy_finder),
        "rules + spaCy (product)": spacy_finder,
    }
    results = {label: measure(finder, named, plain) for label, finder in finders.items()}
    print(f"{len(named)} sentences with names, {len(plain)} without\n")
    print(
        "| detector | recall | named sentences over-scrubbed | non-name sentences scrubbed"
        " | capitalised non-names scrubbed | ms/message |"
    )
    print("|---|---|---|---|---|---|")
    for label, r in results.items():
        print(
            f"| {label} | {r['recall']:.3f} | {r['named_sentences_over_scrubbed']:.3f}"
            f" | {r['non_name_sentences_scrubbed']:.3f}"
            f" | {r['capitalised_non_names_scrubbed']:.4f} | {r['ms_per_message']:.2f} |"
        )
    product = results["rules + spaCy (product)"]
    print(f"\nmissed by the product ({len(product['missed_names'])}):")
    print("  " + ", ".join(repr(n) for n in product["missed_names"][: args.show]))
    print(f"false scrubs in non-name sentences ({len(product['false_scrubs'])}):")
    print("  " + ", ".join(repr(n) for n in product["false_scrubs"][: args.show]))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "names.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


def _ner_only(finder: NameFinder) -> NameFinder:
    """The same recogniser without the rules or known names."""
    recognizer = finder._load_recognizer()

    class NerOnly(NameFinder):
        def _rule_spans(
            self,
            text: str,
            lexicon: NameLexicon | None = None,
            persons: Sequence[tuple[int, int]] = (),
        ) -> list[NameSpan]:
            return []

    return NerOnly(recognizer=recognizer)


if __name__ == "__main__":
    main()
