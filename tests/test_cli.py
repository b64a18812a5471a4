"""The command line as a user runs it (in-process through click's runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import SMALL_LOGS, write_jsonl

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


def test_ingest_and_search_from_the_command_line(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    logs = write_jsonl(tmp_path / "logs.jsonl", SMALL_LOGS)
    with open(logs, "a", encoding="utf-8") as fh:
        fh.write('{"id": "x", "messages": "not a list"}\n')
    code, output = _run("--home", home, "ingest", str(logs), "--no-progress")
    assert code == 0, output
    assert "conversations read: 6 (added 6" in output
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


def test_config_file_in_home_is_read(tmp_path: Path) -> None:
    from bot.settings import load_settings

    home = tmp_path / "h"
    home.mkdir()
    (home / "supportbot.toml").write_text("[retrieval]\ntop_k = 7\n", encoding="utf-8")
    assert load_settings(home=home).retrieval.top_k == 7
