"""Reading support logs: each layout's happy path, and every malformed case reported with
its line while the records around it still come through."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from retrieval.parsers import (
    MAX_LINE_BYTES,
    ParseOptions,
    ParseResult,
    UnsupportedLogFormat,
    read_logs,
    slack_to_plain,
)
from retrieval.records import Conversation, LogMessage, ParseIssue


def conversations(results: list[ParseResult]) -> list[Conversation]:
    return [r for r in results if isinstance(r, Conversation)]


def issues(results: list[ParseResult]) -> list[ParseIssue]:
    return [r for r in results if isinstance(r, ParseIssue)]


def jsonl_line(record: Any) -> str:
    return json.dumps(record) + "\n"


GOOD = {
    "id": "good",
    "messages": [
        {"role": "customer", "text": "Where is my order?"},
        {"role": "agent", "text": "On its way."},
    ],
}


# --- JSON Lines -------------------------------------------------------------------------


def test_jsonl_reads_roles_aliases_metadata_and_source(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    record = {
        "id": "c-1",
        "channel": "email",
        "tags": ["refund"],
        "messages": [
            {"role": "User", "content": "Can I get a refund?"},
            {"role": "ASSISTANT", "text": "Yes, within 30 days."},
            {"role": "customer", "text": "Thanks"},
            {"role": "Agent", "content": "You're welcome"},
        ],
    }
    path.write_text(jsonl_line(record), encoding="utf-8")

    [conversation] = list(read_logs(path))

    assert conversation == Conversation(
        id="c-1",
        messages=(
            LogMessage("customer", "Can I get a refund?"),
            LogMessage("agent", "Yes, within 30 days."),
            LogMessage("customer", "Thanks"),
            LogMessage("agent", "You're welcome"),
        ),
        metadata={"channel": "email", "tags": ["refund"]},
        source=f"{path}:1",
    )


def test_jsonl_merges_consecutive_turns_and_drops_blank_messages(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    record = {
        "messages": [
            {"role": "customer", "text": "Hi"},
            {"role": "customer", "text": "   "},
            {"role": "customer", "text": " my parcel is late "},
            {"role": "agent", "text": "Sorry to hear that."},
            {"role": "agent", "text": "It ships tomorrow."},
        ]
    }
    path.write_text(jsonl_line(record), encoding="utf-8")

    [conversation] = conversations(list(read_logs(path)))

    assert conversation.messages == (
        LogMessage("customer", "Hi\nmy parcel is late"),
        LogMessage("agent", "Sorry to hear that.\nIt ships tomorrow."),
    )


def test_jsonl_without_id_gets_a_stable_id_from_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    no_id = {"messages": GOOD["messages"]}
    path.write_text(jsonl_line(GOOD) + "\n" + jsonl_line(no_id), encoding="utf-8")

    first = [c.id for c in conversations(list(read_logs(path)))]
    second = [c.id for c in conversations(list(read_logs(path)))]

    assert first == ["good", "export-line3"]
    assert second == first


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json", ".JSONL"])
def test_jsonl_suffixes(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"chats{suffix}"
    path.write_text(jsonl_line(GOOD), encoding="utf-8")

    assert [c.id for c in conversations(list(read_logs(path)))] == ["good"]


def test_jsonl_strips_bom_and_skips_blank_lines_keeping_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + jsonl_line(GOOD).encode() + b"\n   \n" + b"not json\n")

    results = list(read_logs(path))

    assert [c.id for c in conversations(results)] == ["good"]
    assert [(i.line, i.reason.split(":")[0]) for i in issues(results)] == [(4, "invalid JSON")]


def _messages(*pairs: Any) -> dict[str, Any]:
    return {"messages": [{"role": role, "text": text} for role, text in pairs]}


MALFORMED_JSONL = [
    pytest.param("{not json", "invalid JSON", id="invalid-json"),
    pytest.param("[1, 2]", "expected a JSON object, got array", id="not-an-object"),
    pytest.param('"just a string"', "expected a JSON object, got string", id="string"),
    pytest.param(json.dumps({"id": "x"}), "missing 'messages'", id="messages-missing"),
    pytest.param(json.dumps({"messages": {"a": 1}}), "'messages' must be an array", id="not-list"),
    pytest.param(json.dumps({"messages": []}), "'messages' is empty", id="messages-empty"),
    pytest.param(
        json.dumps({"messages": [{"role": "customer", "text": "hi"}, "agent: hello"]}),
        "message 2 is not an object",
        id="message-not-object",
    ),
    pytest.param(
        json.dumps(_messages(("customer", "hi"), ("system", "be nice"))),
        "message 2 has unknown role 'system'",
        id="unknown-role",
    ),
    pytest.param(
        json.dumps({"messages": [{"text": "hi"}, {"role": "agent", "text": "hello"}]}),
        "message 1 has unknown role None",
        id="role-missing",
    ),
    pytest.param(
        json.dumps({"messages": [{"role": "customer"}, {"role": "agent", "text": "hello"}]}),
        "message 1 has no 'text'",
        id="text-missing",
    ),
    pytest.param(
        json.dumps(_messages(("customer", "hi"), ("agent", 42))),
        "message 2: 'text' must be a string, got number",
        id="text-not-string",
    ),
    pytest.param(
        json.dumps(_messages(("agent", "Hello, how can I help?"))),
        "no customer message",
        id="no-customer",
    ),
    pytest.param(
        json.dumps(_messages(("customer", "hello?"), ("agent", "   "))),
        "no agent message",
        id="no-agent-after-blank-dropped",
    ),
    pytest.param(
        json.dumps({"id": {"n": 1}, **_messages(("customer", "a"), ("agent", "b"))}),
        "'id' must be a string, got object",
        id="id-not-string",
    ),
    pytest.param("[" * 100_000, "nested too deeply", id="deeply-nested"),
]


@pytest.mark.parametrize(("bad_line", "reason"), MALFORMED_JSONL)
def test_jsonl_malformed_line_is_reported_and_reading_goes_on(
    tmp_path: Path, bad_line: str, reason: str
) -> None:
    path = tmp_path / "chats.jsonl"
    after = {**GOOD, "id": "after"}
    path.write_text(jsonl_line(GOOD) + bad_line + "\n" + jsonl_line(after), encoding="utf-8")

    results = list(read_logs(path))

    assert [c.id for c in conversations(results)] == ["good", "after"]
    [issue] = issues(results)
    assert (issue.path, issue.line) == (str(path), 2)
    assert reason in issue.reason
    assert results.index(issue) == 1  # in file order


def test_jsonl_invalid_utf8_costs_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    bad = b'{"messages": [{"role": "customer", "text": "caf\xe9"}]}\n'
    path.write_bytes(jsonl_line(GOOD).encode() + bad + jsonl_line({**GOOD, "id": "after"}).encode())

    results = list(read_logs(path))

    assert [c.id for c in conversations(results)] == ["good", "after"]
    assert [(i.line, i.reason) for i in issues(results)] == [(2, "invalid UTF-8 at byte 47")]


def test_jsonl_line_over_one_megabyte_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    huge = json.dumps({**GOOD, "id": "huge", "blob": "x" * MAX_LINE_BYTES})
    path.write_text(
        jsonl_line(GOOD) + huge + "\n" + jsonl_line({**GOOD, "id": "after"}), encoding="utf-8"
    )

    results = list(read_logs(path))

    assert [c.id for c in conversations(results)] == ["good", "after"]
    [issue] = issues(results)
    assert issue.line == 2
    assert "longer than" in issue.reason


# --- CSV --------------------------------------------------------------------------------


def test_csv_rows_become_single_exchange_conversations(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(
        "question,answer,product\n"
        "How do I reset my password?,Use the link on the login page.,web\n"
        '"Do you ship to Canada, too?","Yes, in 5 days.",store\n',
        encoding="utf-8",
    )

    first, second = read_logs(path)

    assert first == Conversation(
        id="faq-row1",
        messages=(
            LogMessage("customer", "How do I reset my password?"),
            LogMessage("agent", "Use the link on the login page."),
        ),
        metadata={"product": "web"},
        source=f"{path}:2",
    )
    assert isinstance(second, Conversation)
    assert second.id == "faq-row2"
    assert second.messages[0].text == "Do you ship to Canada, too?"


def test_csv_custom_columns_semicolons_bom_and_id_column(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        "\ufeffticket;Frage;Antwort;Preis\n"
        "T-1;Wie lange dauert der Versand?;2 bis 3 Tage.;1,99\n".encode()
    )
    options = ParseOptions(csv_question_column="Frage", csv_answer_column="Antwort")

    [conversation] = list(read_logs(path, options))

    assert isinstance(conversation, Conversation)
    assert conversation.messages == (
        LogMessage("customer", "Wie lange dauert der Versand?"),
        LogMessage("agent", "2 bis 3 Tage."),
    )
    assert conversation.metadata == {"ticket": "T-1", "Preis": "1,99"}


def test_csv_id_column_is_used_as_conversation_id(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("id,question,answer\nq-17,Hi?,Hello.\n,Blank id?,Falls back.\n")

    assert [c.id for c in conversations(list(read_logs(path)))] == ["q-17", "faq-row2"]


def test_csv_missing_column_is_one_issue_at_line_one(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("q,answer\nHi?,Hello.\nBye?,Bye.\n")

    results = list(read_logs(path))

    assert results == [
        ParseIssue(str(path), 1, "missing column 'question' (header has 'q', 'answer')")
    ]


def test_csv_empty_cells_are_reported_with_line_numbers_past_multiline_fields(
    tmp_path: Path,
) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(
        "question,answer\n"
        '"My order\nhas not arrived",We will check.\n'  # lines 2-3
        ",No question here.\n"  # line 4
        "\n"  # line 5, blank: skipped silently
        "A question without answer,  \n"  # line 6
        ",,\n"  # line 7, an empty spreadsheet row: skipped silently
        "Last one?,Yes.\n"  # line 8
    )

    results = list(read_logs(path))

    assert [(c.source, c.messages[0].text) for c in conversations(results)] == [
        (f"{path}:2", "My order\nhas not arrived"),
        (f"{path}:8", "Last one?"),
    ]
    assert [(i.line, i.reason) for i in issues(results)] == [
        (4, "'question' empty"),
        (6, "'answer' empty"),
    ]


def test_csv_bad_rows_are_reported_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_bytes(
        b"question,answer\n"
        b"Caf\xe9?,Yes.\n"  # latin-1, not UTF-8
        b"Too,many,fields\n"
        b"Fine?,Fine.\n"
    )

    results = list(read_logs(path))

    assert [c.source for c in conversations(results)] == [f"{path}:4"]
    assert [(i.line, i.reason) for i in issues(results)] == [
        (2, "invalid UTF-8 at byte 3"),
        (3, "row has 3 fields but the header has 2"),
    ]


def test_csv_empty_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("")

    assert list(read_logs(path)) == [ParseIssue(str(path), 1, "empty file, expected a header row")]


# --- Slack export -----------------------------------------------------------------------

USERS = [
    {"id": "UCUST", "name": "dana", "profile": {"display_name": "Dana", "title": "Customer"}},
    {"id": "UAGENT", "name": "sam", "profile": {"real_name": "Sam", "title": "Customer Support"}},
    {"id": "UBOT", "name": "helpbot", "is_bot": True, "profile": {"bot_id": "BHELP"}},
    {"id": "UOPS", "name": "olu", "profile": {"display_name": "Olu", "title": "Engineer"}},
]


def _msg(user: str, ts: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "user": user, "ts": ts, "text": text, **extra}


def write_export(root: Path, days: dict[str, list[Any]], channel: str = "help") -> Path:
    root.mkdir()
    (root / "users.json").write_text(json.dumps(USERS))
    (root / "channels.json").write_text(json.dumps([{"id": "C1", "name": channel}]))
    (root / channel).mkdir()
    for day, messages in days.items():
        (root / channel / f"{day}.json").write_text(json.dumps(messages))
    return root


def test_slack_thread_across_day_files_is_one_conversation(tmp_path: Path) -> None:
    export = write_export(
        tmp_path / "export",
        {
            "2026-03-01": [
                _msg("UCUST", "100.000100", "joined", subtype="channel_join"),
                _msg(
                    "UCUST",
                    "100.000200",
                    "My <https://shop.test/o/7|order> is late &amp; lost",
                    thread_ts="100.000200",
                ),
                _msg("UCUST", "100.000300", "Anyone around?"),  # no replies: not a conversation
                _msg("UAGENT", "100.000400", "Looking, <@UCUST>", thread_ts="100.000200"),
            ],
            "2026-03-02": [
                _msg(
                    "UCUST",
                    "200.000100",
                    "Any news? See <https://img.test/1.png>",
                    thread_ts="100.000200",
                ),
                {
                    "type": "message",
                    "subtype": "bot_message",
                    "bot_id": "BHELP",
                    "ts": "200.000200",
                    "text": "Refund issued: 5 &lt; 10",
                    "thread_ts": "100.000200",
                },
            ],
        },
    )

    [conversation] = list(read_logs(export))

    assert conversation == Conversation(
        id="slack:help:100.000200",
        messages=(
            LogMessage("customer", "My order (https://shop.test/o/7) is late & lost"),
            LogMessage("agent", "Looking, @Dana"),
            LogMessage("customer", "Any news? See https://img.test/1.png"),
            LogMessage("agent", "Refund issued: 5 < 10"),
        ),
        # The posters' names, for the name scrubber to learn (ingest drops them).
        metadata={
            "channel": "help",
            "thread_ts": "100.000200",
            "people": ["Dana", "Sam", "helpbot"],
        },
        source=str(export / "help" / "2026-03-01.json"),
    )


def test_slack_threads_come_in_time_order_and_unanswered_ones_are_skipped(
    tmp_path: Path,
) -> None:
    export = write_export(
        tmp_path / "export",
        {
            "2026-03-01": [
                _msg("UCUST", "9.0", "second question", thread_ts="9.0"),
                _msg("UAGENT", "9.5", "second answer", thread_ts="9.0"),
                _msg("UCUST", "10.0", "nobody answers", thread_ts="10.0"),
                _msg("UCUST", "10.5", "hello?", thread_ts="10.0"),
                _msg("UCUST", "1.0", "first question", thread_ts="1.0"),
                _msg("UAGENT", "1.5", "first answer", thread_ts="1.0"),
            ]
        },
    )

    assert [c.messages[0].text for c in conversations(list(read_logs(export)))] == [
        "first question",
        "second question",
    ]


def test_slack_explicit_agent_ids(tmp_path: Path) -> None:
    export = write_export(
        tmp_path / "export",
        {
            "2026-03-01": [
                _msg("UCUST", "1.0", "Is the API down?", thread_ts="1.0"),
                _msg("UOPS", "2.0", "Fixed now.", thread_ts="1.0"),
            ]
        },
    )

    assert list(read_logs(export)) == []  # UOPS is an engineer, not support, by default
    [conversation] = list(read_logs(export, ParseOptions(slack_agent_user_ids=frozenset({"UOPS"}))))
    assert isinstance(conversation, Conversation)
    assert [m.role for m in conversation.messages] == ["customer", "agent"]


def test_slack_unreadable_day_file_is_reported_and_others_still_read(tmp_path: Path) -> None:
    export = write_export(
        tmp_path / "export",
        {
            "2026-03-01": [
                _msg("UCUST", "1.0", "Hi", thread_ts="1.0"),
                _msg("UAGENT", "1.1", "Hello", thread_ts="1.0"),
            ],
            "2026-03-03": [
                _msg("UCUST", "3.0", "Bye", thread_ts="3.0"),
                _msg("UAGENT", "3.1", "Bye!", thread_ts="3.0"),
            ],
        },
    )
    broken = export / "help" / "2026-03-02.json"
    broken.write_text('[{"type": "message", ')
    not_a_list = export / "help" / "2026-03-04.json"
    not_a_list.write_text('{"type": "message"}')

    results = list(read_logs(export))

    assert [c.id for c in conversations(results)] == ["slack:help:1.0", "slack:help:3.0"]
    assert [(i.path, i.line) for i in issues(results)] == [(str(broken), 0), (str(not_a_list), 0)]
    assert "invalid JSON" in issues(results)[0].reason
    assert "expected an array of messages" in issues(results)[1].reason


@pytest.mark.parametrize(
    ("markup", "plain"),
    [
        ("thanks <@UAGENT>!", "thanks @Sam!"),
        ("ping <@UNKNOWN>", "ping @UNKNOWN"),
        (
            "see <https://help.test/a?b=1&amp;c=2|the guide>",
            "see the guide (https://help.test/a?b=1&c=2)",
        ),
        ("see <https://help.test/a>", "see https://help.test/a"),
        ("mail <mailto:dana@shop.test|dana@shop.test>", "mail dana@shop.test"),
        ("in <#C1|help>", "in #help"),
        ("<!here> outage", "@here outage"),
        ("a &lt;b&gt; &amp;amp; c", "a <b> &amp; c"),
    ],
)
def test_slack_markup_becomes_plain_text(markup: str, plain: str) -> None:
    names = {"UAGENT": "Sam"}

    assert slack_to_plain(markup, names) == plain


def test_slack_broken_users_file_is_reported_and_threads_still_read(tmp_path: Path) -> None:
    export = write_export(
        tmp_path / "export",
        {
            "2026-03-01": [
                _msg("UCUST", "1.0", "Hi <@UCUST>", thread_ts="1.0"),
                _msg("UAGENT", "1.1", "Hello", thread_ts="1.0"),
            ]
        },
    )
    (export / "users.json").write_bytes(b"\xff\xfe not json")

    results = list(read_logs(export, ParseOptions(slack_agent_user_ids=frozenset({"UAGENT"}))))

    [issue] = issues(results)
    assert (issue.path, issue.line) == (str(export / "users.json"), 0)
    [conversation] = conversations(results)
    assert conversation.messages == (
        LogMessage("customer", "Hi @UCUST"),
        LogMessage("agent", "Hello"),
    )


# --- unsupported paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.jsonl", "no such file or directory"),
        ("notes.txt", "unsupported log format '.txt'"),
        ("README", "unsupported log format '(no extension)'"),
    ],
)
def test_unknown_or_missing_path_raises(tmp_path: Path, name: str, message: str) -> None:
    path = tmp_path / name
    if name != "missing.jsonl":
        path.write_text("hello\n")

    with pytest.raises(UnsupportedLogFormat, match=re.escape(message)):
        read_logs(path)


def test_folder_that_is_not_a_slack_export_raises(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedLogFormat, match=r"neither users\.json nor channels\.json"):
        read_logs(tmp_path)
