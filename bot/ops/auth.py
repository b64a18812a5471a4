"""Logins, sessions and CSRF protection for everything under ``/ops``.

* A session is a random 32-byte token in an ``HttpOnly; SameSite=Strict; Path=/ops``
  cookie (``Secure`` over https); the database keeps only its hash and its expiry.
* Every POST must carry the session's CSRF token (form field ``csrf_token`` or header
  ``X-CSRF-Token``) and come from this site (``Origin``, else ``Referer``, names this host).
  The login form, posted before any session exists, carries a token that must match a
  short-lived cookie set with the form (double submit).
* Login attempts are rate-limited per client IP, per (IP, name) pair, and per name for
  failures from addresses that never logged in as it (:mod:`bot.ops.login_limits`).
* Failed and refused logins are logged with the client's address, in lines a guessing
  flood cannot multiply (:mod:`bot.ops.login_log`).
* Without a session, a page answers 303 to the login page, the JSON API and any POST 401.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from bot.ops.database import DashboardDatabase
from bot.ops.keys import DATABASE, LOGIN_LIMITS, LOGIN_LOG, OPS_CONFIG, PREFIX, SESSION
from bot.ops.render import render, with_query
from bot.web.errors import STORAGE_UNAVAILABLE_RETRY_SECONDS
from bot.web.keys import WEB_CONFIG
from bot.web.middlewares import client_ip
from bot.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "supportbot_ops_session"
LOGIN_COOKIE = "supportbot_ops_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_FORM_SECONDS = 3600
# Routes anyone may reach: the login form itself and the stylesheet and script it uses.
PUBLIC_ROUTES = frozenset({"login", "login_submit", "static"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class OpsError(Exception):
    """Ends a dashboard request with an error page (or JSON under ``/ops/api/``)."""

    def __init__(
        self, status: int, title: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.headers = headers or {}


STORAGE_FULL_TITLE = "Storage unavailable"  # "storage_unavailable" under /ops/api/, as the API
STORAGE_FULL_MESSAGE = (
    "The disk is full, so nothing can be saved right now. Please try again in a few "
    "minutes; nothing saved before is lost."
)


def storage_full_error() -> OpsError:
    """The error page (or JSON) for a request refused because the disk is full."""
    return OpsError(
        503,
        STORAGE_FULL_TITLE,
        STORAGE_FULL_MESSAGE,
        {"Retry-After": str(STORAGE_UNAVAILABLE_RETRY_SECONDS)},
    )


def is_api(request: web.Request) -> bool:
    return request.path.startswith(f"{PREFIX}/api/")


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the operator's session, or turn the anonymous away; check every POST."""
    token = request.cookies.get(SESSION_COOKIE)
    session = None
    if token:
        session = await request.app[DATABASE].run(lambda store: store.session(token))
    route = request.match_info.route.name
    if session is None and route not in PUBLIC_ROUTES:
        if request.method in ("GET", "HEAD") and not is_api(request):
            target = with_query(login_path(request), next=request.path_qs)
            return web.Response(status=303, headers={"Location": target})
        raise OpsError(401, "Please log in", "Your session has ended; log in again to go on.")
    if session is not None:
        request[SESSION] = session
        if request.method not in _SAFE_METHODS and route != "login_submit":
            if not same_site(request):
                raise csrf_failure(request, "the request did not come from this site")
            if not tokens_match(await supplied_csrf(request), session.csrf_token):
                raise csrf_failure(request, "the form's security token is missing or wrong")
    return await handler(request)


def csrf_failure(request: web.Request, why: str) -> OpsError:
    log.warning("refused %s %s: %s", request.method, request.path, why)
    return OpsError(
        403,
        "This form has expired",
        "The form was out of date or came from another site, so nothing was changed. "
        "Reload the page and try again.",
    )


def tokens_match(supplied: str, expected: str) -> bool:
    """Constant-time comparison (as bytes: any text a client sends compares safely)."""
    return hmac.compare_digest(supplied.encode("utf-8"), expected.encode("utf-8"))


async def supplied_csrf(request: web.Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    form = await request.post()  # cached: the handler reads the same form again
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""


def same_site(request: web.Request) -> bool:
    """True when ``Origin`` (or, without one, ``Referer``) names this server's host."""
    source = request.headers.get("Origin")
    if source is None:
        source = request.headers.get("Referer")
    if not source or source == "null":
        return False
    return urlsplit(source.strip()).netloc.lower() in own_hosts(request)


def own_hosts(request: web.Request) -> set[str]:
    hosts = {request.host.lower()}
    config = request.config_dict.get(WEB_CONFIG)
    if config is not None and config.trusted_proxy_header:
        forwarded = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip().lower()
        if forwarded:
            hosts.add(forwarded)
    return hosts


def is_https(request: web.Request) -> bool:
    if request.secure:
        return True
    config = request.config_dict.get(WEB_CONFIG)
    proxied = config is not None and config.trusted_proxy_header
    return bool(proxied) and request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def login_path(request: web.Request) -> str:
    return str(request.app.router["login"].url_for())


def safe_next(request: web.Request, target: object) -> str:
    """Where to go after logging in: a path of the dashboard, never another site."""
    home = str(request.app.router["queue"].url_for())
    if not isinstance(target, str) or not target.startswith(f"{PREFIX}/") or "\\" in target:
        return home
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        # CR/LF would split the Location header (aiohttp then drops the connection).
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return home
    return target


# -- handlers ---------------------------------------------------------------------------------
async def login_page(request: web.Request) -> web.Response:
    target = request.query.get("next")
    if request.get(SESSION) is not None:  # already logged in
        return web.Response(status=303, headers={"Location": safe_next(request, target)})
    notice = "You are logged out." if request.query.get("bye") else None
    return await login_form(request, target, notice=notice)


async def login_form(
    request: web.Request,
    target: object,
    *,
    error: str | None = None,
    notice: str | None = None,
    name: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The login form with a fresh double-submit token in the form and a cookie."""
    form_token = secrets.token_urlsafe(24)
    response = await render(
        request,
        "login.html",
        {
            "form_token": form_token,
            "next": safe_next(request, target),
            "error": error,
            "notice": notice,
            "name": name,
        },
        status=status,
        headers=headers,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        form_token,
        path=login_path(request),
        max_age=LOGIN_FORM_SECONDS,
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )
    return response


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    name = str(form.get("name", "")).strip()[:64]
    password = str(form.get("password", ""))
    target = form.get("next")
    expected = request.cookies.get(LOGIN_COOKIE, "")
    supplied = str(form.get(CSRF_FIELD, ""))
    if not (same_site(request) and expected and tokens_match(supplied, expected)):
        request.app[LOGIN_LOG].stale_form(client_ip_of(request))
        return await login_form(
            request,
            target,
            error="The login form had expired. Please try again.",
            name=name,
            status=403,
        )
    limits = request.app[LOGIN_LIMITS]
    address = client_ip_of(request)
    wait = limits.wait(address, name)
    login_log = request.app[LOGIN_LOG]
    database = request.app[DATABASE]
    if wait > 0:
        if login_log.will_log_refusal(address):
            operator_name = await _operator_name(database, name)
            login_log.refused(address, name, operator_name, wait)
        retry = RateLimiter.retry_after_header(wait)
        return await login_form(
            request,
            target,
            error=f"Too many login attempts. Please wait {retry} seconds and try again.",
            name=name,
            status=429,
            headers={"Retry-After": retry},
        )
    operator = await database.run(lambda store: store.authenticate(name, password))
    if operator is None:
        limits.failed(address, name)
        if login_log.will_log_failure():
            login_log.failed(address, name, await _operator_name(database, name))
        return await login_form(
            request, target, error="Wrong name or password.", name=name, status=401
        )
    limits.succeeded(address, name)
    lifetime = request.app[OPS_CONFIG].session_hours * 3600
    token, _ = await database.run(lambda store: store.start_session(operator, lifetime))
    log.info("operator %s logged in", operator.name)
    response = web.Response(status=303, headers={"Location": safe_next(request, target)})
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=PREFIX,
        max_age=int(lifetime),
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )
    response.del_cookie(LOGIN_COOKIE, path=login_path(request))
    return response


async def _operator_name(database: DashboardDatabase, name: str) -> str | None:
    """The stored name of the operator ``name`` names, for the log; None when none does."""
    if not name:
        return None
    operator = await database.run(lambda store: store.operator_named(name))
    return None if operator is None else operator.name


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    await request.app[DATABASE].run(lambda store: store.end_session(token))
    response = web.Response(
        status=303, headers={"Location": with_query(login_path(request), bye=1)}
    )
    response.del_cookie(SESSION_COOKIE, path=PREFIX)
    return response


def client_ip_of(request: web.Request) -> str:
    config = request.config_dict.get(WEB_CONFIG)
    if config is None:
        return request.remote or "unknown"
    return client_ip(request, config)
