"""Does the answer to what is asked beat the answer about the product named? (issue 19)

    python benchmarks/intent_words_sample.py                  # ingests the sample logs
    python benchmarks/intent_words_sample.py --home HOME      # a home with them ingested

Searches two sets of questions with the intent words off and on (retrieval.intent_words,
the setting ``retrieval.intent_words_weight``) over one store, and counts the top answers
whose topic is the one asked about: the first customer turn of each conversation of
data/sample/eval.jsonl (held out from the logs), and benchmarks/data/intent_probes.jsonl,
paraphrases a tester asked the widget ("How long do I have to return a rain jacket?" got
the jacket-washing answer) and similar ones; a probe whose topic is null asks about
something the logs never answered and is left out of the count. A hit's topic is its
conversation's; an FAQ row's or a Slack thread's is the topic whose conversations cite
the same help article (KB-XXX-NN) most often.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from retrieval.config import RetrievalConfig
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from retrieval.records import RetrievedExchange

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
PROBES = Path(__file__).resolve().parent / "data" / "intent_probes.jsonl"
RESULTS = Path(__file__).resolve().parent / "results"
_ARTICLE = re.compile(r"KB-[A-Z0-9]+-\d+")


class SampleTopics:
    """The topic of a retrieved answer, from the sample conversations' labels."""

    def __init__(self, conversations: Path) -> None:
        self.of_conversation: dict[str, str] = {}
        cited: defaultdict[str, Counter[str]] = defaultdict(Counter)
        with open(conversations, encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                self.of_conversation[record["id"]] = record["topic"]
                for message in record["messages"]:
                    if message["role"] == "agent":
                        for article in _ARTICLE.findall(message["text"]):
                            cited[article][record["topic"]] += 1
        self.of_article = {a: c.most_common(1)[0][0] for a, c in cited.items()}

    def __call__(self, hit: RetrievedExchange) -> str | None:
        if hit.conversation_id in self.of_conversation:
            return self.of_conversation[hit.conversation_id]
        for article in _ARTICLE.findall(hit.agent_reply):
            if article in self.of_article:
                return self.of_article[article]
        return None


def eval_first_turns(path: Path) -> list[tuple[str, str]]:
    cases = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            customer = [m for m in record["messages"] if m["role"] == "customer"]
            if customer:
                cases.append((customer[0]["text"], record["topic"]))
    return cases


def probes(path: Path) -> list[tuple[str, str | None]]:
    with open(path, encoding="utf-8") as fh:
        return [(r["question"], r["topic"]) for r in map(json.loads, fh)]


def top_topics(kb: KnowledgeBase, questions: list[str], topic_of: SampleTopics) -> list[str | None]:
    from retrieval.knowledge import Query

    results = kb.search_batch([Query(q) for q in questions], 5, verify=False)
    return [topic_of(hits[0]) if hits else None for hits in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a supportbot home with the sample ingested")
    parser.add_argument(
        "--weights", type=float, nargs="+", default=[0.0, RetrievalConfig().intent_words_weight]
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "intent_words_sample.json")
    args = parser.parse_args()

    topic_of = SampleTopics(SAMPLE / "conversations.jsonl")
    sets = {
        "eval.jsonl first turns": eval_first_turns(SAMPLE / "eval.jsonl"),
        "intent_probes.jsonl": [(q, t) for q, t in probes(PROBES) if t is not None],
    }
    report: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp)
        database, indexes = home / "supportbot.db", home / "indexes"
        if args.home is None:
            kb = KnowledgeBase.open(database, indexes, RetrievalConfig())
            ingest_paths([SAMPLE / "conversations.jsonl"], kb, progress=True)
            kb.close()
        for weight in args.weights:
            kb = KnowledgeBase.open(database, indexes, RetrievalConfig(intent_words_weight=weight))
            kb.load()
            row: dict[str, object] = {}
            for name, cases in sets.items():
                got = top_topics(kb, [q for q, _ in cases], topic_of)
                row[name] = {
                    "right": sum(g == t for g, (_, t) in zip(got, cases, strict=True)),
                    "of": len(cases),
                }
            report[str(weight)] = row
            kb.close()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print("\ntop answer's topic right (intent_words_weight)")
    print(f"{'weight':<8}" + "".join(f"{name:>28}" for name in sets))
    for weight, row in report.items():
        cells = []
        for name in sets:
            cell = row[name]
            assert isinstance(cell, dict)
            cells.append(f"{cell['right']:>22} of {cell['of']:>3}")
        print(f"{weight:<8}" + "".join(cells))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
