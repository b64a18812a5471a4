"""Decoding: streaming, batching, stops and the repetition guard, on a tiny model."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from finetune.generation import DecodeSettings, ReplyGenerator, _banned_tokens
from finetune.prompting import PromptFormat, PromptRequest
from tests.support.finetune_fakes import (
    InMemoryRetriever,
    tiny_model,
    tiny_tokenizer,
    toy_conversations,
    train_tiny_model,
    transcript,
)

CONVERSATIONS = toy_conversations(repeats=6)
RETRIEVER = InMemoryRetriever(CONVERSATIONS)


def _format(tokenizer: Any) -> PromptFormat:
    return PromptFormat(
        tokenizer, instructions="Answer.", max_prompt_tokens=90, max_target_tokens=36
    )


def _request(question: str) -> PromptRequest:
    hits = RETRIEVER.search((), question, 1)
    return PromptRequest(question, (), tuple(hits))


@pytest.fixture(scope="module")
def generator() -> ReplyGenerator:
    """A tiny GPT-2 trained a little on the toy logs (seconds), so that it writes words of
    the logs, not the same one over and over, and other words for other prompts; how it
    is decoded is what these tests check."""
    tokenizer = tiny_tokenizer([m.text for c in CONVERSATIONS for m in c.messages])
    model = tiny_model("gpt2", len(tokenizer), seed=1, context=128)
    train_tiny_model(model, tokenizer, transcript(CONVERSATIONS), steps=60)
    return ReplyGenerator(
        model, tokenizer, _format(tokenizer), max_new_tokens=36, no_repeat_ngram_size=0
    )


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
