"""Waiting for an asyncio.Event with a timeout, cheaply: the idle agent does it every second."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until `event` is set or `timeout` seconds pass (None: no limit); True when set.

    asyncio.wait_for(event.wait(), timeout) would wrap the wait in a new task each time (until
    Python 3.12) and cancel it on the timeout; a timer handle that sets the event is a fraction
    of that work. A timeout sets the event too: callers clear it before they wait again.
    """
    if event.is_set():
        return True
    if timeout is None:
        await event.wait()
        return True
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        event.set()

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        await event.wait()
    finally:
        timer.cancel()
    return not fired
