"""Operators choose the hand-off target served, on the dashboard's metrics page.

Each server here is the real one of ``create_app`` over a home folder with an ingested
index (the real embedder and knowledge base, SQLite files, loopback), so what it serves
comes from ``indexes/calibration.json`` as in production. The saved calibration weighs no
signal (all weights 0, bias 0): every message that retrieves something has a confidence
of exactly 0.5, between the two thresholds of its trade-off table (0.3 for target 0.5,
0.7 for target 0.9), so the same question is answered under one and handed off under
the other.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.settings import load_settings
from bot.web import WebConfig
from retrieval.calibration import calibration_path, load_calibration
from tests.support.corpus import SMALL_LOGS, write_jsonl
from tests.support.dashboard import Site, add_operator, ask, logged_in, page, post, query

Client = TestClient[web.Request, web.Application]

QUESTION = "When will my order arrive?"
ANSWER = "KB-SHP-01"
WEIGHTS = {
    "bias": 0.0,
    "score": 0.0,
    "margin": 0.0,
    "support": 0.0,
    "vote_share": 0.0,
    "answer_probability": 0.0,
    "question_typicality": 0.0,
}


def figures(target: float, threshold: float, answered: float, wrong: float) -> dict[str, Any]:
    return {
        "target_handoff_recall": target,
        "threshold": threshold,
        "handoff_recall": target,
        "answered_rate": answered,
        "answered_accuracy": 0.9,
        "wrong_answer_rate": wrong,
        "in_scope": 20,
        "out_of_scope": 20,
    }


def save_calibration_file(home: Path, embedder_id: str) -> None:
    """What `supportbot calibrate` saves: fitted for target 0.9, with its trade-off table."""
    fitted = {k: v for k, v in figures(0.9, 0.7, 0.4, 0.05).items() if k != "target_handoff_recall"}
    entry = {
        "result": {**fitted, "weights": WEIGHTS},
        "index_version": 1,
        "embedder_id": embedder_id,
        "created_at": 1.0,
        "target_handoff_recall": 0.9,
        "fitted_on": "files",
        "trade_offs": [
            figures(0.5, 0.3, 0.95, 0.3),  # as saved before generic questions were asked
            {**figures(0.9, 0.7, 0.4, 0.05), "generic_handoff_recall": 0.98},
        ],
    }
    path = calibration_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**entry, "by_embedder": {embedder_id: entry}}))


@pytest.fixture
def home(tmp_path: Path, make_knowledge: Callable[..., Any]) -> tuple[Path, str]:
    """A home with the small logs indexed and alice's account; (home, embedder id)."""
    from retrieval.ingest import ingest_paths

    knowledge = make_knowledge("home")
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], knowledge)
    add_operator(tmp_path / "home" / "supportbot.db")
    return tmp_path / "home", knowledge.embedder.model_id


@pytest.fixture
async def serve(aiohttp_client: Any) -> AsyncIterator[Callable[..., Any]]:
    """Start a server (a replica) over a home folder: the real create_app, no injection."""
    started: list[Client] = []

    async def start(home: Path, **settings: Any) -> Site:
        config = WebConfig(rate_per_minute=100_000, rate_burst=100_000, index_refresh_seconds=0.1)
        app = create_app(load_settings(home=home, web=config, **settings))
        client: Client = await aiohttp_client(app)
        started.append(client)
        return Site(client, app, home / "supportbot.db")

    yield start
    for client in started:
        await client.close()


def handoff_panel(text: str) -> str:
    return text.split('id="handoff-title"')[1].split("</section>")[0]


def rows_of(panel: str) -> list[str]:
    return panel.split("<tbody>")[1].split("</tbody>")[0].split("<tr")[1:]


async def handed_off(site: Site) -> bool:
    """Whether the question is handed off, asked by a new customer."""
    _, reply = await ask(site, QUESTION)
    assert reply["confidence"] == pytest.approx(0.5)
    if not reply["handoff"]:
        assert ANSWER in reply["reply"]
    return bool(reply["handoff"])


async def test_an_operator_moves_the_target_and_every_replica_serves_it(
    home: tuple[Path, str], serve: Callable[..., Any]
) -> None:
    folder, embedder_id = home
    save_calibration_file(folder, embedder_id)
    site = await serve(folder)
    other = await serve(folder)  # a second replica on the same home
    assert await handed_off(site) and await handed_off(other)

    token = await logged_in(site)
    panel = handoff_panel(await page(site, "/ops/metrics"))
    assert "<strong>0.700</strong> go to a person" in panel
    assert "fitted on labelled questions (supportbot calibrate) for hand-off target 0.90" in panel
    before = rows_of(panel)
    assert "highlight" not in before[0] and 'class="highlight"' in before[1]
    assert "Generic off-topic handed off" in panel
    assert "<td>98.0%</td>" in before[1] and "<td>—</td>" in before[0]
    assert "disabled" not in panel

    response = await post(site, "/ops/handoff", token, target="0.5")
    assert response.status == 303
    assert response.headers["Location"] == "/ops/metrics?chosen=0.50#handoff"

    # Served here at once: the next message is answered.
    assert not await handed_off(site)
    panel = handoff_panel(await page(site, "/ops/metrics?chosen=0.50"))
    assert "Hand-off target 0.50 chosen" in panel
    assert "<strong>0.300</strong> go to a person" in panel
    assert "chosen by <strong>alice</strong>" in panel
    after = rows_of(panel)
    assert 'class="highlight"' in after[0] and "highlight" not in after[1]
    assert "alice</strong> chose hand-off target 0.50, threshold 0.300" in panel

    logged = query(site.database, "SELECT operator, action, note FROM ops_actions")
    assert logged == [
        (
            "alice",
            "choose_handoff_target",
            "hand-off target 0.50, threshold 0.300 (was target 0.90, threshold 0.700)",
        )
    ]
    saved = load_calibration(folder)
    assert saved is not None
    assert saved["chosen_target"]["chosen_by"] == "alice"
    assert saved["by_embedder"][embedder_id]["result"]["threshold"] == 0.3

    # The other replica follows at its next index poll, without a restart.
    for _ in range(100):
        if not await handed_off(other):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the other replica still hands off")

    # A restart serves the choice too.
    await site.client.close()
    await other.client.close()
    restarted = await serve(folder)
    assert not await handed_off(restarted)


async def test_choosing_needs_a_login_a_form_token_and_a_target_of_the_table(
    home: tuple[Path, str], serve: Callable[..., Any]
) -> None:
    folder, embedder_id = home
    save_calibration_file(folder, embedder_id)
    site = await serve(folder)
    saved = calibration_path(folder).read_text()

    anonymous = await post(site, "/ops/handoff", None, target="0.5")
    assert anonymous.status == 401
    token = await logged_in(site)
    assert (await post(site, "/ops/handoff", None, target="0.5")).status == 403
    assert (await post(site, "/ops/handoff", "not-the-token", target="0.5")).status == 403
    elsewhere = await site.client.post(
        "/ops/handoff",
        data={"csrf_token": token, "target": "0.5"},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert elsewhere.status == 403
    for target in ("0.6", "abc", "nan", ""):
        refused = await post(site, "/ops/handoff", token, target=target)
        assert refused.status == 422, target
        if target == "0.6":
            assert "no target 0.6" in await refused.text()

    assert calibration_path(folder).read_text() == saved
    assert query(site.database, "SELECT * FROM ops_actions") == []
    assert await handed_off(site)


@pytest.mark.parametrize(
    ("settings", "fitted_for", "served", "source", "disabled"),
    [
        (
            {"engine": {"confidence_threshold": 0.4}},
            None,
            "0.400",
            "engine.confidence_threshold in the settings, which overrides the calibration",
            "engine.confidence_threshold is set in the settings",
        ),
        (
            {},
            "another-embedder",
            "0.250",
            "the settings&#39; default: the calibration saved was fitted for embedder"
            " another-embedder",
            "No calibration was fitted for embedder",
        ),
        (
            # The table's thresholds were computed with the fitted weights, not this one.
            {"engine": {"score_weight": 1.0}},
            None,
            "0.700",
            "the calibration fitted on labelled questions (supportbot calibrate) for hand-off"
            " target 0.90",
            "engine.score_weight is set in the settings",
        ),
    ],
    ids=["threshold-in-settings", "fitted-for-another-embedder", "weight-in-settings"],
)
async def test_the_page_says_what_is_served_when_the_table_is_not(
    home: tuple[Path, str],
    serve: Callable[..., Any],
    settings: dict[str, Any],
    fitted_for: str | None,
    served: str,
    source: str,
    disabled: str,
) -> None:
    folder, embedder_id = home
    save_calibration_file(folder, fitted_for or embedder_id)
    site = await serve(folder, **settings)
    token = await logged_in(site)

    panel = handoff_panel(await page(site, "/ops/metrics"))
    assert f"<strong>{served}</strong> go to a person" in panel
    assert source in panel
    assert "Choosing a target here is disabled: " + disabled in panel
    rows = rows_of(panel)
    assert len(rows) == 2 and not any("highlight" in row for row in rows)
    assert all(" disabled>" in row for row in rows)
    assert '<button type="submit" class="button" disabled' in panel

    refused = await post(site, "/ops/handoff", token, target="0.5")
    assert refused.status == 409
    assert disabled in await refused.text()
    assert load_calibration(folder) == json.loads(calibration_path(folder).read_text())
    assert "chosen_target" not in (load_calibration(folder) or {})
