"""Retrieval benchmark on Banking77 (issue 2): quality, ingest throughput, search latency.

    python benchmarks/retrieval_banking77.py            # full run, writes benchmarks/results/
    python benchmarks/retrieval_banking77.py --quick    # 2k train rows, no 100k case

Train rows are ingested as support logs through the real ingest job; every test message is
a question. Top-1 / recall@5 / MRR count a hit when the retrieved agent reply is the
canonical answer of the test row's intent. Latency is measured at 10k and 100k entries,
padded with synthetic, paraphrase-free entries, with and without query embedding.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.banking77 import load_answers, load_rows, write_logs
from retrieval.config import RetrievalConfig
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase, Query
from retrieval.records import ParseIssue

RESULTS = Path(__file__).resolve().parent / "results"

_WORDS = [
    "lantern",
    "kayak",
    "compass",
    "harbor",
    "meadow",
    "granite",
    "orchard",
    "saddle",
    "violin",
    "pepper",
    "glacier",
    "canyon",
    "ribbon",
    "falcon",
    "timber",
    "velvet",
    "marble",
    "quartz",
    "willow",
    "thistle",
    "cobalt",
    "ember",
    "fjord",
    "prairie",
    "tundra",
    "basalt",
    "cedar",
    "juniper",
    "lagoon",
    "mosaic",
    "nectar",
    "oasis",
    "pebble",
    "quiver",
    "raven",
    "summit",
    "tapestry",
    "umber",
    "vertex",
    "walnut",
    "yarrow",
    "zephyr",
    "amber",
    "birch",
    "cinder",
    "dune",
    "fern",
    "grove",
    "heron",
]


def synthetic_logs(n: int, path: Path, seed: int = 7) -> Path:
    """Entries on topics no test question is about, so they only add search load."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            question = " ".join(rng.choices(_WORDS, k=rng.randint(5, 12))) + f" {i}?"
            answer = " ".join(rng.choices(_WORDS, k=rng.randint(6, 14))) + f" ref {i}."
            record = {
                "id": f"pad{seed}-{i}",
                "messages": [
                    {"role": "customer", "text": question},
                    {"role": "agent", "text": answer},
                ],
            }
            fh.write(json.dumps(record) + "\n")
    return path


def pad_with_vectors(kb: KnowledgeBase, count: int, seed: int = 7) -> None:
    """Add ``count`` synthetic entries whose vectors are random unit vectors.

    They go through the store and the index like any entry (the same ids, the same
    SQLite lookups, the same FAISS kind switch), but their vectors are written straight
    into the embedding cache: embedding 90k texts would take most of an hour on two
    cores and would measure the embedder, which the 10k ingest already does.
    """
    from retrieval.parsers import read_logs
    from retrieval.store import text_hash

    with tempfile.TemporaryDirectory() as tmp:
        logs = synthetic_logs(count, Path(tmp) / "pad.jsonl", seed)
        conversations = [c for c in read_logs(logs) if not isinstance(c, ParseIssue)]
    kb.store.add_conversations(conversations)
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(conversations), kb.embedder.dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    hashes = [text_hash(c.messages[0].text.strip()) for c in conversations]
    kb.store.cache_vectors(list(zip(hashes, vectors, strict=True)), kb.embedder.model_id)
    kb.sync_index(progress=True)


def quality(kb: KnowledgeBase, questions: list[str], expected: list[str]) -> dict[str, float]:
    top1 = recall5 = mrr = 0.0
    results = []
    for start in range(0, len(questions), 512):
        batch = [Query(q) for q in questions[start : start + 512]]
        results.extend(kb.search_batch(batch, 5))
    for hits, answer in zip(results, expected, strict=True):
        replies = [h.agent_reply for h in hits]
        if replies and replies[0] == answer:
            top1 += 1
        if answer in replies:
            recall5 += 1
            mrr += 1 / (replies.index(answer) + 1)
    n = len(questions)
    return {"top1": top1 / n, "recall@5": recall5 / n, "mrr": mrr / n}


def latency(kb: KnowledgeBase, questions: list[str], n: int = 300) -> dict[str, float]:
    rng = random.Random(3)
    sample = [rng.choice(questions) for _ in range(n)]
    vectors = kb.embedder.encode(sample)
    kb.search((), sample[0], 5)  # warm-up
    without, with_embedding = [], []
    for i, text in enumerate(sample):
        start = time.perf_counter()
        kb.search_batch([Query(text)], 5, query_vectors=vectors[i : i + 1])
        without.append(time.perf_counter() - start)
        start = time.perf_counter()
        kb.search((), text, 5)
        with_embedding.append(time.perf_counter() - start)
    ms = lambda xs, q: float(np.percentile(xs, q) * 1000)  # noqa: E731
    return {
        "p50_ms_no_embed": ms(without, 50),
        "p95_ms_no_embed": ms(without, 95),
        "p50_ms_with_embed": ms(with_embedding, 50),
        "p95_ms_with_embed": ms(with_embedding, 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run for a smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS / "retrieval_banking77.json")
    args = parser.parse_args()

    answers = load_answers()
    train, test = load_rows("train"), load_rows("test")
    if args.quick:
        train, test = train[:2000], test[:500]
    report: dict[str, object] = {"train_rows": len(train), "test_rows": len(test)}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        kb = KnowledgeBase.open(home / "db.sqlite", home / "indexes", RetrievalConfig())
        kb.embedder.encode(["warm up"])  # model load is not ingest throughput
        logs = write_logs(train, answers, home / "train.jsonl")
        ingest = ingest_paths([logs], kb, progress=True)
        report["ingest_pairs"] = ingest.entries_added
        report["ingest_seconds"] = round(ingest.seconds, 2)
        report["ingest_pairs_per_s"] = round(ingest.pairs_per_second, 1)

        questions = [r.text for r in test]
        expected = [answers[r.category] for r in test]
        report["quality"] = quality(kb, questions, expected)
        sizes: dict[str, object] = {}
        total = len(kb.store.live_entry_ids())
        for target in [] if args.quick else [10_000, 100_000]:
            if total < target:
                pad_with_vectors(kb, target - total, seed=target)
                total = len(kb.store.live_entry_ids())
            assert kb.version is not None
            sizes[str(target)] = {
                "entries": total,
                "index": kb.version.kind,
                **latency(kb, questions),
            }
            if target == 100_000:
                sizes[str(target)]["quality"] = quality(kb, questions, expected)
        if args.quick:
            assert kb.version is not None
            sizes[str(total)] = {
                "entries": total,
                "index": kb.version.kind,
                **latency(kb, questions),
            }
        report["latency"] = sizes
        kb.close()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"\nwrote {args.out}")


def print_table(report: dict[str, object]) -> None:
    q = report["quality"]
    assert isinstance(q, dict)
    print("\nBanking77 retrieval (PolyAI, CC BY 4.0)")
    print(f"{'metric':<34}{'value':>12}{'target':>12}")
    print(f"{'top-1':<34}{q['top1']:>12.4f}{'>= 0.92':>12}")
    print(f"{'recall@5':<34}{q['recall@5']:>12.4f}{'':>12}")
    print(f"{'MRR':<34}{q['mrr']:>12.4f}{'':>12}")
    print(f"{'ingest pairs/s':<34}{report['ingest_pairs_per_s']:>12}{'>= 150':>12}")
    latency = report["latency"]
    assert isinstance(latency, dict)
    for size, row in latency.items():
        print(
            f"{'search p50/p95 ms, no embed @' + size:<34}"
            f"{row['p50_ms_no_embed']:>6.2f}/{row['p95_ms_no_embed']:<5.2f}"
            f"{'<= 5 (p95)' if size == '100000' else '':>12}"
        )
        print(
            f"{'search p50/p95 ms, with embed @' + size:<34}"
            f"{row['p50_ms_with_embed']:>6.2f}/{row['p95_ms_with_embed']:<5.2f}"
            f"{'<= 30 (p95)' if size == '100000' else '':>12}"
        )
        if "quality" in row:
            print(f"{'top-1 @' + size + ' (padded)':<34}{row['quality']['top1']:>12.4f}")


if __name__ == "__main__":
    main()
