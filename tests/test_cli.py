"""The command line as a user runs it (in-process through click's runner)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.support.corpus import REPO, SMALL_LOGS, write_jsonl

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _stdout(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_command_has_help() -> None:
    code, output = _run("--help")
    assert code == 0 and "ingest" in output and "search" in output
    commands = [c.name or c.callback.__name__ for c in app.registered_commands if c.callback]
    assert {"ingest", "search"} <= set(commands)
    for name in commands:
        code, text = _run(name, "--help")
        assert code == 0 and "Usage" in text, name


def test_help_reads_as_prose_and_shows_its_defaults() -> None:
    """Rich help took "[default: ...]" for markup and dropped it (`serve --help` named no
    port), and kept the docstrings' own line breaks in the command list."""
    wide = {"COLUMNS": "300"}
    serve = runner.invoke(app, ["serve", "--help"], env=wide).output
    assert "Port to listen on [default: server.port, 8080]" in serve
    assert "Interface to listen on [default: server.host, 127.0.0.1]" in serve
    train = runner.invoke(app, ["train", "--help"], env=wide).output
    assert "[default: retrieval.tuning.enabled]" in train
    listing = runner.invoke(app, ["--help"], env=wide).output
    assert "every setting's key in supportbot.toml, environment variable, type" in listing
    migrate = runner.invoke(app, ["migrate-db", "--help"], env=wide).output
    assert "still serves, stop that server, run it once more" in migrate
    # Every option's brackets are escaped, so none is taken for markup (calibrate's two
    # were missed once).
    import typer.main

    group = typer.main.get_command(app)
    commands = list(getattr(group, "commands", {}).values())
    while any(hasattr(c, "commands") for c in commands):
        commands = [s for c in commands for s in getattr(c, "commands", {c.name: c}).values()]
    for command in commands:
        for param in command.params:
            text = getattr(param, "help", None) or ""
            unescaped = re.findall(r"(?<!\\)\[[a-z]", text)
            assert not unescaped, (command.name, param.name, text)


def test_the_advice_after_train_makes_the_longer_run_live(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`make run` advised "Train longer (--budget-minutes)", and a longer `train` published
    an adapter that was not made live: only the first one is, unless --promote."""
    from bot.cli.models import _echo_advice
    from finetune.serving_policy import AdapterStatus

    reason = "it was evaluated on 0 held-out replies, fewer than 16"
    _echo_advice(AdapterStatus(live=True, would_serve=False, reason=reason))
    advice = capsys.readouterr().out
    assert "supportbot train --budget-minutes 30 --promote" in advice


def test_ingest_and_search_from_the_command_line(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    logs = write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)
    with open(logs, "a", encoding="utf-8") as fh:
        fh.write('{"id": "x", "messages": "not a list"}\n')
    code, output = _run("--home", home, "ingest", str(logs), "--no-progress")
    assert code == 0, output
    assert "conversations read: 6 (added 6" in output
    # Not "N added, M embedded", which read as if some entries had no vector.
    assert "new texts embedded, repeated and cached ones reuse their vectors)" in output
    assert f"skipped {logs}:7" in output

    lines = _stdout("--home", home, "search", "do giftcards expire", "-k", "2").splitlines()
    assert lines[0].startswith("1. ") and lines[0].endswith("c-gift#1")
    assert any(line.startswith("2. ") for line in lines)

    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"id": "q1", "messages": [{"role": "user", "content": "cancel my order"}]})
        + "\nnot json\n",
        encoding="utf-8",
    )
    out = tmp_path / "hits.jsonl"
    code, output = _run("--home", home, "search", "--in", str(questions), "--out", str(out))
    assert code == 0, output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1"]
    hit = rows[0]["hits"][0]
    assert hit["source_id"] == "c-cancel#1"
    assert set(hit) == {"score", "source_id", "customer_text", "agent_reply"}
    assert f"skipped {questions}:2" in output


def test_ingest_says_it_is_loading_the_name_models_before_the_bar_starts(tmp_path: Path) -> None:
    """`supportbot ingest` showed "reading: 0conv [00:00, ?conv/s]" for about 70 s while the
    name models loaded inside the first scrub, and a new user took the job for hung. Run
    as a user runs it (a process of its own, its log on the terminal), with the rules and
    the learned tagger: one real model, loaded in seconds, where spaCy and the given-name
    lists take a minute."""
    logs = write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)
    env = os.environ | {
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "SUPPORTBOT_RETRIEVAL__NAME_RECOGNIZER": "rules",
        "SUPPORTBOT_RETRIEVAL__NAME_TAGGER": "true",
    }
    command = [sys.executable, "-m", "bot.cli", "--home", str(tmp_path / "home"), "ingest"]
    run = subprocess.run(
        [*command, str(logs)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    terminal = run.stderr
    loading = terminal.find("loading the learned name tagger to scrub names")
    loaded = terminal.find("name models loaded in")
    reading = terminal.find("reading:")
    assert 0 <= loading < loaded < reading, terminal
    assert "conversations read: 6 (added 6" in run.stdout


def test_search_before_ingest_explains_what_to_do(tmp_path: Path) -> None:
    code, output = _run("--home", str(tmp_path / "empty"), "search", "hello")
    assert code == 2 and "supportbot ingest" in output


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    code, output = _run("--home", str(tmp_path / "h"), "ingest", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "no such file" in output


def test_bad_setting_names_the_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_RETRIEVAL__TOP_K", "0")
    code, output = _run("--home", str(tmp_path / "h"), "search", "x")
    assert code == 2 and "retrieval.top_k" in output


def test_settings_prints_the_committed_reference_without_the_users_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-never-printed")
    home = tmp_path / "h"
    home.mkdir()
    (home / "supportbot.toml").write_text("[retrieval]\ntop_k = 7\n", encoding="utf-8")

    printed = _stdout("--home", str(home), "settings")

    reference = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
    assert printed == reference.read_text(encoding="utf-8")
    assert "xoxb-never-printed" not in printed
    assert "| `top_k` | `SUPPORTBOT_RETRIEVAL__TOP_K` | integer, 2 to 100 | `5` |" in printed


def test_config_file_in_home_is_read(tmp_path: Path) -> None:
    from bot.settings import load_settings

    home = tmp_path / "h"
    home.mkdir()
    (home / "supportbot.toml").write_text("[retrieval]\ntop_k = 7\n", encoding="utf-8")
    assert load_settings(home=home).retrieval.top_k == 7


def test_curated_answers_are_listed_edited_and_withdrawn_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from bot.components import open_knowledge_base
    from bot.settings import load_settings
    from bot.store.conversations import ConversationDatabase

    monkeypatch.setenv("LOGNAME", "tess")  # the name getpass reports first
    home = tmp_path / "home"
    code, output = _run(
        "--home",
        str(home),
        "ingest",
        str(write_jsonl(tmp_path / "l.jsonl", SMALL_LOGS)),
        "--no-progress",
    )
    assert code == 0, output
    assert _stdout("--home", str(home), "curated", "list").startswith("no curated answers yet")
    settings = load_settings(home=home)
    question = "Do you rent out camping stoves?"

    async def correct_by_mistake() -> tuple[int, str]:
        store = ConversationDatabase(settings.paths.database)
        try:
            conversation = await store.create_conversation("web")
            await store.add_turn(conversation.id, "customer", question)
            turn = await store.add_turn(conversation.id, "bot", "Sorry, I don't know.")
            made = await store.add_correction(
                question, "<b>just a test</b>", created_by="ana", turn_id=turn.id
            )
            return made.id, conversation.id
        finally:
            await store.aclose()

    correction_id, conversation_id = asyncio.run(correct_by_mistake())
    knowledge = open_knowledge_base(settings)
    try:
        knowledge.add_curated(f"correction:{correction_id}", question, "<b>just a test</b>")
    finally:
        knowledge.close()

    def top_hit() -> str:
        return _stdout("--home", str(home), "search", "can I rent a camping stove", "-k", "1")

    assert "just a test" in top_hit()
    table = _stdout("--home", str(home), "curated", "list").splitlines()
    assert table[0].split("\t") == ["ID", "STATUS", "CREATED", "BY", "QUESTION", "ANSWER"]
    assert table[1].split("\t")[:2] == [str(correction_id), "served"]

    base = ["--home", str(home), "curated"]
    new_answer = "Camping stoves rent for $12/day (KB-RNT-01)."
    code, output = _run(*base, "edit", str(correction_id), "--answer", new_answer)
    assert code == 0, output
    assert "$12/day" in top_hit() and "just a test" not in top_hit()

    # Another wording is attached: served the same answer, under its own entry.
    suggested = _stdout(*base, "suggest", str(correction_id)).splitlines()
    assert suggested[0].split("\t") == ["SIMILARITY", "FROM", "GOT IT", "LIKELY", "QUESTION"]
    hire = "is there stove hire for camping trips"
    code, output = _run(*base, "attach", str(correction_id), hire)
    assert code == 0 and f"attached 1 question(s) to curated answer {correction_id}" in output

    def hire_hit() -> str:
        return _stdout("--home", str(home), "search", hire, "-k", "1")

    assert f"correction:{correction_id}:1" in hire_hit() and "$12/day" in hire_hit()

    code, output = _run(*base, "withdraw", str(correction_id), "--by", "sam")
    assert code == 0 and f"withdrew curated answer {correction_id}" in output
    assert f"correction:{correction_id}" not in top_hit()
    assert f"correction:{correction_id}" not in hire_hit()
    (listed,) = json.loads(_stdout(*base, "list", "--json"))
    assert (listed["withdrawn"], listed["withdrawn_by"]) == (True, "sam")
    assert (listed["answer"], listed["edited_by"]) == (new_answer, "cli:tess")

    code, output = _run(*base, "withdraw", str(correction_id))
    assert code == 0 and "already withdrawn by sam" in output
    code, output = _run(*base, "edit", str(correction_id), "--answer", "again")
    assert code == 2 and "withdrawn" in output
    code, output = _run(*base, "withdraw", "999")
    assert code == 2 and "no curated answer 999" in output

    import sqlite3

    with sqlite3.connect(settings.paths.database) as conn:
        logged = conn.execute(
            "SELECT operator, action, conversation_id, note FROM ops_actions ORDER BY id"
        ).fetchall()
    source_id = f"correction:{correction_id}"
    assert logged == [
        ("cli:tess", "edit_correction", conversation_id, source_id),
        ("cli:tess", "attach_questions", conversation_id, source_id),
        ("sam", "withdraw_correction", conversation_id, source_id),
    ]


def test_log_lines_do_not_join_a_progress_bar() -> None:
    """`make run`'s ingest printed "reading: 0conv [00:00, ?conv/s]2026-12-07 08:41:33,186
    INFO retrieval.given_names: building the list of given names" on one line."""
    import io
    import logging

    from tqdm import tqdm

    from bot.cli.base import BarAwareHandler

    stream = io.StringIO()
    logger = logging.getLogger("tests.cli.bars")
    handler = BarAwareHandler(stream)
    logger.addHandler(handler)
    try:
        with tqdm(unit="conv", desc="reading", file=stream):
            logger.warning("building the list of given names")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().replace("\r", "\n").splitlines()
    assert "building the list of given names" in lines


def _command_paths() -> list[list[str]]:
    """Every command's words after `supportbot`, sub-commands of groups included."""
    import typer.main

    paths: list[list[str]] = []
    pending: list[tuple[list[str], object]] = [([], typer.main.get_command(app))]
    while pending:
        path, command = pending.pop()
        subcommands = getattr(command, "commands", {})
        pending.extend(([*path, name], sub) for name, sub in subcommands.items())
        if path:
            paths.append(path)
    return paths


def test_help_names_arguments_as_the_readme_does() -> None:
    """`supportbot operators add --help` showed "Usage: ... [OPTIONS] {name}" where the
    README writes `supportbot operators add NAME`: the Typer we pin wraps a required
    argument's name in braces, which reads as a choice or a template to fill in."""
    wide = {"COLUMNS": "300"}
    add = runner.invoke(app, ["operators", "add", "--help"], env=wide).output
    assert re.search(r"Usage: \S+ operators add \[OPTIONS\] NAME *\n", add), add
    assert re.search(r"\* +NAME +<str> +Login name", add), add
    withdraw = runner.invoke(app, ["curated", "withdraw", "--help"], env=wide).output
    assert re.search(r"withdraw \[OPTIONS\] ID *\n", withdraw), withdraw
    paths = _command_paths()
    assert ["operators", "add"] in paths and ["ingest"] in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env=wide)
        assert result.exit_code == 0, (path, result.output)
        braces = re.findall(r"\{[^}\s]*\}", result.output)
        assert not braces, (path, braces, result.output)
