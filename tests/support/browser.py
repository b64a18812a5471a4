"""Headless Chromium (Debian's /usr/bin/chromium) against a server in a thread."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

CHROMIUM = Path("/usr/bin/chromium")


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class ServerThread:
    """Runs an aiohttp application on 127.0.0.1 (a free port) in a thread of its own."""

    def __init__(self, make_app: Callable[[], web.Application]) -> None:
        self._make_app = make_app
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("the server did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    def call(self, work: Callable[[web.Application], Coroutine[Any, Any, Any]]) -> Any:
        """Run ``work(app)`` on the server's loop and return its result."""
        assert self.app is not None
        # 60 s: the first reply in a fresh process builds the list of given names (10-30 s).
        return asyncio.run_coroutine_threadsafe(work(self.app), self._loop).result(60)

    async def _start(self) -> None:
        self.app = self._make_app()
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
def browser_context(tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1200, "height": 800},
        )
        context.set_default_timeout(15_000)
        # What a test expects to see may wait for the process's first reply, which builds
        # the list of given names and loads the name model: 15 s measured with the CPUs
        # shared, against expect's default of 5 s.
        expect.set_options(timeout=30_000)
        try:
            yield context
        finally:
            context.close()
