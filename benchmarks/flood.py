"""Abuse figures on loopback (issue 18): half-open connections, rotating-address floods,
login guessing and malformed requests against `supportbot serve` with default limits.

    python benchmarks/flood.py                                   # 20,000 half-open, 60 s
    python benchmarks/flood.py --half-open 3000 --flood-seconds 20   # a quick run

Starts the server (benchmarks/serve_load.py's ``served``) over a home with the sample FAQ
(benchmarks/hardening.py's ``prepare_home``) and an operator, behind a trusted-proxy
header so that one loopback client can stand for many addresses. For --flood-seconds, all
at once: --half-open connections that send half a request and trickle a byte now and
then (reconnecting when closed), conversations started from a new address each time,
each with an unanswerable message and a hand-off request, and one wrong login per
--guess-interval from a new address. Meanwhile it measures /healthz latency, whether a
normal customer gets answers and whether the real operator (at the address they logged in
from before) can log in, and counts open flags before and after. Then it sends
--malformed malformed requests and counts the ERROR lines and bytes they add to the
server's log. Prints a table and writes JSON under benchmarks/results/. Traffic goes to
127.0.0.1 only; every loop is bounded in count and time. Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import os
import random
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script too

from benchmarks.hardening import prepare_home
from benchmarks.serve_load import free_port, served

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PROXY_HEADER = "X-Forwarded-For"
OPERATOR, PASSWORD = "alice", "plum-ferry-44-quartz"
DESK = "203.0.113.7"  # where the operator logs in from
CUSTOMER = "192.0.2.10"  # a normal customer's address
HEALTHZ_TARGET_MS = 100.0


def raise_file_limit() -> int:
    """Raise this process's soft open-file limit to the hard one; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def add_operator(home: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "--home", str(home), "operators", "add", OPERATOR,
         "--password-stdin"],
        cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, input=f"{PASSWORD}\n".encode(),
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def open_flags(home: Path) -> int:
    with sqlite3.connect(home / "supportbot.db") as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM bot_flags WHERE status = 'open'").fetchone()
    return int(count)


class Rotating:
    """A new documentation-range address each time (TEST-NET-2 and TEST-NET-3 blocks)."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def __call__(self) -> dict[str, str]:
        n = next(self._n)
        return {PROXY_HEADER: f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}


# -- the attacks -----------------------------------------------------------------------------
async def half_open(
    host: str, port: int, count: int, stop_at: float, stats: Counter[str], pace: asyncio.Semaphore
) -> None:
    """``count`` connections, each sending half a request and a byte every few seconds."""

    async def one(n: int) -> None:
        rng = random.Random(n)
        while time.monotonic() < stop_at:
            async with pace:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), timeout=5
                    )
                except (OSError, TimeoutError):
                    stats["connect failed"] += 1
                    await asyncio.sleep(1 + rng.random())
                    continue
            stats["opened"] += 1
            opened = time.monotonic()
            try:
                writer.write(b"POST /api/conversations HTTP/1.1\r\nHost: x\r\n")
                while time.monotonic() < stop_at:
                    try:
                        if await asyncio.wait_for(reader.read(1024), timeout=2) == b"":
                            break  # closed by the server
                        break  # an answer (408): the server closes next
                    except TimeoutError:
                        writer.write(b"X")  # trickle: one more header byte
                        await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()
            stats["held seconds"] += int(time.monotonic() - opened)
            stats["closed by server"] += time.monotonic() < stop_at
            await asyncio.sleep(1 + rng.random())

    await asyncio.gather(*(one(n) for n in range(count)))


async def conversation_flood(
    session: aiohttp.ClientSession,
    base: str,
    stop_at: float,
    stats: Counter[str],
    rotate: Rotating,
) -> None:
    """Start a conversation from a new address, ask something unanswerable, ask for a person."""
    while time.monotonic() < stop_at:
        headers = rotate()
        try:
            async with session.post(f"{base}/api/conversations", json={}, headers=headers) as r:
                stats[f"start {r.status}"] += 1
                if r.status != 201:
                    await asyncio.sleep(0.05)
                    continue
                conversation = (await r.json())["conversation_id"]
            path = f"{base}/api/conversations/{conversation}"
            text = f"zqx {random.random()} vorpal gyre"
            async with session.post(f"{path}/messages", json={"text": text}, headers=headers) as r:
                stats[f"message {r.status}"] += 1
            async with session.post(f"{path}/handoff", headers=headers) as r:
                stats[f"handoff {r.status}"] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            stats[type(exc).__name__] += 1


def browser() -> aiohttp.ClientSession:
    """A session that keeps cookies from 127.0.0.1 (aiohttp's default jar drops them)."""
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=30)
    )


async def login(session: aiohttp.ClientSession, base: str, address: str, password: str) -> int:
    """One login through the form, as a fresh browser at ``address``; the status."""
    session.cookie_jar.clear()
    headers = {PROXY_HEADER: address}
    async with session.get(f"{base}/ops/login", headers=headers) as form:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await form.text())
    assert token, "no login form"
    data = {"name": OPERATOR, "password": password, "csrf_token": token.group(1)}
    origin = f"http://{urlsplit(base).netloc}"
    async with session.post(
        f"{base}/ops/login",
        data=data,
        headers=headers | {"Origin": origin},
        allow_redirects=False,
    ) as response:
        return response.status


async def guess_logins(base: str, stop_at: float, interval: float, stats: Counter[str]) -> None:
    rotate = Rotating()
    async with browser() as session:
        while time.monotonic() < stop_at:
            try:
                status = await login(session, base, rotate()[PROXY_HEADER], "guess-1234-guess")
                stats[f"guess {status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                stats[type(exc).__name__] += 1
            await asyncio.sleep(interval)


# -- what a real user notices ------------------------------------------------------------------
async def probe_health(
    url: str, stop_at: float, samples: list[float], failures: Counter[str]
) -> None:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < stop_at and len(samples) < 100_000:
            started = time.perf_counter()
            try:
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        failures[f"healthz {response.status}"] += 1
                samples.append(time.perf_counter() - started)
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures[f"healthz {type(exc).__name__}"] += 1
                samples.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)


async def loop_lag(stop_at: float, samples: list[float]) -> None:
    """How late this process's event loop wakes a 50 ms sleep: the attacker's own stalls."""
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        await asyncio.sleep(0.05)
        samples.append(time.perf_counter() - started - 0.05)


async def probe_apart(urls: dict[str, str], seconds: float) -> dict[str, dict[str, Any]]:
    """Probe ``urls`` for ``seconds`` from a separate process (not slowed by this one's loop)."""
    prober = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--probe", json.dumps(urls), "--flood-seconds", str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await prober.communicate()
    return dict(json.loads(out))


def probe_main(urls: dict[str, str], seconds: float) -> None:
    """The prober process: each url's latencies and failures, as JSON on stdout."""

    async def run() -> dict[str, dict[str, Any]]:
        stop_at = time.monotonic() + seconds
        results: dict[str, tuple[list[float], Counter[str]]] = {
            name: ([], Counter()) for name in urls
        }
        await asyncio.gather(
            *(probe_health(url, stop_at, *results[name]) for name, url in urls.items())
        )
        return {name: latency_figures(s, f) for name, (s, f) in results.items()}

    print(json.dumps(asyncio.run(run())))


def latency_figures(samples: list[float], failures: Counter[str]) -> dict[str, Any]:
    ms = np.array(samples or [float("nan")]) * 1000
    return {
        "probes": len(samples),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "failures": dict(failures),
    }


async def customer(base: str, texts: list[str], stop_at: float, stats: Counter[str]) -> None:
    headers = {PROXY_HEADER: CUSTOMER}
    async with browser() as session:
        while time.monotonic() < stop_at:
            try:
                async with session.post(f"{base}/api/conversations", json={}, headers=headers) as r:
                    if r.status != 201:
                        stats[f"customer start {r.status}"] += 1
                        await asyncio.sleep(2)
                        continue
                    conversation = (await r.json())["conversation_id"]
                async with session.post(
                    f"{base}/api/conversations/{conversation}/messages",
                    json={"text": random.choice(texts)},
                    headers=headers,
                ) as r:
                    stats["customer answered" if r.status == 200 else f"customer {r.status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                stats[f"customer {type(exc).__name__}"] += 1
            await asyncio.sleep(3)


async def operator(base: str, stop_at: float, interval: float, stats: Counter[str]) -> None:
    async with browser() as session:
        while time.monotonic() < stop_at:
            try:
                status = await login(session, base, DESK, PASSWORD)
                stats["operator in" if status == 303 else f"operator {status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                stats[f"operator {type(exc).__name__}"] += 1
            await asyncio.sleep(interval)


# -- malformed requests ----------------------------------------------------------------------
MALFORMED = [
    b"GARBAGE \x00\xff" + b"A" * 2000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /api/conversations HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
]


async def malformed(host: str, port: int, count: int) -> Counter[str]:
    statuses: Counter[str] = Counter()
    for n in range(count):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(MALFORMED[n % len(MALFORMED)])
        try:
            answer = await asyncio.wait_for(reader.read(4096), timeout=5)
            statuses[answer.split(b" ", 2)[1].decode() if answer else "closed"] += 1
        except (OSError, TimeoutError):
            statuses["no answer"] += 1
        writer.close()
    return statuses


def error_lines(log_path: Path) -> tuple[int, int, int]:
    """(ERROR lines, 'Too many open files' lines, bytes) of the server's log so far."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return text.count(" ERROR "), text.count("Too many open files"), len(text.encode())


# -- the run ---------------------------------------------------------------------------------
async def attack(
    base: str, health: str | None, home: Path, log_path: Path, args: argparse.Namespace
) -> dict[str, Any]:
    host, port = urlsplit(base).hostname or "127.0.0.1", urlsplit(base).port or 80
    with open(REPO / "data/sample/faq.csv", encoding="utf-8", newline="") as faq:
        texts = [row["question"] for row in csv.DictReader(faq)]
    async with browser() as session:
        assert await login(session, base, DESK, PASSWORD) == 303, "the operator cannot log in"
    flags_before = open_flags(home)
    errors_before, emfile_before, _ = error_lines(log_path)

    stop_at = time.monotonic() + args.flood_seconds
    stats: Counter[str] = Counter()
    half: Counter[str] = Counter()
    in_process: list[float] = []
    in_process_failures: Counter[str] = Counter()
    lag: list[float] = []
    apart_urls = {"main": f"{base}/healthz"} | ({"health": f"{health}/healthz"} if health else {})
    addresses = Rotating()  # shared: every flooder's conversation comes from a new address
    limits = aiohttp.TCPConnector(limit=args.flood_workers)
    async with aiohttp.ClientSession(
        connector=limits, timeout=aiohttp.ClientTimeout(total=30)
    ) as flood:
        *_, apart = await asyncio.gather(
            half_open(host, port, args.half_open, stop_at, half, asyncio.Semaphore(256)),
            *(
                conversation_flood(flood, base, stop_at, stats, addresses)
                for _ in range(args.flood_workers)
            ),
            guess_logins(base, stop_at, args.guess_interval, stats),
            probe_health(f"{base}/healthz", stop_at, in_process, in_process_failures),
            loop_lag(stop_at, lag),
            customer(base, texts, stop_at, stats),
            operator(base, stop_at, args.operator_interval, stats),
            # last, for the unpacking above: the prober's figures
            probe_apart(apart_urls, args.flood_seconds),
        )
    flags_after = open_flags(home)
    errors_mid, emfile_after, bytes_before = error_lines(log_path)
    bad = await malformed(host, port, args.malformed)
    await asyncio.sleep(1)  # the log is written by the server process
    errors_after, _, bytes_after = error_lines(log_path)
    lag_ms = np.array(lag or [float("nan")]) * 1000
    return {
        "flood_seconds": args.flood_seconds,
        "half_open": args.half_open,
        "half_open_stats": dict(half),
        "flood_stats": dict(stats),
        "healthz_in_attacker": latency_figures(in_process, in_process_failures),
        "healthz_apart": apart,
        "attacker_loop_lag_p99_ms": float(np.percentile(lag_ms, 99)),
        "open_flags_before": flags_before,
        "open_flags_after": flags_after,
        "max_open_flags": args.max_open_flags,
        "error_lines_during_flood": errors_mid - errors_before,
        "too_many_open_files": emfile_after - emfile_before,
        "malformed_requests": args.malformed,
        "malformed_statuses": dict(bad),
        "malformed_error_lines": errors_after - errors_mid,
        "malformed_log_bytes_per_request": (bytes_after - bytes_before) / max(1, args.malformed),
    }


def healthz_rows(r: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = [("main port, in the attacker", r["healthz_in_attacker"])]
    rows.append(("main port, prober apart", r["healthz_apart"]["main"]))
    if "health" in r["healthz_apart"]:
        rows.append(("health port, prober apart", r["healthz_apart"]["health"]))
    return rows


def table(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    s = r["flood_stats"]
    customer_ok = s.get("customer answered", 0)
    customer_all = sum(v for k, v in s.items() if k.startswith("customer"))
    operator_ok = s.get("operator in", 0)
    operator_all = sum(v for k, v in s.items() if k.startswith("operator"))
    started = s.get("start 201", 0)
    refused = s.get("start 429", 0)
    guesses = {k: v for k, v in s.items() if k.startswith("guess")}
    h = r["half_open_stats"]
    growth = r["open_flags_after"] - r["open_flags_before"]
    return [
        ("half-open", f"{r['half_open']} connections",
         f"{h.get('opened', 0)} opened, {h.get('closed by server', 0)} closed by the server, "
         f"{h.get('connect failed', 0)} connects failed"),
        *(("healthz", f"{label} p50/p99/max",
           f"{h['p50_ms']:.1f} / {h['p99_ms']:.1f} / {h['max_ms']:.1f} ms over {h['probes']} "
           f"probes{'; failed ' + json.dumps(h['failures']) if h['failures'] else ''}")
          for label, h in healthz_rows(r)),
        ("healthz", f"target: p99 <= {HEALTHZ_TARGET_MS:.0f} ms", "attacker's own loop lag p99 "
         f"{r['attacker_loop_lag_p99_ms']:.1f} ms"),
        ("flood", f"conversations from rotating addresses in {r['flood_seconds']:g} s",
         f"{started} started, {refused} refused (429)"),
        ("flood", "open flags (cap)",
         f"{r['open_flags_before']} -> {r['open_flags_after']} (+{growth}; cap "
         f"{r['max_open_flags']})"),
        ("customer", "normal customer answered", f"{customer_ok} of {customer_all}"),
        ("login", "guesses from rotating addresses", json.dumps(guesses)),
        ("login", "real operator logged in", f"{operator_ok} of {operator_all}"),
        ("logs", "ERROR lines during the flood",
         f"{r['error_lines_during_flood']} ('Too many open files': {r['too_many_open_files']})"),
        ("malformed", f"{r['malformed_requests']} requests",
         f"statuses {r['malformed_statuses']}; {r['malformed_error_lines']} ERROR lines, "
         f"{r['malformed_log_bytes_per_request']:.0f} log bytes per request"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half-open", type=int, default=20_000)
    parser.add_argument("--flood-seconds", type=float, default=60.0)
    parser.add_argument("--flood-workers", type=int, default=8, help="concurrent flooders")
    parser.add_argument("--guess-interval", type=float, default=1.0, help="seconds per guess")
    parser.add_argument(
        "--operator-interval",
        type=float,
        default=15.0,
        help="seconds between the real operator's logins; under 12 s they pass "
        "ops.login_attempts_per_minute (5) from their own address and meet 429 on their own",
    )
    parser.add_argument("--malformed", type=int, default=200)
    parser.add_argument("--max-open-flags", type=int, default=1000, help="web.max_open_flags")
    parser.add_argument("--home", type=Path, default=None, help="default: a fresh sample home")
    parser.add_argument("--out", type=Path, default=RESULTS / "flood.json")
    parser.add_argument(
        "--no-health-port", action="store_true", help="leave server.health_port off"
    )
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # the prober process: urls as JSON
    args = parser.parse_args()
    if args.probe:
        probe_main(json.loads(args.probe), args.flood_seconds)
        return

    limit = raise_file_limit()
    if args.half_open > limit - 1000:  # the client's own sockets need descriptors too
        print(f"open-file limit {limit}: --half-open lowered to {limit - 1000}")
        args.half_open = limit - 1000
    env = {
        # The server's defaults, not serve_load's generous ones: they are what is measured.
        "SUPPORTBOT_WEB__RATE_PER_MINUTE": "30",
        "SUPPORTBOT_WEB__RATE_BURST": "10",
        "SUPPORTBOT_WEB__TRUSTED_PROXY_HEADER": PROXY_HEADER,
        "SUPPORTBOT_WEB__MAX_OPEN_FLAGS": str(args.max_open_flags),
        "SUPPORTBOT_ENGINE__ANSWER_MODE": "copy",
    }
    health = None
    if not args.no_health_port:
        health_port = free_port()
        env["SUPPORTBOT_SERVER__HEALTH_PORT"] = str(health_port)
        health = f"http://127.0.0.1:{health_port}"
    with tempfile.TemporaryDirectory(prefix="supportbot-flood-") as scratch:
        home = args.home
        if home is None:
            home = Path(scratch) / "home"
            prepare_home(home)
            add_operator(home)
        log_path = args.out.with_suffix(".server.log")
        with served(home, log_path, env) as base:
            result = asyncio.run(attack(base, health, home, log_path, args))
    rows = table(result)
    width = max(len(r[1]) for r in rows)
    print(f"{'part':<10} {'check':<{width}}  figures")
    for part, check, value in rows:
        print(f"{part:<10} {check:<{width}}  {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
