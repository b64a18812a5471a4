"""Bounded load on loopback against `supportbot serve` (issue 4).

    python benchmarks/serve_load.py --home .supportbot          # a home with a trained model
    python benchmarks/serve_load.py --home H --levels 1,8 --requests 16

Starts the server in a subprocess on a free loopback port, then for each concurrency level
runs that many conversations at once, each sending messages from the sample corpus's eval
split and reading the streamed reply (SSE). Reports p50/p95 time to first token and
full-reply latency, replies/s, the ratio against one request at a time, and p99 of
/healthz polled during the load (the event loop is never blocked). Prints a table and
writes JSON. Sends traffic to 127.0.0.1 only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def questions(path: Path, limit: int) -> list[str]:
    """The first customer message of each line of a JSONL conversations/questions file."""
    texts = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            first = next(m for m in record["messages"] if m["role"] in ("customer", "user"))
            texts.append(first.get("text") or first.get("content"))
    return texts[:limit]


async def one_reply(session: aiohttp.ClientSession, base: str, text: str) -> dict[str, float]:
    async with session.post(f"{base}/api/conversations", json={}) as response:
        conversation = (await response.json())["conversation_id"]
    start = time.perf_counter()
    first = None
    outcome = "?"
    async with session.post(
        f"{base}/api/conversations/{conversation}/messages",
        json={"text": text},
        headers={"Accept": "text/event-stream"},
    ) as response:
        response.raise_for_status()
        event = None
        async for raw in response.content:
            line = raw.decode("utf-8").rstrip("\n")
            if line.startswith("event:"):
                event = line[6:].strip()
                if first is None and event in ("delta", "done"):
                    first = time.perf_counter()
            elif line.startswith("data:") and event == "done":
                outcome = "handoff" if json.loads(line[5:])["handoff"] else "answered"
    end = time.perf_counter()
    return {"ttft": (first or end) - start, "total": end - start, "handoff": outcome == "handoff"}


async def health_poller(
    session: aiohttp.ClientSession, base: str, stop: asyncio.Event, samples: list[float]
) -> None:
    while not stop.is_set() and len(samples) < 100_000:
        start = time.perf_counter()
        async with session.get(f"{base}/healthz") as response:
            await response.read()
        samples.append(time.perf_counter() - start)
        await asyncio.sleep(0.02)


async def run_level(base: str, texts: list[str], concurrency: int, total: int) -> dict[str, float]:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        stop = asyncio.Event()
        health: list[float] = []
        poller = asyncio.create_task(health_poller(session, base, stop, health))
        queue = list(range(total))
        results: list[dict[str, float]] = []

        async def client() -> None:
            while queue:
                n = queue.pop()
                results.append(await one_reply(session, base, texts[n % len(texts)]))

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        stop.set()
        await poller
    ttft = [r["ttft"] for r in results]
    full = [r["total"] for r in results]
    return {
        "concurrency": concurrency,
        "replies": len(results),
        "handoffs": sum(1 for r in results if r["handoff"]),
        "replies_per_s": len(results) / elapsed,
        "ttft_p50_ms": float(np.percentile(ttft, 50) * 1000),
        "ttft_p95_ms": float(np.percentile(ttft, 95) * 1000),
        "latency_p50_ms": float(np.percentile(full, 50) * 1000),
        "latency_p95_ms": float(np.percentile(full, 95) * 1000),
        "healthz_p99_ms": float(np.percentile(health, 99) * 1000) if health else float("nan"),
    }


def wait_ready(
    base: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 300
) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server did not become ready; see {log_path}")


@contextlib.contextmanager
def served(home: Path, log_path: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `supportbot serve` for ``home`` on a free loopback port; yield its base URL.

    The server's output goes to ``log_path``, never to a pipe: nobody reads a pipe while
    the load runs, it fills after a few hundred access-log lines, and the server then
    blocks on its next log write (this is what stalled the 32-concurrent run).
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        # The benchmark measures serving, not the abuse limits.
        "SUPPORTBOT_WEB__RATE_PER_MINUTE": "100000",
        "SUPPORTBOT_WEB__RATE_BURST": "100000",
        # Load the model even when its evaluation is below copying ('auto' mode would copy
        # with a model trained for a few minutes): the benchmark measures generation under load.
        "SUPPORTBOT_ENGINE__ANSWER_MODE": "generate",
        **(env or {}),
    }
    command = [sys.executable, "-m", "bot.cli", "--home", str(home), "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )
        try:
            wait_ready(base, server, log_path)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=REPO / ".supportbot")
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument(
        "--questions",
        type=Path,
        default=REPO / "data" / "sample" / "eval.jsonl",
        help="JSONL whose lines hold messages; the first customer message is asked",
    )
    parser.add_argument("--requests", type=int, default=64, help="replies per level")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_load.json")
    args = parser.parse_args()

    texts = questions(args.questions, 400)
    with served(args.home, args.out.with_suffix(".server.log")) as base:
        asyncio.run(run_level(base, texts, 1, 4))  # warm-up
        rows = [
            asyncio.run(run_level(base, texts, int(c), args.requests))
            for c in args.levels.split(",")
        ]
    single = rows[0]["replies_per_s"]
    for row in rows:
        row["speedup_vs_one_at_a_time"] = row["replies_per_s"] / single
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"home": str(args.home), "levels": rows}, indent=2))
    header = (
        "conc",
        "replies/s",
        "x1",
        "ttft p50",
        "ttft p95",
        "full p50",
        "full p95",
        "healthz p99",
        "handoffs",
    )
    print("{:>5} {:>10} {:>6} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}".format(*header))
    for r in rows:
        print(
            f"{r['concurrency']:>5} {r['replies_per_s']:>10.2f} "
            f"{r['speedup_vs_one_at_a_time']:>6.2f} {r['ttft_p50_ms']:>8.0f}m "
            f"{r['ttft_p95_ms']:>8.0f}m {r['latency_p50_ms']:>8.0f}m {r['latency_p95_ms']:>8.0f}m "
            f"{r['healthz_p99_ms']:>10.1f}m {r['handoffs']:>9}"
        )
    print("(m = milliseconds)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
