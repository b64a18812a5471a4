"""Connection limits that hold under a flood, in the server's own request handler.

Left to itself, aiohttp keeps a connection that trickles half a request until its
keep-alive timeout, accepts connections until the process runs out of file descriptors,
and answers a request it cannot parse with a traceback in the log and the client's own
bytes in a text/plain body. The handler here:

* closes a connection whose request (headers and body) is not complete within
  ``request_read_timeout_s`` of its first byte, or of connecting, however it trickles;
* counts connections per client address and in all: beyond the per-address cap a new
  connection is closed at once; at the total cap it closes the oldest connection that
  has not yet sent a whole request, else the oldest idle one, else the new one;
* answers a malformed request with the API's JSON error and logs one short line, without
  the client's bytes.

aiohttp has no setting for a handler class, so :class:`GuardedAppRunner` builds the
server with it; :func:`serve` runs an application with it (``supportbot serve``), and
its health checks on a listener of their own when asked (:mod:`bot.web.health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_runner import GracefulExit

from bot.web import health
from bot.web.config import WebConfig
from bot.web.errors import code_for_status, dumps

log = logging.getLogger(__name__)

# What run_app uses; AppRunner's own default is an hour, meant for behind a proxy.
KEEPALIVE_TIMEOUT_S = 75.0
# File descriptors kept for everything but client connections: the databases, the index
# and model files, log files, outgoing connections (Slack, an inference server).
RESERVED_FILES = 256
# Connections the kernel queues before the server accepts them; 128 (the default) fills
# in an instant under a connection flood, and a health check then waits for a SYN retry.
LISTEN_BACKLOG = 1024
# Connections taken from that queue per iteration of asyncio's event loop (uvloop's takes
# what is queued, each far cheaper). asyncio accepts up to its
# ``backlog`` argument at once and builds every connection's handler (evicting another at
# the cap) before it serves anything else: under a flood, 1024 of them stalled the loop
# for a quarter of a second at a time. Small batches interleave accepting with answering.
ACCEPTS_PER_TICK = 16

_TIMEOUT_BODY = dumps(
    {"error": "request_timeout", "message": "The request took too long to arrive."}
).encode()
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class ConnectionGuard:
    """Counts open connections per address and in all; shared by a server's handlers.

    Only used from the event loop, so it needs no lock.
    """

    def __init__(self, *, max_total: int, max_per_ip: int | None, read_timeout_s: float) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip  # None: not applied (behind a proxy)
        self.read_timeout_s = read_timeout_s
        self._per_ip: Counter[str] = Counter()
        self._open: OrderedDict[GuardedRequestHandler, str] = OrderedDict()  # oldest first
        # Connections that have not yet sent one whole request, oldest first: the first to
        # make room, before a client that has proven itself (a keep-alive health check).
        self._unproven: OrderedDict[GuardedRequestHandler, None] = OrderedDict()
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    @classmethod
    def from_config(cls, config: WebConfig) -> ConnectionGuard:
        """The guard for ``config``, its total cap lowered to what the open-file limit allows."""
        return cls(
            max_total=min(config.max_connections, connection_room()),
            max_per_ip=None if config.trusted_proxy_header else config.max_connections_per_ip,
            read_timeout_s=config.request_read_timeout_s,
        )

    @property
    def open(self) -> int:
        return len(self._open)

    def admit(self, handler: GuardedRequestHandler, ip: str) -> bool:
        """Count a new connection; False when it must be closed at once."""
        if self.max_per_ip is not None and self._per_ip[ip] >= self.max_per_ip:
            self.refused += 1
            return False
        if len(self._open) >= self.max_total:
            victim = next((h for h in self._unproven if h.evictable), None) or next(
                (h for h in self._open if h.evictable), None
            )
            if victim is None:
                self.refused += 1
                return False
            self.evicted += 1
            self.release(victim)
            victim.force_close()
        self._open[handler] = ip
        self._unproven[handler] = None
        self._per_ip[ip] += 1
        return True

    def proven(self, handler: GuardedRequestHandler) -> None:
        """``handler``'s connection sent a whole request."""
        self._unproven.pop(handler, None)

    def release(self, handler: GuardedRequestHandler) -> None:
        """Stop counting ``handler``'s connection (again is harmless)."""
        ip = self._open.pop(handler, None)
        self._unproven.pop(handler, None)
        if ip is None:
            return
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]


class GuardedRequestHandler(RequestHandler):
    """aiohttp's handler with the read deadline, the connection caps and quiet parse errors."""

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._admitted = False
        self._deadline: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # the body still arriving, once headers are in

    @property
    def evictable(self) -> bool:
        """Not answering a request: still sending one, or idle between requests."""
        return self._current_request is None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if not self._guard.admit(self, ip):
            # A reset rather than a close: no TIME_WAIT, no buffers, no task.
            with contextlib.suppress(AttributeError):  # a transport that cannot abort
                transport.abort()  # type: ignore[attr-defined]
            return
        self._admitted = True
        super().connection_made(transport)
        self._start_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_deadline()
        if not self._admitted:
            return
        self._guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not data:
            # aiohttp feeds itself b"" to reparse what it buffered when it resumes reading
            # (aiohttp 3.14, as a request is taken): no byte of a new request, so no
            # deadline to start; one started here cut every reply that took longer than
            # the read timeout.
            super().data_received(data)
            return
        if self._deadline is None:  # the first byte of a new request
            self._start_deadline()
        parsed_before = self._request_count
        super().data_received(data)
        new = self._request_count - parsed_before
        if new:
            pending = [payload for _, payload in list(self._messages)[-new:]]
            self._body = next((p for p in reversed(pending) if not p.is_eof()), None)
        elif self._body is None:  # the headers are still arriving
            return
        if self._body is None or self._body.is_eof():  # the whole request is in
            self._body = None
            self._stop_deadline()
            self._guard.proven(self)

    def force_close(self) -> None:
        self._stop_deadline()
        super().force_close()

    def _start_deadline(self) -> None:
        self._stop_deadline()
        self._deadline = self._loop.call_later(self._guard.read_timeout_s, self._too_slow)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        self._guard.timed_out += 1
        transport = self.transport
        if transport is not None and self._current_request is None and not self._messages:
            # Still in the headers: nothing else is being written, so it can be told why.
            transport.write(_TIMEOUT_RESPONSE)
        self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The API's JSON error for a request aiohttp could not handle.

        A malformed request (status 4xx) is the client's fault: one short line, without
        its bytes (aiohttp's message quotes them). A 5xx is ours: the traceback is kept.
        """
        if status >= 500:
            self.log_exception("error handling a request from %s", request.remote, exc_info=exc)
            text = "Something went wrong on our side."
        else:
            reason = type(exc).__name__ if exc is not None else "bad request"
            log.info("refused a malformed request from %s (%s)", request.remote, reason)
            text = "The request is not valid HTTP."
        if request.writer.output_size > 0:  # part of a response went out: nothing to add
            raise ConnectionError("a response was already being sent")
        response = web.Response(
            status=status,
            body=dumps({"error": code_for_status(status), "message": text}).encode(),
            content_type="application/json",
        )
        response.force_close()
        return response


class GuardedServer(web.Server):
    """A low-level server whose connections get a :class:`GuardedRequestHandler`."""

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, guard=self.guard, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose server guards its connections (use with ``web.TCPSite``)."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_TIMEOUT_S)
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the application
        # The same handler, request factory and handler arguments, with the guard.
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            guard=self.guard,
            **plain._kwargs,
        )


def freeze_startup_objects() -> None:
    """Keep what start-up loaded out of every later garbage collection.

    The models, the tokenizers, spaCy and the index make millions of objects that live as
    long as the process; each full collection walked them all. A connection flood makes
    garbage fast enough for a full collection every few seconds, and each stopped the event
    loop for 0.2-1.9 s (measured under 10,000 half-open connections). Frozen, they are
    never scanned again; what is created later is collected as before.
    """
    gc.collect()
    gc.freeze()
    # Said at debug level: an operator starting the server has nothing to do with it.
    log.debug("%d objects from start-up left out of garbage collection", gc.get_freeze_count())


async def start_site(
    runner: web.BaseRunner, host: str, port: int, *, backlog: int = LISTEN_BACKLOG
) -> web.TCPSite:
    """Listen on ``host:port`` with a kernel queue of ``backlog`` connections, taking at
    most :data:`ACCEPTS_PER_TICK` of them per event-loop iteration."""
    site = web.TCPSite(runner, host, port, backlog=min(backlog, ACCEPTS_PER_TICK))
    await site.start()
    # asyncio passes one number both to listen() and to its accept loop; listening again
    # lengthens the kernel's queue and leaves the accept batch small. aiohttp keeps the
    # asyncio (or uvloop) server, whose sockets these are, in a private attribute.
    server = site._server
    for sock in getattr(server, "sockets", ()):
        with sock.dup() as listening:  # the same socket: listen() applies to both
            listening.listen(backlog)
    return site


def connection_room() -> int:
    """Client connections the open-file limit leaves room for, after raising the soft
    limit to the hard one (as far as the system lets this process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65_536 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return max(16, soft - RESERVED_FILES)


async def serve_until_stopped(
    app: web.Application,
    config: WebConfig,
    *,
    host: str,
    port: int,
    health_port: int | None = None,
    announce: Callable[[str], object] = print,
) -> None:
    """Serve ``app`` on ``host:port`` with guarded connections until SIGINT or SIGTERM;
    its ``/healthz`` and ``/metrics`` on ``host:health_port`` too, unless that is None."""
    guard = ConnectionGuard.from_config(config)
    runner = GuardedAppRunner(app, guard, handle_signals=True)
    await runner.setup()
    freeze_startup_objects()
    log.info("event loop: %s", type(asyncio.get_running_loop()).__module__.split(".")[0])
    health_runner: GuardedAppRunner | None = None
    try:
        site = await start_site(runner, host, port)
        log.info(
            "at most %d connections, %s per address; requests must arrive within %gs",
            guard.max_total,
            guard.max_per_ip or "any number",
            guard.read_timeout_s,
        )
        announce(f"======== Running on {site.name} ========\n(Press CTRL+C to quit)")
        if health_port is not None:
            health_runner = await start_health_listener(
                app, host, health_port, config.request_read_timeout_s
            )
            announce(f"health checks and metrics on {health_runner.addresses}")
        await asyncio.Event().wait()
    finally:
        if health_runner is not None:
            await health_runner.cleanup()
        await runner.cleanup()


async def start_health_listener(
    app: web.Application, host: str, port: int, read_timeout_s: float
) -> GuardedAppRunner:
    """Serve ``app``'s ``/healthz`` and ``/metrics`` on ``host:port`` (0: a free port), with
    connection caps of their own; the caller cleans the runner up."""
    guard = ConnectionGuard(
        max_total=health.MAX_CONNECTIONS,
        max_per_ip=health.MAX_CONNECTIONS_PER_IP,
        read_timeout_s=read_timeout_s,
    )
    runner = GuardedAppRunner(health.build_health_app(app), guard)
    await runner.setup()
    try:
        await start_site(runner, host, port, backlog=health.MAX_CONNECTIONS)
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def serve(
    app: web.Application,
    config: WebConfig,
    *,
    host: str,
    port: int,
    health_port: int | None = None,
    announce: Callable[[str], object] = print,
) -> None:
    """``web.run_app`` with guarded connections: blocks until SIGINT or SIGTERM.

    Runs on uvloop's event loop where uvloop is installed (a dependency on Linux and
    macOS), else on asyncio's.
    """
    serving = serve_until_stopped(
        app, config, host=host, port=port, health_port=health_port, announce=announce
    )
    with (
        contextlib.suppress(GracefulExit, KeyboardInterrupt),
        asyncio.Runner(loop_factory=event_loop_factory()) as runner,
    ):
        runner.run(serving)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed; None (asyncio's own) otherwise.

    Under 10,000 half-open connections (no conversation flood, 20 s, a shared 2-core
    machine) /healthz from a prober apart was p99 56 ms on uvloop against 267 ms on
    asyncio: its transports are built in C, and accepting and closing connections costs
    the loop far less.
    """
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
