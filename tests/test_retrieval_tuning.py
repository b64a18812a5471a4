"""Tuning the embedder on the logs: pair mining, versions served as a pair, calibration,
and a killed run leaving what is served untouched. Real MiniLM, real SQLite, real FAISS."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.core.config import EngineConfig
from retrieval.confidence import (
    FEATURE_NAMES,
    CalibrationCase,
    ConfidenceFeatures,
    calibrate,
)
from retrieval.config import RetrievalConfig
from retrieval.embedder import Embedder
from retrieval.ingest import ingest_paths
from retrieval.knowledge import KnowledgeBase
from retrieval.tuning import MANIFEST, EmbedderTuner
from retrieval.tuning_data import (
    LabelledMessage,
    batches_without_shared_clusters,
    cluster_replies,
    mine_examples,
    split_for_tuning,
)
from tests.support.corpus import exchange, write_jsonl
from tests.support.tuning import TOPICS, small_config, tuning_logs

REPO = Path(__file__).resolve().parent.parent


def test_replies_cluster_by_answer_not_by_wording(embedder: Embedder) -> None:
    replies = [
        "Hi Anna, returns are free within 30 days. See KB-2001.",
        "Hello Bob! Returns are free within 30 days. See KB-2001.",
        "returns are free within   30 days. see KB-2001.",
        "Returns are free within 30 days! See KB-2001.",  # near-identical: merged by meaning
        "Returns are free within 30 days. See KB-2009.",  # same template, other article
        "Gift cards never expire.",
    ]
    clusters = cluster_replies(replies, embedder.encode, merge_similarity=0.92)
    assert clusters[0] == clusters[1] == clusters[2] == clusters[3]
    assert clusters[4] != clusters[0]
    assert clusters[5] not in (clusters[0], clusters[4])
    # Without an encoder, only identical normalised replies merge.
    exact = cluster_replies(replies)
    assert exact[0] == exact[1] == exact[2]
    assert exact[3] != exact[0]


def _messages(embedder: Embedder) -> tuple[list[LabelledMessage], list[int]]:
    messages = []
    for n, log in enumerate(tuning_logs()):
        turns = log["messages"]
        assert isinstance(turns, list)
        messages.append(LabelledMessage(n + 1, str(log["id"]), turns[0]["text"], turns[1]["text"]))
    return messages, cluster_replies([m.reply for m in messages], embedder.encode)


def test_mined_pairs_never_cross_clusters_and_batches_keep_clusters_apart(
    embedder: Embedder,
) -> None:
    messages, clusters = _messages(embedder)
    assert len(set(clusters)) == len(TOPICS)  # greetings did not split any answer
    split = split_for_tuning(
        messages, clusters, validation_share=0.15, held_out_topic_share=0.125, seed=3
    )
    held_out = set(split.held_out_topics)
    assert len(held_out) == 1
    assert not any(split.cluster_of[m.entry_id] in held_out for m in split.train)
    assert not any(split.cluster_of[m.entry_id] in held_out for m in split.validation)
    train_clusters = {split.cluster_of[m.entry_id] for m in split.train}
    assert split.validation
    assert all(split.cluster_of[m.entry_id] in train_clusters for m in split.validation)

    examples = mine_examples(split, embedder.encode, seed=3)
    assert len(examples) == len(split.train)
    text_cluster = {m.text: split.cluster_of[m.entry_id] for m in split.train}
    for example in examples:
        assert text_cluster[example.anchor] == example.cluster
        assert text_cluster[example.positive] == example.cluster
        assert text_cluster[example.negative] != example.cluster
    for batch in batches_without_shared_clusters(examples, 8, seed=1):
        assert len({e.cluster for e in batch}) == len(batch)


def test_threshold_fitting_hits_the_requested_recall() -> None:
    rng = np.random.default_rng(0)
    # Overlapping score ranges: no threshold separates the two sets perfectly.
    cases = [
        CalibrationCase(ConfidenceFeatures(float(s), float(m), 1), in_scope=True, correct=True)
        for s, m in zip(rng.uniform(0.5, 1.0, 200), rng.uniform(0, 0.1, 200), strict=True)
    ] + [
        CalibrationCase(ConfidenceFeatures(float(s), float(m), 1), in_scope=False)
        for s, m in zip(rng.uniform(0.2, 0.7, 100), rng.uniform(0, 0.1, 100), strict=True)
    ]
    for target in (0.8, 0.9, 0.95):
        result = calibrate(cases, target)
        assert target <= result.handoff_recall < target + 0.02
        assert 0 < result.answered_rate < 1


@pytest.fixture
def tuned_home(tmp_path: Path, embedder: Embedder) -> tuple[KnowledgeBase, Path]:
    home = tmp_path / "home"
    kb = KnowledgeBase.open(home / "supportbot.db", home / "indexes", RetrievalConfig(), embedder)
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", tuning_logs())], kb)
    return kb, home


def test_tuning_is_published_as_a_version_and_served_with_its_own_index(
    tuned_home: tuple[KnowledgeBase, Path], embedder: Embedder
) -> None:
    kb, home = tuned_home
    from retrieval.figures import labelled_messages

    messages = labelled_messages(kb)
    clusters = cluster_replies([m.reply for m in messages], embedder.encode)
    split = split_for_tuning(
        messages, clusters, validation_share=0.15, held_out_topic_share=0.0, seed=0
    )
    before_version = kb.version
    assert before_version is not None
    report = EmbedderTuner(embedder, small_config(max_epochs=2)).run(
        split, home / "models" / "embedders", budget_s=120, require_improvement=False
    )
    assert report.steps > 0 and report.folder is not None
    assert (report.folder / MANIFEST).is_file()
    assert kb.version == before_version  # publishing the embedder serves nothing yet

    tuned = kb.embedder_at(str(report.folder))
    # Named by its manifest, not by where it lies: hosts mounting models/ at other paths
    # agree on it (and on the cached vectors and index versions keyed by it).
    assert tuned.model_id.startswith("tuned-") and str(home) not in tuned.model_id
    elsewhere = shutil.copytree(report.folder, home.parent / "other-host" / report.folder.name)
    assert kb.embedder_at(str(elsewhere)).model_id == tuned.model_id
    probe = ["how do I return my boots", "do gift cards expire"]
    assert np.abs(tuned.encode(probe) - embedder.encode(probe)).max() > 1e-3

    sync = kb.reembed(tuned)
    assert sync.version is not None and sync.version.id != before_version.id
    assert sync.version.embedder_location == str(report.folder)
    # A process opening the home later serves the tuned pair, never the base embedder
    # with the tuned index.
    other = KnowledgeBase.open(
        home / "supportbot.db", home / "indexes", RetrievalConfig(), embedder
    )
    try:
        other.load()
        assert other.embedder.model_id == tuned.model_id
        hit = other.search((), "is returning free", 1)[0]
        query = tuned.encode(["is returning free"])[0]
        stored = tuned.encode([hit.customer_text])[0]
        assert hit.score == pytest.approx(float(query @ stored), abs=1e-4)
        # A curated answer added while serving is embedded with the tuned embedder too.
        kb.add_curated("fix-1", "can I pay with crypto", "KB-2010 We do not take crypto.")
        assert kb.search((), "can I pay with crypto", 1)[0].source_id == "fix-1"

        rolled = other.rollback()
        assert rolled.id == before_version.id
        assert other.embedder is other.configured_embedder
        assert kb.refresh_if_stale()  # the server follows the rollback
        assert kb.embedder.model_id == embedder.model_id
        assert kb.search((), "can I pay with crypto", 1)[0].source_id == "fix-1"
    finally:
        other.close()


def test_train_retrieval_reports_before_after_and_saves_the_calibration(
    tuned_home: tuple[KnowledgeBase, Path],
) -> None:
    from bot.components import format_served, served_confidence
    from retrieval.calibration import load_calibration
    from retrieval.training import train_retrieval

    kb, home = tuned_home
    report = train_retrieval(
        kb,
        small_config(max_epochs=1),
        home=home,
        embedders_root=home / "models" / "embedders",
        budget_s=120,
    )
    assert report.clusters == len(TOPICS)
    assert report.held_out_topics == 1
    assert report.before is not None and report.after is not None
    assert report.before.calibration is not None
    assert report.after.calibration is not None
    assert report.after.calibration.handoff_recall >= 0.9
    saved = load_calibration(home)
    assert saved is not None
    assert saved["embedder_id"] == kb.embedder.model_id
    assert saved["index_version"] == (kb.version.id if kb.version else None)
    # The trade-off table an operator chooses from on the dashboard: the fitted target's
    # row has the threshold served, and the generic off-topic share is in every row.
    rows = {row["target_handoff_recall"]: row for row in saved["trade_offs"]}
    assert {0.5, 0.9, 0.99} <= set(rows)
    assert rows[saved["target_handoff_recall"]]["threshold"] == saved["result"]["threshold"]
    assert all(row["generic_handoff_recall"] is not None for row in rows.values())
    recalls = [rows[t]["handoff_recall"] for t in sorted(rows)]
    assert recalls == sorted(recalls)
    table = report.format_table()
    assert "before" in table and "top-1" in table
    # The threshold and signals the server will apply: the ones just fitted and saved.
    kept = [name for name in FEATURE_NAMES if saved["result"]["weights"][name] > 0]
    assert "refitted on the validation split" in table
    served = format_served(served_confidence(EngineConfig(), home, kb.embedder.model_id))
    assert f"hand-off threshold {saved['result']['threshold']:.3f} (fitted" in served
    assert served.endswith(f"signals {', '.join(kept)}")
    assert report.as_dict()["after"]["signals"] == kept


@pytest.mark.parametrize("moment", ["while tuning", "after the embedder is published"])
def test_a_killed_tuning_run_leaves_a_consistent_served_pair(
    tmp_path: Path, embedder: Embedder, moment: str
) -> None:
    home = tmp_path / "home"
    kb = KnowledgeBase.open(home / "supportbot.db", home / "indexes", RetrievalConfig(), embedder)
    ingest_paths([write_jsonl(tmp_path / "logs.jsonl", tuning_logs())], kb)
    live_before = kb.version
    assert live_before is not None
    kb.close()

    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "SUPPORTBOT_RETRIEVAL__TUNING__MIN_BUDGET_S": "0",
        "SUPPORTBOT_RETRIEVAL__TUNING__MIN_MESSAGES": "2",
        "SUPPORTBOT_RETRIEVAL__TUNING__BATCH_SIZE": "8",
        "SUPPORTBOT_RETRIEVAL__TUNING__MAX_EPOCHS": "20",
        "SUPPORTBOT_RETRIEVAL__TUNING__EVAL_EVERY_SHARE": "0.01",
        # The tiny corpus may already be retrieved perfectly: publish anyway.
        "SUPPORTBOT_RETRIEVAL__TUNING__PUBLISH_ONLY_IF_BETTER": "false",
    }
    if moment == "after the embedder is published":
        env["SUPPORTBOT_RETRIEVAL__TUNING__MAX_EPOCHS"] = "1"
    command = [sys.executable, "-m", "bot.cli", "--home", str(home), "train"]
    command += ["--retrieval-only", "--budget-minutes", "3", "--tune-embedder"]
    child = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    embedders = home / "models" / "embedders"
    deadline = time.monotonic() + 120
    try:
        if moment == "while tuning":
            assert child.stderr is not None
            seen = b""
            while b"tuning embedder" not in seen and time.monotonic() < deadline:
                chunk = child.stderr.read1(4096)  # type: ignore[attr-defined]
                if not chunk:
                    break
                seen += chunk
            assert b"tuning embedder" in seen, seen[-2000:]
        else:
            while not (embedders / "v0001").exists() and time.monotonic() < deadline:
                assert child.poll() is None or (embedders / "v0001").exists()
                time.sleep(0.02)
            assert (embedders / "v0001").exists()
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)

    served = KnowledgeBase.open(
        home / "supportbot.db", home / "indexes", RetrievalConfig(), embedder
    )
    try:
        served.load()
        version = served.version
        assert version is not None
        if moment == "while tuning":
            assert version.id == live_before.id
            assert served.embedder is served.configured_embedder
            assert not (embedders / "v0001").exists()
        else:
            # Killed around the re-embedding: either the old pair or the new one, whole.
            assert version.id in (live_before.id, live_before.id + 1)
            assert served.embedder.model_id == version.embedder_id
        hits = served.search((), "do gift cards expire", 1)
        assert "KB-2002" in hits[0].agent_reply
    finally:
        served.close()


async def test_a_running_server_follows_a_new_pair_and_its_threshold(
    aiohttp_client: Any, tuned_home: tuple[KnowledgeBase, Path], embedder: Embedder
) -> None:
    """A train job re-embeds while the server runs: the server switches to the new
    embedder together with its index, and to the hand-off threshold fitted for it."""
    from bot.app import KNOWLEDGE, create_app
    from bot.core.engine import ConversationEngine
    from bot.settings import load_settings
    from bot.web import ENGINE, WebConfig
    from retrieval.calibration import Calibration, save_calibration
    from retrieval.confidence import CalibrationResult, ConfidenceWeights

    job, home = tuned_home
    app = create_app(load_settings(home=home, web=WebConfig(index_refresh_seconds=0.1)))
    client = await aiohttp_client(app)
    engine = app[ENGINE]
    assert isinstance(engine, ConversationEngine)
    threshold_before = engine.handoff_policy().threshold
    response = await client.post("/api/conversations")
    conversation_id = (await response.json())["conversation_id"]

    # What train publishes: an embedder version (here an untrained copy: the serving
    # mechanics are the same), the index re-embedded with it, its calibration.
    folder = home / "models" / "embedders" / "v0001"
    await asyncio.to_thread(embedder.load_model().save, str(folder))
    tuned = job.embedder_at(str(folder))
    result = CalibrationResult(0.123, 0.9, 0.8, 0.95, 0.05, 10, 10, ConfidenceWeights(-2, 5, 1, 0))
    save_calibration(home, Calibration(result, 2, tuned.model_id, time.time()), 0.9)
    await asyncio.to_thread(job.reembed, tuned)

    for _ in range(100):
        if app[KNOWLEDGE].embedder.model_id == tuned.model_id:
            break
        await asyncio.sleep(0.1)
    assert app[KNOWLEDGE].embedder.model_id == tuned.model_id
    for _ in range(20):
        if engine.handoff_policy().threshold != threshold_before:
            break
        await asyncio.sleep(0.05)
    assert engine.handoff_policy().threshold == pytest.approx(0.123)
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": "do giftcards expire"}
    )
    body = await response.json()
    assert response.status == 200 and "KB-2002" in body["reply"]


def test_a_threshold_fitted_on_labelled_files_is_not_replaced_by_held_out_topics(
    tuned_home: tuple[KnowledgeBase, Path], tmp_path: Path
) -> None:
    from retrieval.calibration import load_calibration, run_calibration
    from retrieval.training import train_retrieval

    kb, home = tuned_home
    eval_logs = [
        exchange("v-1", "send my parka back", "KB-2001 Returns are free within 30 days."),
        exchange("v-2", "giftcard still valid?", "KB-2002 Gift cards never expire."),
    ]
    out_of_scope = [
        {"id": "o-1", "messages": [{"role": "customer", "text": "what is the capital of Peru"}]},
        {"id": "o-2", "messages": [{"role": "customer", "text": "write me a poem about cats"}]},
    ]
    run_calibration(
        kb,
        write_jsonl(tmp_path / "eval.jsonl", eval_logs),
        write_jsonl(tmp_path / "oos.jsonl", out_of_scope),
        home,
    )
    fitted = load_calibration(home)
    assert fitted is not None and fitted["fitted_on"] == "files"

    report = train_retrieval(
        kb,
        small_config(),
        home=home,
        embedders_root=home / "models" / "embedders",
        budget_s=60,
        tune=False,
    )
    assert report.skipped == "switched off"
    kept = load_calibration(home)
    assert kept is not None
    assert kept["fitted_on"] == "files"
    assert kept["result"]["threshold"] == fitted["result"]["threshold"]
    assert any("labelled files" in note for note in report.notes)


def test_why_tuning_was_skipped_names_only_what_fell_short() -> None:
    """`make run`'s train printed "not tuned (needs 180 s and 50 messages, has 0 s and 1592
    (after keeping 178 s ...))": 1592 of what, and were they too few?"""
    from retrieval.tuning import tuning_skipped

    config = small_config(min_budget_s=180.0, min_messages=50)
    short_of_time = tuning_skipped(config, -3.0, 1592, after_tuning=178.0, entries=1592)
    assert short_of_time == (
        "needs 180 s, 0 s of the step's budget left after keeping 178 s to re-embed 1592"
        " entries and measure the tuned pair"
    )
    assert "messages" not in short_of_time
    assert tuning_skipped(config, 600.0, 12, after_tuning=0.0, entries=12) == (
        "needs 50 customer messages, the logs have 12"
    )
    both = tuning_skipped(config, 10.0, 12, after_tuning=0.0, entries=12)
    assert both == (
        "needs 180 s, 10 s of the step's budget left; needs 50 customer messages, the logs have 12"
    )


def test_the_hand_off_fit_leaves_small_talk_out(tuned_home: tuple[KnowledgeBase, Path]) -> None:
    """A logged "awesome, appreciate it" is answered by the engine's set reply, never from
    the logs: judged against another agent's "You're welcome!" it counted as a wrong answer
    at a perfect score."""
    from dataclasses import replace

    from retrieval import figures

    kb, _ = tuned_home
    config = small_config()
    _, split = figures.tuning_split(kb, config)
    before = figures.measure(kb, split, config)
    split.validation.append(replace(split.validation[0], text="awesome, appreciate it"))
    # A closing remark after an answer gets the set reply as well.
    closing = replace(
        split.validation[0], text="ok I will check the guide, thanks", after_answer=True
    )
    split.validation.append(closing)
    after = figures.measure(kb, split, config)
    assert before.searched is not None and after.searched is not None
    assert after.searched.validation_questions == before.searched.validation_questions
    assert after.row() == before.row()
    # Opening a conversation, the same words are searched as a question.
    split.validation.append(replace(closing, after_answer=False))
    opening = figures.measure(kb, split, config)
    assert opening.searched is not None
    assert opening.searched.validation_questions == before.searched.validation_questions + 1


def test_the_hand_off_fit_counts_answers_the_engine_withholds_as_handed_off(
    tuned_home: tuple[KnowledgeBase, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `supportbot calibrate` does: a best answer that claims an action is never sent."""
    from retrieval import figures
    from retrieval.embedder_retraining import gate_figures

    kb, _ = tuned_home
    config = small_config()
    _, split = figures.tuning_split(kb, config)
    before = figures.measure(kb, split, config)
    assert before.calibration is not None and before.calibration.answered_rate > 0
    # Every best answer withheld (as if each said "Done! I've cancelled it for you"):
    monkeypatch.setattr(figures, "withheld_best", lambda hits: True)
    after = figures.measure(kb, split, config)
    assert after.calibration is not None
    assert after.calibration.answered_rate == 0.0 and after.calibration.handoff_recall == 1.0
    assert after.calibration.threshold == before.calibration.threshold  # fitted as before
    # With engine.hand_off_claimed_actions off, the engine sends them: answered as before.
    sent = figures.measure(kb, split, config, withhold_claims=False)
    assert sent.calibration is not None
    assert sent.calibration.answered_rate == before.calibration.answered_rate
    # And so in retrain's gate (retrieval.embedder_retraining), which its policy sets.
    gated = gate_figures(kb, split, [], config, withhold_claims=False).pair.calibration
    assert gated is not None and gated.answered_rate == before.calibration.answered_rate


@pytest.mark.parametrize("hand_off_claimed_actions", [True, False])
def test_train_and_retrain_fit_the_hand_off_as_the_engine_is_set_to_withhold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hand_off_claimed_actions: bool
) -> None:
    """A user who turns engine.hand_off_claimed_actions off is sent the replies that claim
    an action; train's figures and saved fit, and retrain's plan, count them answered."""
    from typer.testing import CliRunner

    from bot.cli import app
    from bot.cli.models import retrain_plan
    from bot.settings import load_settings
    from retrieval import figures
    from retrieval.calibration import load_calibration

    home = tmp_path / "home"
    logs = write_jsonl(tmp_path / "logs.jsonl", tuning_logs())
    runner = CliRunner()
    assert (
        runner.invoke(app, ["--home", str(home), "ingest", str(logs), "--no-progress"]).exit_code
        == 0
    )
    monkeypatch.setenv("SUPPORTBOT_ENGINE__HAND_OFF_CLAIMED_ACTIONS", str(hand_off_claimed_actions))
    monkeypatch.setenv("SUPPORTBOT_RETRIEVAL__VERIFIER", "false")
    # Every best answer claims an action (as if each said "Done! I've cancelled it").
    monkeypatch.setattr(figures, "withheld_best", lambda hits: True)
    trained = runner.invoke(
        app,
        [
            *("--home", str(home), "train", "--retrieval-only", "--no-tune-embedder"),
            *("--budget-minutes", "0.5", "--no-progress"),
        ],
    )
    assert trained.exit_code == 0, trained.output
    saved = load_calibration(home)
    assert saved is not None and saved["fitted_on"].startswith("validation split")
    answered = saved["result"]["answered_rate"]
    assert (answered > 0) is not hand_off_claimed_actions
    plan = retrain_plan(load_settings(home=home), tune_embedder=True)
    assert plan.embedder is not None
    assert plan.embedder.policy.withhold_claims is hand_off_claimed_actions


def test_a_deadline_stops_the_hand_off_fit_on_the_questions_searched_by_then(
    tuned_home: tuple[KnowledgeBase, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrieval import figures
    from retrieval.training import train_retrieval

    kb, home = tuned_home
    config = small_config()
    _, split = figures.tuning_split(kb, config)
    monkeypatch.setattr(figures, "_ROUND", 4)  # the toy logs' questions in several rounds
    whole = figures.measure(kb, split, config)
    assert whole.searched is not None and not whole.searched.cut
    assert whole.searched.rounds > 2 and whole.calibration is not None

    ticks = iter(range(1000))  # a clock that moves one second each time it is read
    cut = figures.measure(kb, split, config, deadline=0.0, clock=lambda: float(next(ticks)))
    searched = cut.searched
    assert searched is not None and searched.cut and searched.rounds == 1
    # One round: its share of each kind, both kinds present, the fit made on them alone.
    assert 0 < searched.validation < searched.validation_questions
    assert 0 < searched.held_out < searched.held_out_questions
    assert cut.calibration is not None
    assert cut.calibration.in_scope + cut.calibration.out_of_scope <= (
        searched.validation + searched.held_out
    )
    # A count of rounds is always the same questions: the same figures and the same fit.
    again = figures.measure(kb, split, config, max_rounds=1)
    assert again.row() == cut.row()

    # train's retrieval step with its budget spent before measuring: it says so.
    report = train_retrieval(
        kb, config, home=home, embedders_root=home / "models" / "embedders", budget_s=0.001
    )
    assert report.before is not None and report.before.searched is not None
    assert report.before.searched.rounds == 1
    assert "the 'before' row and its fit: " in report.format_table()
    assert report.as_dict()["before"]["searched"]["validation"] == searched.validation


def test_replies_left_unembedded_by_the_deadline_merge_only_when_identical_and_are_cached(
    tuned_home: tuple[KnowledgeBase, Path],
) -> None:
    from retrieval.figures import ReplyEncoding, tuning_split

    kb, _ = tuned_home
    config = small_config()
    late = ReplyEncoding()
    _, cut = tuning_split(kb, config, deadline=0.0, clock=lambda: 1.0, encoding=late)
    assert late.cut and late.embedded < late.replies
    whole = ReplyEncoding()
    _, split = tuning_split(kb, config, encoding=whole)
    assert not whole.cut and whole.replies == late.replies
    # Without vectors, replies merge only when identical once normalised (the toy logs'
    # wordings of one answer differ only by their greetings: the same answers either way).
    assert cut.cluster_count >= split.cluster_count == len(TOPICS)
    # The vectors are cached: the next job clusters by meaning whatever its deadline.
    cached = ReplyEncoding()
    _, again = tuning_split(kb, config, deadline=0.0, clock=lambda: 1.0, encoding=cached)
    assert not cached.cut and again.cluster_of == split.cluster_of


def test_embedding_the_replies_to_cluster_them_shows_a_bar(
    tuned_home: tuple[KnowledgeBase, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`make run`'s train was silent for a minute after "loaded embedder": the step's split
    embedded 1,363 replies with no bar."""
    from retrieval.figures import ReplyEncoding, tuning_split

    kb, _ = tuned_home
    encoding = ReplyEncoding()
    tuning_split(kb, small_config(), encoding=encoding, progress=True)
    err = capsys.readouterr().err
    assert encoding.embedded > 0
    assert "embed replies: 100%|" in err and f"{encoding.embedded}/{encoding.embedded}" in err


def test_a_tuned_embedder_whose_index_the_deadline_cut_is_not_published(
    tuned_home: tuple[KnowledgeBase, Path],
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from types import SimpleNamespace

    from retrieval import training
    from retrieval.tuning import RetrievalScores, TuningReport
    from tests.support.embedder_retraining import publish

    kb, home = tuned_home
    live = kb.version
    model = tmp_path / "minilm"
    embedder.load_model().save(str(model))
    published: list[tuple[Path, str]] = []

    class Tuned:
        """Publishes MiniLM as the tuned embedder."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def run(self, split: Any, root: Path, *, budget_s: float, **kwargs: Any) -> TuningReport:
            folder = publish(model, root)
            published.append((folder, kb.embedder_at(str(folder)).model_id))
            scores = RetrievalScores(0.5, 0.5, 4)
            return TuningReport(folder, embedder.name, 8, 1, 0.5, 1.0, "budget", scores, scores)

    monkeypatch.setattr(training, "EmbedderTuner", Tuned)
    # The step's clock runs 1,000 s behind the one its parts read: its own sums leave time
    # to tune, and every deadline it hands them (re-embedding's too) has passed.
    real = time.monotonic
    monkeypatch.setattr(
        training, "time", SimpleNamespace(monotonic=lambda: real() - 1000.0, time=time.time)
    )
    report = training.train_retrieval(
        kb, small_config(), home=home, embedders_root=home / "models" / "embedders", budget_s=600
    )

    assert report.tuning is not None and not report.reembedded
    assert report.reembedding_cut is not None and report.reembedding_cut.embedded == 0
    assert report.after is report.before  # the served pair's figures and fit stand
    # The served pair serves on; nothing of the tuned embedder is left.
    assert kb.version == live == kb.store.live_index_version()
    assert kb.embedder is kb.configured_embedder
    [(folder, model_id)] = published
    assert not folder.exists() and kb.store.drop_cached_vectors(model_id) == 0
    table = report.format_table()
    assert "not published (its index could not be re-embedded in time)" in table
    assert "re-embedding the index reached 0 of" in table
    assert report.as_dict()["reembedding_cut"] == {
        "embedded": 0,
        "entries": report.reembedding_cut.texts,
    }


def test_a_cluster_whose_question_is_asked_elsewhere_is_never_held_out() -> None:
    """Issue 19: replies to "ok thx" worded differently form separate clusters; held out,
    such a cluster stood in for an out-of-scope topic while its question had a twin in the
    index (score 1.0), and handing off nine in ten of them handed off nearly everything."""
    messages, clusters = [], []

    def add(cluster: int, question: str, reply: str) -> None:
        messages.append(LabelledMessage(len(messages) + 1, f"c{len(messages)}", question, reply))
        clusters.append(cluster)

    for n in range(3):
        add(0, ["ok thx", "Great, thanks!", "thank you"][n], "You're welcome!")
        add(1, ["Ok, thx!", "cheers", "fine"][n], "Happy to help, take care.")
        add(2, f"is the return label free {n}", "The label costs $6.95.")
        add(3, f"do gift cards expire {n}", "Gift cards never expire.")
    for seed in range(20):
        split = split_for_tuning(
            messages, clusters, validation_share=0.2, held_out_topic_share=0.49, seed=seed
        )
        assert set(split.held_out_topics) <= {2, 3}
        assert split.held_out_topics
