"""What keeps several ``supportbot serve`` replicas in step when they share one PostgreSQL.

The replicas share one PostgreSQL database, which holds the knowledge base (its entries,
curated answers included, and which index version is live) and the model registry (which
adapter is live), and the published index and adapter folders (see README "Deployment").
Each replica already follows newer versions by polling. What a poll would serve late is a
correction: it changes the knowledge base's curated answers, but each replica searches
its own in-memory copy of the index. So:

* the replica that serves, edits or withdraws a correction announces its source id on a
  PostgreSQL channel (``NOTIFY``) once the shared knowledge base holds the change (so
  does ``supportbot curated``, from the command line);
* every other replica ``LISTEN``\\ s on that channel and brings just that source's entries
  in line in its in-memory index (:meth:`KnowledgeBase.follow_source`: the new entry
  added with the vector its author cached, a replaced one removed), within a second or
  so. Only when that fails, or after a lost connection (an announcement may have been
  missed), does it replay every curated answer onto the live index (``load()``);
* a retraining cycle holds a PostgreSQL advisory lock
  (:func:`finetune.cycles.retrain_lock`), so a cycle started on two replicas runs once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import sqlalchemy as sa
from aiohttp import web

from bot.background import running
from bot.core.ports import AnswerCurator
from bot.core.types import Message
from bot.store.conversations import ConversationDatabase

if TYPE_CHECKING:
    from retrieval.knowledge import KnowledgeBase

log = logging.getLogger(__name__)

_RECONNECT_S = 1.0

# Announced on this channel with a correction's source id once it is served, edited or
# withdrawn; the other replicas then bring their in-memory search index in line.
CURATED_CHANNEL = "supportbot_curated"


class AnnouncingCurator:
    """An :class:`AnswerCurator` that tells the other replicas once an answer is served."""

    def __init__(self, inner: AnswerCurator, announce: Callable[[str], Awaitable[None]]) -> None:
        self.inner = inner
        self._announce = announce

    async def add_curated(
        self, source_id: str, question: str, answer: str, context: Sequence[Message] = ()
    ) -> None:
        await self.inner.add_curated(source_id, question, answer, context)
        await self._tell_others(source_id)

    async def remove_curated(self, source_id: str) -> None:
        # The others follow a removal as they follow an addition: follow_source drops the
        # entries the shared store marks deleted.
        await self.inner.remove_curated(source_id)
        await self._tell_others(source_id)

    async def _tell_others(self, source_id: str) -> None:
        try:
            await self._announce(source_id)
        except Exception:  # done here; the others catch up when they reconnect or poll
            log.exception("could not announce curated answer %s to the other replicas", source_id)


class CuratedFollower:
    """Applies the other replicas' curated answers to this replica's live index, off the
    event loop, and counts how (the log and the tests read the counts)."""

    def __init__(self, knowledge: KnowledgeBase, executor: Executor) -> None:
        self.knowledge = knowledge
        self.executor = executor
        self.sources_followed = 0  # one source's entries added or removed in place
        self.full_replays = 0  # every curated answer replayed onto the live index

    async def follow(self, source_id: str, sender: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            added, removed = await loop.run_in_executor(
                self.executor, self.knowledge.follow_source, source_id
            )
        except Exception:
            log.exception(
                "could not follow curated answer %s from %s; replaying", source_id, sender
            )
            await self.replay()
            return
        self.sources_followed += 1
        log.info(
            "curated answer %s from %s: %d entries added, %d removed",
            source_id,
            sender,
            added,
            removed,
        )

    async def replay(self) -> None:
        # load() replays curated additions and removals onto the live version.
        await asyncio.get_running_loop().run_in_executor(self.executor, self.knowledge.load)
        self.full_replays += 1


CURATED_FOLLOWER: web.AppKey[CuratedFollower] = web.AppKey("curated_follower")


async def follow_curated_answers(url: str, replica: str, follower: CuratedFollower) -> None:
    """Follow each curated answer another replica announces; reconnect (and replay, to
    catch up) when the connection drops. Runs until cancelled."""
    import psycopg

    connected_before = False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {CURATED_CHANNEL}")
                if connected_before:
                    await follower.replay()
                connected_before = True
                async for notice in conn.notifies():
                    sender, _, source_id = notice.payload.partition(" ")
                    if sender != replica:
                        await follower.follow(source_id, sender)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("lost the curated-answer channel (%s); reconnecting", exc)
            await asyncio.sleep(_RECONNECT_S)


def new_replica_id() -> str:
    """A name for this server among the replicas, so it skips its own announcements."""
    return uuid.uuid4().hex[:12]


def announcing(curator: AnswerCurator, store: object, replica: str) -> AnswerCurator:
    """``curator`` announcing each change to the other replicas, when ``store`` is the
    conversation store they share in PostgreSQL; ``curator`` itself otherwise."""

    if not isinstance(store, ConversationDatabase) or store.engine.dialect.name != "postgresql":
        return curator
    database = store.database

    async def notify(source_id: str) -> None:
        # PostgreSQL's NOTIFY, delivered to every listener when the transaction commits.
        notice = sa.select(sa.func.pg_notify(CURATED_CHANNEL, f"{replica} {source_id}"))
        await database.write(lambda conn: conn.execute(notice))

    return AnnouncingCurator(curator, notify)


async def replicas_ctx(
    app: web.Application,
    *,
    url: str,
    replica: str,
    knowledge: Callable[[], KnowledgeBase],
    executor: Callable[[], Executor],
) -> AsyncIterator[None]:
    """Follow the other replicas' corrections (see the module doc); this one's are
    announced by the curator the engine was built with (:func:`announcing`).

    Added by :func:`bot.app.create_app` when the store is PostgreSQL and the app owns its
    knowledge base; ``knowledge`` and ``executor`` give what start-up made by then.
    """
    follower = CuratedFollower(knowledge(), executor())
    app[CURATED_FOLLOWER] = follower
    async with running(follow_curated_answers(url, replica, follower), name="replicas"):
        yield
