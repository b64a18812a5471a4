"""A second listener for health checks and metrics (``server.health_port``).

A flood of connections on the main port fills its accept queue and its connection cap,
and a load balancer's or Kubernetes' probe then waits in line with the attackers: a
dropped SYN alone costs a second. Probes and scrapes get a port of their own, as
Kubernetes, Spring Boot's management port, Envoy's admin port and Traefik's ping
entrypoint do it. It serves only ``/healthz`` and ``/metrics`` of the main application,
on the same event loop (a probe that answered while the main loop stalled would lie),
through the same guarded handler with a small connection cap of its own.
"""

from __future__ import annotations

from aiohttp import web

from bot.web.handlers import health_response, metrics_response

# A few probers and scrapers, each keeping a connection or two alive.
MAX_CONNECTIONS = 64
MAX_CONNECTIONS_PER_IP = 16

_MAIN = web.AppKey("main_app", web.Application)


async def _healthz(request: web.Request) -> web.Response:
    return health_response(request.app[_MAIN])


async def _metrics(request: web.Request) -> web.Response:
    return metrics_response(request.app[_MAIN])


def build_health_app(main: web.Application) -> web.Application:
    """An application answering ``main``'s ``/healthz`` and ``/metrics``, and nothing else.

    Start it after ``main`` (whose start-up makes ``/healthz`` answer 200); it has no
    resources of its own.
    """
    app = web.Application()
    app[_MAIN] = main
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    return app
