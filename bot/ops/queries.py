"""Read-only queries for the dashboard over the shared SQLite file, or over PostgreSQL
when replicas share it (the SQL is written to run on both; see bot.store.postgres_sync).

The conversation store answers one record at a time; the dashboard needs joined pages
(a flag with the question and the reply), per-conversation extras and daily aggregates.
These functions only read, on a connection the caller opens with ``query_only``; the
tables of other components (``finetune_*``, ``index_versions``) are optional and read as
empty when that component never ran on this database.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from bot.core.types import Correction, Flag, FlagReason, FlagStatus, Outcome, Rating
from bot.store.records import correction_of, flag_of
from finetune.serving_policy import AdapterStatus, adapter_status

T = TypeVar("T")

DAY_SECONDS = 86_400

# A flag's row and its conversation's channel (bot.store.records.flag_of reads them).
FLAG_COLUMNS = (
    "f.id, f.turn_id, f.conversation_id, c.channel, f.reason, f.detail, f.status,"
    " f.created_at, f.resolved_at, f.resolved_by"
)


# -- the review queue -------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueFilters:
    """``since`` inclusive, ``until`` exclusive (epoch seconds); None: no bound."""

    status: FlagStatus | None = FlagStatus.OPEN
    reason: FlagReason | None = None
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
    conn: sqlite3.Connection, filters: QueueFilters, *, page: int = 1, page_size: int = 25
) -> Page[QueueItem]:
    """One page of flags, oldest first, with the reply and the question it answered."""
    where, params = _queue_where(filters)
    (total,) = conn.execute(
        "SELECT COUNT(*) FROM bot_flags f JOIN bot_conversations c ON c.id = f.conversation_id"
        f" WHERE {where}",
        params,
    ).fetchone()
    rows = conn.execute(
        f"SELECT {FLAG_COLUMNS}, t.text AS reply, t.outcome, t.confidence,"
        " (SELECT q.text FROM bot_turns q WHERE q.conversation_id = t.conversation_id"
        "   AND q.role = 'customer' AND q.position < t.position"
        "   ORDER BY q.position DESC LIMIT 1) AS question"
        " FROM bot_flags f JOIN bot_conversations c ON c.id = f.conversation_id"
        " JOIN bot_turns t ON t.id = f.turn_id"
        f" WHERE {where} ORDER BY f.created_at, f.id LIMIT ? OFFSET ?",
        (*params, page_size, (max(page, 1) - 1) * page_size),
    ).fetchall()
    items = [
        QueueItem(
            flag=flag_of(row),
            reply=row["reply"],
            outcome=None if row["outcome"] is None else Outcome(row["outcome"]),
            confidence=row["confidence"],
            question=row["question"],
        )
        for row in rows
    ]
    return Page(items, int(total), max(page, 1), page_size)


def _queue_where(filters: QueueFilters) -> tuple[str, list[object]]:
    where, params = ["1 = 1"], list[object]()
    for clause, value in (
        ("f.status = ?", None if filters.status is None else FlagStatus(filters.status).value),
        ("f.reason = ?", None if filters.reason is None else FlagReason(filters.reason).value),
        ("c.channel = ?", filters.channel),
        ("f.created_at >= ?", filters.since),
        ("f.created_at < ?", filters.until),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    return " AND ".join(where), params


def channels(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT DISTINCT channel FROM bot_conversations ORDER BY channel")
    return [str(row[0]) for row in rows]


def open_flag_count(conn: sqlite3.Connection) -> int:
    (count,) = conn.execute("SELECT COUNT(*) FROM bot_flags WHERE status = 'open'").fetchone()
    return int(count)


# -- curated answers --------------------------------------------------------------------------
CURATED_SHOWN = ("all", "served", "withdrawn")  # the curated page's filter


@dataclass(frozen=True)
class CuratedItem:
    correction: Correction
    conversation_id: str | None  # of the turn it corrected; None when it corrected none


def curated_answers(
    conn: sqlite3.Connection, shown: str = "all", *, page: int = 1, page_size: int = 25
) -> Page[CuratedItem]:
    """One page of corrections, newest first: ``shown`` is one of :data:`CURATED_SHOWN`."""
    where = {
        "all": "1 = 1",
        "served": "k.withdrawn_at IS NULL",
        "withdrawn": "k.withdrawn_at IS NOT NULL",
    }[shown]
    (total,) = conn.execute(f"SELECT COUNT(*) FROM bot_corrections k WHERE {where}").fetchone()
    rows = conn.execute(
        "SELECT k.*, t.conversation_id FROM bot_corrections k"
        " LEFT JOIN bot_turns t ON t.id = k.turn_id"
        f" WHERE {where} ORDER BY k.created_at DESC, k.id DESC LIMIT ? OFFSET ?",
        (page_size, (max(page, 1) - 1) * page_size),
    ).fetchall()
    items = [CuratedItem(correction_of(row), row["conversation_id"]) for row in rows]
    return Page(items, int(total), max(page, 1), page_size)


# -- one conversation -------------------------------------------------------------------------
def curated_replies(conn: sqlite3.Connection) -> int:
    """Bot replies customers received whose best source was a curated answer (an
    operator's correction, copied or written from): corrections that reached someone, not
    corrections merely saved."""
    # The LIKE only narrows the rows read; which source came first is read from the JSON.
    rows = conn.execute(
        "SELECT sources FROM bot_turns WHERE role = 'bot' AND outcome <> ? AND sources LIKE ?",
        (Outcome.HANDOFF.value, '%"kind": "curated"%'),
    )
    count = 0
    for (sources,) in rows:
        try:
            first = json.loads(sources)[0]
        except (TypeError, ValueError, IndexError):
            continue
        count += isinstance(first, dict) and first.get("kind") == "curated"
    return count


@dataclass(frozen=True)
class ConversationExtras:
    """What the dashboard shows beside each turn: its rating, flags and corrections."""

    ratings: dict[str, Rating] = field(default_factory=dict)
    rated_at: dict[str, float] = field(default_factory=dict)
    flags: dict[str, list[Flag]] = field(default_factory=dict)
    corrections: dict[str, list[Correction]] = field(default_factory=dict)


def conversation_extras(conn: sqlite3.Connection, conversation_id: str) -> ConversationExtras:
    extras = ConversationExtras()
    for row in conn.execute(
        "SELECT r.* FROM bot_ratings r JOIN bot_turns t ON t.id = r.turn_id"
        " WHERE t.conversation_id = ?",
        (conversation_id,),
    ):
        extras.ratings[row["turn_id"]] = Rating(
            row["turn_id"], row["value"], row["comment"], row["channel"]
        )
        extras.rated_at[row["turn_id"]] = row["created_at"]
    for row in conn.execute(
        f"SELECT {FLAG_COLUMNS} FROM bot_flags f"
        " JOIN bot_conversations c ON c.id = f.conversation_id"
        " WHERE f.conversation_id = ? ORDER BY f.created_at, f.id",
        (conversation_id,),
    ):
        extras.flags.setdefault(row["turn_id"], []).append(flag_of(row))
    for row in conn.execute(
        "SELECT k.* FROM bot_corrections k JOIN bot_turns t ON t.id = k.turn_id"
        " WHERE t.conversation_id = ? ORDER BY k.created_at, k.id",
        (conversation_id,),
    ):
        extras.corrections.setdefault(row["turn_id"], []).append(correction_of(row))
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
    def satisfaction(self) -> float | None:
        rated = self.ratings_up + self.ratings_down
        return self.ratings_up / rated if rated else None


def daily_metrics(conn: sqlite3.Connection, *, days: int, now: float) -> MetricsSummary:
    """Per-day figures for the ``days`` UTC days up to and including today.

    Latency percentiles cover answered replies (generated or copied): a hand-off is not
    waited for, and a hand-off the customer asked for takes no time at all.
    """
    today = int(now // DAY_SECONDS)
    first = today - days + 1
    since = float(first * DAY_SECONDS)
    replies: dict[int, tuple[int, int]] = {}
    for d, total, handoffs in conn.execute(
        "SELECT CAST(created_at AS BIGINT) / 86400 AS d, COUNT(*),"
        " SUM(CASE WHEN outcome = 'handoff' THEN 1 ELSE 0 END) FROM bot_turns"
        " WHERE role = 'bot' AND outcome IS NOT NULL AND created_at >= ?"
        " GROUP BY d",
        (since,),
    ):
        replies[int(d)] = (int(total), int(handoffs or 0))
    fallbacks = {
        int(d): int(n)
        for d, n in conn.execute(
            "SELECT CAST(t.created_at AS BIGINT) / 86400 AS d, COUNT(DISTINCT f.turn_id)"
            " FROM bot_flags f JOIN bot_turns t ON t.id = f.turn_id"
            " WHERE f.reason = 'grounding_fallback' AND t.created_at >= ? GROUP BY d",
            (since,),
        )
    }
    ratings = {
        int(d): (int(up or 0), int(down or 0))
        for d, up, down in conn.execute(
            "SELECT CAST(created_at AS BIGINT) / 86400 AS d,"
            " SUM(CASE WHEN value = 'up' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN value = 'down' THEN 1 ELSE 0 END)"
            " FROM bot_ratings WHERE created_at >= ? GROUP BY d",
            (since,),
        )
    }
    latencies: dict[int, list[float]] = defaultdict(list)
    for d, latency in conn.execute(
        "SELECT CAST(created_at AS BIGINT) / 86400 AS d, latency_ms FROM bot_turns"
        " WHERE role = 'bot' AND outcome IN ('generated', 'copied')"
        " AND latency_ms IS NOT NULL AND created_at >= ? ORDER BY latency_ms",
        (since,),
    ):
        latencies[int(d)].append(float(latency))

    series = []
    for d in range(first, today + 1):
        total, handoffs = replies.get(d, (0, 0))
        up, down = ratings.get(d, (0, 0))
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
    conn: sqlite3.Connection, *, answer_mode: str, auto_tolerance: float
) -> list[ModelVersion]:
    """Trained adapters, newest first, with their evaluation figures and whether the
    server (``engine.answer_mode``, ``engine.auto_tolerance``) sends their replies to
    customers; [] before training."""
    if not _has_tables(conn, "finetune_adapters", "finetune_base_models", "finetune_live"):
        return []
    live = conn.execute("SELECT adapter_id FROM finetune_live WHERE slot = 1").fetchone()
    served = _served(conn, "model_version")
    versions = []
    for row in conn.execute(
        "SELECT a.id, a.folder, a.metrics, a.created_at, b.folder AS base_folder,"
        " b.model_ref, b.source FROM finetune_adapters a"
        " JOIN finetune_base_models b ON b.id = a.base_id ORDER BY a.id DESC"
    ):
        metrics = _json_object(row["metrics"])
        name = Path(row["folder"]).name
        is_live = live is not None and int(live[0]) == int(row["id"])
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


def retrain_cycles(conn: sqlite3.Connection, limit: int = 20) -> list[RetrainCycle]:
    """Retraining cycles and rollbacks, newest first; [] before the first one."""
    if not _has_tables(conn, "retrain_cycles", "finetune_adapters"):
        return []
    rows = conn.execute(
        "SELECT c.*, l.folder AS live_folder, n.folder AS candidate_folder"
        " FROM retrain_cycles c"
        " LEFT JOIN finetune_adapters l ON l.id = c.live_adapter_id"
        " LEFT JOIN finetune_adapters n ON n.id = c.candidate_adapter_id"
        " ORDER BY c.id DESC LIMIT ?",
        (limit,),
    ).fetchall()
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


def index_versions(conn: sqlite3.Connection, limit: int = 20) -> list[IndexVersion]:
    """Published search-index versions, newest first; [] before the first ingest."""
    if not _has_tables(conn, "index_versions"):
        return []
    served = _served(conn, "index_version")
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
        for row in conn.execute("SELECT * FROM index_versions ORDER BY id DESC LIMIT ?", (limit,))
    ]


def _served(conn: sqlite3.Connection, column: str) -> dict[str, ServedStats]:
    assert column in ("model_version", "index_version")
    return {
        str(version): ServedStats(int(n), int(up or 0), int(down or 0))
        for version, n, up, down in conn.execute(
            f"SELECT t.{column}, COUNT(*), SUM(CASE WHEN r.value = 'up' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN r.value = 'down' THEN 1 ELSE 0 END)"
            " FROM bot_turns t LEFT JOIN bot_ratings r ON r.turn_id = t.id"
            f" WHERE t.role = 'bot' AND t.{column} IS NOT NULL GROUP BY t.{column}"
        )
    }


def _has_tables(conn: sqlite3.Connection, *names: str) -> bool:
    placeholders = ", ".join("?" for _ in names)
    if isinstance(conn, sqlite3.Connection):
        query = (
            f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ({placeholders})"
        )
    else:
        # PostgreSQL holds the conversation tables and, where the replicas keep them
        # there, the model registry, the retraining cycles and the index versions.
        query = (
            "SELECT COUNT(*) FROM information_schema.tables"
            f" WHERE table_schema = current_schema() AND table_name IN ({placeholders})"
        )
    (found,) = conn.execute(query, names).fetchone()
    return int(found) == len(names)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def utc_day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
