"""Corrections that fix a topic, not a sentence (issue 20), measured on Banking77.

    python benchmarks/correction_topics_banking77.py           # every train row
    python benchmarks/correction_topics_banking77.py --quick   # 40 train rows per intent

Not run in CI. Train rows are ingested as support logs. Retrieval's confusions on the test
split pick 10 intents each with a close neighbour (the intent whose answer their test
questions get most often instead); those 10 are then removed from the logs, so the bot
answers their customers with a neighbour's answer, as a shop whose logs never covered a
topic would. Their train rows then arrive as live customers (wrongly answered). For each
held-out intent one test question is asked and corrected with the intent's canonical
answer, and the benchmark plays the operator: of the dashboard's suggestions
(``ConversationEngine.suggest_questions``) it attaches those whose label is the intent.
Then 20 other test questions of the intent are asked. Reported: the share answered with
the corrected answer (target >= 80%), the share answered with the neighbour's answer
(target <= 5%), and each neighbour's own test accuracy before and after (target: within
1 point). Replies are the engine's copied answers with hand-off turned off (threshold 0)
and no scrubbing (Banking77 holds no personal data): what retrieval answers is measured.

Data: Banking77 (PolyAI-LDN/task-specific-datasets, Casanueva et al. 2020, CC BY 4.0),
read from ../shared, never copied.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.banking77 import Row, code_of, load_answers, load_rows, write_logs
from bot.adapters.retrieval import KnowledgeRetriever
from bot.core.config import EngineConfig
from bot.core.engine import ConversationEngine
from bot.core.types import IncomingMessage
from bot.store.sqlite import SqliteConversationStore
from retrieval.config import RetrievalConfig
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase, Query

RESULTS = Path(__file__).resolve().parent / "results"
HELD_OUT = 10
ASKED_AFTER = 20  # test questions of each held-out intent asked after its correction
LIVE_PER_INTENT = 60  # its train rows that arrive as live customers before the correction


def confused_pairs(
    kb: KnowledgeBase, test: list[Row], answers: dict[str, str]
) -> list[tuple[str, str]]:
    """(held-out intent, neighbour) pairs, most confused first: the neighbour is the intent
    whose answer the held-out intent's test questions get most often instead of their own.
    A neighbour is never held out, and no intent is a neighbour twice."""
    by_answer = {a: c for c, a in answers.items()}
    hits = kb.search_batch([Query(r.text) for r in test], 1)
    confusion: Counter[tuple[str, str]] = Counter()
    for row, found in zip(test, hits, strict=True):
        got = by_answer.get(found[0].agent_reply) if found else None
        if got is not None and got != row.category:
            confusion[(row.category, got)] += 1
    pairs: list[tuple[str, str]] = []
    used: set[str] = set()
    for (held, neighbour), _ in confusion.most_common():
        if held in used or neighbour in used:
            continue
        pairs.append((held, neighbour))
        used |= {held, neighbour}
        if len(pairs) == HELD_OUT:
            break
    return pairs


async def run(
    kb: KnowledgeBase,
    home: Path,
    pairs: list[tuple[str, str]],
    train: list[Row],
    test: list[Row],
    answers: dict[str, str],
) -> dict[str, object]:
    label = {r.text: r.category for r in [*test, *train]}
    tests: dict[str, list[Row]] = defaultdict(list)
    for r in test:
        tests[r.category].append(r)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrieval")
    retriever = KnowledgeRetriever(kb, executor)
    store = SqliteConversationStore(home / "bot.db")
    engine = ConversationEngine(
        retriever,
        None,
        store,
        EngineConfig(confidence_threshold=0.0),
        lambda t: t,
        curator=retriever,
        question_finder=retriever,
    )

    async def ask(text: str) -> tuple[str, str]:
        chat = await engine.start_conversation("bench")
        reply = await engine.reply(IncomingMessage(chat.id, text))
        return reply.turn_id, reply.text

    async def accuracy(category: str) -> float:
        rows = tests[category]
        got = [await ask(r.text) for r in rows]
        return sum(code_of(category, answers) in t for _, t in got) / len(rows)

    try:
        neighbours_before = {n: await accuracy(n) for _, n in pairs}
        per_intent = []
        for held, neighbour in pairs:
            for row in [r for r in train if r.category == held][:LIVE_PER_INTENT]:
                await ask(row.text)  # live customers, answered wrongly
            corrected, *later = tests[held]
            turn_id, wrong = await ask(corrected.text)
            correction = await engine.correct(turn_id, answers[held], created_by="bench")
            offered = await engine.suggest_questions(correction.id, 20)
            chosen = [q.text for q in offered if label.get(q.text) == held]
            await engine.attach_questions(correction.id, chosen, attached_by="bench")
            per_intent.append(
                {
                    "intent": held,
                    "neighbour": neighbour,
                    "wrong_answer_was_neighbours": code_of(neighbour, answers) in wrong,
                    "offered": len(offered),
                    "attached": len(chosen),
                    "later": [r.text for r in later[:ASKED_AFTER]],
                }
            )
        for item in per_intent:
            held, neighbour = str(item["intent"]), str(item["neighbour"])
            replies = [(await ask(q))[1] for q in item.pop("later")]  # type: ignore[union-attr]
            item["asked"] = len(replies)
            item["corrected_answer"] = sum(code_of(held, answers) in t for t in replies) / len(
                replies
            )
            item["neighbours_answer"] = sum(
                code_of(neighbour, answers) in t for t in replies
            ) / len(replies)
            item["neighbour_accuracy_before"] = neighbours_before[neighbour]
            item["neighbour_accuracy_after"] = await accuracy(neighbour)
    finally:
        store.close()
        executor.shutdown(wait=True)
    asked = sum(int(i["asked"]) for i in per_intent)  # type: ignore[call-overload]

    def pooled(key: str) -> float:
        return sum(float(i[key]) * int(i["asked"]) for i in per_intent) / asked  # type: ignore[arg-type, call-overload]

    n_before = sum(len(tests[n]) * neighbours_before[n] for _, n in pairs)
    n_after = sum(
        len(tests[str(i["neighbour"])]) * float(i["neighbour_accuracy_after"]) for i in per_intent
    )  # type: ignore[arg-type]
    n_rows = sum(len(tests[n]) for _, n in pairs)
    return {
        "per_intent": per_intent,
        "corrected_answer": pooled("corrected_answer"),
        "neighbours_answer": pooled("neighbours_answer"),
        "neighbour_accuracy_before": n_before / n_rows,
        "neighbour_accuracy_after": n_after / n_rows,
    }


def print_table(report: dict[str, object]) -> None:
    head = ("held-out intent", "neighbour", "att", "fixed", "neigh", "neighbour acc")
    print(f"\n{head[0]:34} {head[1]:34} {head[2]:>3} {head[3]:>6} {head[4]:>6} {head[5]:>15}")
    for i in report["per_intent"]:  # type: ignore[attr-defined]
        before, after = i["neighbour_accuracy_before"], i["neighbour_accuracy_after"]
        print(
            f"{i['intent']:34} {i['neighbour']:34} {i['attached']:>3}"
            f" {i['corrected_answer']:>6.0%} {i['neighbours_answer']:>6.0%}"
            f" {before:>7.1%}->{after:.1%}"
        )
    print(
        f"\nanswered with the corrected answer: {report['corrected_answer']:.1%} (target >= 80%)"
        f"\nanswered with the neighbour's answer: {report['neighbours_answer']:.1%} (target <= 5%)"
        f"\nneighbours' accuracy: {report['neighbour_accuracy_before']:.1%} ->"
        f" {report['neighbour_accuracy_after']:.1%} (target: within 1 point)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 train rows per intent")
    parser.add_argument("--out", type=Path, default=RESULTS / "correction_topics_banking77.json")
    parser.add_argument(
        "--curated-bonus", type=float, default=None, help="retrieval.curated_bonus to try"
    )
    args = parser.parse_args()

    answers = load_answers()
    train, test = load_rows("train"), load_rows("test")
    if args.quick:
        kept: Counter[str] = Counter()
        train = [r for r in train if (kept.update([r.category]) or kept[r.category] <= 40)]
    started = time.perf_counter()
    bonus = {} if args.curated_bonus is None else {"curated_bonus": args.curated_bonus}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        # No answer classifier: it would have to be refitted once the held-out intents go.
        kb = KnowledgeBase.open(
            home / "db.sqlite", home / "indexes", RetrievalConfig(answer_classifier=False, **bonus)
        )
        logs = write_logs(train, answers, home / "train.jsonl")
        ingest_paths([logs], kb, scrub_pii=False, progress=True)
        pairs = confused_pairs(kb, test, answers)
        held = {h for h, _ in pairs}
        for n, row in enumerate(train):  # the shop's logs never covered these topics
            if row.category in held:
                kb.remove_source(f"b77-{n}#1")
        report = asyncio.run(run(kb, home, pairs, train, test, answers))
        kb.close()
    report.update(
        {
            "train_rows": len(train),
            "curated_bonus": RetrievalConfig(**bonus).curated_bonus,
            "quick": args.quick,
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
