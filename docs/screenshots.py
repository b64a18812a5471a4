"""Screenshots of the widget and the operators' dashboard for the README.

    python docs/screenshots.py --home .supportbot     # a home `make run` made (serve not running)

Starts `supportbot serve` on a free loopback port over ``--home``, adds an operator
``screenshots`` (removed afterwards), asks the widget on the demo page one question in
headless Chromium (Debian's /usr/bin/chromium, driven by Playwright), then logs into
`/ops` and shows the queue and the metrics page. Writes PNGs into docs/. Only loopback.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DOCS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
QUESTION = "Hi, my order hasn't arrived yet. Where is it?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server at {url} did not come up in {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path(".supportbot"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    supportbot = [str(BIN / "supportbot"), "--home", str(args.home)]
    password = secrets.token_urlsafe(18)
    subprocess.run(
        [*supportbot, "operators", "add", "screenshots", "--password-stdin"],
        input=password + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SUPPORTBOT_SERVER__PORT": str(port)}
    server = subprocess.Popen(
        [*supportbot, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until_up(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.goto(url + "/")
            page.get_by_role("button", name="Open chat").click()
            dialog = page.get_by_role("dialog")
            box = dialog.get_by_role("textbox", name="Your message")
            box.fill(QUESTION)
            box.press("Enter")
            # The meta line (how sure the bot is, the thumbs) comes once the reply is whole.
            dialog.locator(".sb-msg-bot .sb-meta").last.wait_for(timeout=60_000)
            time.sleep(1.5)  # the reply is revealed a word at a time
            page.screenshot(path=str(DOCS / "widget.png"))
            page.goto(url + "/ops/login")
            page.get_by_label("Name").fill("screenshots")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(url + "/ops/**")
            page.goto(url + "/ops/metrics")
            page.set_viewport_size({"width": 1100, "height": 1850})
            page.screenshot(path=str(DOCS / "dashboard-metrics.png"), full_page=False)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run(
            [*supportbot, "operators", "remove", "screenshots"], check=False, capture_output=True
        )
    print(f"wrote {DOCS / 'widget.png'} and {DOCS / 'dashboard-metrics.png'}")


if __name__ == "__main__":
    main()
