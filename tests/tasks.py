"""Output workers run as the runtime runs them: `run()` in a task group, cancelled at stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from agent.process.workers import OutputWorker


@contextlib.asynccontextmanager
async def running(*workers: OutputWorker) -> AsyncIterator[None]:
    """The workers' production `run()` for the duration of the block; closed on the way out."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(w.run(), name=f"output:{w.name}") for w in workers]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()


async def cancelled(*tasks: asyncio.Task[None]) -> None:
    """Cancel a test's background tasks (heartbeats, watchers) and wait until they ended."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
