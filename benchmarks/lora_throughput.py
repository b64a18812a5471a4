"""LoRA training throughput of the product's training loop, float32 against bfloat16 (issue 16).

    python benchmarks/lora_throughput.py                      # SmolLM2-135M-Instruct, both
    python benchmarks/lora_throughput.py --steps 12 --batch 8

The same examples (sample-corpus replies with three other past exchanges as evidence, in
the model's chat template) train a fresh LoRA adapter (r=16 on the modules peft adapts by
default for the architecture: q_proj and v_proj for Llama) for the same number of steps in
each precision, one after the other in the same process, through
``finetune.training.train_lora``. Prints tokens/s for each and their ratio, and whether
this processor computes bfloat16 natively (what ``train_precision = "auto"`` decides on).
Run it on a quiet machine: both cores are used.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from finetune import training
from finetune.config import GeneratorConfig
from finetune.examples import TrainingExample, iter_turns
from finetune.modeling import attach_lora, load_base
from finetune.precision import cpu_has_native_bf16
from finetune.prompting import PromptFormat, PromptRequest
from finetune.training import LoraSettings, train_lora
from retrieval.parsers import read_logs
from retrieval.records import Conversation, RetrievedExchange

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "conversations.jsonl"


def examples(count: int, seed: int) -> list[TrainingExample]:
    """Replies of the sample corpus, each with three other past exchanges as evidence."""
    conversations = [c for c in read_logs(SAMPLE) if isinstance(c, Conversation)]
    turns = [t for c in conversations for t in iter_turns(c)]
    rng = random.Random(seed)
    rng.shuffle(turns)
    chosen = turns[:count]
    built = []
    for turn in chosen:
        others = rng.sample(turns, 3)
        evidence = tuple(
            RetrievedExchange(0.8, f"x#{i}", o.customer_text, o.reply, "log")
            for i, o in enumerate(others)
        )
        request = PromptRequest(turn.customer_text, turn.history[-4:], evidence)
        built.append(TrainingExample(request, turn.reply, turn.conversation_id, True))
    return built


_REPLY_LOSS = training.reply_loss


def _full_loss(model: Any, batch: dict[str, Any]) -> Any:
    return model(**batch).loss


def _prompt_gradient_loss(model: Any, batch: dict[str, Any]) -> Any:
    return _REPLY_LOSS(model, batch, prompt_gradient=True)


_LOSSES = {"reply": _REPLY_LOSS, "prompt-gradient": _prompt_gradient_loss, "full": _full_loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument(
        "--losses",
        default="reply",
        help="'reply' (the product's: the prompt as a cache without a graph, the output "
        "layer at reply positions only), 'prompt-gradient' (the same with the prompt's "
        "gradient kept), 'full' (the model's own loss), or several: 'reply,full'",
    )
    args = parser.parse_args()
    config = GeneratorConfig(base_model=args.base, lora_target_modules=None)
    train = examples(args.steps * args.batch, seed=1)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as home:
        runs = [(p, loss) for p in args.precisions.split(",") for loss in args.losses.split(",")]
        for precision, loss in runs:
            # The full-vocabulary loss is the model's own, swapped in for comparison only.
            training.reply_loss = _LOSSES[loss]
            loaded = load_base(args.base, base_root=Path(home) / "base")
            model = attach_lora(loaded, config)
            fmt = PromptFormat.for_config(loaded.tokenizer, config)
            settings = LoraSettings(
                budget_s=3600.0,
                learning_rate=config.learning_rate,
                precision=precision,  # type: ignore[arg-type]
                batch_size=args.batch,
                max_epochs=1.0,
                early_stop_patience=0,
            )
            started = time.monotonic()
            metrics = train_lora(model, fmt, train, [], settings, progress=True)
            print(f"{precision}, {loss} loss: {metrics['tokens_per_s']} tokens/s", flush=True)
            rows.append(
                {
                    "precision": metrics["precision"],
                    "loss": loss,
                    "steps": metrics["steps"],
                    "tokens_per_s": metrics["tokens_per_s"],
                    "reply_tokens_per_s": metrics["reply_tokens_per_s"],
                    "seconds": round(time.monotonic() - started, 1),
                    "final_loss": round(metrics["train_loss"], 3),
                }
            )
    native = cpu_has_native_bf16()
    print(f"base {args.base}; native bfloat16 on this CPU: {native}; cores {os.cpu_count()}\n")
    print("| precision | loss over | steps | tokens/s | reply tokens/s | seconds | final loss |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['precision']} | {r['loss']} | {r['steps']} | {r['tokens_per_s']}"
            f" | {r['reply_tokens_per_s']} | {r['seconds']} | {r['final_loss']} |"
        )
    by = {r["precision"]: r for r in rows if r["loss"] == args.losses.split(",")[0]}
    if "fp32" in by and "bf16" in by:
        ratio = by["bf16"]["tokens_per_s"] / by["fp32"]["tokens_per_s"]
        print(f"\nbf16 / fp32 tokens/s: {ratio:.2f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "lora_throughput.json"
    out.write_text(json.dumps({"native_bf16": native, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
