"""wait_event: an Event wait with a timeout that costs a timer handle, not a task."""

from __future__ import annotations

import asyncio

from agent.process.timers import wait_event


def test_set_before_timeout_and_timeout() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        event.set()
        assert await wait_event(event, 0.0)
        event.clear()
        loop.call_later(0.01, event.set)
        start = loop.time()
        assert await wait_event(event, 5.0)
        assert loop.time() - start < 1.0
        event.clear()
        assert not await wait_event(event, 0.02)
        assert event.is_set()  # a timeout sets it: callers clear before they wait again
        event.clear()
        loop.call_later(0.01, event.set)
        assert await wait_event(event, None)
        assert not [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_cancelled_wait_cancels_its_timer() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(wait_event(asyncio.Event(), 30.0))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        assert not [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]

    asyncio.run(scenario())
