"""The server shares the cores out among the threads that run models (retrieval workers
and the generation worker) instead of letting each computation take all of them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from bot.app import create_app, started
from bot.settings import load_settings
from tests.support.fakes import FakeRetriever


@pytest.mark.parametrize(("workers", "configured"), [(3, None), (1, 1), (2, 3)])
async def test_model_threads_are_shared_out_and_restored(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    workers: int,
    configured: int | None,
) -> None:
    import bot.app

    monkeypatch.setattr(bot.app, "_cores", lambda: 16)
    caplog.set_level(logging.INFO, logger="bot.app")
    before = torch.get_num_threads()
    settings = load_settings(
        home=tmp_path / "home",
        web={"retrieval_workers": workers, "torch_threads": configured},
    )
    # The local generator runs here (none is trained yet: the engine copies meanwhile).
    app = create_app(settings, retriever=FakeRetriever())
    async with started(app):
        # Sixteen cores among three retrieval workers and the generation worker: four each.
        assert torch.get_num_threads() == (configured or 16 // (workers + 1))
    assert torch.get_num_threads() == before
    # Said once, at start-up: a stopping server logged the restored count as its last line.
    said = [r.getMessage() for r in caplog.records if "thread(s) each" in r.getMessage()]
    assert len(said) <= 1 and all(f"use {before} thread" not in m for m in said), said


async def test_a_process_that_runs_no_model_leaves_the_threads_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.app

    monkeypatch.setattr(bot.app, "_cores", lambda: 16)
    before = torch.get_num_threads()
    settings = load_settings(home=tmp_path / "home", engine={"answer_mode": "copy"})
    async with started(create_app(settings, retriever=FakeRetriever())):
        assert torch.get_num_threads() == before
