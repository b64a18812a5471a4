"""Cross-cutting request handling: metrics, JSON errors, CORS, rate limits, body size.

Order, outermost first: metrics see the final status of every request; the error
middleware turns anything raised below it into JSON; CORS answers preflights and refuses
foreign origins before the rate limit counts them (a foreign page cannot spend a visitor's
quota); the body limit refuses declared oversized bodies before a handler reads them.
CORS response headers are added in ``on_response_prepare`` so that streamed responses and
error responses carry them too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from bot.core.errors import SupportbotError
from bot.web.config import WebConfig
from bot.web.errors import ApiError, error_response, from_domain, from_http
from bot.web.flood import CURRENT_CLIENT
from bot.web.keys import METRICS, RATE_LIMITER, WEB_CONFIG
from bot.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_PREFIX = "/api/"
_ALLOWED_METHODS = "GET, POST, OPTIONS"
_ALLOWED_HEADERS = "Content-Type, Accept"
_EXPOSED_HEADERS = "Retry-After"
_PREFLIGHT_MAX_AGE = "600"


def route_label(request: web.Request) -> str:
    """The route template (``/api/conversations/{conversation_id}/messages``), never the
    raw path, so metrics labels stay few whatever clients send."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def client_ip(request: web.Request, config: WebConfig) -> str:
    if config.trusted_proxy_header:
        forwarded = request.headers.get(config.trusted_proxy_header, "")
        # The proxy appends the address it saw; entries before it are the client's claims.
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.remote or "unknown"


def origin_allowed(request: web.Request, config: WebConfig) -> bool:
    """True when the request has no Origin, comes from this server, or from an allowed site."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.strip().lower()
    if config.any_origin or origin in config.allowed_origins:
        return True
    own_hosts = {request.host.lower()}
    if config.trusted_proxy_header:  # the proxy may have rewritten Host
        own_hosts.add(request.headers.get("X-Forwarded-Host", "").split(",")[0].strip().lower())
    return urlsplit(origin).netloc in own_hosts


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    route = route_label(request)
    started = time.perf_counter()
    status = 500
    metrics.in_flight.inc()
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        metrics.in_flight.dec()
        metrics.requests.labels(route=route, method=request.method, status=str(status)).inc()
        metrics.latency.labels(route=route, method=request.method).observe(
            time.perf_counter() - started
        )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes ``{"error", "message"}`` with its status; nothing leaks."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except SupportbotError as exc:
        return error_response(from_domain(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(from_http(exc))
    except asyncio.CancelledError:
        raise
    except ConnectionResetError:
        # The client left mid-request; this status (nginx's "client closed request") only
        # reaches the metrics, nobody is there to read it.
        log.debug("client went away on %s %s", request.method, route_label(request))
        return web.Response(status=499)
    except Exception:
        # The traceback names the code path; message texts are not logged (PII).
        log.exception("unhandled error on %s %s", request.method, route_label(request))
        return error_response(ApiError(500, "internal_error", "Something went wrong on our side."))


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    config = request.config_dict[WEB_CONFIG]
    is_api = request.path.startswith(API_PREFIX)
    preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    if (preflight or is_api) and not origin_allowed(request, config):
        raise ApiError(403, "origin_not_allowed", "This site may not use the support API.")
    if preflight:
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": _ALLOWED_METHODS,
                "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
                "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
            },
        )
    return await handler(request)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(API_PREFIX) and request.method != "OPTIONS":
        limiter: RateLimiter = request.app[RATE_LIMITER]
        client = client_ip(request, request.config_dict[WEB_CONFIG])
        wait = limiter.acquire(client)
        if wait > 0:
            request.app[METRICS].rate_limited.inc()
            raise ApiError(
                429,
                "rate_limited",
                "Too many requests; please wait a moment and try again.",
                {"Retry-After": RateLimiter.retry_after_header(wait)},
            )
        # The flag budget (bot.web.flood) counts this client's flags by it.
        token = CURRENT_CLIENT.set(client)
        try:
            return await handler(request)
        finally:
            CURRENT_CLIENT.reset(token)
    return await handler(request)


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a declared oversized body at once; aiohttp's ``client_max_size`` stops a
    chunked one while it is read."""
    limit = request.config_dict[WEB_CONFIG].max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        raise ApiError(
            413, "payload_too_large", f"The request body is over the {limit}-byte limit."
        )
    return await handler(request)


MIDDLEWARES = (
    metrics_middleware,
    error_middleware,
    cors_middleware,
    rate_limit_middleware,
    body_limit_middleware,
)


async def add_response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: CORS headers for allowed foreign origins, and nosniff."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    origin = request.headers.get("Origin")
    if origin is None or not origin_allowed(request, request.config_dict[WEB_CONFIG]):
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = _EXPOSED_HEADERS
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Origin"
