"""Regenerate the README's screenshots from a temporary home with the sample data.

    python docs/screenshots.py            # writes docs/screenshots/*.png

It ingests data/sample (names found by rules, to be quick) and calibrates the hand-off on
the sample's evaluation files, as `make run` does (a few minutes on two cores), serves the
app on 127.0.0.1, has a short conversation in the chat widget and logs an operator into
the review dashboard's queue and metrics page, all in headless Debian Chromium driven by
Playwright (no browser download). Nothing leaves the machine and no home of yours is
touched: the home is a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.app import create_app  # noqa: E402 - after the path: run as a script from anywhere
from bot.ops.storage import DashboardStore  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.web import WebConfig  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 960, "height": 680}  # keeps each PNG well under 150 KB
OPERATOR, PASSWORD = "alice", "lichen-harbour-copper-47"
ANSWERED = "What is your return policy?"
UNANSWERED = [
    "Do you sell gift wrapping for bicycles?",
    "What will the weather be in Denver tomorrow?",
    "Can I bring my dog to your store?",
]
log = logging.getLogger("screenshots")


class Server:
    """The app on a free loopback port, in a thread with its own event loop."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app)
        self._ready = threading.Event()
        self.origin = ""

    def __enter__(self) -> Server:
        threading.Thread(target=self._run, daemon=True).start()
        if not self._ready.wait(120):
            raise TimeoutError("the server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.origin = f"http://127.0.0.1:{port}"


def prepare_home(home: Path) -> None:
    (home / "supportbot.toml").write_text('[retrieval]\nname_recognizer = "rules"\n')
    sample = REPO / "data" / "sample"
    supportbot = [sys.executable, "-m", "bot.cli", "--home", str(home)]
    log.info("ingesting %s (about a minute)", sample)
    logs = [str(sample / "conversations.jsonl"), str(sample / "faq.csv")]
    subprocess.run([*supportbot, "ingest", "--no-progress", *logs], check=True, cwd=REPO)
    # The metrics page's hand-off trade-off table is the one calibrate saves.
    log.info("calibrating the hand-off on the sample's evaluation files")
    evaluation = ["--eval", str(sample / "eval.jsonl")]
    off_topic = ["--out-of-scope", str(sample / "out_of_scope.jsonl")]
    subprocess.run([*supportbot, "calibrate", *evaluation, *off_topic], check=True, cwd=REPO)


def take_screenshots(origin: str, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(60_000)  # the first message waits for the embedder
        page.goto(origin + "/")
        page.get_by_role("button", name="Open chat: Juniper Outfitters support").click()
        dialog = page.get_by_role("dialog")
        box = dialog.get_by_role("textbox", name="Your message")

        # Questions the logs never answered: hand-offs for the operators' queue. Each in a
        # conversation of its own, since a hand-off keeps the bot quiet.
        new_conversation = dialog.get_by_role("button", name="Start a new conversation")
        send = dialog.get_by_role("button", name="Send message")
        for question in UNANSWERED:
            box.fill(question)
            box.press("Enter")
            expect(send).to_have_attribute("aria-disabled", "false")  # the reply is in
            new_conversation.click()

        box.fill(ANSWERED)
        box.press("Enter")
        expect(dialog.locator(".sb-certainty")).to_be_visible()
        dialog.get_by_text("Sources (").click()
        dialog.get_by_role("button", name="Helpful", exact=True).click()
        dialog.locator(".sb-log").evaluate("log => { log.scrollTop = log.scrollHeight; }")
        page.mouse.move(0, 0)  # no hover state in the picture
        page.screenshot(path=str(out / "widget.png"))

        page.goto(origin + "/ops/login")
        page.fill("input[name=name]", OPERATOR)
        page.fill("input[name=password]", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(origin + "/ops/**")
        page.screenshot(path=str(out / "dashboard-queue.png"))
        page.goto(origin + "/ops/metrics")
        heading = page.get_by_role("heading", name="Hand-off trade-off")
        heading.evaluate("h => h.scrollIntoView({block: 'start'})")
        page.screenshot(path=str(out / "dashboard-metrics.png"))
        browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="supportbot-screenshots-") as tmp:
        home = Path(tmp)
        prepare_home(home)
        settings = load_settings(home=home, web=WebConfig())
        accounts: Any = DashboardStore.open(settings.paths.database)
        try:
            accounts.add_operator(OPERATOR, PASSWORD)
        finally:
            accounts.close()
        with Server(create_app(settings)) as server:
            take_screenshots(server.origin, args.out)
    for path in sorted(args.out.glob("*.png")):
        log.info("%s: %d KB", path, path.stat().st_size // 1024)


if __name__ == "__main__":
    main()
