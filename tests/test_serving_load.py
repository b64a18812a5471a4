"""Many conversations at once: every one gets its whole reply, in bounded time.

Two halves of what stalled the 32-concurrent load benchmark are covered: the server (real
engine, real SQLite store, the real batching worker over a tiny model, behind a real
loopback HTTP server), and the benchmark's own harness, which must keep a server that
logs every request running (it used to pipe the server's log to nobody, and the server
blocked on a full pipe after a few hundred lines).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from benchmarks.serve_load import run_level, served
from bot.adapters.generation import WorkerGenerator
from bot.app import create_app
from bot.settings import load_settings
from bot.web import WebConfig
from finetune.generation import ReplyGenerator
from finetune.prompting import PromptFormat
from finetune.worker import GenerationWorker
from tests.support.fakes import FakeRetriever, source
from tests.support.finetune_fakes import tiny_model, tiny_tokenizer, toy_corpus_lines

CONVERSATIONS = 40  # more than max_groups (4) x max_batch_size (8) rows decode at once
DEADLINE_S = 90.0  # a stall fails the test instead of hanging CI


@pytest.fixture(scope="module")
def worker() -> Iterator[GenerationWorker]:
    tokenizer = tiny_tokenizer(toy_corpus_lines())
    model = tiny_model("gpt2", len(tokenizer), seed=5)
    fmt = PromptFormat(
        tokenizer, instructions="Answer.", max_prompt_tokens=200, max_target_tokens=24
    )
    generator = ReplyGenerator(model, tokenizer, fmt, max_new_tokens=24, no_repeat_ngram_size=3)
    with GenerationWorker(generator, max_batch_size=8, batch_wait_ms=5) as running:
        yield running


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        lines = block.strip().split("\n")
        if lines[0].startswith("event:"):
            data = "\n".join(line[5:].lstrip() for line in lines[1:] if line.startswith("data:"))
            events.append((lines[0][6:].strip(), json.loads(data)))
    return events


async def test_forty_concurrent_conversations_all_get_their_whole_reply(
    aiohttp_client: Any, tmp_path: Path, worker: GenerationWorker
) -> None:
    retriever = FakeRetriever(
        answers=[
            source("c-ship#1", "where is my order", "Orders ship in 2 working days.", 0.95),
            source("c-ret#1", "how do I return my tent", "Returns are free for 30 days.", 0.30),
        ]
    )
    web_config = WebConfig(rate_per_minute=100_000, rate_burst=100_000)
    app = create_app(
        load_settings(home=tmp_path / "home", web=web_config),
        retriever=retriever,
        generator=WorkerGenerator(worker),
    )
    client = await aiohttp_client(app)
    health_waits: list[float] = []

    async def converse(n: int) -> list[tuple[str, dict[str, Any]]]:
        created = await client.post("/api/conversations")
        conversation_id = (await created.json())["conversation_id"]
        response = await client.post(
            f"/api/conversations/{conversation_id}/messages",
            json={"text": f"hi, where is my order number {n}?"},
            headers={"Accept": "text/event-stream"},
        )
        assert response.status == 200
        return sse_events(await response.text())

    async def poll_health(stop: asyncio.Event) -> None:
        while not stop.is_set():
            began = time.perf_counter()
            response = await client.get("/healthz")
            assert response.status == 200
            health_waits.append(time.perf_counter() - began)
            await asyncio.sleep(0.05)

    stop = asyncio.Event()
    poller = asyncio.create_task(poll_health(stop))
    async with asyncio.timeout(DEADLINE_S):
        replies = await asyncio.gather(*(converse(n) for n in range(CONVERSATIONS)))
    stop.set()
    await poller

    for events in replies:
        names = [name for name, _ in events]
        assert names[-1] == "done" and "error" not in names
        done = events[-1][1]
        assert done["reply"] and not done["handoff"]
        # What the customer sees: the deltas after the last retraction, if any.
        shown_from = max((i for i, (name, _) in enumerate(events) if name == "retract"), default=-1)
        streamed = "".join(d["text"] for name, d in events[shown_from + 1 :] if name == "delta")
        assert streamed == done["reply"]  # the customer saw the whole reply
    assert worker.largest_batch > 1  # concurrent requests were decoded together
    assert health_waits and max(health_waits) < 5.0  # the event loop kept answering


def test_the_load_benchmark_keeps_a_chatty_server_running(tmp_path: Path) -> None:
    """The benchmark drives `supportbot serve` in a subprocess that logs every request; a
    home with nothing ingested hands every message off, which is enough to count."""

    async def load(base: str) -> dict[str, float]:
        async with asyncio.timeout(DEADLINE_S):
            async with aiohttp.ClientSession() as session:
                for _ in range(700):  # an access-log line each: more than a pipe buffer holds
                    async with session.get(f"{base}/healthz") as response:
                        assert response.status == 200
            return await run_level(base, ["where is my order?"], 32, 32)

    with served(tmp_path / "home", tmp_path / "server.log") as base:
        row = asyncio.run(load(base))
    assert row["replies"] == 32
    assert row["handoffs"] == 32  # nothing ingested: every message goes to a person
    assert "GET /healthz" in (tmp_path / "server.log").read_text()
