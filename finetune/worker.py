"""The generation worker: one background thread owns the model and batches requests.

Requests queue up (bounded); the thread takes the first waiting one, gives others
``batch_wait_ms`` to arrive, and decodes up to ``max_batch_size`` of them together.
Requests that arrive while a batch is decoding join it at the next step (continuous
batching, see :class:`finetune.generation.DecodeBatch`). Text deltas are
handed to each request's sink as they are decoded: a thread-safe queue for synchronous
callers, ``loop.call_soon_threadsafe`` into an ``asyncio.Queue`` for coroutines, so the
event loop never waits on the model.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType

from finetune.generation import DecodeBatch, DecodeSettings, ReplyGenerator
from finetune.prompting import PromptRequest

log = logging.getLogger(__name__)

_DONE = object()  # end-of-stream marker put after the last delta


class _Mailbox:
    """Hands deltas from the worker thread to one coroutine with at most one event-loop
    wake-up pending: with 32 rows decoding, a wake-up per token per row would flood the
    loop (and delay every other request, /healthz included); deltas that arrive while the
    consumer has not run yet are joined and read as one."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: collections.deque[object] = collections.deque()
        self._ready = asyncio.Event()
        self._lock = threading.Lock()
        self._wake_pending = False

    def put(self, item: object) -> None:  # called on the worker thread
        self._items.append(item)
        with self._lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._loop.call_soon_threadsafe(self._ready.set)

    async def take(self) -> tuple[str, object | None]:
        """The text that arrived since the last call, and the end marker (``_DONE`` or an
        exception) if the stream ended."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            with self._lock:  # reset before draining: a later put schedules a new wake-up
                self._wake_pending = False
            parts: list[str] = []
            while self._items:
                item = self._items.popleft()
                if item is _DONE or isinstance(item, BaseException):
                    return "".join(parts), item
                parts.append(str(item))
            if parts:
                return "".join(parts), None


class GenerationQueueFullError(RuntimeError):
    """Too many requests are waiting; the caller should answer "busy" and retry later."""


class WorkerClosedError(RuntimeError):
    """The worker was closed before or while the request was served."""


Sink = Callable[[object], None]  # receives str deltas, then _DONE or an exception


@dataclass(eq=False)
class GenerationHandle:
    """A submitted request: iterate it (blocking) for deltas, or call :meth:`result`."""

    request: PromptRequest
    settings: DecodeSettings
    _sink: Sink = field(repr=False)
    _items: queue.Queue[object] | None = field(default=None, repr=False)
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> None:
        """Stop decoding this request at the next step (e.g. the client went away)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __iter__(self) -> Iterator[str]:
        if self._items is None:
            raise TypeError("this handle delivers to a callback, not an iterator")
        while True:
            item = self._items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield str(item)

    def result(self) -> str:
        return "".join(self)


class GenerationWorker:
    """Serves a :class:`ReplyGenerator` from one thread; use as a context manager or call
    :meth:`start` and :meth:`close`."""

    def __init__(
        self,
        generator: ReplyGenerator,
        *,
        max_batch_size: int = 8,
        batch_wait_ms: float = 5.0,
        max_queued: int = 64,
        max_groups: int = 4,
    ) -> None:
        self.generator = generator
        self.max_batch_size = max_batch_size
        self.max_groups = max_groups  # batches decoding at once, taking turns per token
        self.batch_wait_s = batch_wait_ms / 1000.0
        self._queue: queue.Queue[GenerationHandle | None] = queue.Queue(maxsize=max_queued)
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self.batches_decoded = 0  # admissions: prefills of newly arrived requests
        self._next_key = 0  # names rows in the decode batches
        self.largest_batch = 0

    @property
    def version(self) -> str | None:
        """The adapter version being served (for the engine's turn records)."""
        return self.generator.version or None

    def start(self) -> GenerationWorker:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="generation-worker", daemon=True)
            self._thread.start()
        return self

    def __enter__(self) -> GenerationWorker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def submit(
        self,
        request: PromptRequest,
        *,
        max_new_tokens: int | None = None,
        stop: tuple[str, ...] = (),
        sink: Sink | None = None,
    ) -> GenerationHandle:
        """Queue a request. Raises GenerationQueueFullError when the queue is full and
        WorkerClosedError after :meth:`close`."""
        if self._closed.is_set():
            raise WorkerClosedError("the generation worker is closed")
        items: queue.Queue[object] | None = None
        if sink is None:
            items = queue.Queue()
            sink = items.put
        settings = self.generator.settings(max_new_tokens=max_new_tokens, stop=stop)
        handle = GenerationHandle(request, settings, sink, items)
        try:
            self._queue.put_nowait(handle)
        except queue.Full:
            raise GenerationQueueFullError(
                f"generation queue is full ({self._queue.maxsize} requests waiting)"
            ) from None
        return handle

    async def stream(
        self,
        request: PromptRequest,
        *,
        max_new_tokens: int | None = None,
        stop: tuple[str, ...] = (),
    ) -> AsyncIterator[str]:
        """Yield reply deltas without blocking the event loop. Leaving the loop early
        (or cancellation) frees the request's batch row."""
        loop = asyncio.get_running_loop()
        mailbox = _Mailbox(loop)
        handle = self.submit(request, max_new_tokens=max_new_tokens, stop=stop, sink=mailbox.put)
        try:
            while True:
                text, end = await mailbox.take()
                if text:
                    yield text
                if end is _DONE:
                    return
                if isinstance(end, BaseException):
                    raise end
        finally:
            handle.cancel()

    async def generate(self, request: PromptRequest, *, max_new_tokens: int | None = None) -> str:
        return "".join([d async for d in self.stream(request, max_new_tokens=max_new_tokens)])

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop taking requests, finish the batch in flight, fail the ones still queued."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)  # wakes the thread if it is waiting
        if self._thread is not None:
            self._thread.join(timeout)
        self._fail_queued(WorkerClosedError("the generation worker was closed"))

    # -- worker thread ------------------------------------------------------------------

    def _run(self) -> None:
        # Continuous batching: requests that arrive while others decode are prefilled and
        # joined to the running batch at the next step, so time to first token stays near
        # one prefill under load and all rows share one forward pass per token. A batch
        # that is full, or whose model cache cannot be joined, makes a new arrival start
        # another batch (at most ``max_groups``); those take turns, one token each.
        groups: list[DecodeBatch] = []
        handles: dict[int, GenerationHandle] = {}

        def cancelled(key: int) -> bool:
            return handles[key].cancelled

        while not self._closed.is_set() or groups:
            if not self._closed.is_set():
                self._admit_waiting(groups, handles)
            for group in list(groups):
                try:
                    events = group.step(cancelled)
                except Exception as exc:  # one bad batch must not kill the worker
                    log.exception("generation failed for a batch of %d", len(group))
                    for key in group.row_keys():
                        handles.pop(key)._sink(exc)
                    groups.remove(group)
                    continue
                for event in events:
                    handle = handles[event.row]
                    if event.text:
                        handle._sink(event.text)
                    if event.finished:
                        del handles[event.row]
                        handle._sink(_DONE)
                if not group:
                    groups.remove(group)

    def _admit_waiting(
        self, groups: list[DecodeBatch], handles: dict[int, GenerationHandle]
    ) -> None:
        """Join waiting requests to a batch with room, or start a new batch."""
        target = next((g for g in groups if g.joinable and len(g) < self.max_batch_size), None)
        if target is None and len(groups) >= self.max_groups:
            return
        room = self.max_batch_size - (len(target) if target is not None else 0)
        batch = self._next_batch(wait=not groups, limit=room)
        if not batch:
            return
        if target is None:
            target = DecodeBatch(self.generator)
        keys = [self._next_key + i for i in range(len(batch))]
        self._next_key += len(batch)
        try:
            prompts = [self.generator.prompt_format.encode(h.request).input_ids for h in batch]
            target.admit(prompts, [h.settings for h in batch], keys)
        except Exception as exc:  # a prompt that cannot be encoded fails its own requests
            log.exception("could not start %d request(s)", len(batch))
            for handle in batch:
                handle._sink(exc)
            if not target:
                with contextlib.suppress(ValueError):
                    groups.remove(target)
            return
        handles.update(zip(keys, batch, strict=True))
        if target not in groups:
            groups.append(target)
        self.batches_decoded += 1
        self.largest_batch = max(self.largest_batch, len(target))

    def _next_batch(self, *, wait: bool, limit: int) -> list[GenerationHandle]:
        """Up to ``limit`` waiting requests; blocks for the first one only when ``wait``
        (nothing is decoding), then gives others ``batch_wait_ms`` to arrive."""
        try:
            first = self._queue.get(timeout=0.5) if wait else self._queue.get_nowait()
        except queue.Empty:
            return []
        if first is None:
            return []
        batch = [first]
        wait_until = time.monotonic() + (self.batch_wait_s if wait else 0.0)
        while len(batch) < limit:
            remaining = wait_until - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is None:
                self._closed.set()
                break
            batch.append(item)
        return [h for h in batch if not h.cancelled]

    def _fail_queued(self, error: BaseException) -> None:
        while True:
            try:
                handle = self._queue.get_nowait()
            except queue.Empty:
                return
            if handle is not None:
                handle._sink(error)
