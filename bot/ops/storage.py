"""The dashboard's own tables (component ``ops``): operators, sessions, the review log.

They live in the same SQLite file as the conversations they review. :class:`DashboardStore`
is synchronous: the CLI uses it directly, the server only from its database worker thread.
Session tokens are stored as SHA-256 hashes, so a copy of the database does not log anyone
in; passwords as scrypt hashes (:mod:`bot.ops.passwords`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bot.ops.passwords import (
    burn_verification_time,
    check_password_policy,
    hash_password,
    verify_password,
)
from retrieval.sqlite_db import apply_migrations, connect

COMPONENT = "ops"
# Append a script to change the schema; never edit one that may have run somewhere.
MIGRATIONS = [
    """
    CREATE TABLE ops_operators (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_login_at REAL
    );
    CREATE TABLE ops_sessions (
        token_hash TEXT PRIMARY KEY,
        operator_id INTEGER NOT NULL REFERENCES ops_operators(id) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX ops_sessions_expiry ON ops_sessions(expires_at);
    CREATE TABLE ops_actions (
        id INTEGER PRIMARY KEY,
        operator TEXT NOT NULL,
        action TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        turn_id TEXT,
        note TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE INDEX ops_actions_conversation ON ops_actions(conversation_id, created_at);
    """,
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class InvalidOperatorName(ValueError):
    pass


class OperatorExists(ValueError):
    pass


class UnknownOperator(LookupError):
    pass


class ReviewAction(StrEnum):
    """What an operator did, as the review log records it."""

    APPROVE = "approve"
    CORRECT = "correct"
    REJECT = "reject"
    RESOLVE_HANDOFF = "resolve_handoff"
    HAND_BACK = "hand_back"
    REPLY = "reply"


@dataclass(frozen=True)
class Operator:
    id: int
    name: str
    created_at: float
    last_login_at: float | None = None


@dataclass(frozen=True)
class Session:
    """A logged-in operator; ``csrf_token`` must come back with every form it posts."""

    operator: Operator
    csrf_token: str
    expires_at: float


@dataclass(frozen=True)
class LoggedAction:
    id: int
    operator: str
    action: ReviewAction
    conversation_id: str
    turn_id: str | None
    note: str
    created_at: float


def check_operator_name(name: str) -> str:
    """``name`` stripped; raises InvalidOperatorName unless it is a plain login name."""
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidOperatorName(
            f"operator name {name!r} must be 1-64 letters, digits or . _ @ -,"
            " starting with a letter or digit"
        )
    return name


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class DashboardStore:
    """Operators, sessions and the review log over a connection it owns."""

    def __init__(self, conn: sqlite3.Connection, *, clock: Callable[[], float] = time.time):
        self._conn = conn
        self._clock = clock
        apply_migrations(conn, COMPONENT, MIGRATIONS)

    @classmethod
    def open(cls, database: Path, *, clock: Callable[[], float] = time.time) -> DashboardStore:
        conn = connect(database)
        try:
            return cls(conn, clock=clock)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's connection (its row counts tell a write from a read)."""
        return self._conn

    # -- operators ---------------------------------------------------------------------------
    def add_operator(self, name: str, password: str) -> Operator:
        """Raises InvalidOperatorName, WeakPassword, OperatorExists."""
        name = check_operator_name(name)
        check_password_policy(password)
        encoded = hash_password(password)
        now = self._clock()
        try:
            cursor = self._conn.execute(
                "INSERT INTO ops_operators (name, password_hash, created_at) VALUES (?, ?, ?)",
                (name, encoded, now),
            )
        except sqlite3.IntegrityError:
            raise OperatorExists(f"an operator named {name!r} already exists") from None
        return Operator(int(cursor.lastrowid or 0), name, now)

    def operators(self) -> list[Operator]:
        rows = self._conn.execute(
            "SELECT id, name, created_at, last_login_at FROM ops_operators ORDER BY name"
        ).fetchall()
        return [_operator(row) for row in rows]

    def remove_operator(self, name: str) -> None:
        """Delete the operator and end their sessions. Raises UnknownOperator."""
        cursor = self._conn.execute("DELETE FROM ops_operators WHERE name = ?", (name.strip(),))
        if cursor.rowcount == 0:
            raise UnknownOperator(f"no operator named {name!r}")

    def authenticate(self, name: str, password: str) -> Operator | None:
        """The operator when ``password`` is theirs, else None (takes as long either way)."""
        row = self._conn.execute(
            "SELECT id, name, created_at, last_login_at, password_hash FROM ops_operators"
            " WHERE name = ?",
            (name.strip(),),
        ).fetchone()
        if row is None:
            burn_verification_time(password)
            return None
        if not verify_password(password, row["password_hash"]):
            return None
        now = self._clock()
        self._conn.execute("UPDATE ops_operators SET last_login_at = ? WHERE id = ?", (now, row[0]))
        return _operator(row)

    # -- sessions ----------------------------------------------------------------------------
    def start_session(self, operator: Operator, lifetime_s: float) -> tuple[str, Session]:
        """A new session: the token for the cookie (never stored as it is) and its record."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()
        self._conn.execute("DELETE FROM ops_sessions WHERE expires_at <= ?", (now,))
        self._conn.execute(
            "INSERT INTO ops_sessions (token_hash, operator_id, csrf_token, created_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?)",
            (token_hash(token), operator.id, csrf, now, now + lifetime_s),
        )
        return token, Session(operator, csrf, now + lifetime_s)

    def session(self, token: str) -> Session | None:
        """The live session of a cookie token; None when unknown or expired."""
        row = self._conn.execute(
            "SELECT o.id, o.name, o.created_at, o.last_login_at, s.csrf_token, s.expires_at"
            " FROM ops_sessions s JOIN ops_operators o ON o.id = s.operator_id"
            " WHERE s.token_hash = ? AND s.expires_at > ?",
            (token_hash(token), self._clock()),
        ).fetchone()
        if row is None:
            return None
        return Session(_operator(row), row["csrf_token"], row["expires_at"])

    def end_session(self, token: str) -> None:
        self._conn.execute("DELETE FROM ops_sessions WHERE token_hash = ?", (token_hash(token),))

    # -- the review log ----------------------------------------------------------------------
    def log_action(
        self,
        operator: str,
        action: ReviewAction,
        conversation_id: str,
        turn_id: str | None = None,
        note: str = "",
    ) -> LoggedAction:
        now = self._clock()
        cursor = self._conn.execute(
            "INSERT INTO ops_actions (operator, action, conversation_id, turn_id, note,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (operator, ReviewAction(action).value, conversation_id, turn_id, note, now),
        )
        return LoggedAction(
            int(cursor.lastrowid or 0), operator, action, conversation_id, turn_id, note, now
        )

    def actions_for(self, conversation_id: str) -> list[LoggedAction]:
        """The review log of a conversation, oldest first."""
        rows = self._conn.execute(
            "SELECT * FROM ops_actions WHERE conversation_id = ? ORDER BY created_at, id",
            (conversation_id,),
        ).fetchall()
        return [
            LoggedAction(
                row["id"],
                row["operator"],
                ReviewAction(row["action"]),
                row["conversation_id"],
                row["turn_id"],
                row["note"],
                row["created_at"],
            )
            for row in rows
        ]


def _operator(row: sqlite3.Row) -> Operator:
    return Operator(row["id"], row["name"], row["created_at"], row["last_login_at"])
