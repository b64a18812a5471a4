"""Bootstrap pretraining and decoding: streaming, batching, stops and the repetition guard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from finetune.bootstrap import PretrainSettings, bootstrap_base, pretrain
from finetune.examples import build_examples, iter_turns, retrieve_for_turns
from finetune.generation import DecodeSettings, ReplyGenerator, _banned_tokens
from finetune.modeling import load_base
from finetune.prompting import PromptFormat, PromptRequest
from finetune.testing import InMemoryRetriever, tiny_model, tiny_tokenizer, toy_conversations
from retrieval.artifacts import list_versions

CONVERSATIONS = toy_conversations(repeats=6)
RETRIEVER = InMemoryRetriever(CONVERSATIONS)


def _documents(tokenizer: Any) -> list[list[int]]:
    turns = [t for c in CONVERSATIONS for t in iter_turns(c)]
    examples = build_examples(
        turns,
        retrieve_for_turns(turns, RETRIEVER, 6),
        k=1,
        reference_rate=1.0,
        handoff_reply="Let me check.",
        seed=0,
    )
    fmt = _format(tokenizer)
    return [fmt.encode_example(e.request, e.target).input_ids for e in examples]


def _format(tokenizer: Any) -> PromptFormat:
    return PromptFormat(
        tokenizer, instructions="Answer.", max_prompt_tokens=90, max_target_tokens=36
    )


def _request(question: str) -> PromptRequest:
    hits = RETRIEVER.search((), question, 1)
    return PromptRequest(question, (), tuple(hits))


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenizer and GPT-2-style model trained from scratch on the toy logs (a few seconds)."""
    root = tmp_path_factory.mktemp("base")
    lines = [m.text for c in CONVERSATIONS for m in c.messages] * 3
    settings = PretrainSettings(
        budget_s=600.0,  # the step count binds, not the clock: a busy CI machine is slow
        max_steps=60,
        batch_size=8,
        block_size=128,
        context_size=128,
        learning_rate=5e-3,
        model_shape=(2, 2, 64),
    )
    result = bootstrap_base(
        lines, _documents, base_root=root, vocab_size=400, settings=settings, progress=False
    )
    return result.folder


@pytest.fixture(scope="module")
def generator(bootstrapped: Path) -> ReplyGenerator:
    loaded = load_base(bootstrapped)
    return ReplyGenerator(
        loaded.model,
        loaded.tokenizer,
        _format(loaded.tokenizer),
        max_new_tokens=36,
        no_repeat_ngram_size=0,
    )


def test_bootstrap_publishes_a_base_that_learned_the_logs(bootstrapped: Path) -> None:
    assert list_versions(bootstrapped.parent) == [bootstrapped]
    manifest = json.loads((bootstrapped / "bootstrap.json").read_text())
    assert manifest["steps"] == 60, manifest
    assert manifest["train_loss"] < 3.5, manifest  # from ~6.0 (uniform over the vocabulary)
    assert not (bootstrapped.parent / ".checkpoints").exists() or not any(
        (bootstrapped.parent / ".checkpoints").iterdir()
    )


def test_bootstrapped_model_writes_text(generator: ReplyGenerator) -> None:
    reply = generator.generate(_request("hi, where is my order?"))
    words = {w for c in CONVERSATIONS for m in c.messages for w in m.text.split()}
    assert any(word in words for word in reply.split()), reply


@pytest.mark.slow
def test_longer_bootstrap_writes_the_learned_replies(tmp_path: Path) -> None:
    lines = [m.text for c in CONVERSATIONS for m in c.messages] * 3
    settings = PretrainSettings(
        budget_s=300.0,
        max_steps=400,
        batch_size=8,
        block_size=128,
        context_size=128,
        learning_rate=5e-3,
        model_shape=(2, 2, 64),
    )
    folder = bootstrap_base(
        lines, _documents, base_root=tmp_path, vocab_size=400, settings=settings, progress=False
    ).folder
    loaded = load_base(folder)
    generator = ReplyGenerator(loaded.model, loaded.tokenizer, _format(loaded.tokenizer))
    for question, code in (
        ("hi, where is my order?", "KB-SHP-02"),
        ("my stove is broken", "KB-WAR-05"),
    ):
        assert code in generator.generate(_request(question)), question


def test_pretraining_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    tokenizer = tiny_tokenizer([m.text for c in CONVERSATIONS for m in c.messages])
    stream = torch.tensor([t for doc in _documents(tokenizer) for t in doc])
    settings = PretrainSettings(
        budget_s=120.0,  # the step count binds, not the clock: a busy CI machine is slow
        max_steps=6,
        batch_size=4,
        block_size=64,
        context_size=64,
        checkpoint_every_s=0.0,
        model_shape=(1, 2, 32),
    )
    checkpoint = tmp_path / "checkpoint.pt"
    calls = {"n": 0}

    class Interrupted(Exception):
        pass

    def interrupt_after_three(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Interrupted
        return original(*args, **kwargs)

    import finetune.bootstrap as bootstrap_module

    original = bootstrap_module._save_checkpoint
    bootstrap_module._save_checkpoint = interrupt_after_three  # type: ignore[assignment]
    try:
        with pytest.raises(Interrupted):
            pretrain(stream, len(tokenizer), settings, checkpoint, progress=False)
    finally:
        bootstrap_module._save_checkpoint = original  # type: ignore[assignment]
    saved = torch.load(checkpoint, weights_only=False)
    assert saved["step"] == 2 and "model_args" in saved and "best_val_loss" in saved
    _, metrics = pretrain(stream, len(tokenizer), settings, checkpoint, progress=False)
    assert metrics["steps"] > 2
    assert metrics["planned_seconds"] == round(saved["planned_s"], 1)
    # The clock carries on from the checkpoint (train_seconds is rounded to 0.1 s, and a fast
    # machine trains six tiny steps in hundredths of a second, so compare what is counted exactly).
    assert metrics["tokens_seen"] > saved["tokens_seen"]
    assert metrics["train_seconds"] >= round(saved["trained_s"], 1)


def test_stream_joins_to_generate_and_batches_match_single(generator: ReplyGenerator) -> None:
    requests = [
        _request(q)
        for q in (
            "hi, where is my order?",
            "my stove is broken",
            "do you price match?",
            "how much is express shipping?",
        )
    ]
    singles = [generator.generate(r) for r in requests]
    for request, single in zip(requests, singles, strict=True):
        deltas = list(generator.stream(request))
        assert len(deltas) > 1 and "".join(deltas) == single
    assert generator.generate_batch(requests, batch_size=4) == singles
    assert len(set(singles)) > 1


def test_greedy_decoding_matches_plain_generate(generator: ReplyGenerator) -> None:
    request = _request("my stove is broken")
    prompt = generator.prompt_format.encode(request).input_ids
    out = generator.model.generate(
        torch.tensor([prompt]),
        max_new_tokens=36,
        do_sample=False,
        eos_token_id=generator.tokenizer.eos_token_id,
        pad_token_id=0,
    )
    expected = generator.tokenizer.decode(out[0, len(prompt) :], skip_special_tokens=True).strip()
    assert generator.generate(request) == expected


def test_stop_strings_and_token_limit(generator: ReplyGenerator) -> None:
    request = _request("hi, where is my order?")
    full = generator.generate(request)
    word = full.split()[len(full.split()) // 2]
    cut = generator.generate(request, stop=[word])
    assert cut == full[: full.index(word)].rstrip()
    settings = DecodeSettings(max_new_tokens=3)
    prompt = generator.prompt_format.encode(request).input_ids
    events = [e for step in generator.decode_batch([prompt], [settings]) for e in step]
    assert sum(1 for e in events if e.finished) == 1 and len(events) <= 3
    assert events[-1].finished


@pytest.mark.parametrize("architecture", ["gpt2", "llama", "qwen2"])
def test_repetition_guard_stops_loops(architecture: str) -> None:
    tokenizer = tiny_tokenizer([m.text for c in CONVERSATIONS for m in c.messages])
    model = tiny_model(architecture, len(tokenizer))  # untrained: it loops
    fmt = _format(tokenizer)
    prompt = fmt.encode(_request("where is my order")).input_ids

    def tokens(guard: int) -> list[int]:
        generator = ReplyGenerator(
            model, tokenizer, fmt, max_new_tokens=30, no_repeat_ngram_size=guard
        )
        steps = generator.decode_batch([prompt], [generator.settings()])
        return [e.token for step in steps for e in step if e.token is not None]

    def repeated_trigrams(ids: list[int]) -> int:
        trigrams = [tuple(ids[i : i + 3]) for i in range(len(ids) - 2)]
        return len(trigrams) - len(set(trigrams))

    assert repeated_trigrams(tokens(0)) > 0
    guarded = tokens(3)
    assert len(guarded) == 30 and repeated_trigrams(guarded) == 0


def test_banned_tokens_complete_repeated_ngrams_only() -> None:
    assert _banned_tokens([1, 2, 3, 1, 2], 3) == {3}
    assert _banned_tokens([1, 2, 3, 4], 3) == set()
