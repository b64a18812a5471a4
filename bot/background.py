"""A loop the server runs while it serves, tied to the lifetime of an aiohttp cleanup
context: started with the application, cancelled at shutdown and waited for, so that it
never outlives the objects it uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, None], *, name: str) -> AsyncIterator[None]:
    """Run ``work`` as the task ``name`` for the block; cancel it and wait for it after."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
