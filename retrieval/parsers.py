"""Streaming readers that turn support-log files into :class:`Conversation` records.

Three layouts are understood: JSON Lines (one conversation per line), CSV (one question and
answer per row) and a Slack workspace export folder (one conversation per thread).
Malformed input never stops a read: the bad record comes through the stream as a
:class:`ParseIssue` and reading goes on, so one broken line in a large export costs one
conversation, not the whole ingest.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from retrieval.records import Conversation, LogMessage, ParseIssue, Role

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 1_000_000
"""Longer lines are reported and skipped; nothing that long is one support conversation."""

ParseResult = Conversation | ParseIssue

_BOM = b"\xef\xbb\xbf"
_JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
_ROLE_ALIASES: Mapping[str, Role] = {
    "customer": "customer",
    "user": "customer",
    "agent": "agent",
    "assistant": "agent",
}


class UnsupportedLogFormat(ValueError):
    """The path does not exist or is not a log layout that :func:`read_logs` understands."""


@dataclass(frozen=True)
class ParseOptions:
    """How to read layouts whose shape varies between exports."""

    csv_question_column: str = "question"
    csv_answer_column: str = "answer"
    # Slack users that answer as support, on top of bots and users whose title says so;
    # bot ids (``B...``) are accepted too, for messages posted by an integration.
    slack_agent_user_ids: frozenset[str] = frozenset()


class _BadRecord(ValueError):
    """One record cannot be used; the message is the reason shown to the operator."""


def read_logs(path: Path, options: ParseOptions = ParseOptions()) -> Iterator[ParseResult]:
    """Read conversations and parse issues from ``path``, in file order.

    A directory is read as a Slack export, ``*.jsonl``/``*.ndjson``/``*.json`` as JSON Lines
    and ``*.csv`` as CSV. Records are produced lazily: JSONL and CSV a line at a time, a
    Slack export a channel at a time (a thread can span several day files).

    Raises:
        UnsupportedLogFormat: at call time, when ``path`` does not exist or its type is not
            one of the above.
        OSError: while iterating, when a JSONL or CSV file cannot be opened or read.
    """
    if not path.exists():
        raise UnsupportedLogFormat(f"{path}: no such file or directory")
    if path.is_dir():
        if not (path / "users.json").is_file() and not (path / "channels.json").is_file():
            raise UnsupportedLogFormat(
                f"{path}: a folder is read as a Slack export, but it has neither "
                "users.json nor channels.json"
            )
        return _read_slack_export(path, options)
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return _read_jsonl(path)
    if suffix == ".csv":
        return _read_csv(path, options)
    raise UnsupportedLogFormat(
        f"{path}: unsupported log format {suffix or '(no extension)'!r}; expected a Slack "
        "export folder, a .jsonl/.ndjson/.json (JSON Lines) file or a .csv file"
    )


# --- shared -----------------------------------------------------------------------------


def merge_turns(turns: Iterable[tuple[Role, str]]) -> tuple[LogMessage, ...]:
    """Messages with surrounding whitespace stripped, blank ones dropped, and consecutive
    messages of one role joined with a newline (chat users split one turn into several)."""
    merged: list[LogMessage] = []
    for role, text in turns:
        text = text.strip()
        if not text:
            continue
        if merged and merged[-1].role == role:
            merged[-1] = LogMessage(role, f"{merged[-1].text}\n{text}")
        else:
            merged.append(LogMessage(role, text))
    return tuple(merged)


def _missing_role(messages: tuple[LogMessage, ...]) -> str | None:
    """Why the conversation teaches nothing (no question or no answer), or None if it does."""
    roles = {m.role for m in messages}
    for role in ("customer", "agent"):
        if role not in roles:
            return f"no {role} message, nothing to learn from"
    return None


def _type_name(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _decoded_lines(path: Path) -> Iterator[tuple[int, str | ParseIssue]]:
    """Each line of ``path`` numbered from 1, decoded as UTF-8 with its line ending kept.

    A line that is not valid UTF-8 or is longer than ``MAX_LINE_BYTES`` comes as a
    ParseIssue instead. Decoding per line keeps one bad line from failing the whole file;
    reading with a size limit keeps a giant line from being loaded into memory.
    """
    with path.open("rb") as stream:
        for number in itertools.count(1):
            raw = stream.readline(MAX_LINE_BYTES + 2)  # room for a CRLF after a full line
            if not raw:
                return
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            if len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
                _discard_rest_of_line(stream, raw)
                yield (
                    number,
                    ParseIssue(str(path), number, f"line longer than {MAX_LINE_BYTES} bytes"),
                )
                continue
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, ParseIssue(str(path), number, f"invalid UTF-8 at byte {exc.start}")


def _discard_rest_of_line(stream: BinaryIO, read_so_far: bytes) -> None:
    while not read_so_far.endswith(b"\n"):
        read_so_far = stream.readline(MAX_LINE_BYTES)
        if not read_so_far:
            return


# --- JSON Lines -------------------------------------------------------------------------


def _read_jsonl(path: Path) -> Iterator[ParseResult]:
    for number, line in _decoded_lines(path):
        if isinstance(line, ParseIssue):
            yield line
        elif line.strip():
            try:
                yield _conversation_from_json(line, path, number)
            except _BadRecord as exc:
                yield ParseIssue(str(path), number, str(exc))


def _conversation_from_json(line: str, path: Path, number: int) -> Conversation:
    """The conversation on one JSONL line; raises _BadRecord saying what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _BadRecord(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise _BadRecord("invalid JSON: nested too deeply") from None
    if not isinstance(record, dict):
        raise _BadRecord(f"expected a JSON object, got {_type_name(record)}")
    messages = _json_messages(record.get("messages"))
    reason = _missing_role(messages)
    if reason:
        raise _BadRecord(reason)
    return Conversation(
        id=_json_id(record.get("id"), path, number),
        messages=messages,
        metadata={k: v for k, v in record.items() if k not in ("id", "messages")},
        source=f"{path}:{number}",
    )


def _json_messages(raw: Any) -> tuple[LogMessage, ...]:
    if raw is None:
        raise _BadRecord("missing 'messages'")
    if not isinstance(raw, list):
        raise _BadRecord(f"'messages' must be an array, got {_type_name(raw)}")
    if not raw:
        raise _BadRecord("'messages' is empty")
    return merge_turns(_json_turn(message, index) for index, message in enumerate(raw, 1))


def _json_turn(message: Any, index: int) -> tuple[Role, str]:
    if not isinstance(message, dict):
        raise _BadRecord(f"message {index} is not an object")
    raw_role = message.get("role")
    role = _ROLE_ALIASES.get(raw_role.strip().lower()) if isinstance(raw_role, str) else None
    if role is None:
        raise _BadRecord(
            f"message {index} has unknown role {raw_role!r}; "
            "expected customer/user or agent/assistant"
        )
    text = message["text"] if "text" in message else message.get("content")
    if text is None:
        raise _BadRecord(f"message {index} has no 'text'")
    if not isinstance(text, str):
        raise _BadRecord(f"message {index}: 'text' must be a string, got {_type_name(text)}")
    return role, text


def _json_id(raw: Any, path: Path, number: int) -> str:
    if raw is None or raw == "":
        # File name and line keep re-reads of the same file giving the same id.
        return f"{path.stem}-line{number}"
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _BadRecord(f"'id' must be a string, got {_type_name(raw)}")
    return str(raw)


# --- CSV --------------------------------------------------------------------------------


def _read_csv(path: Path, options: ParseOptions) -> Iterator[ParseResult]:
    bad_lines: dict[int, ParseIssue] = {}

    def texts() -> Iterator[str]:
        for number, line in _decoded_lines(path):
            if isinstance(line, ParseIssue):
                bad_lines[number] = line
                line = "\n"  # a stand-in keeps csv's line count in step with the file
            yield line

    lines = texts()
    first = next(lines, None)
    if first is None or 1 in bad_lines:
        yield bad_lines.get(1) or ParseIssue(str(path), 1, "empty file, expected a header row")
        return
    reader = csv.reader(itertools.chain([first], lines), delimiter=_sniff_delimiter(first))
    try:
        header = [name.strip() for name in next(reader)]
    except csv.Error as exc:
        yield ParseIssue(str(path), 1, f"malformed CSV header: {exc}")
        return
    missing = [
        c for c in (options.csv_question_column, options.csv_answer_column) if c not in header
    ]
    if missing:
        found = ", ".join(repr(name) for name in header)
        yield ParseIssue(str(path), 1, f"missing column {missing[0]!r} (header has {found})")
        return
    yield from _csv_rows(reader, header, path, options, bad_lines)


def _csv_rows(
    reader: CsvReader,
    header: list[str],
    path: Path,
    options: ParseOptions,
    bad_lines: dict[int, ParseIssue],
) -> Iterator[ParseResult]:
    end = reader.line_num
    row_number = 0
    while True:
        start = end + 1
        try:
            row = next(reader, None)
        except csv.Error as exc:
            row, reason = [], f"malformed CSV: {exc}"
        else:
            reason = ""
        end = reader.line_num
        broken = sorted(n for n in bad_lines if n <= end)
        yield from (bad_lines.pop(n) for n in broken)
        if row is None:
            return
        if reason:
            yield ParseIssue(str(path), start, reason)
        if broken or reason or not any(field.strip() for field in row):
            continue
        row_number += 1
        try:
            yield _csv_conversation(row, header, path, start, row_number, options)
        except _BadRecord as exc:
            yield ParseIssue(str(path), start, str(exc))


def _csv_conversation(
    row: list[str],
    header: list[str],
    path: Path,
    line: int,
    row_number: int,
    options: ParseOptions,
) -> Conversation:
    if len(row) > len(header):
        raise _BadRecord(f"row has {len(row)} fields but the header has {len(header)}")
    values = dict(zip(header, [*row, *[""] * (len(header) - len(row))], strict=True))
    question_column, answer_column = options.csv_question_column, options.csv_answer_column
    empty = [c for c in (question_column, answer_column) if not values[c].strip()]
    if empty:
        raise _BadRecord(" and ".join(repr(c) for c in empty) + " empty")
    ignored = {question_column, answer_column, "id", ""}
    return Conversation(
        id=values.get("id", "").strip() or f"{path.stem}-row{row_number}",
        messages=merge_turns(
            [("customer", values[question_column]), ("agent", values[answer_column])]
        ),
        metadata={k: v for k, v in values.items() if k not in ignored},
        source=f"{path}:{line}",
    )


def _sniff_delimiter(header_line: str) -> str:
    """``;`` when the header uses it more than ``,`` (spreadsheets in comma-decimal locales)."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    return ";" if unquoted.count(";") > unquoted.count(",") else ","


# --- Slack export -----------------------------------------------------------------------

_SLACK_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
# Allow-list rather than deny-list: every other subtype (channel_join, channel_topic,
# pinned_item, tombstone, ...) is Slack bookkeeping, not something a person said.
_SLACK_CONTENT_SUBTYPES = frozenset({"bot_message", "thread_broadcast", "me_message", "file_share"})
_SLACK_MARKUP = re.compile(r"<([^<>]*)>")
_AGENT_TITLE = re.compile(r"support|agent", re.IGNORECASE)


@dataclass(frozen=True)
class _SlackDirectory:
    names: Mapping[str, str]  # user id or bot id -> name shown for @-mentions
    agents: frozenset[str]  # user ids and bot ids whose messages are agent turns


@dataclass(frozen=True)
class _SlackPost:
    ts: Decimal
    thread_ts: str
    role: Role
    text: str
    author: str | None = None  # the poster's name from users.json, when it has one


def _read_slack_export(root: Path, options: ParseOptions) -> Iterator[ParseResult]:
    directory = _SlackDirectory({}, options.slack_agent_user_ids)
    users_file = root / "users.json"
    if users_file.is_file():
        try:
            directory = _slack_directory(_load_json(users_file), options)
        except _BadRecord as exc:
            yield ParseIssue(
                str(users_file), 0, f"{exc}; nobody but the configured ids is an agent"
            )
    for channel_dir in sorted(root.iterdir()):
        if channel_dir.is_dir() and not channel_dir.name.startswith((".", "__")):
            yield from _read_slack_channel(channel_dir, directory)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError as exc:
        raise _BadRecord(f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise _BadRecord(f"invalid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise _BadRecord(f"invalid JSON: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise _BadRecord("invalid JSON: nested too deeply") from None


def _slack_directory(users: Any, options: ParseOptions) -> _SlackDirectory:
    if not isinstance(users, list):
        raise _BadRecord(f"expected an array of users, got {_type_name(users)}")
    names: dict[str, str] = {}
    agents = set(options.slack_agent_user_ids)
    for user in users:
        if not isinstance(user, dict) or not isinstance(user.get("id"), str):
            continue
        profile = user["profile"] if isinstance(user.get("profile"), dict) else {}
        # Messages an app posts carry its bot id instead of a user id.
        ids = [user["id"], *[b for b in [profile.get("bot_id")] if isinstance(b, str)]]
        names.update(dict.fromkeys(ids, _slack_name(user, profile)))
        title = profile.get("title")
        if user.get("is_bot") is True or (isinstance(title, str) and _AGENT_TITLE.search(title)):
            agents.update(ids)
    return _SlackDirectory(names, frozenset(agents))


def _slack_name(user: Mapping[str, Any], profile: Mapping[str, Any]) -> str:
    candidates = (
        profile.get("display_name"),
        profile.get("real_name"),
        user.get("real_name"),
        user.get("name"),
    )
    return next((n for n in candidates if isinstance(n, str) and n.strip()), user["id"])


def _read_slack_channel(channel_dir: Path, directory: _SlackDirectory) -> Iterator[ParseResult]:
    """Conversations of one channel, one per thread; threads may span several day files,
    so the whole channel is gathered before the first thread is produced."""
    threads: dict[str, list[_SlackPost]] = {}
    first_seen: dict[str, Path] = {}
    day_files = sorted(p for p in channel_dir.iterdir() if _SLACK_DAY_FILE.match(p.name))
    for day_file in day_files:
        for item in _slack_day(day_file, directory):
            if isinstance(item, ParseIssue):
                yield item
            else:
                threads.setdefault(item.thread_ts, []).append(item)
                first_seen.setdefault(item.thread_ts, day_file)
    skipped = 0
    for thread_ts, posts in sorted(threads.items(), key=lambda kv: min(p.ts for p in kv[1])):
        posts.sort(key=lambda p: p.ts)
        messages = merge_turns((p.role, p.text) for p in posts)
        if _missing_role(messages):
            skipped += 1  # unanswered questions and announcements: nothing to learn from
            continue
        yield Conversation(
            id=f"slack:{channel_dir.name}:{thread_ts}",
            messages=messages,
            # The posters' names are learned by the name scrubber, then dropped.
            metadata={
                "channel": channel_dir.name,
                "thread_ts": thread_ts,
                "people": sorted({p.author for p in posts if p.author}),
            },
            source=str(first_seen[thread_ts]),
        )
    if skipped:
        logger.info(
            "%s: skipped %d threads without both a customer and an agent message",
            channel_dir,
            skipped,
        )


def _slack_day(day_file: Path, directory: _SlackDirectory) -> Iterator[_SlackPost | ParseIssue]:
    try:
        items = _load_json(day_file)
        if not isinstance(items, list):
            raise _BadRecord(f"expected an array of messages, got {_type_name(items)}")
    except _BadRecord as exc:
        yield ParseIssue(str(day_file), 0, str(exc))
        return
    for index, item in enumerate(items, 1):
        try:
            post = _slack_post(item, directory)
        except _BadRecord as exc:
            yield ParseIssue(str(day_file), 0, f"message {index}: {exc}")
        else:
            if post is not None:
                yield post


def _slack_post(item: Any, directory: _SlackDirectory) -> _SlackPost | None:
    """The message as a turn, or None for Slack bookkeeping (joins, topic changes, ...)."""
    if not isinstance(item, dict):
        raise _BadRecord("not an object")
    if item.get("type", "message") != "message":
        return None
    if item.get("subtype") is not None and item.get("subtype") not in _SLACK_CONTENT_SUBTYPES:
        return None
    ts, order = _slack_ts(item.get("ts"))
    thread_ts = item.get("thread_ts")
    authors = {item.get("user"), item.get("bot_id")}
    text = item.get("text")
    return _SlackPost(
        ts=order,
        thread_ts=thread_ts if isinstance(thread_ts, str) and thread_ts else ts,
        role="agent" if authors & directory.agents else "customer",
        text=slack_to_plain(text, directory.names) if isinstance(text, str) else "",
        author=next(
            (directory.names[a] for a in authors if isinstance(a, str) and a in directory.names),
            None,
        ),
    )


def _slack_ts(raw: Any) -> tuple[str, Decimal]:
    """The timestamp and its exact value; Slack ids messages by it and a float would round."""
    try:
        order = Decimal(raw) if isinstance(raw, str) else None
    except InvalidOperation:
        order = None
    if order is None or not order.is_finite():
        raise _BadRecord(f"invalid 'ts' {raw!r}")
    return raw, order


def slack_to_plain(text: str, names: Mapping[str, str]) -> str:
    """Slack message markup as plain text: ``<@U1>`` becomes ``@name``, ``<url|label>``
    becomes ``label (url)``, ``<url>`` the bare url, and HTML escapes are undone."""
    plain = _SLACK_MARKUP.sub(lambda m: _slack_token(m.group(1), names), text)
    # &amp; last, so an escaped "&amp;lt;" comes out as the literal "&lt;" that was typed.
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _slack_token(body: str, names: Mapping[str, str]) -> str:
    target, _, label = body.partition("|")
    if target.startswith("@"):
        return "@" + (names.get(target[1:]) or label.lstrip("@") or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):  # <!here>, <!subteam^S1|@team>, <!date^...|fallback>
        return label or "@" + target[1:].split("^")[0]
    if not label or label == target or label == target.removeprefix("mailto:"):
        return label or target
    return f"{label} ({target})"
