"""Read-only queries for the dashboard over the declared tables, the same statements on
the home's SQLite file and on the PostgreSQL database replicas share.

The conversation store answers one record at a time; the dashboard needs joined pages
(a flag with the question and the reply), per-conversation extras and daily aggregates.
These functions only read, on a connection the caller gives (``DashboardDatabase.read``);
the tables of other components (``finetune_*``, ``index_versions``) are optional and read
as empty when that component never ran on this database.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from bot.core.types import (
    ConversationState,
    Correction,
    CustomerDetail,
    Flag,
    FlagReason,
    FlagStatus,
    Outcome,
    Rating,
)
from bot.store.records import correction_of, flag_of, rating_of
from bot.store.tables import (
    OPEN,
    conversations,
    correction_questions,
    corrections,
    customer_details,
    flags,
    ratings,
    turns,
)
from finetune.serving_policy import AdapterStatus, adapter_status
from finetune.tables import adapters, base_models, live
from finetune.tables import retrain_cycles as cycles
from retrieval.tables import index_versions as published

T = TypeVar("T")

DAY_SECONDS = 86_400

_c, _t, _r, _f, _k = conversations.c, turns.c, ratings.c, flags.c, corrections.c
# A flag's row and its conversation's channel (bot.store.records.flag_of reads them).
_FLAGS = sa.select(flags, _c.channel).join_from(flags, conversations)


# -- the review queue -------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueFilters:
    """``since`` inclusive, ``until`` exclusive (epoch seconds); None: no bound."""

    status: FlagStatus | None = FlagStatus.OPEN
    reason: FlagReason | None = None
    # Only hand-offs whose customer waits for a person, whatever the reason the bot handed
    # off: most are LOW_CONFIDENCE, not HANDOFF, so the reason filter alone missed them.
    waiting: bool = False
    channel: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True)
class QueueItem:
    flag: Flag
    reply: str
    outcome: Outcome | None
    confidence: float | None
    question: str | None  # the customer message the reply answered
    # What the customer wrote after the reply: how many messages, and the last one. A
    # customer handed off keeps writing while she waits, and an operator choosing whom to
    # answer first should not have to open each conversation to see it.
    written_since: int = 0
    last_written: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list the dashboard pages through (the queue, curated answers)."""

    items: list[T]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


def review_queue(
    conn: sa.Connection, filters: QueueFilters, *, page: int = 1, page_size: int = 25
) -> Page[QueueItem]:
    """One page of flags, oldest first but open unsure replies last, with the reply and the
    question it answered."""
    where = _queue_where(filters)
    total = _count(conn, flags.join(conversations).join(turns, _t.id == _f.turn_id), *where)
    q = turns.alias("q")
    question = (
        sa.select(q.c.text)
        .where(q.c.conversation_id == _t.conversation_id, q.c.position < _t.position)
        .where(q.c.role == "customer")
        .order_by(q.c.position.desc())
        .limit(1)
        .scalar_subquery()
    )
    later = turns.alias("later")
    after_reply = (
        later.c.conversation_id == _t.conversation_id,
        later.c.position > _t.position,
        later.c.role == "customer",
    )
    written_since = sa.select(sa.func.count()).where(*after_reply).scalar_subquery()
    last_written = (
        sa.select(later.c.text)
        .where(*after_reply)
        .order_by(later.c.position.desc())
        .limit(1)
        .scalar_subquery()
    )
    reviewed = _FLAGS.join(turns, _t.id == _f.turn_id).add_columns(
        _t.text.label("reply"),
        _t.outcome,
        _t.confidence,
        question.label("question"),
        written_since.label("written_since"),
        last_written.label("last_written"),
    )
    # Open unsure replies after the other flags: a customer waits on a hand-off, while an
    # unsure reply was sent and only asks to be checked; each group stays oldest first.
    behind = sa.case(
        (sa.and_(_f.reason == FlagReason.UNSURE.value, _f.status == FlagStatus.OPEN.value), 1),
        else_=0,
    )
    rows = conn.execute(
        _page(reviewed.where(*where).order_by(behind, _f.created_at, _f.id), page, page_size)
    ).mappings()
    items = [
        QueueItem(
            flag=flag_of(row),
            reply=row["reply"],
            outcome=None if row["outcome"] is None else Outcome(row["outcome"]),
            confidence=row["confidence"],
            question=row["question"],
            written_since=int(row["written_since"] or 0),
            last_written=row["last_written"],
        )
        for row in rows
    ]
    return Page(items, total, max(page, 1), page_size)


def _queue_where(filters: QueueFilters) -> list[sa.ColumnElement[bool]]:
    where = []
    if filters.status is not None:
        where.append(_f.status == FlagStatus(filters.status).value)
    if filters.reason is not None:
        where.append(_f.reason == FlagReason(filters.reason).value)
    if filters.waiting:
        where.extend(_WAITING)
    if filters.channel is not None:
        where.append(_c.channel == filters.channel)
    if filters.since is not None:
        where.append(_f.created_at >= filters.since)
    if filters.until is not None:
        where.append(_f.created_at < filters.until)
    return where


def _waiting_for_a_person() -> tuple[sa.ColumnElement[bool], ...]:
    """A flagged hand-off whose conversation is with the team and whose customer has not
    been answered by an operator since they last wrote."""
    customer, agent = turns.alias("w_customer"), turns.alias("w_agent")
    # -1 for a customer who pressed "talk to a person" before writing anything.
    last_customer = (
        sa.select(sa.func.coalesce(sa.func.max(customer.c.position), -1))
        .where(customer.c.conversation_id == _f.conversation_id, customer.c.role == "customer")
        .scalar_subquery()
    )
    answered = (
        sa.select(agent.c.id)
        .where(agent.c.conversation_id == _f.conversation_id, agent.c.role == "agent")
        .where(agent.c.position > last_customer)
        .exists()
    )
    return (
        _t.outcome == Outcome.HANDOFF.value,
        _c.state == ConversationState.HUMAN.value,
        ~answered,
    )


_WAITING = _waiting_for_a_person()


def _count(conn: sa.Connection, rows: sa.FromClause, *where: sa.ColumnElement[bool]) -> int:
    return int(conn.scalar(sa.select(sa.func.count()).select_from(rows).where(*where)) or 0)


def _page(statement: sa.Select[Any], page: int, page_size: int) -> sa.Select[Any]:
    return statement.limit(page_size).offset((max(page, 1) - 1) * page_size)


def channels(conn: sa.Connection) -> list[str]:
    return [str(c) for c in conn.scalars(sa.select(_c.channel).distinct().order_by(_c.channel))]


def open_flag_count(conn: sa.Connection) -> int:
    return _count(conn, flags, OPEN)


# -- curated answers --------------------------------------------------------------------------
CURATED_SHOWN = ("all", "served", "withdrawn")  # the curated page's filter


@dataclass(frozen=True)
class CuratedItem:
    correction: Correction
    conversation_id: str | None  # of the turn it corrected; None when it corrected none
    # Other customers' questions attached to it: without it on the list, an operator had to
    # open each answer's "Questions it answers" to see how far it reaches.
    attached: int = 0


def curated_answers(
    conn: sa.Connection, shown: str = "all", *, page: int = 1, page_size: int = 25
) -> Page[CuratedItem]:
    """One page of corrections, newest first: ``shown`` is one of :data:`CURATED_SHOWN`."""
    where = {
        "all": sa.true(),
        "served": _k.withdrawn_at.is_(None),
        "withdrawn": _k.withdrawn_at.is_not(None),
    }[shown]
    attached = (
        sa.select(sa.func.count())
        .where(correction_questions.c.correction_id == _k.id)
        .scalar_subquery()
        .label("attached")
    )
    newest = sa.select(corrections, _t.conversation_id, attached)
    newest = newest.outerjoin_from(corrections, turns)
    newest = newest.where(where).order_by(_k.created_at.desc(), _k.id.desc())
    rows = conn.execute(_page(newest, page, page_size)).mappings()
    items = [
        CuratedItem(correction_of(row), row["conversation_id"], row["attached"]) for row in rows
    ]
    return Page(items, _count(conn, corrections, where), max(page, 1), page_size)


# -- one conversation -------------------------------------------------------------------------
def curated_replies(conn: sa.Connection) -> int:
    """Bot replies customers received whose best source was a curated answer (an
    operator's correction, copied or written from): corrections that reached someone, not
    corrections merely saved."""
    # The LIKE only narrows the rows read; which source came first is read from the JSON.
    rows = conn.scalars(
        sa.select(_t.sources)
        .where(_t.role == "bot", _t.outcome != Outcome.HANDOFF.value)
        .where(_t.sources.like('%"kind": "curated"%'))
    )
    count = 0
    for sources in rows:
        try:
            first = json.loads(sources)[0]
        except (TypeError, ValueError, IndexError):
            continue
        count += isinstance(first, dict) and first.get("kind") == "curated"
    return count


@dataclass(frozen=True)
class ConversationExtras:
    """What the dashboard shows beside each turn: its rating, flags and corrections, and
    the details scrubbed from a customer's message (for this conversation's page only)."""

    ratings: dict[str, Rating] = field(default_factory=dict)
    rated_at: dict[str, float] = field(default_factory=dict)
    flags: dict[str, list[Flag]] = field(default_factory=dict)
    corrections: dict[str, list[Correction]] = field(default_factory=dict)
    details: dict[str, list[CustomerDetail]] = field(default_factory=dict)


def conversation_extras(conn: sa.Connection, conversation_id: str) -> ConversationExtras:
    extras = ConversationExtras()
    in_it = _t.conversation_id == conversation_id
    for row in conn.execute(sa.select(ratings).join_from(ratings, turns).where(in_it)).mappings():
        extras.ratings[row["turn_id"]] = rating_of(row)
        extras.rated_at[row["turn_id"]] = row["created_at"]
    flagged = _FLAGS.where(_f.conversation_id == conversation_id).order_by(_f.created_at, _f.id)
    for row in conn.execute(flagged).mappings():
        extras.flags.setdefault(row["turn_id"], []).append(flag_of(row))
    corrected = sa.select(corrections).join_from(corrections, turns).where(in_it)
    for row in conn.execute(corrected.order_by(_k.created_at, _k.id)).mappings():
        extras.corrections.setdefault(row["turn_id"], []).append(correction_of(row))
    d = customer_details.c
    kept = sa.select(customer_details).where(d.conversation_id == conversation_id)
    for row in conn.execute(kept.order_by(d.turn_id, d.position)).mappings():
        detail = CustomerDetail(row["kind"], row["value"])
        extras.details.setdefault(row["turn_id"], []).append(detail)
    return extras


# -- metrics ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DayMetrics:
    """One UTC day of bot replies. Rates are None on a day without replies."""

    day: date
    replies: int = 0
    handoffs: int = 0
    fallbacks: int = 0
    ratings_up: int = 0
    ratings_down: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None

    @property
    def handoff_rate(self) -> float | None:
        return self.handoffs / self.replies if self.replies else None

    @property
    def fallback_rate(self) -> float | None:
        return self.fallbacks / self.replies if self.replies else None


@dataclass(frozen=True)
class MetricsSummary:
    days: list[DayMetrics]
    replies: int
    handoffs: int
    fallbacks: int
    ratings_up: int
    ratings_down: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None

    @property
    def handoff_rate(self) -> float | None:
        return self.handoffs / self.replies if self.replies else None

    @property
    def fallback_rate(self) -> float | None:
        return self.fallbacks / self.replies if self.replies else None

    @property
    def days_with_replies(self) -> int:
        return sum(1 for d in self.days if d.replies)

    @property
    def satisfaction(self) -> float | None:
        rated = self.ratings_up + self.ratings_down
        return self.ratings_up / rated if rated else None


# The bot replies that the metrics count, ratings included, on the page's cards and charts
# and in its version rows alike: replies to questions, answered or handed off. A set reply
# to "thanks" is neither, and a rating of it says nothing of how well the bot answers (its
# thumbs-down still reaches the review queue). The card once counted such a rating that the
# index row did not ("0 up · 2 down" beside "of 1 rated").
REPLY_TO_A_QUESTION = (
    _t.role == "bot",
    _t.outcome.is_not(None),
    _t.outcome != Outcome.SMALL_TALK.value,
)


def daily_metrics(conn: sa.Connection, *, days: int, now: float) -> MetricsSummary:
    """Per-day figures for the ``days`` UTC days up to and including today.

    Latency percentiles cover answered replies (generated or copied): a hand-off is not
    waited for, and a hand-off the customer asked for takes no time at all.
    """
    today = int(now // DAY_SECONDS)
    first = today - days + 1
    since = float(first * DAY_SECONDS)
    bot_since = (_t.role == "bot", _t.created_at >= since)
    replies = {
        int(d): (int(total), int(handoffs))
        for d, total, handoffs in conn.execute(
            sa.select(_day(_t.created_at), sa.func.count(), _count_if(_t.outcome == "handoff"))
            .where(*REPLY_TO_A_QUESTION, _t.created_at >= since)
            .group_by("d")
        )
    }
    fallbacks = {
        int(d): int(n)
        for d, n in conn.execute(
            sa.select(_day(_t.created_at), sa.func.count(_f.turn_id.distinct()))
            .join_from(flags, turns)
            .where(_f.reason == FlagReason.GROUNDING_FALLBACK.value, _t.created_at >= since)
            .group_by("d")
        )
    }
    rated = {
        int(d): (int(up), int(down))
        for d, up, down in conn.execute(
            sa.select(_day(_r.created_at), *_UP_DOWN)
            .join_from(ratings, turns)
            .where(*REPLY_TO_A_QUESTION, _r.created_at >= since)
            .group_by("d")
        )
    }
    latencies: dict[int, list[float]] = defaultdict(list)
    answered = (Outcome.GENERATED.value, Outcome.COPIED.value)
    for d, latency in conn.execute(
        sa.select(_day(_t.created_at), _t.latency_ms)
        .where(*bot_since, _t.outcome.in_(answered), _t.latency_ms.is_not(None))
        .order_by(_t.latency_ms)
    ):
        latencies[int(d)].append(float(latency))

    series = []
    for d in range(first, today + 1):
        total, handoffs = replies.get(d, (0, 0))
        up, down = rated.get(d, (0, 0))
        series.append(
            DayMetrics(
                day=date(1970, 1, 1) + timedelta(days=d),
                replies=total,
                handoffs=handoffs,
                fallbacks=fallbacks.get(d, 0),
                ratings_up=up,
                ratings_down=down,
                latency_p50_ms=percentile(latencies.get(d, []), 50),
                latency_p95_ms=percentile(latencies.get(d, []), 95),
            )
        )
    every_latency = sorted(v for values in latencies.values() for v in values)
    return MetricsSummary(
        days=series,
        replies=sum(s.replies for s in series),
        handoffs=sum(s.handoffs for s in series),
        fallbacks=sum(s.fallbacks for s in series),
        ratings_up=sum(s.ratings_up for s in series),
        ratings_down=sum(s.ratings_down for s in series),
        latency_p50_ms=percentile(every_latency, 50),
        latency_p95_ms=percentile(every_latency, 95),
    )


def _day(seconds: sa.Column[float]) -> sa.Label[int]:
    """The UTC day of epoch ``seconds``, as ``d`` (which the queries group by)."""
    return (sa.cast(seconds, sa.BigInteger) // DAY_SECONDS).label("d")


def _count_if(condition: sa.ColumnElement[bool]) -> sa.FunctionFilter[int]:
    return sa.func.count().filter(condition)


_UP_DOWN = (_count_if(_r.value == "up"), _count_if(_r.value == "down"))  # ratings of each


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list; None when it is empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# -- model and index versions -----------------------------------------------------------------
@dataclass(frozen=True)
class ServedStats:
    """Bot replies recorded with a version, and their ratings."""

    replies: int = 0
    ratings_up: int = 0
    ratings_down: int = 0


@dataclass(frozen=True)
class ModelVersion:
    id: int
    name: str  # the adapter folder's name, as recorded on the turns it served
    base: str
    base_source: str
    created_at: float
    live: bool
    evaluation: list[dict[str, Any]]
    training: dict[str, Any]
    served: ServedStats
    # Whether customers get its replies, in the server's answer mode: the serving policy's
    # decision, worded as `supportbot train` and the server's log word it.
    status: AdapterStatus


@dataclass(frozen=True)
class IndexVersion:
    id: int
    created_at: float
    entries: int
    embedder: str
    kind: str
    live: bool
    served: ServedStats


def model_versions(
    conn: sa.Connection, *, answer_mode: str, auto_tolerance: float
) -> list[ModelVersion]:
    """Trained adapters, newest first, with their evaluation figures and whether the
    server (``engine.answer_mode``, ``engine.auto_tolerance``) sends their replies to
    customers; [] before training."""
    if not _has_tables(conn, adapters, base_models, live):
        return []
    live_id = conn.scalar(sa.select(live.c.adapter_id).where(live.c.slot == 1))
    served = _served(conn, _t.model_version)
    b = base_models.c
    trained = sa.select(adapters, b.folder.label("base_folder"), b.model_ref, b.source)
    newest = trained.join_from(adapters, base_models).order_by(adapters.c.id.desc())
    versions = []
    for row in conn.execute(newest).mappings():
        metrics = _json_object(row["metrics"])
        name = Path(row["folder"]).name
        is_live = live_id is not None and int(live_id) == int(row["id"])
        evaluation = metrics.get("eval")
        training = metrics.get("training")
        versions.append(
            ModelVersion(
                id=int(row["id"]),
                name=name,
                base=Path(row["base_folder"]).name
                if row["source"] == "bootstrap"
                else str(row["model_ref"]),
                base_source=str(row["source"]),
                created_at=float(row["created_at"]),
                live=is_live,
                evaluation=[e for e in evaluation if isinstance(e, dict)]
                if isinstance(evaluation, list)
                else [],
                training=training if isinstance(training, dict) else {},
                served=served.get(name, ServedStats()),
                status=adapter_status(
                    metrics, live=is_live, answer_mode=answer_mode, tolerance=auto_tolerance
                ),
            )
        )
    return versions


@dataclass(frozen=True)
class RetrainCycle:
    id: int
    kind: str  # "cycle" or "rollback"
    status: str  # running, promoted, kept, failed, abandoned, rolled_back
    started_at: float
    finished_at: float | None
    live_before: str | None  # adapter folder names
    candidate: str | None
    data: dict[str, Any]
    figures: dict[str, Any]
    reason: str


def retrain_cycles(conn: sa.Connection, limit: int = 20) -> list[RetrainCycle]:
    """Retraining cycles and rollbacks, newest first; [] before the first one."""
    if not _has_tables(conn, cycles, adapters):
        return []
    c, was_live, candidate = cycles.c, adapters.alias("l"), adapters.alias("n")
    rows = conn.execute(
        sa.select(
            cycles,
            was_live.c.folder.label("live_folder"),
            candidate.c.folder.label("candidate_folder"),
        )
        .outerjoin_from(cycles, was_live, was_live.c.id == c.live_adapter_id)
        .outerjoin(candidate, candidate.c.id == c.candidate_adapter_id)
        .order_by(c.id.desc())
        .limit(limit)
    ).mappings()
    return [
        RetrainCycle(
            id=int(row["id"]),
            kind=str(row["kind"]),
            status=str(row["status"]),
            started_at=float(row["started_at"]),
            finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
            live_before=Path(row["live_folder"]).name if row["live_folder"] else None,
            candidate=Path(row["candidate_folder"]).name if row["candidate_folder"] else None,
            data=_json_object(row["data"]),
            figures=_json_object(row["figures"]),
            reason=str(row["reason"]),
        )
        for row in rows
    ]


def index_versions(conn: sa.Connection, limit: int = 20) -> list[IndexVersion]:
    """Published search-index versions, newest first; [] before the first ingest."""
    if not _has_tables(conn, published):
        return []
    served = _served(conn, _t.index_version)
    newest = sa.select(published).order_by(published.c.id.desc()).limit(limit)
    return [
        IndexVersion(
            id=int(row["id"]),
            created_at=float(row["created_at"]),
            entries=int(row["entry_count"]),
            embedder=str(row["embedder_id"]),
            kind=str(row["kind"]),
            live=bool(row["is_live"]),
            served=served.get(str(row["id"]), ServedStats()),
        )
        for row in conn.execute(newest).mappings()
    ]


def _served(conn: sa.Connection, version: sa.Column[Any]) -> dict[str, ServedStats]:
    """Per ``version`` (a turn's model_version or index_version): replies and ratings."""
    return {
        str(v): ServedStats(int(n), int(up), int(down))
        for v, n, up, down in conn.execute(
            sa.select(version, sa.func.count(), *_UP_DOWN)
            .outerjoin_from(turns, ratings)
            .where(*REPLY_TO_A_QUESTION, version.is_not(None))
            .group_by(version)
        )
    }


def _has_tables(conn: sa.Connection, *tables: sa.Table) -> bool:
    found = sa.inspect(conn)
    return all(found.has_table(table.name) for table in tables)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def utc_day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
