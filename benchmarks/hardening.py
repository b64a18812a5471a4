"""Hardening figures in one table (issue 7): hostile input, prompt injection, access,
faults, and a bounded soak on loopback.

    python benchmarks/hardening.py                     # tests, then a 10-minute soak
    python benchmarks/hardening.py --soak-minutes 2    # a shorter soak
    python benchmarks/hardening.py --soak-minutes 0    # the fast parts only (as in CI)

The fast parts are the tests in tests/test_hardening_*.py plus the access tests that
already exist (dashboard sessions and CSRF, Slack signatures and per-user limits, per-IP
limits), run with pytest; the tests write their figures (cases run, corpus size, counts
before and after each kill) to a file this script reads. The soak starts
``supportbot serve`` on 127.0.0.1 over a home with the sample FAQ ingested (or --home),
runs N concurrent conversations for the given minutes, samples the server's memory every
few seconds and reports its growth, latency percentiles and error counts. Prints a table
and writes JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


HARDENING_TESTS = sorted(
    str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_hardening_*.py")
)
ACCESS_TESTS = [
    "tests/test_ops.py::test_nothing_under_ops_is_served_without_logging_in",
    "tests/test_ops.py::test_the_login_form_needs_its_token_and_this_site",
    "tests/test_ops.py::test_every_post_needs_the_session_token_from_this_site",
    "tests/test_ops.py::test_login_attempts_are_rate_limited_per_name",
    "tests/test_ops.py::test_an_expired_session_asks_to_log_in_again",
    "tests/test_slack.py::test_a_request_slack_did_not_sign_gets_401_and_reaches_nothing",
    "tests/test_slack.py::test_a_replayed_request_gets_401",
    "tests/test_slack.py::test_a_user_writing_too_fast_is_asked_to_slow_down",
    "tests/test_slack.py::test_an_undeliverable_reply_is_reported_without_its_text",
    "tests/test_web_api.py::test_rate_limit_answers_429_with_retry_after",
    "tests/test_web_api.py::test_a_forged_forwarded_for_does_not_dodge_the_limit",
    "tests/test_web_api.py::test_hostile_input_never_crashes_the_server",
    "tests/test_web_api.py::test_malformed_http_is_refused_and_the_server_keeps_serving",
]


# -- the fast parts: pytest ------------------------------------------------------------------
def run_tests(workdir: Path) -> tuple[dict[str, Counter[str]], list[dict[str, Any]]]:
    """Run the hardening and access tests; (outcomes per file, figures the tests wrote)."""
    figures_file, junit = workdir / "figures.jsonl", workdir / "junit.xml"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SUPPORTBOT_HARDENING_FIGURES": str(figures_file)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
    ]
    subprocess.run([*command, *HARDENING_TESTS, *ACCESS_TESTS], cwd=REPO, env=env, check=False)
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("classname", "").rsplit(".", 1)[-1]
        kinds = {child.tag for child in case}
        outcome = (
            "failed"
            if kinds & {"failure", "error"}
            else "skipped"
            if "skipped" in kinds
            else "passed"
        )
        outcomes[name][outcome] += 1
    figures = []
    if figures_file.exists():
        figures = [json.loads(line) for line in figures_file.read_text().splitlines() if line]
    return outcomes, figures


# -- the soak ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not become ready")


def questions(path: Path) -> list[str]:
    """The first customer message of each conversation in a JSONL file."""
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"]
        texts.append(next(m["text"] for m in messages if m["role"] == "customer"))
    return texts


def prepare_home(home: Path) -> None:
    """Ingest the sample FAQ (the server then answers in copy mode, without a model)."""
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "--home", str(home), "ingest", "data/sample/faq.csv"],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def conversation_loop(
    session: Any, base: str, texts: list[str], stop_at: float, seed: int, stats: dict[str, Any]
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < stop_at:
        async with session.post(f"{base}/api/conversations", json={}) as response:
            if response.status != 201:
                stats["errors"][f"start {response.status}"] += 1
                await asyncio.sleep(0.5)
                continue
            conversation = (await response.json())["conversation_id"]
        for _ in range(3):
            started = time.perf_counter()
            try:
                async with session.post(
                    f"{base}/api/conversations/{conversation}/messages",
                    json={"text": rng.choice(texts)},
                ) as response:
                    body = await response.json()
                    status = response.status
            except Exception as exc:  # connection reset, timeout: counted, the soak goes on
                stats["errors"][type(exc).__name__] += 1
                continue
            stats["latencies"].append(time.perf_counter() - started)
            if status == 409:  # handed off to an operator: the bot rightly stays quiet
                stats["handed_off"] += 1
                break
            if status != 200:
                stats["errors"][f"message {status}"] += 1
                continue
            stats["replies"] += 1
            async with session.post(
                f"{base}/api/turns/{body['turn_id']}/rating",
                json={"rating": rng.choice(["up", "down"])},
            ) as rated:
                if rated.status != 200:
                    stats["errors"][f"rating {rated.status}"] += 1
                else:
                    stats["ratings"] += 1


def resident_mb(pid: int) -> float:
    """The resident memory of process ``pid`` (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def sample_memory(pid: int, stop_at: float, samples: list[tuple[float, float]]) -> None:
    start = time.monotonic()
    while time.monotonic() < stop_at:
        samples.append((time.monotonic() - start, resident_mb(pid)))
        await asyncio.sleep(5)


async def drive(
    base: str, pid: int, texts: list[str], minutes: float, concurrency: int
) -> dict[str, Any]:
    import aiohttp

    stats: dict[str, Any] = {
        "latencies": [], "errors": Counter(), "replies": 0, "ratings": 0, "handed_off": 0,
    }  # fmt: skip
    memory: list[tuple[float, float]] = []
    stop_at = time.monotonic() + minutes * 60
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(
            sample_memory(pid, stop_at, memory),
            *(
                conversation_loop(session, base, texts, stop_at, n, stats)
                for n in range(concurrency)
            ),
        )
    return summarise_soak(stats, memory, minutes, concurrency)


def summarise_soak(
    stats: dict[str, Any], memory: list[tuple[float, float]], minutes: float, concurrency: int
) -> dict[str, Any]:
    import numpy as np

    latencies = np.array(stats["latencies"] or [float("nan")]) * 1000
    times = np.array([t for t, _ in memory])
    rss = np.array([m for _, m in memory])
    # Growth is judged on the second half, after caches and the allocator have warmed up.
    half = times >= times[-1] / 2 if len(times) else times
    slope = (
        float(np.polyfit(times[half] / 60, rss[half], 1)[0]) if half.sum() >= 3 else float("nan")
    )
    return {
        "minutes": minutes,
        "concurrency": concurrency,
        "requests": len(stats["latencies"]),
        "replies": stats["replies"],
        "ratings": stats["ratings"],
        "handed_off": stats["handed_off"],
        "errors": sum(stats["errors"].values()),
        "error_kinds": dict(stats["errors"]),
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p95_ms": float(np.percentile(latencies, 95)),
        "latency_p99_ms": float(np.percentile(latencies, 99)),
        "rss_start_mb": float(rss[0]) if len(rss) else float("nan"),
        "rss_end_mb": float(rss[-1]) if len(rss) else float("nan"),
        "rss_max_mb": float(rss.max()) if len(rss) else float("nan"),
        "rss_slope_mb_per_min_second_half": slope,
    }


def soak(home: Path | None, minutes: float, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="supportbot-soak-") as scratch:
        if home is None:
            home = Path(scratch) / "home"
            prepare_home(home)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            # One loopback client stands for many customers: the per-IP limit is not measured here.
            "SUPPORTBOT_WEB__RATE_PER_MINUTE": "100000",
            "SUPPORTBOT_WEB__RATE_BURST": "100000",
        }
        argv = [
            sys.executable,
            "-m",
            "bot.cli",
            "--home",
            str(home),
            "serve",
            "--host",
            "127.0.0.1",
        ]
        server = subprocess.Popen(
            [*argv, "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(base, server)
            texts = questions(REPO / "data" / "sample" / "eval.jsonl")
            return asyncio.run(drive(base, server.pid, texts, minutes, concurrency))
        finally:
            server.terminate()
            server.wait(timeout=60)


# -- the table ---------------------------------------------------------------------------------
Row = tuple[str, str, str]


def test_rows(outcomes: dict[str, Counter[str]]) -> list[Row]:
    return [
        ("tests", name, f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped")
        for name, c in sorted(outcomes.items())
    ]


def input_rows(sections: dict[str, list[dict[str, Any]]]) -> list[Row]:
    properties = sections["property"]
    cases = sum(f["cases"] for f in properties)
    table = [("hostile input", "hypothesis", f"{cases} cases in {len(properties)} properties")]
    for f in sections["schemathesis"]:
        figures = f"{f['cases']} cases, {f['operations']} operations, {f['responses_5xx']} 5xx"
        table.append(("hostile input", f"schemathesis {f['mode']}", figures))
    return table


def injection_rows(sections: dict[str, list[dict[str, Any]]]) -> list[Row]:
    table = []
    for f in sections["injection"]:
        rate = f"{f['passed']}/{f['corpus']} passed ({100 * f['passed'] / f['corpus']:.0f}%)"
        broken = (
            f"leaks {f['leaks']}, unsupported facts {f['unsupported_facts']}, "
            f"policy changes {f['policy_changes']}"
        )
        table.append(("injection", f"{f['mode']} mode", f"{rate}; {broken}"))
        outcomes = (
            f"handed off {f['handoffs']}, blocked by grounding {f['blocked_by_grounding']}, "
            f"sent {f['generated']} (repeating the customer's own order/ticket number: "
            f"{f['own_references']})"
        )
        table.append(("injection", f"{f['mode']} replies", outcomes))
    return table


def access_fault_rows(sections: dict[str, list[dict[str, Any]]]) -> list[Row]:
    table = []
    for f in sections["access"]:
        logs = (
            f"{f['secrets_logged']}/{f['secrets_checked']} secrets, "
            f"{f['pii_logged']}/{f['pii_checked']} PII in {f['log_records']} log records"
        )
        training = f"{f['pii_in_training']} PII in {f['training_records']} training records"
        table.append(("access", "secrets/PII leaked", f"{logs}; {training}"))
    for f in sections["xss"]:
        figures = (
            f"{f['payloads']} payloads; active elements: widget {f['widget_active_elements']}, "
            f"dashboard {f['dashboard_active_elements']}; scripts run {f['executed']}"
        )
        table.append(("hostile input", "XSS in Chromium", figures))
    for f in sections["faults"]:
        if f["kill"] == "disk-full":
            figures = (
                f"HTTP {f['status']} {f['code']}, Retry-After {f['retry_after']}, cause logged "
                f"{f['logged_errors']}x; turns {f['turns'][0]}->{f['turns'][1]}, "
                f"ratings {f['ratings'][0]}->{f['ratings'][1]}"
            )
            table.append(("faults", f"disk full ({f['disk']})", figures))
            continue
        if f["kill"] == "disk-full (dashboard)":
            figures = (
                f"HTTP {f['status']} for {', '.join(f['refused'])}; typed text kept, "
                f"state unchanged {f['unchanged']}"
            )
            table.append(("faults", f"disk full, dashboard ({f['disk']})", figures))
            continue
        figures = (
            f"ratings {f['ratings'][0]}->{f['ratings'][1]}, "
            f"corrections {f['corrections'][0]}->{f['corrections'][1]}, "
            f"turns {f['turns'][0]}->{f['turns'][1]}, db {f['integrity']}, serves {f['served']}"
        )
        table.append(("faults", f"kill -9 {f['kill']}", figures))
    return table


def soak_rows(s: dict[str, Any]) -> list[Row]:
    traffic = (
        f"{s['requests']} messages, {s['replies']} replies, {s['ratings']} ratings, "
        f"{s['handed_off']} handed off, {s['errors']} errors {s['error_kinds'] or ''}"
    )
    latency = (
        f"{s['latency_p50_ms']:.0f} / {s['latency_p95_ms']:.0f} / {s['latency_p99_ms']:.0f} ms"
    )
    memory = (
        f"start {s['rss_start_mb']:.0f} MB, end {s['rss_end_mb']:.0f} MB, "
        f"max {s['rss_max_mb']:.0f} MB, "
        f"slope (2nd half) {s['rss_slope_mb_per_min_second_half']:+.2f} MB/min"
    )
    return [
        ("soak", f"{s['minutes']:g} min x {s['concurrency']} conversations", traffic),
        ("soak", "latency p50/p95/p99", latency),
        ("soak", "server RSS", memory),
    ]


def rows(
    outcomes: dict[str, Counter[str]],
    figures: list[dict[str, Any]],
    soaked: dict[str, Any] | None,
) -> list[Row]:
    sections: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for figure in figures:
        sections[figure["section"]].append(figure)
    table = test_rows(outcomes)
    if figures:
        table += input_rows(sections) + injection_rows(sections) + access_fault_rows(sections)
    if soaked:
        table += soak_rows(soaked)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak-minutes", type=float, default=10.0, help="0 skips the soak")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="serve this home in the soak (default: a fresh one with the sample FAQ)",
    )
    parser.add_argument("--skip-tests", action="store_true", help="only the soak")
    parser.add_argument("--out", type=Path, default=RESULTS / "hardening.json")
    args = parser.parse_args()

    outcomes: dict[str, Counter[str]] = {}
    figures: list[dict[str, Any]] = []
    if not args.skip_tests:
        with tempfile.TemporaryDirectory(prefix="supportbot-hardening-") as workdir:
            outcomes, figures = run_tests(Path(workdir))
    soaked = soak(args.home, args.soak_minutes, args.concurrency) if args.soak_minutes > 0 else None

    table = rows(outcomes, figures, soaked)
    width = max(len(r[1]) for r in table)
    print(f"{'part':<14} {'check':<{width}}  figures")
    for part, check, value in table:
        print(f"{part:<14} {check:<{width}}  {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "tests": {k: dict(v) for k, v in outcomes.items()},
                "figures": figures,
                "soak": soaked,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    failed = sum(c["failed"] for c in outcomes.values())
    if failed or (soaked and soaked["errors"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
