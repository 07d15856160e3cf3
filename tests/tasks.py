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
