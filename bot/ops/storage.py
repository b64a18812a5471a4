"""The dashboard's own tables (:mod:`bot.ops.tables`): operators, sessions, the review log.

They live in the same database as the conversations they review: the SQLite file, or the
PostgreSQL database replicas share (on several hosts: a login on one replica is valid on
every other); the same statements serve both. :class:`DashboardStore` is synchronous: the
CLI uses it directly, the server only from its database worker thread.
Session tokens are stored as SHA-256 hashes, so a copy of the database does not log anyone
in; passwords as scrypt hashes (:mod:`bot.ops.passwords`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from bot.ops.passwords import (
    burn_verification_time,
    check_password_policy,
    hash_password,
    verify_password,
)
from bot.ops.tables import HISTORY, actions, operators, sessions
from retrieval.database import migrated_engine, sqlite_url

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
    # On a curated answer; the note is its source id, as for CORRECT.
    EDIT_CORRECTION = "edit_correction"
    WITHDRAW_CORRECTION = "withdraw_correction"
    ATTACH_QUESTIONS = "attach_questions"
    # On no conversation (conversation id ""); the note says the target and threshold
    # served before and after.
    CHOOSE_HANDOFF_TARGET = "choose_handoff_target"


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


class Connections(Protocol):
    """Where the store's statements run: an engine, or the server's database worker
    (:class:`bot.store.worker.DatabaseWorker`, from its own thread)."""

    def begin(self) -> AbstractContextManager[sa.Connection]: ...

    def connect(self) -> AbstractContextManager[sa.Connection]: ...


class DashboardStore:
    """Operators, sessions and the review log over the connections it is given: an engine
    (which :meth:`close` disposes of) or the server's database worker (which closes its own).
    """

    def __init__(self, engine: Connections, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock
        self.writes = 0  # statements that changed rows: a caller tells a write from a read

    @classmethod
    def open(
        cls,
        database: Path,
        *,
        postgres_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> DashboardStore:
        """The tables in the SQLite file ``database``, or in PostgreSQL when ``postgres_url``
        is set, migrated."""
        return cls(migrated_engine(postgres_url or sqlite_url(database), HISTORY), clock=clock)

    def close(self) -> None:
        if isinstance(self.engine, sa.Engine):
            self.engine.dispose()

    def _write(self, statement: sa.Executable) -> int:
        with self.engine.begin() as conn:
            changed = conn.execute(statement).rowcount
        self.writes += changed > 0
        return changed

    def _insert(self, statement: sa.Insert) -> int:
        """The new row's id."""
        with self.engine.begin() as conn:
            new_id: int = conn.execute(statement.returning(sa.literal_column("id"))).scalar_one()
        self.writes += 1
        return new_id

    def _rows(self, statement: sa.Select[Any]) -> list[sa.RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(statement).mappings())

    # -- operators ---------------------------------------------------------------------------
    def add_operator(self, name: str, password: str) -> Operator:
        """Raises InvalidOperatorName, WeakPassword, OperatorExists."""
        name = check_operator_name(name)
        check_password_policy(password, user_inputs=(name,))
        encoded = hash_password(password)
        now = self._clock()
        try:
            operator_id = self._insert(
                operators.insert().values(name=name, password_hash=encoded, created_at=now)
            )
        except sa.exc.IntegrityError:  # the name, whatever its case, is taken
            raise OperatorExists(f"an operator named {name!r} already exists") from None
        return Operator(operator_id, name, now)

    def operators(self) -> list[Operator]:
        o = operators.c
        rows = self._rows(sa.select(*_ACCOUNT).order_by(sa.func.lower(o.name), o.name))
        return [_operator(row) for row in rows]

    def operator_named(self, name: str) -> Operator | None:
        """The operator whose name is ``name`` whatever its case; None when none is."""
        rows = self._rows(sa.select(*_ACCOUNT).where(_named(name)))
        return _operator(rows[0]) if rows else None

    def remove_operator(self, name: str) -> None:
        """Delete the operator and end their sessions. Raises UnknownOperator."""
        if self._write(operators.delete().where(_named(name))):
            return
        raise UnknownOperator(f"no operator named {name!r}")

    def authenticate(self, name: str, password: str) -> Operator | None:
        """The operator when ``password`` is theirs, else None (takes as long either way)."""
        rows = self._rows(sa.select(operators).where(_named(name)))
        if not rows:
            burn_verification_time(password)
            return None
        (row,) = rows
        if not verify_password(password, row["password_hash"]):
            return None
        now = self._clock()
        self._write(operators.update().where(operators.c.id == row["id"]).values(last_login_at=now))
        return _operator(row)

    # -- sessions ----------------------------------------------------------------------------
    def start_session(self, operator: Operator, lifetime_s: float) -> tuple[str, Session]:
        """A new session: the token for the cookie (never stored as it is) and its record."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()
        self._write(sessions.delete().where(sessions.c.expires_at <= now))
        self._write(
            sessions.insert().values(
                token_hash=token_hash(token),
                operator_id=operator.id,
                csrf_token=csrf,
                created_at=now,
                expires_at=now + lifetime_s,
            )
        )
        return token, Session(operator, csrf, now + lifetime_s)

    def session(self, token: str) -> Session | None:
        """The live session of a cookie token; None when unknown or expired."""
        s = sessions.c
        live = (
            sa.select(*_ACCOUNT, s.csrf_token, s.expires_at)
            .join_from(sessions, operators)
            .where(s.token_hash == token_hash(token), s.expires_at > self._clock())
        )
        rows = self._rows(live)
        if not rows:
            return None
        (row,) = rows
        return Session(_operator(row), row["csrf_token"], row["expires_at"])

    def end_session(self, token: str) -> None:
        self._write(sessions.delete().where(sessions.c.token_hash == token_hash(token)))

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
        values = {"conversation_id": conversation_id, "turn_id": turn_id, "note": note}
        logged = actions.insert().values(
            operator=operator, action=ReviewAction(action).value, created_at=now, **values
        )
        action_id = self._insert(logged)
        return LoggedAction(action_id, operator, action, conversation_id, turn_id, note, now)

    def actions_for(self, conversation_id: str) -> list[LoggedAction]:
        """The review log of a conversation, oldest first."""
        a = actions.c
        return self._actions(a.conversation_id == conversation_id, a.created_at, a.id)

    def recent_actions(self, action: ReviewAction, limit: int) -> list[LoggedAction]:
        """The latest ``limit`` actions of one kind, newest first."""
        a = actions.c
        newest = (a.created_at.desc(), a.id.desc())
        return self._actions(a.action == ReviewAction(action).value, *newest, limit=limit)

    def actions_on_corrections(self, source_ids: Sequence[str]) -> list[LoggedAction]:
        """What was done to these curated answers (made, edited, withdrawn), oldest first."""
        if not source_ids:
            return []
        a = actions.c
        kinds = (
            ReviewAction.CORRECT,
            ReviewAction.EDIT_CORRECTION,
            ReviewAction.WITHDRAW_CORRECTION,
        )
        on = sa.and_(a.note.in_(source_ids), a.action.in_([k.value for k in kinds]))
        return self._actions(on, a.created_at, a.id)

    def _actions(
        self, where: sa.ColumnElement[bool], *order: Any, limit: int | None = None
    ) -> list[LoggedAction]:
        rows = self._rows(sa.select(actions).where(where).order_by(*order).limit(limit))
        return [_logged_action(row) for row in rows]


# What an Operator shows (never the password's hash).
_ACCOUNT = (operators.c.id, operators.c.name, operators.c.created_at, operators.c.last_login_at)


def _named(name: str) -> sa.ColumnElement[bool]:
    return sa.func.lower(operators.c.name) == sa.func.lower(name.strip())


def _logged_action(row: sa.RowMapping) -> LoggedAction:
    return LoggedAction(
        row["id"],
        row["operator"],
        ReviewAction(row["action"]),
        row["conversation_id"],
        row["turn_id"],
        row["note"],
        row["created_at"],
    )


def _operator(row: sa.RowMapping) -> Operator:
    return Operator(row["id"], row["name"], row["created_at"], row["last_login_at"])
