"""Continuous batching: rows joining and leaving a running batch decode as if alone."""

from __future__ import annotations

import pytest

from finetune.generation import DecodeBatch, DecodeSettings, ReplyGenerator
from finetune.prompting import PromptFormat, PromptRequest
from tests.support.finetune_fakes import tiny_model, tiny_tokenizer, toy_corpus_lines

QUESTIONS = (
    "hi",
    "my parcel from the spring sale never arrived and the tracking page says nothing, "
    "what can I do about order 4471?",
    "how do I return a tent?",
)


def _generator(architecture: str) -> ReplyGenerator:
    tokenizer = tiny_tokenizer(toy_corpus_lines())
    model = tiny_model(architecture, len(tokenizer), seed=5)
    fmt = PromptFormat(
        tokenizer, instructions="Answer.", max_prompt_tokens=96, max_target_tokens=24
    )
    return ReplyGenerator(model, tokenizer, fmt, max_new_tokens=24, no_repeat_ngram_size=0)


def _alone(generator: ReplyGenerator, prompt: list[int], settings: DecodeSettings) -> list[int]:
    steps = generator.decode_batch([prompt], [settings])
    return [e.token for step in steps for e in step if e.token is not None]


@pytest.mark.parametrize("architecture", ["gpt2", "llama", "qwen2"])
def test_rows_joining_and_leaving_mid_reply_decode_as_if_alone(architecture: str) -> None:
    generator = _generator(architecture)
    prompts = [generator.prompt_format.encode(PromptRequest(q)).input_ids for q in QUESTIONS]
    assert len({len(p) for p in prompts}) == 3  # different widths must be joined
    # The longest prompt leaves first, so the columns that only it used get trimmed.
    settings = [
        DecodeSettings(max_new_tokens=20),
        DecodeSettings(max_new_tokens=4),
        DecodeSettings(max_new_tokens=16),
    ]
    expected = [_alone(generator, p, s) for p, s in zip(prompts, settings, strict=True)]

    batch = DecodeBatch(generator)
    tokens: dict[int, list[int]] = {0: [], 1: [], 2: []}
    finished: list[int] = []

    def step() -> None:
        for event in batch.step():
            if event.token is not None:
                tokens[event.row].append(event.token)
            if event.finished:
                finished.append(event.row)

    batch.admit([prompts[0]], [settings[0]], keys=[0])
    for _ in range(3):
        step()
    assert batch.joinable
    batch.admit(prompts[1:], settings[1:], keys=[1, 2])  # join a batch 3 tokens in
    assert len(batch) == 3
    while batch:
        step()
    assert [tokens[k] for k in range(3)] == expected
    assert sorted(finished) == [0, 1, 2] and finished[0] == 1


def test_an_empty_batch_frees_its_cache_and_can_start_again() -> None:
    generator = _generator("gpt2")
    prompt = generator.prompt_format.encode(PromptRequest(QUESTIONS[2])).input_ids
    settings = DecodeSettings(max_new_tokens=3)
    batch = DecodeBatch(generator)
    for key in (7, 8):  # a second round after the first one drained
        batch.admit([prompt], [settings], keys=[key])
        events = [e for _ in range(3) for e in batch.step()]
        assert [e.row for e in events] == [key] * 3 and events[-1].finished
        assert not batch and batch.joinable
