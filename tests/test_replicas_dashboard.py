"""The review dashboard behind two replicas that share one PostgreSQL, each with its own
home folder as on two hosts: an operator who logs in through one replica is logged in on
the other (the load balancer may send each request anywhere), logging out through either
ends the session on both, and the review log written through one is read through the other.

Operators, sessions and the review log are in PostgreSQL (README "Deployment"); this test
holds that promise with two real servers on loopback. The model registry and the retraining
cycles are there too: the metrics page of any replica lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.app import create_app
from bot.ops.auth import SESSION_COOKIE
from bot.ops.database import DashboardDatabase
from bot.ops.keys import DATABASE
from bot.ops.storage import ReviewAction
from bot.settings import load_settings
from bot.web.config import WebConfig
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from tests.support.corpus import SMALL_LOGS, write_jsonl
from tests.support.dashboard import PASSWORD, Site, add_operator, csrf_of, login, queue_turns
from tests.support.models import two_adapters
from tests.support.web import knowledge


async def replica(aiohttp_client: Any, home: Path, postgres_url: str) -> Site:
    settings = load_settings(
        home=home,
        web=WebConfig(rate_per_minute=100_000, rate_burst=100_000),
        storage={"database_url": postgres_url},
    )
    app = create_app(settings, retriever=knowledge())
    return Site(await aiohttp_client(app), app, settings.paths.ensure().database)


async def test_a_login_on_one_replica_is_valid_on_the_other(
    aiohttp_client: Any, tmp_path: Path, postgres_url: str
) -> None:
    a = await replica(aiohttp_client, tmp_path / "host-a", postgres_url)
    b = await replica(aiohttp_client, tmp_path / "host-b", postgres_url)
    add_operator(a.database, "alice", PASSWORD, postgres_url=postgres_url)

    response = await login(a, "alice", PASSWORD)
    assert response.status == 303, await response.text()
    cookie = a.client.session.cookie_jar.filter_cookies(a.client.make_url("/ops/"))
    session = {"Cookie": f"{SESSION_COOKIE}={cookie[SESSION_COOKIE].value}"}

    anonymous = await b.client.get("/ops/", allow_redirects=False)
    assert anonymous.status == 303  # B does not let just anyone in
    queue = await b.client.get("/ops/", headers=session, allow_redirects=False)
    assert queue.status == 200
    assert "alice" in await queue.text()

    # A customer handed to a person through A waits in B's queue (the waiting filter's
    # query on PostgreSQL), until an operator answers.
    conversation = (await (await a.client.post("/api/conversations")).json())["conversation_id"]
    handoff = await a.client.post(f"/api/conversations/{conversation}/handoff")
    waiting_turn = (await handoff.json())["turn_id"]
    waiting = await b.client.get("/ops/?reason=waiting", headers=session)
    assert queue_turns(await waiting.text()) == [waiting_turn]
    token = csrf_of(await queue.text())
    answered = await b.client.post(
        f"/ops/conversations/{conversation}/reply",
        data={"csrf_token": token, "text": "Hello, Sam here."},
        headers=session | {"Origin": b.origin},
        allow_redirects=False,
    )
    assert answered.status == 303
    waiting = await b.client.get("/ops/?reason=waiting", headers=session)
    assert queue_turns(await waiting.text()) == []

    # A form of B's, posted to B with the session A started: logs out everywhere.
    token = csrf_of(await queue.text())
    logout = await b.client.post(
        "/ops/logout",
        data={"csrf_token": token},
        headers=session | {"Origin": b.origin},
        allow_redirects=False,
    )
    assert logout.status == 303
    assert (await a.client.get("/ops/", allow_redirects=False)).status == 303

    # What an operator did through A is in the review log B shows.
    logged = await database_of(a).run(
        lambda store: store.log_action("alice", ReviewAction.APPROVE, "conv-1", "turn-1")
    )
    assert await database_of(b).run(lambda store: store.actions_for("conv-1")) == [logged]


def database_of(site: Site) -> DashboardDatabase:
    (dashboard,) = [
        r.get_info()["app"]
        for r in site.app.router.resources()
        if isinstance(r, web.PrefixedSubAppResource)
    ]
    return dashboard[DATABASE]  # type: ignore[no-any-return]


async def test_every_replica_lists_the_model_versions_and_cycles_kept_in_postgres(
    aiohttp_client: Any, tmp_path: Path, postgres_url: str
) -> None:
    """A cycle recorded by another host's job (its own home path) shows on this replica's
    metrics page, with the adapter that is live."""
    from finetune.cycles import CycleLog
    from finetune.pipeline import GeneratorPaths
    from finetune.registry import ModelRegistry

    site = await replica(aiohttp_client, tmp_path / "home", postgres_url)
    add_operator(site.database, "alice", PASSWORD, postgres_url=postgres_url)
    elsewhere = GeneratorPaths.under(tmp_path / "another-host", postgres_url=postgres_url)
    registry = ModelRegistry.open(elsewhere)
    cycles = CycleLog.open(elsewhere)
    try:
        first, second = two_adapters(registry, elsewhere)
        registry.promote(first)
        cycle = cycles.start(owner="pid 1 on b", live_adapter_id=first, data={"approved": 3})
        cycles.set_candidate(cycle, second)
        registry.promote(second)
        cycles.finish(
            cycle,
            status="promoted",
            reason="no gate figure worse",
            figures={"candidate": {"held_out_rouge_l": 0.5}, "live": {"held_out_rouge_l": 0.25}},
        )
        registry.promote(first)  # an operator rolled back (no figures: no cycle ran)
        cycles.record_rollback(from_id=second, to_id=first, reason="rolled back to v0001")
    finally:
        cycles.close()
        registry.close()

    response = await login(site, "alice", PASSWORD)
    assert response.status == 303, await response.text()
    metrics = await site.client.get("/ops/metrics")
    assert metrics.status == 200
    text = await metrics.text()
    assert "No model trained yet" not in text
    assert "v0002 vs v0001" in text and "no gate figure worse" in text
    assert "rolled back to v0001" in text
    assert "gpt-0001" in text
    assert "Nothing indexed yet" in text


async def test_every_replica_lists_the_index_versions_kept_in_postgres(
    aiohttp_client: Any,
    tmp_path: Path,
    postgres_url: str,
    make_knowledge: Callable[..., KnowledgeBase],
) -> None:
    """An index version another host's ingest published shows on this replica's page."""
    site = await replica(aiohttp_client, tmp_path / "home", postgres_url)
    add_operator(site.database, "alice", PASSWORD, postgres_url=postgres_url)
    other_host = make_knowledge("another-host", postgres_url=postgres_url)
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], other_host)
    assert other_host.version is not None

    response = await login(site, "alice", PASSWORD)
    assert response.status == 303, await response.text()
    text = await (await site.client.get("/ops/metrics")).text()
    assert "Nothing indexed yet" not in text
    assert f"v{other_host.version.id} " in text and other_host.embedder.model_id in text
