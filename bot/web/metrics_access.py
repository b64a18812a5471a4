"""Who may read ``/metrics`` on the main port.

The metrics count the business's conversations, hand-offs, flags and ratings: not for
whoever can reach the widget. The main port answers them to a scraper that sends the
configured bearer token (``web.metrics_token``, Prometheus' ``authorization`` in a scrape
config), or, with no token set, to clients on this machine only. The health port
(``server.health_port``, meant for a private network) serves them as before.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from bot.web.config import WebConfig
from bot.web.errors import ApiError
from bot.web.middlewares import client_ip

# Headers a reverse proxy adds. Behind a proxy on this machine that ``trusted_proxy_header``
# does not name, every request comes from loopback: one of these says it came from further.
_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP", "Via")


def check_metrics_access(request: web.Request, config: WebConfig) -> None:
    """Return when ``request`` may read the metrics; raise the refusal otherwise.

    With a token set, a request without it gets 401 and ``WWW-Authenticate: Bearer``, so
    that a scraper's operator sees what is missing. With none, a request from elsewhere
    gets the 404 of any unknown path: the public port does not offer metrics, and a prober
    learns nothing about them.
    """
    if config.metrics_token is not None:
        if not _bearer_matches(request, config.metrics_token.get_secret_value()):
            raise ApiError(
                401,
                "unauthorized",
                "The metrics need the scraper's bearer token.",
                {"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return
    if not is_loopback_client(request, config):
        raise web.HTTPNotFound()


def is_loopback_client(request: web.Request, config: WebConfig) -> bool:
    """True when the client (as the rate limits see it) is on this machine, not a proxy
    passing on someone else's request."""
    if config.trusted_proxy_header is None and any(
        header in request.headers for header in _FORWARDING_HEADERS
    ):
        return False
    try:
        address = ipaddress.ip_address(client_ip(request, config))
    except ValueError:  # "unknown" (no peer address), or a proxy header's garbage
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack socket
    return address.is_loopback


def _bearer_matches(request: web.Request, token: str) -> bool:
    scheme, _, supplied = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Constant time, as bytes: any text a client sends compares safely.
    return hmac.compare_digest(supplied.strip().encode("utf-8"), token.encode("utf-8"))
