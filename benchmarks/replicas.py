"""Replies/s with one and with two `supportbot serve` replicas sharing one PostgreSQL (issue 8).

    python benchmarks/replicas.py                         # throwaway PostgreSQL, sample corpus
    python benchmarks/replicas.py --seconds 20 --concurrency 16

Ingests the sample corpus into a temporary home (shared by the replicas), starts a
throwaway PostgreSQL on loopback (tests/postgres_server.py) unless --database-url names
one, then for 1 and 2 replicas (subprocesses, copy mode: retrieval and the store, no
model) sends questions from the sample eval split round-robin for a fixed time, each as a
new conversation. Reports replies/s, p50/p95 latency, and checks that every reply
received is stored once in PostgreSQL (nothing lost, nothing doubled). Prints a table and
writes JSON under benchmarks/results/. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import psycopg

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(REPO))

from benchmarks.serve_load import free_port  # noqa: E402
from tests.support.postgres_server import postgres_bin, running_postgres  # noqa: E402


def questions() -> list[str]:
    texts = []
    with open(REPO / "data" / "sample" / "eval.jsonl", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            customer = [m["text"] for m in record["messages"] if m["role"] == "customer"]
            if customer:
                texts.append(customer[0])
    return texts


def environment(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "SUPPORTBOT_STORAGE__DATABASE_URL": url,
        "SUPPORTBOT_ENGINE__ANSWER_MODE": "copy",
        "SUPPORTBOT_WEB__RATE_PER_MINUTE": "100000",
        "SUPPORTBOT_WEB__RATE_BURST": "100000",
        "SUPPORTBOT_LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def replicas(home: Path, url: str, count: int) -> Iterator[list[str]]:
    ports = [free_port() for _ in range(count)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "--home", str(home), "serve", "--port", str(port)],
            env=environment(url),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


async def wait_ready(bases: list[str], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        for base in bases:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/healthz") as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{base} did not start")
                await asyncio.sleep(0.3)


async def load(bases: list[str], texts: list[str], seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    counter = 0

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal counter, errors
        while time.monotonic() < stop:
            n = counter
            counter += 1
            base = bases[n % len(bases)]
            started = time.perf_counter()
            try:
                async with session.post(f"{base}/api/conversations") as created:
                    conversation_id = (await created.json())["conversation_id"]
                async with session.post(
                    f"{base}/api/conversations/{conversation_id}/messages",
                    json={"text": texts[n % len(texts)]},
                    headers={"Accept": "application/json"},
                ) as response:
                    await response.json()
                    if response.status != 200:
                        errors += 1
                        continue
            except aiohttp.ClientError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return {
        "replies": len(latencies),
        "errors": errors,
        "replies_per_s": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(latencies, 50) * 1000) if latencies else None,
        "p95_ms": float(np.percentile(latencies, 95) * 1000) if latencies else None,
    }


def stored_bot_turns(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COUNT(*) FROM bot_turns WHERE role = 'bot'").fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="an existing PostgreSQL (default: throwaway)")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        url = args.database_url
        if url is None:
            bin_dir = postgres_bin()
            if bin_dir is None:
                sys.exit("no PostgreSQL binaries; pass --database-url")
            server = stack.enter_context(running_postgres(bin_dir))
            url = server.url()
        home = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "home"
        subprocess.run(
            [sys.executable, "-m", "bot.cli", "--home", str(home), "ingest",
             str(REPO / "data" / "sample" / "conversations.jsonl")],
            env=environment(url), cwd=REPO, check=True, capture_output=True,
        )  # fmt: skip
        texts = questions()
        rows = []
        for count in (1, 2):
            before = stored_bot_turns(url) if count > 1 else 0
            with replicas(home, url, count) as bases:
                asyncio.run(wait_ready(bases))
                result = asyncio.run(load(bases, texts, args.seconds, args.concurrency))
            stored = stored_bot_turns(url) - before
            rows.append({"replicas": count, **result, "stored_replies": stored})

    print(f"{'replicas':>8} {'replies':>8} {'errors':>6} {'replies/s':>10} {'p50 ms':>8}"
          f" {'p95 ms':>8} {'stored':>7}")  # fmt: skip
    for row in rows:
        print(
            f"{row['replicas']:>8} {row['replies']:>8} {row['errors']:>6}"
            f" {row['replies_per_s']:>10.1f} {row['p50_ms'] or 0:>8.1f}"
            f" {row['p95_ms'] or 0:>8.1f} {row['stored_replies']:>7}"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "replicas.json"
    payload = {"cpus": os.cpu_count(), "seconds": args.seconds, "rows": rows}
    out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {out}")
    lost = [r for r in rows if r["stored_replies"] < r["replies"]]
    if lost:
        sys.exit(f"replies missing from PostgreSQL: {lost}")


if __name__ == "__main__":
    main()
