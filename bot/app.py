"""Start-up wiring: where the engine, its ports and the web adapter meet.

:func:`create_app` builds the application; every resource with a lifetime is a
``cleanup_ctx`` generator that opens it at start-up and closes it at shutdown, in this
order (closed in reverse):

1. the conversation store (SQLite, or PostgreSQL shared by replicas);
2. the knowledge base, opened and loaded in a worker thread (skipped when a retriever is
   given);
3. a bounded thread pool for searches;
4. the generator: the trained model in its batching worker, in a swappable holder (none
   before training), or a client of an OpenAI-compatible inference server
   (``generator.backend = "openai"``);
5. the conversation engine (copy mode when there is no generator);
6. a background task that switches to a newer index version when a job publishes one;
7. a background task that switches the generator to a newly promoted (or rolled back)
   adapter: replies in flight finish on the old worker, which then closes;
8. when ``retrain.interval_hours`` is set, scheduled ``supportbot retrain`` subprocesses;
9. the Slack adapter, when configured (:mod:`bot.slack.server`);
10. a background task that deletes the customers' details kept for operators once
    ``ops.customer_details_days`` have passed (all of them when it is 0).

Nothing is loaded at import: importing this module does not import torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, cast

from aiohttp import web

from bot.adapters.generation import WorkerGenerator
from bot.adapters.inference_server import InferenceServerGenerator, client_session
from bot.adapters.retrieval import KnowledgeRetriever
from bot.adapters.scrubbing import PersonalDataScrubber
from bot.adapters.swappable import SwappableGenerator
from bot.background import running
from bot.components import (
    format_served,
    generator_paths,
    open_knowledge_base,
    pii_scrubber,
    scheduled_cycle_command,
    served_confidence,
)
from bot.core.engine import ConversationEngine
from bot.core.ports import (
    AnswerCurator,
    ConversationStore,
    Generator,
    QuestionFinder,
    Retriever,
)
from bot.handoff import ServedHandoff
from bot.ops import mount_dashboard
from bot.replicas import announcing, new_replica_id, replicas_ctx
from bot.settings import Settings
from bot.slack.server import setup_slack
from bot.store.conversations import ConversationDatabase
from bot.store.health import StorageHealth
from bot.web import ENGINE, build_web_app
from bot.web.flood import FlagBudget
from bot.web.keys import METRICS, STORAGE_STATUS
from finetune.pipeline import GeneratorPaths, NoLiveAdapterError, load_live_generator
from finetune.registry import AdapterRecord, ModelRegistry
from finetune.serving_policy import AdapterStatus, adapter_status

if TYPE_CHECKING:  # loads faiss; only the start-up below needs it
    from retrieval.knowledge import KnowledgeBase

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("conversation_store", ConversationStore)
KNOWLEDGE: web.AppKey[KnowledgeBase] = web.AppKey("knowledge_base")
RETRIEVAL_EXECUTOR = web.AppKey("retrieval_executor", ThreadPoolExecutor)
GENERATOR: web.AppKey[Generator | None] = web.AppKey("generator")
SWAPPABLE: web.AppKey[SwappableGenerator] = web.AppKey("swappable_generator")
# The hand-off threshold served: the engine reads it for every message, the dashboard
# shows and moves it, the index poll follows the calibration file and the embedder.
HANDOFF = web.AppKey("handoff_policy", ServedHandoff)
# This server's name among replicas sharing PostgreSQL (set only then): it announces its
# corrections under it and skips its own announcements.
REPLICA = web.AppKey("replica", str)

# How long a replaced model worker may keep streaming the replies it started.
_RETIRE_TIMEOUT_S = 120.0
# How often details kept past ops.customer_details_days are looked for: they go within an
# hour of their time.
_FORGET_EVERY_S = 3600.0


def create_app(
    settings: Settings,
    *,
    retriever: Retriever | None = None,
    generator: Generator | None = None,
    store: ConversationStore | None = None,
) -> web.Application:
    """The web application for ``settings``; nothing is opened until it starts.

    ``retriever``, ``generator`` and ``store`` replace the configured ones (tests, bulk
    answering); an injected store is not closed by the app, its owner closes it. Without a
    generator the engine copies the best retrieved answer.
    """
    config = settings.web
    app = build_web_app(config, max_message_chars=settings.engine.max_message_chars)
    app[SETTINGS] = settings
    app[HANDOFF] = ServedHandoff(settings.engine, settings.home)
    app.cleanup_ctx.append(partial(_store_ctx, given=store))
    app.cleanup_ctx.append(partial(_forget_ctx, days=settings.ops.customer_details_days))
    if retriever is None:
        app.cleanup_ctx.append(_knowledge_ctx)
    # This process runs models with torch: the embedder of its knowledge base, or the
    # local generator (not an injected or remote one).
    runs_models = retriever is None or (
        generator is None
        and settings.engine.answer_mode != "copy"
        and settings.generator.backend == "local"
    )
    app.cleanup_ctx.append(
        partial(
            _executor_ctx,
            workers=config.retrieval_workers,
            torch_threads=config.torch_threads if runs_models else 0,
        )
    )
    app.cleanup_ctx.append(partial(_generator_ctx, given=generator))
    app.cleanup_ctx.append(partial(_engine_ctx, retriever=retriever))
    if settings.storage.postgres_url is not None and retriever is None:
        # Replicas sharing PostgreSQL serve each other's corrections within a second or so.
        app[REPLICA] = new_replica_id()
        app.cleanup_ctx.append(
            partial(
                replicas_ctx,
                url=settings.storage.postgres_url,
                replica=app[REPLICA],
                knowledge=lambda: app[KNOWLEDGE],
                executor=lambda: app[RETRIEVAL_EXECUTOR],
            )
        )
    if (
        generator is None
        and settings.engine.answer_mode != "copy"
        and settings.generator.backend == "local"
    ):
        # Follows promotions and rollbacks: the running server swaps to the live adapter.
        app.cleanup_ctx.append(partial(_follow_ctx, interval=settings.retrain.poll_seconds))
    if settings.retrain.interval_hours is not None:
        app.cleanup_ctx.append(partial(_schedule_ctx, hours=settings.retrain.interval_hours))
    if retriever is None:
        app.cleanup_ctx.append(partial(_refresh_ctx, interval=config.index_refresh_seconds))
    setup_slack(app, settings)  # when configured: POST /slack/events or Socket Mode; closes first
    # The operators' review dashboard at /ops; its accounts live in the same database.
    mount_dashboard(
        app,
        settings.ops,
        database=settings.paths.database,
        handoff=app[HANDOFF],
    )
    return app


@contextlib.asynccontextmanager
async def started(app: web.Application) -> AsyncIterator[web.Application]:
    """Run ``app``'s start-up and shutdown without serving it (bulk jobs, tests)."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        yield app
    finally:
        await runner.cleanup()


async def _store_ctx(
    app: web.Application, *, given: ConversationStore | None
) -> AsyncIterator[None]:
    if given is not None:
        app[STORE] = given
        _report_storage(app, given)
        yield
        return

    settings = app[SETTINGS]
    paths = settings.paths.ensure()
    storage = settings.storage
    opened = ConversationDatabase(
        storage.url_or_default(paths.database), pool_size=storage.pool_size
    )
    try:
        await opened.open()  # a bad database fails the start-up, not the first customer
        app[STORE] = opened
        _report_storage(app, opened)
        yield
    finally:
        await opened.aclose()  # waits for queued writes


async def _forget_ctx(app: web.Application, *, days: float) -> AsyncIterator[None]:
    store = app[STORE]
    # Awaited at start-up: a home that set the days to 0 shows none from its first page on.
    await _forget_customer_details(store, days)
    async with running(_forget_every_hour(store, days), name="forget-details"):
        yield


async def _forget_every_hour(store: ConversationStore, days: float) -> None:
    while True:
        await asyncio.sleep(_FORGET_EVERY_S)
        await _forget_customer_details(store, days)


async def _forget_customer_details(store: ConversationStore, days: float) -> None:
    """Delete the customers' details kept longer than ``days`` (0: every one, as a home
    that stopped keeping them asks)."""
    try:
        forgotten = await store.forget_customer_details(days * 86_400.0)
    except Exception:
        log.exception("deleting expired customer details failed; trying again later")
        return
    if forgotten:
        log.info("deleted %d customer details kept past %g days", forgotten, days)


def _report_storage(app: web.Application, store: ConversationStore) -> None:
    """Let /healthz and /metrics say when the store cannot write (a full disk)."""

    health = getattr(store, "health", None)
    if isinstance(health, StorageHealth):
        app[STORAGE_STATUS] = health


async def _knowledge_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    knowledge = await asyncio.to_thread(open_knowledge_base, settings)
    try:
        await asyncio.to_thread(_load_and_warm, knowledge)
        version = knowledge.version
        log.info("serving index version %s", version.id if version else "(none yet)")
        app[KNOWLEDGE] = knowledge
        yield
    finally:
        await asyncio.to_thread(knowledge.close)


def _load_and_warm(knowledge: KnowledgeBase) -> None:
    """Load the live index and the embedder, so the first customer does not wait for them."""
    knowledge.load()
    knowledge.embedder.encode(["warm-up"])


async def _executor_ctx(
    app: web.Application, *, workers: int, torch_threads: int | None
) -> AsyncIterator[None]:
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="retrieval")
    app[RETRIEVAL_EXECUTOR] = executor
    # torch_threads 0: no model runs here, and torch is not even imported.
    previous_threads = _share_cores(workers + 1, torch_threads) if torch_threads != 0 else None
    try:
        yield
    finally:
        # Waits for searches in flight before the knowledge base below is closed.
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        if previous_threads is not None:
            # Silently: "model computations use 2 thread(s) each" was the last line a
            # stopping server printed, as if it were starting something.
            _set_torch_threads(previous_threads, say=False)


def _share_cores(computing_threads: int, torch_threads: int | None) -> int:
    """Give each thread that runs a model (the retrieval workers and the generation
    worker) its share of the cores; return the previous setting.

    torch gives every computation as many threads as there are cores, and its threads
    spin while they wait for each other: with more of them than cores, they mostly wait.
    On two busy cores the embedder took 540 ms for one question with two threads and
    15 ms with one. One thread each, side by side, keeps every core busy without that."""
    threads = torch_threads or max(1, _cores() // computing_threads)
    return _set_torch_threads(threads)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may run on (containers)
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _set_torch_threads(threads: int, *, say: bool = True) -> int:
    import torch

    previous = torch.get_num_threads()
    if threads != previous:
        torch.set_num_threads(threads)
        if say:
            log.info("model computations use %d thread(s) each", threads)
    return previous


async def _generator_ctx(app: web.Application, *, given: Generator | None) -> AsyncIterator[None]:
    """The in-process model in its batching worker, or None (the engine then copies).

    The model loads in a thread at start-up; a home without a trained model serves in
    copy mode rather than failing, and says so. The worker sits in a swappable holder, so
    a newly promoted adapter can replace it while the server runs (:func:`_follow_ctx`).
    """
    settings = app[SETTINGS]
    if given is not None or settings.engine.answer_mode == "copy":
        app[GENERATOR] = given
        if given is None:
            await _live_adapter_status(settings, generator_paths(settings))
        yield
        return
    if settings.generator.backend == "openai":
        async for _ in _inference_server_ctx(app):
            yield
        return
    holder = SwappableGenerator()
    app[SWAPPABLE] = holder
    try:
        await _load_live_into(app, holder)
    except NoLiveAdapterError as exc:
        log.warning("%s; replies copy the best retrieved answer until then", exc)
    # The engine is given the holder even while it holds nothing: it copies until an adapter
    # is loaded into it (bot.core.ports.Switchable), and nobody changes the engine after.
    app[GENERATOR] = holder
    try:
        yield
    finally:
        await holder.aclose()


async def _inference_server_ctx(app: web.Application) -> AsyncIterator[None]:
    """The generator as a client of an OpenAI-compatible inference server (no torch here);
    the server, not this process, loads the model and the adapter."""

    config = app[SETTINGS].generator
    session = client_session(config)
    try:
        app[GENERATOR] = InferenceServerGenerator(session, config)
        log.info("generating with %s at %s", config.remote_model, config.endpoint)
        yield
    finally:
        await session.close()


async def _load_live_into(app: web.Application, holder: SwappableGenerator) -> None:
    """Load the live adapter in a thread, start its worker and make it current; the
    previous one (if any) is closed once the replies it is streaming have finished.

    Raises NoLiveAdapterError when no adapter is live, unless the answer mode is
    'generate' (which serves the configured base as it is)."""
    from finetune.worker import GenerationWorker  # lazy: torch

    settings = app[SETTINGS]
    config = settings.generator
    paths = generator_paths(settings)
    live, status = await _live_adapter_status(settings, paths)
    if live is None and settings.engine.answer_mode != "generate":
        # The base without an adapter has no evaluation to weigh against copying: 'auto'
        # copies until `supportbot train` has made one; only 'generate' serves it bare.
        raise NoLiveAdapterError("no adapter is live yet: run `supportbot train` first")
    if live is not None and status is not None and not status.served:
        holder.declined = live.folder.name
        old = holder.clear()
        if old is not None:
            await holder.retire(old, timeout=_RETIRE_TIMEOUT_S)
        return
    holder.declined = None
    model = await asyncio.to_thread(load_live_generator, paths, config)
    worker = GenerationWorker(
        model,
        max_batch_size=config.max_batch_size,
        batch_wait_ms=config.batch_wait_ms,
        max_queued=config.max_queued_requests,
    ).start()
    old = holder.replace(WorkerGenerator(worker), close=worker.close)
    log.info("serving generator %s%s", worker.version, f" (was {old.version})" if old else "")
    if old is not None:
        await holder.retire(old, timeout=_RETIRE_TIMEOUT_S)


async def _live_adapter_status(
    settings: Settings, paths: GeneratorPaths
) -> tuple[AdapterRecord | None, AdapterStatus | None]:
    """The live adapter and whether customers get its replies, logged in the words
    `supportbot train` printed and the dashboard's badge shows."""

    live = await asyncio.to_thread(_live_adapter, paths)
    if live is None:
        return None, None
    status = adapter_status(
        live.metrics,
        live=True,
        answer_mode=settings.engine.answer_mode,
        tolerance=settings.engine.auto_tolerance,
    )
    # Information, not a warning, even where 'auto' declined the adapter: that is auto mode
    # doing its job (a first `make run` trains one too short to serve), and the sentence
    # says why and what to do. A warning on every fresh start would teach operators to
    # ignore warnings (issue 19: `make run` prints none from our code).
    log.info("adapter %s: %s", live.folder.name, status.sentence())
    return live, status


async def _follow_ctx(app: web.Application, *, interval: float) -> AsyncIterator[None]:
    async with running(_follow_live_adapter(app, interval), name="generator-follow"):
        yield


async def _follow_live_adapter(app: web.Application, interval: float) -> None:
    """Every ``interval`` seconds, switch to the live adapter if a retraining cycle
    promoted another one (or an operator rolled back)."""
    holder = app[SWAPPABLE]
    paths = generator_paths(app[SETTINGS])
    while True:
        await asyncio.sleep(interval)
        try:
            live = await asyncio.to_thread(_live_adapter, paths)
            if live is None or live.folder.name in (holder.version, holder.declined):
                continue
            await _load_live_into(app, holder)
        except Exception:
            log.exception("switching to the new adapter failed; still serving %s", holder.version)


def _live_adapter(paths: GeneratorPaths) -> AdapterRecord | None:
    registry = ModelRegistry.open(paths)
    try:
        return registry.live_adapter()
    finally:
        registry.close()


async def _schedule_ctx(app: web.Application, *, hours: float) -> AsyncIterator[None]:
    async with running(_scheduled_cycles(app, hours * 3600.0), name="retrain-schedule"):
        yield


async def _scheduled_cycles(app: web.Application, interval: float) -> None:
    """Every ``interval`` seconds, run ``supportbot retrain`` in a subprocess: training
    never shares the event loop (or the serving process's memory) with customers."""
    argv, env = scheduled_cycle_command(app[SETTINGS])
    while True:
        await asyncio.sleep(interval)
        log.info("scheduled retraining cycle starting")
        process = await asyncio.create_subprocess_exec(*argv, env={**os.environ, **env})
        try:
            code = await process.wait()
        except asyncio.CancelledError:
            # Shutdown: stop the cycle; its lock is taken over by the next one.
            process.terminate()
            await process.wait()
            raise
        log.log(
            logging.INFO if code == 0 else logging.WARNING,
            "scheduled retraining cycle ended with exit status %s",
            code,
        )


async def _engine_ctx(
    app: web.Application,
    *,
    retriever: Retriever | None,
) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    config = settings.engine
    curator: AnswerCurator | None = None
    finder: QuestionFinder | None = None
    if retriever is None:
        knowledge = app[KNOWLEDGE]
        handoff = app[HANDOFF]
        knowledge_retriever = KnowledgeRetriever(
            knowledge,
            app[RETRIEVAL_EXECUTOR],
            max_in_flight=settings.web.retrieval_workers,
            verify=lambda: handoff.current().weights.verifier_probability > 0,
        )
        retriever = curator = finder = knowledge_retriever
        embedder_id = knowledge.embedder.model_id
        await asyncio.to_thread(app[HANDOFF].follow, embedder_id)
        # The line `supportbot calibrate` and `supportbot train` printed, read the same way.
        log.info(
            "%s", format_served(served_confidence(settings.engine, settings.home, embedder_id))
        )
    elif hasattr(retriever, "add_curated"):
        curator = cast(AnswerCurator, retriever)
    if curator is not None and REPLICA in app:
        curator = announcing(curator, app[STORE], app[REPLICA])
    if finder is None and hasattr(retriever, "similar_questions"):
        finder = cast(QuestionFinder, retriever)
    scrubber = pii_scrubber(settings, app[RETRIEVAL_EXECUTOR])
    warming = None
    if isinstance(scrubber, PersonalDataScrubber):
        # In the background: start-up does not wait the seconds spaCy takes to load, and
        # the first message waits only for what is left.
        warming = asyncio.get_running_loop().run_in_executor(app[RETRIEVAL_EXECUTOR], scrubber.warm)
    app[ENGINE] = engine = ConversationEngine(
        retriever,
        app[GENERATOR],
        app[STORE],
        config,
        scrubber,
        curator=curator,
        # The model's trained "I can't answer this" sentence hands the conversation off.
        generator_handoff_reply=settings.generator.handoff_reply,
        flag_gate=_flag_budget(app, app[STORE]),
        question_finder=finder,
        handoff_policy=app[HANDOFF],
        retrieval_k=settings.retrieval.top_k,
        evidence_k=settings.generator.retrieved_k,
        keep_customer_details=settings.ops.customer_details_days > 0,
    )
    if not engine.generating:
        log.info("no generator: replies copy the best retrieved answer")
    yield
    if warming is not None and not warming.done():
        warming.cancel()
    elif warming is not None and warming.exception() is not None:
        log.error("the name recogniser did not load: %s", warming.exception())


def _flag_budget(app: web.Application, store: ConversationStore) -> FlagBudget:
    """Caps on the review queue: a flood from many addresses cannot bury real hand-offs."""

    async def open_flags() -> int:
        return sum((await store.counts()).open_flags_by_reason.values())

    config = app[SETTINGS].web
    return FlagBudget(
        max_open=config.max_open_flags,
        per_client_per_hour=config.flags_per_client_per_hour,
        open_flags=open_flags,
        refused=app[METRICS].flags_refused,
        max_clients=config.max_tracked_clients,
    )


async def _refresh_ctx(app: web.Application, *, interval: float) -> AsyncIterator[None]:
    async with running(_refresh_knowledge(app, interval), name="knowledge-refresh"):
        yield


async def _refresh_knowledge(app: web.Application, interval: float) -> None:
    """Every ``interval`` seconds, switch to a newer index version if a job published one,
    and serve the hand-off threshold saved for the embedder searched with: fitted for
    another embedder, chosen by an operator on another replica, or refitted by a job."""
    knowledge, executor = app[KNOWLEDGE], app[RETRIEVAL_EXECUTOR]
    handoff = app[HANDOFF]
    loop = asyncio.get_running_loop()

    def refresh() -> tuple[str, bool, bool]:
        # In the worker: the embedder's id and the calibration are read from files (on
        # shared storage with several hosts), which the event loop must not wait for.
        served_by = knowledge.embedder.model_id
        knowledge.refresh_if_stale()
        embedder_id = knowledge.embedder.model_id
        # Scores of another embedder live on another scale: its own threshold applies.
        moved = handoff.follow(embedder_id)
        return embedder_id, embedder_id != served_by, moved

    while True:
        await asyncio.sleep(interval)
        try:
            embedder_id, switched, moved = await loop.run_in_executor(executor, refresh)
            threshold = handoff.current().threshold
            if switched:
                log.info(
                    "now searching with embedder %s, hand-off threshold %.3f",
                    embedder_id,
                    threshold,
                )
            elif moved:
                log.info("hand-off threshold now %.3f (the saved calibration changed)", threshold)
        except Exception:
            version = knowledge.version
            log.exception(
                "index refresh failed; still serving version %s", version.id if version else None
            )
