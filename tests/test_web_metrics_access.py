"""/metrics on the main port is not for the public (issue 18): the business's volumes, flag
counts and ratings go to the scraper's bearer token, or with no token set to this machine
only; the health port, meant for a private network, serves them as before.

The server runs on a free loopback port, so a client from elsewhere is one whose address
the trusted proxy header gives, the way the rate limits see it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from bot.app import create_app
from bot.web import WebConfig
from bot.web.connections import start_health_listener
from tests.support.web import knowledge, make_settings

TOKEN = "4f9c2d7e1a8b3c6d5e0f9a8b7c6d5e4f"
OUTSIDE = "203.0.113.7"  # documentation address: any client on the internet

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path) -> ClientFactory:
    async def make(**web_fields: Any) -> TestClient[web.Request, web.Application]:
        config = WebConfig(**web_fields)
        app = create_app(make_settings(tmp_path / "home", config), retriever=knowledge())
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return make


async def scrape(
    client: TestClient[web.Request, web.Application], headers: dict[str, str] | None = None
) -> tuple[int, str]:
    response = await client.get("/metrics", headers=headers or {})
    return response.status, await response.text()


async def test_without_a_token_only_this_machine_reads_the_metrics(
    make_client: ClientFactory,
) -> None:
    client = await make_client(trusted_proxy_header="X-Forwarded-For")
    status, text = await scrape(client)  # a scraper on this machine, straight to the port
    assert status == 200 and "supportbot_http_requests_total" in text
    # Through the proxy: the client's address is the one the proxy appended.
    status, text = await scrape(client, {"X-Forwarded-For": f"127.0.0.1, {OUTSIDE}"})
    assert status == 404 and "supportbot_" not in text
    unknown = await client.get("/no-such-page")
    assert (status, text) == (404, await unknown.text())  # as if there were no such route
    # A client on this machine going through the proxy is still this machine.
    assert (await scrape(client, {"X-Forwarded-For": "127.0.0.1"}))[0] == 200


async def test_an_unconfigured_proxy_on_this_machine_does_not_make_everyone_local(
    make_client: ClientFactory,
) -> None:
    """A reverse proxy on loopback that ``trusted_proxy_header`` does not name connects
    from 127.0.0.1 for everyone; its forwarding headers say who it is passing on."""
    client = await make_client()
    assert (await scrape(client))[0] == 200
    for header, value in [
        ("X-Forwarded-For", OUTSIDE),
        ("X-Real-IP", OUTSIDE),
        ("Forwarded", f"for={OUTSIDE};proto=https"),
        ("Via", "1.1 proxy"),
    ]:
        status, text = await scrape(client, {header: value})
        assert status == 404 and "supportbot_" not in text, header


async def test_with_a_token_the_scraper_must_send_it(make_client: ClientFactory) -> None:
    client = await make_client(trusted_proxy_header="X-Forwarded-For", metrics_token=TOKEN)
    from_outside = {"X-Forwarded-For": OUTSIDE}
    status, text = await scrape(client, from_outside | {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "supportbot_http_requests_total" in text
    assert (await scrape(client, {"Authorization": f"bearer {TOKEN}"}))[0] == 200
    for authorization in (None, f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", ""):
        headers = dict(from_outside)
        if authorization is not None:
            headers["Authorization"] = authorization
        response = await client.get("/metrics", headers=headers)
        assert response.status == 401, authorization
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
        body = await response.json()
        assert body["error"] == "unauthorized" and "supportbot_" not in str(body)
    # Once a token is set, it is the way in: this machine needs it too.
    assert (await scrape(client))[0] == 401


async def test_the_health_port_serves_the_metrics_without_the_token(
    make_client: ClientFactory,
) -> None:
    client = await make_client(metrics_token=TOKEN)
    assert (await scrape(client))[0] == 401
    runner = await start_health_listener(client.app, "127.0.0.1", 0, read_timeout_s=5)
    try:
        port = runner.addresses[0][1]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            assert response.status == 200
            assert "supportbot_http_requests_total" in await response.text()
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("token", "complaint"),
    [("short-token", "at least 16 characters"), ("has spaces in the token", "only letters")],
)
def test_a_weak_or_unsendable_token_is_refused_at_start_up(token: str, complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        WebConfig(metrics_token=token)


def test_the_token_is_never_shown() -> None:
    config = WebConfig(metrics_token=TOKEN)
    assert TOKEN not in repr(config) and TOKEN not in config.model_dump_json()
    assert WebConfig(metrics_token="").metrics_token is None
