"""A source's score as customers and operators see it stays within [0, 1] (issue 18).

The ranking adds the operator's bonus to a curated answer, so the corrected question asked
word for word scores 1.05 inside; the API documents a score from 0 to 1 and the dashboard
shows the same figure. Real knowledge base, real embedder, real app.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.adapters.retrieval import KnowledgeRetriever
from bot.app import create_app
from bot.settings import load_settings
from bot.web import WebConfig
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from tests.support.corpus import SMALL_LOGS, write_jsonl
from tests.support.dashboard import Site, add_operator, ask, logged_in, page

QUESTION = "Do you rent out camping stoves for a weekend?"
ANSWER = "Yes: stoves rent for $12/day via our rental program (KB-RNT-01)."


async def test_a_curated_answer_asked_word_for_word_shows_a_score_of_at_most_one(
    tmp_path: Path, make_knowledge: Callable[..., KnowledgeBase], aiohttp_client: Any
) -> None:
    knowledge = make_knowledge()  # the home tmp_path / "home"
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)], knowledge)
    knowledge.add_curated("correction:1", QUESTION, ANSWER)
    ranked = knowledge.search((), QUESTION, 5)
    assert ranked[0].source_id == "correction:1" and ranked[0].score > 1.0  # the bonus

    settings = load_settings(
        home=tmp_path / "home", web=WebConfig(rate_per_minute=100_000, rate_burst=100_000)
    )
    add_operator(settings.paths.database)
    with ThreadPoolExecutor(max_workers=1) as pool:
        app = create_app(settings, retriever=KnowledgeRetriever(knowledge, pool))
        site = Site(await aiohttp_client(app), app, settings.paths.database)
        conversation_id, reply = await ask(site, QUESTION)
        assert reply["reply"] == ANSWER
        sources = reply["sources"]
        # The ranking's order is kept; only the figure is held within [0, 1].
        ranked_ids = [hit.source_id for hit in ranked]
        assert [s["source_id"] for s in sources] == ranked_ids[: len(sources)]
        assert sources[0]["score"] == 1.0
        assert all(0.0 <= s["score"] <= 1.0 for s in sources)
        assert [s["score"] for s in sources] == sorted((s["score"] for s in sources), reverse=True)

        await logged_in(site)
        shown = re.findall(
            r"score (\d+\.\d\d)", await page(site, f"/ops/conversations/{conversation_id}")
        )
        assert shown[0] == "1.00" and all(0.0 <= float(s) <= 1.0 for s in shown)
        await site.client.close()
