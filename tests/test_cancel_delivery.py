"""A stop's cancel reaches every task even when it comes just as an awaited step completes.

On Python 3.11, `asyncio.wait_for` returns the result instead of raising when the cancel comes
after its inner step finished but before it resumed: the cancelled task then carried on and
the agent's task group waited for it forever (seen once as a SIGTERM that never exited).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from agent.process.mqtt import Connection
from agent.process.runtime import Agent
from agent.settings.config import Config, MqttConfig, StateConfig, StatusConfig


async def _cancel_as_it_wakes(body: Callable[[], Coroutine[Any, Any, None]],
                             gate: asyncio.Event) -> bool:
    """Run `body` until it waits on `gate`; open the gate and cancel right after the inner
    step completed. True when the task ended cancelled."""
    task = asyncio.create_task(body())
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.sleep(0)  # the awaited step completes in this turn; its waiter resumes next
    task.cancel()
    await asyncio.wait({task}, timeout=1.0)
    if not task.done():
        task.cancel()  # a second cancel to clean up: the first one was lost
        await asyncio.wait({task}, timeout=1.0)
        return False
    return task.cancelled()


def test_connect_completing_with_the_cancel_still_cancels() -> None:
    async def main() -> bool:
        conn = Connection(MqttConfig(port=1), "t", ["a/b"], timeout_s=5.0)
        gate = asyncio.Event()

        async def connect(*args: object, **kwargs: object) -> None:
            await gate.wait()

        conn._client.connect = connect
        conn._client.subscribe = lambda subscriptions: None

        async def use() -> None:
            async with conn:
                await asyncio.sleep(10)
        return await _cancel_as_it_wakes(use, gate)
    assert asyncio.run(main())


def test_check_and_clock_loops_woken_with_the_cancel_still_end() -> None:
    config = Config(status=StatusConfig(path=""), state=StateConfig(dir=""))

    async def main() -> list[bool]:
        agent = Agent(config)
        return [await _cancel_as_it_wakes(agent._communication_check, agent._wake_check),
                await _cancel_as_it_wakes(agent._clock, agent._wake_clock)]
    assert asyncio.run(main()) == [True, True]
