"""Property-based tests (hypothesis) of the parsers, the scrubber, the fact extractor, the
rate limiter and the web API: whatever bytes or text arrive, nothing raises that should
not, nothing is lost or changed that should be kept, and the server never answers 5xx.

Example counts are modest so CI stays fast; each test records how many cases it ran for
``benchmarks/hardening.py``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.app import SETTINGS
from bot.components import name_finder
from bot.core.engine import clean_text
from bot.web.ratelimit import RateLimiter
from retrieval.facts import extract_facts, unsupported_facts
from retrieval.names import NameFinder
from retrieval.parsers import merge_turns, read_logs, slack_to_plain
from retrieval.pii import PLACEHOLDERS, passes_luhn, scrub
from retrieval.records import Conversation, LogMessage, ParseIssue
from tests.support.browser import ServerThread
from tests.support.fakes import FakeRetriever, source
from tests.support.hardening import live_server, record

# Function-scoped tmp_path is reused across examples on purpose: each example writes its
# own file name, and nothing is read back from a previous example.
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
API_PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Counter:
    """Counts the examples a property ran, and records them when the test ends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cases = 0

    def __call__(self) -> None:
        self.cases += 1


@pytest.fixture
def cases(request: pytest.FixtureRequest) -> Iterator[Counter]:
    counter = Counter(request.node.name)
    yield counter
    # Pass or fail comes from the test report (benchmarks/hardening.py reads JUnit XML).
    record("property", test=counter.name, cases=counter.cases)


# Text as customers and exports really send it: any Unicode but lone surrogates (they
# cannot be written as UTF-8 by anyone), with control characters, emoji, RTL marks.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
line_text = any_text.filter(lambda t: t.strip() != "")


# -- parsers ---------------------------------------------------------------------------------
def _read(path: Path) -> list[Conversation | ParseIssue]:
    return list(read_logs(path))


@PROPERTY
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".jsonl", ".csv"]))
def test_any_bytes_give_conversations_or_issues_never_an_exception(
    tmp_path: Path, cases: Counter, data: bytes, suffix: str
) -> None:
    cases()
    path = tmp_path / f"logs{suffix}"
    path.write_bytes(data)
    results = _read(path)
    lines = data.count(b"\n") + 1
    for result in results:
        assert isinstance(result, Conversation | ParseIssue)
        if isinstance(result, ParseIssue):
            assert 1 <= result.line <= lines, result
        else:
            assert {m.role for m in result.messages} == {"customer", "agent"}


def _turns() -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(
        st.tuples(st.sampled_from(["customer", "agent", "user", "assistant"]), any_text),
        min_size=1,
        max_size=6,
    )


_ROLE = {"customer": "customer", "user": "customer", "agent": "agent", "assistant": "agent"}


@PROPERTY
@given(
    conversations=st.lists(_turns(), min_size=1, max_size=5),
    ensure_ascii=st.booleans(),
)
def test_jsonl_reads_back_every_message_it_was_given(
    tmp_path: Path, cases: Counter, conversations: list[list[tuple[str, str]]], ensure_ascii: bool
) -> None:
    """Exports written with or without escaped Unicode (U+2028, NEL, RTL marks inside a
    line included) come back message for message."""
    cases()
    path = tmp_path / "logs.jsonl"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for n, turns in enumerate(conversations):
            record_ = {"id": f"c{n}", "messages": [{"role": r, "text": t} for r, t in turns]}
            fh.write(json.dumps(record_, ensure_ascii=ensure_ascii) + "\n")
    results = _read(path)
    assert len(results) == len(conversations)
    for n, (turns, result) in enumerate(zip(conversations, results, strict=True)):
        expected = merge_turns((_ROLE[r], t) for r, t in turns)  # type: ignore[misc]
        if {m.role for m in expected} == {"customer", "agent"}:
            assert isinstance(result, Conversation), result
            assert result.id == f"c{n}"
            assert result.messages == expected
        else:
            assert isinstance(result, ParseIssue) and result.line == n + 1


@PROPERTY
@given(rows=st.lists(st.tuples(line_text, line_text), min_size=1, max_size=6))
def test_csv_reads_back_every_question_and_answer(
    tmp_path: Path, cases: Counter, rows: list[tuple[str, str]]
) -> None:
    """Quoted fields with commas, quotes, newlines and carriage returns survive."""
    cases()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["question", "answer"])
    writer.writerows(rows)
    path = tmp_path / "faq.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    results = _read(path)
    conversations = [r for r in results if isinstance(r, Conversation)]
    assert [r for r in results if isinstance(r, ParseIssue)] == []
    assert [c.messages for c in conversations] == [
        (LogMessage("customer", q.strip()), LogMessage("agent", a.strip())) for q, a in rows
    ]


_SLACK_IDS = st.text(string.ascii_uppercase + string.digits, min_size=1, max_size=8)


@PROPERTY
@given(text=any_text, names=st.dictionaries(_SLACK_IDS, any_text, max_size=3))
def test_slack_markup_conversion_never_raises_and_keeps_plain_text(
    cases: Counter, text: str, names: dict[str, str]
) -> None:
    cases()
    plain = slack_to_plain(text, names)
    assert isinstance(plain, str)
    if "<" not in text and "&" not in text:
        assert plain == text


# -- personal data, facts, input cleaning ----------------------------------------------------
_EMAIL = st.from_regex(
    # DNS labels do not end with a hyphen; local parts may hold dots anywhere after the first.
    r"[a-z][a-z0-9._+-]{0,15}@[a-z]([a-z0-9-]{0,8}[a-z0-9])?\.(com|org|de|io)",
    fullmatch=True,
)


def _luhn_card(digits: str) -> str:
    """``digits`` (15 of them) completed with the check digit that makes a valid card."""
    for last in "0123456789":
        if passes_luhn(digits + last):
            return digits + last
    raise AssertionError("unreachable")


# A Visa-like number: "4", 14 random digits, then the check digit (so none is filtered out).
_CARD = st.text("0123456789", min_size=14, max_size=14).map(lambda d: _luhn_card("4" + d))


@PROPERTY
@given(before=any_text, after=any_text, email=_EMAIL, card=_CARD)
def test_scrubbed_text_holds_no_email_or_card_and_scrubbing_is_idempotent(
    cases: Counter, before: str, after: str, email: str, card: str
) -> None:
    cases()
    text = f"{before} {email} and {card} {after}"
    scrubbed = scrub(text).text
    assert email not in scrubbed
    assert card not in scrubbed
    assert PLACEHOLDERS["email"] in scrubbed
    assert scrub(scrubbed).text == scrubbed


@PROPERTY
@given(text=any_text)
def test_scrubbing_any_text_never_raises_and_keeps_text_without_digits_or_at(
    cases: Counter, text: str
) -> None:
    cases()
    result = scrub(text)
    if not any(c.isdigit() for c in text) and "@" not in text:
        assert result.text == text and result.total == 0


@PROPERTY
@given(reply=any_text, evidence=st.lists(any_text, max_size=3))
def test_a_reply_made_of_its_evidence_is_grounded(
    cases: Counter, reply: str, evidence: list[str]
) -> None:
    cases()
    facts = extract_facts(reply)
    assert all(isinstance(f, str) and f for f in facts)
    assert unsupported_facts(reply, [*evidence, reply]) == set()


@PROPERTY
@given(text=any_text, limit=st.integers(min_value=1, max_value=400))
def test_clean_text_is_stripped_bounded_and_free_of_control_characters(
    cases: Counter, text: str, limit: int
) -> None:
    from bot.core.errors import InvalidMessage

    cases()
    try:
        cleaned = clean_text(text, limit)
    except InvalidMessage:
        return
    assert 0 < len(cleaned) <= limit
    assert cleaned == cleaned.strip()
    assert not any(ord(c) < 32 and c not in "\t\n" for c in cleaned)
    assert not any(0x7F <= ord(c) <= 0x9F for c in cleaned)


@PROPERTY
@given(
    per_minute=st.floats(min_value=1, max_value=10_000),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=80),
)
def test_the_rate_limiter_never_allows_more_than_burst_plus_refill(
    cases: Counter, per_minute: float, burst: int, gaps: list[float]
) -> None:
    cases()
    now = [0.0]
    limiter = RateLimiter(per_minute, burst, clock=lambda: now[0])
    allowed = 0
    for gap in gaps:
        now[0] += gap
        wait = limiter.acquire("client")
        assert wait >= 0
        allowed += wait == 0
    assert allowed <= burst + now[0] * per_minute / 60.0 + 1e-6


# -- the web API on a live loopback server ---------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    retriever = FakeRetriever(
        answers=[
            source(
                "c-ret#1", "How do I return boots?", "Returns within 30 days (KB-RET-01).", 0.93
            ),
            source("c-ship#1", "When will my order arrive?", "In 3-5 days (KB-SHP-01).", 0.31),
        ]
    )
    with live_server(tmp_path / "home", retriever) as running:
        yield running


def _new_conversation(session: requests.Session, base: str) -> str:
    response = session.post(f"{base}/api/conversations", timeout=10)
    assert response.status_code == 201
    return str(response.json()["conversation_id"])


def _expect_error_shape(response: requests.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "message"}


SQL_LOOKING = [
    "'; DROP TABLE bot_turns; --",
    "1 OR 1=1",
    "Robert'); DELETE FROM bot_conversations WHERE ('1'='1",
    '" UNION SELECT password FROM ops_operators --',
    "%' AND 1=0 UNION ALL SELECT sqlite_version() --",
]


@functools.cache
def _names_of_server(server: ServerThread) -> NameFinder | None:
    """The name finder the server scrubs with (its home's settings: the lexicon and spaCy
    besides the rules), built once per server."""
    assert server.app is not None
    return name_finder(server.app[SETTINGS])


@API_PROPERTY
@given(text=st.one_of(any_text, st.sampled_from(SQL_LOOKING), st.text(max_size=3000)))
@example(text="Yu")  # a given name alone: the server's finder scrubs it, the rules alone not
def test_any_message_is_answered_or_refused_and_stored_exactly_as_cleaned(
    server: ServerThread, cases: Counter, text: str
) -> None:
    """A message is answered (200) or refused with a 4xx JSON error; when answered, the
    transcript holds it as the engine cleans and scrubs it, SQL-looking text verbatim."""
    cases()
    base = server.origin
    with requests.Session() as session:
        conversation = _new_conversation(session, base)
        response = session.post(
            f"{base}/api/conversations/{conversation}/messages", json={"text": text}, timeout=30
        )
        _expect_error_shape(response)
        turns = session.get(f"{base}/api/conversations/{conversation}/turns", timeout=10).json()
    if response.status_code == 200:
        expected = scrub(clean_text(text, 2000), _names_of_server(server)).text
        assert turns["turns"][0]["text"] == expected
        assert turns["turns"][1]["turn_id"] == response.json()["turn_id"]
        if text in SQL_LOOKING:
            # Verbatim but for a person's name, which the learned tagger finds: "Robert');".
            assert turns["turns"][0]["text"] == text.replace("Robert", "[NAME]")
    else:
        assert response.status_code == 422
        assert turns["turns"] == []


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers()
    | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
_BODY_KEYS = st.sampled_from(["text", "rating", "comment", "conversation_id", ""])


@API_PROPERTY
@given(
    body=st.one_of(_JSON, st.dictionaries(_BODY_KEYS, _JSON, max_size=3)),
    route=st.sampled_from(["messages", "handoff", "rating", "start"]),
)
def test_any_json_body_on_any_route_gets_a_json_answer_below_500(
    server: ServerThread, cases: Counter, body: Any, route: str
) -> None:
    cases()
    base = server.origin
    with requests.Session() as session:
        conversation = _new_conversation(session, base)
        paths: dict[str, Callable[[], str]] = {
            "messages": lambda: f"/api/conversations/{conversation}/messages",
            "handoff": lambda: f"/api/conversations/{conversation}/handoff",
            "rating": lambda: "/api/turns/not-a-turn/rating",
            "start": lambda: "/api/conversations",
        }
        response = session.post(base + paths[route](), json=body, timeout=30)
        _expect_error_shape(response)
        assert session.get(f"{base}/healthz", timeout=10).status_code == 200
