"""The generation worker: concurrent requests batched off the event loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from finetune.generation import ReplyGenerator
from finetune.prompting import PromptFormat, PromptRequest
from finetune.worker import GenerationQueueFullError, GenerationWorker, WorkerClosedError
from tests.support.finetune_fakes import tiny_model, tiny_tokenizer, toy_corpus_lines

QUESTIONS = [f"question {i}: where is order {i * 7}?" for i in range(8)]


@pytest.fixture(scope="module")
def generator() -> ReplyGenerator:
    tokenizer = tiny_tokenizer(toy_corpus_lines())
    model = tiny_model("gpt2", len(tokenizer), seed=3)
    fmt = PromptFormat(
        tokenizer, instructions="Answer.", max_prompt_tokens=64, max_target_tokens=16
    )
    return ReplyGenerator(model, tokenizer, fmt, max_new_tokens=16, no_repeat_ngram_size=2)


async def test_concurrent_streams_are_batched_and_match_single_decoding(
    generator: ReplyGenerator,
) -> None:
    expected = [generator.generate(PromptRequest(q)) for q in QUESTIONS]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    async def collect(question: str) -> list[str]:
        return [delta async for delta in worker.stream(PromptRequest(question))]

    with GenerationWorker(generator, max_batch_size=8, batch_wait_ms=50) as worker:
        tick_task = asyncio.create_task(ticker())
        began = time.monotonic()
        results = await asyncio.gather(*(collect(q) for q in QUESTIONS))
        elapsed = time.monotonic() - began
        tick_task.cancel()
    assert ["".join(r) for r in results] == expected
    assert worker.largest_batch > 1
    assert ticks > elapsed * 1000 * 0.2  # the loop kept running while the model decoded


async def test_abandoned_stream_frees_the_worker(generator: ReplyGenerator) -> None:
    with GenerationWorker(generator, max_batch_size=2, batch_wait_ms=1) as worker:
        async for _ in worker.stream(PromptRequest(QUESTIONS[0])):
            break  # the client went away after the first delta
        assert await worker.generate(PromptRequest(QUESTIONS[1])) == generator.generate(
            PromptRequest(QUESTIONS[1])
        )


def test_full_queue_and_close_fail_clearly(generator: ReplyGenerator) -> None:
    worker = GenerationWorker(generator, max_queued=2)  # not started: requests wait
    waiting = [worker.submit(PromptRequest(q)) for q in QUESTIONS[:2]]
    with pytest.raises(GenerationQueueFullError, match="queue is full"):
        worker.submit(PromptRequest(QUESTIONS[2]))
    worker.close()
    for handle in waiting:
        with pytest.raises(WorkerClosedError):
            handle.result()
    with pytest.raises(WorkerClosedError):
        worker.submit(PromptRequest(QUESTIONS[0]))


def test_blocking_handles_from_threads(generator: ReplyGenerator) -> None:
    with GenerationWorker(generator, max_batch_size=4, batch_wait_ms=20) as worker:
        handles = [worker.submit(PromptRequest(q)) for q in QUESTIONS[:4]]
        assert [h.result() for h in handles] == [
            generator.generate(PromptRequest(q)) for q in QUESTIONS[:4]
        ]


def test_a_late_request_starts_before_the_running_batch_ends(generator: ReplyGenerator) -> None:
    """Iteration-level scheduling: a request that arrives mid-batch gets its first token
    at the next step, not after the batch in flight has finished all its tokens."""
    import threading

    long_done_at: list[float] = []
    with GenerationWorker(generator, max_batch_size=1, batch_wait_ms=0) as worker:
        long_handle = worker.submit(PromptRequest(QUESTIONS[0]), max_new_tokens=400)
        deltas = iter(long_handle)
        next(deltas)  # the long request is decoding now

        def drain() -> None:
            for _ in deltas:
                pass
            long_done_at.append(time.monotonic())

        drainer = threading.Thread(target=drain)
        drainer.start()
        late = worker.submit(PromptRequest(QUESTIONS[1]))
        late_deltas = iter(late)
        first = next(late_deltas)
        first_token_at = time.monotonic()
        text = first + "".join(late_deltas)
        drainer.join(timeout=60)
    assert text == generator.generate(PromptRequest(QUESTIONS[1]))
    assert worker.batches_decoded == 2
    assert long_done_at and first_token_at < long_done_at[0]


def test_a_late_request_joins_the_running_batch(generator: ReplyGenerator) -> None:
    """Continuous batching: with room in the batch, a request that arrives mid-reply is
    decoded in the same forward passes as the running one (one batch of two rows), and
    both replies are what each would be alone."""
    expected_long = generator.generate(PromptRequest(QUESTIONS[0]), max_new_tokens=400)
    with GenerationWorker(generator, max_batch_size=8, batch_wait_ms=0) as worker:
        long_handle = worker.submit(PromptRequest(QUESTIONS[0]), max_new_tokens=400)
        deltas = iter(long_handle)
        first_long = next(deltas)  # the long request is decoding now
        late = worker.submit(PromptRequest(QUESTIONS[1]))
        late_text = late.result()
        long_text = first_long + "".join(deltas)
    assert late_text == generator.generate(PromptRequest(QUESTIONS[1]))
    assert long_text == expected_long
    assert worker.batches_decoded == 2  # two admissions ...
    assert worker.largest_batch == 2  # ... into one batch


async def test_deltas_that_arrive_while_the_loop_is_busy_come_as_one(
    generator: ReplyGenerator,
) -> None:
    """One loop wake-up per stream at most: while the consumer cannot run, the worker's
    deltas are joined, so a busy server is not flooded with a callback per token."""
    request = PromptRequest(QUESTIONS[2])
    expected = generator.generate(request, max_new_tokens=300)
    single_tokens = sum(
        1
        for step in generator.decode_batch(
            [generator.prompt_format.encode(request).input_ids],
            [generator.settings(max_new_tokens=300)],
        )
        for e in step
        if e.text
    )
    with GenerationWorker(generator, batch_wait_ms=0) as worker:
        chunks: list[str] = []
        async for delta in worker.stream(request, max_new_tokens=300):
            if not chunks:
                time.sleep(0.5)  # the loop is blocked; the worker keeps decoding
            chunks.append(delta)
    assert "".join(chunks) == expected
    assert single_tokens > 10 and len(chunks) < single_tokens / 2
