"""A stop's cancel reaches every task even when it comes just as an awaited step completes.

On Python 3.11, `asyncio.wait_for` returns the result instead of raising when the cancel comes
after its inner step finished but before it resumed: the cancelled task then carried on and
the agent's task group waited for it forever. Seen twice as a SIGTERM that never exited: once
as a connect completed, once (CI, arm, a broker refusing the password) as the refused socket
was being closed, after which the link went on reconnecting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from agent.model.view import View
from agent.pricing import client as pricing_client
from agent.pricing.client import PricingClient
from agent.pricing.settings import PricingConfig
from agent.process.mqtt import Connection
from agent.process.runtime import Agent
from agent.process.workers import OutputWorker
from agent.settings.config import Config, MqttConfig, StateConfig, StatusConfig

Body = Callable[[], Coroutine[Any, Any, None]]


async def cancels_as_it_wakes(start: Callable[[], tuple[Body, asyncio.Event]]) -> bool:
    """For 0 to 3 loop turns after a body's gate opens (the inner step completing, its waiter
    resuming, ...): run a fresh body until it waits on its gate, open the gate, let the turns
    pass and cancel. True when every task still running when cancelled ended cancelled (and
    at least one was: a body that never reached its gate tests nothing)."""
    delivered = 0
    for turns in range(4):
        body, gate = start()
        task = asyncio.create_task(body())
        await asyncio.sleep(0.05)
        assert not task.done(), "the body ended before its gate"
        gate.set()
        for _ in range(turns):
            await asyncio.sleep(0)
        if task.done():
            continue  # finished before the cancel: nothing to deliver
        delivered += 1
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        if not task.done():
            task.cancel()  # a second cancel to clean up: the first one was lost
            await asyncio.wait({task}, timeout=1.0)
            return False
        if not task.cancelled():
            return False
    return delivered > 0


def _connection() -> Connection:
    return Connection(MqttConfig(port=1), "t", ["a/b"], timeout_s=5.0)


class _Socket:
    """gmqtt's connection object, as far as closing it goes; the close waits for `gate`."""

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate

    async def close(self) -> None:
        await self.gate.wait()


def test_connect_completing_with_the_cancel_still_cancels() -> None:
    def start() -> tuple[Body, asyncio.Event]:
        conn, gate = _connection(), asyncio.Event()

        async def connect(*args: object, **kwargs: object) -> None:
            await gate.wait()

        conn._client.connect = connect
        conn._client.subscribe = lambda subscriptions: None

        async def use() -> None:
            async with conn:
                await asyncio.sleep(10)
        return use, gate
    assert asyncio.run(cancels_as_it_wakes(start))


def test_a_refused_connect_closing_its_socket_with_the_cancel_still_cancels() -> None:
    # The stop that hung in CI: the broker refused the password, the agent was closing the
    # refused socket when SIGTERM came, and the link went on reconnecting for ever.
    def start() -> tuple[Body, asyncio.Event]:
        conn, gate = _connection(), asyncio.Event()

        async def refused(*args: object, **kwargs: object) -> None:
            conn._client._connection = _Socket(gate)
            raise ConnectionRefusedError

        conn._client.connect = refused

        async def use() -> None:
            async with conn:
                await asyncio.sleep(10)
        return use, gate
    assert asyncio.run(cancels_as_it_wakes(start))


def test_a_connection_saying_goodbye_with_the_cancel_still_cancels() -> None:
    def start() -> tuple[Body, asyncio.Event]:
        conn, gate = _connection(), asyncio.Event()

        async def connect(*args: object, **kwargs: object) -> None:
            conn._client._connection = _Socket(asyncio.Event())  # its close would hang

        async def disconnect(*args: object, **kwargs: object) -> None:
            await gate.wait()

        conn._client.connect = connect
        conn._client.disconnect = disconnect
        conn._client.subscribe = lambda subscriptions: None

        async def use() -> None:
            async with conn:
                pass
        return use, gate
    assert asyncio.run(cancels_as_it_wakes(start))


class _Output:
    async def open(self) -> None:
        pass

    async def show(self, view: View) -> None:
        pass

    async def close(self) -> None:
        pass


def test_an_output_flush_woken_with_the_cancel_still_cancels() -> None:
    def start() -> tuple[Body, asyncio.Event]:
        worker = OutputWorker("o", _Output(), retry_max_s=1.0)
        worker._idle.clear()  # a view not shown yet

        async def flush() -> None:
            await worker.flush(5.0)
        return flush, worker._idle
    assert asyncio.run(cancels_as_it_wakes(start))


def test_a_pricing_answer_arriving_with_the_cancel_still_cancels(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    client = PricingClient(PricingConfig(api_url="http://127.0.0.1:1/rates",
                                         token_file=str(token), timeout_s=2.0))

    def start() -> tuple[Body, asyncio.Event]:
        gate = asyncio.Event()

        async def answer(fn: object, *args: object) -> bytes:
            await gate.wait()
            return b"{}"

        monkeypatch.setattr(pricing_client, "_in_thread", answer)

        async def fetch() -> None:
            await client.fetch("TAG", "1")
        return fetch, gate
    assert asyncio.run(cancels_as_it_wakes(start))


def test_check_and_clock_loops_woken_with_the_cancel_still_end() -> None:
    config = Config(status=StatusConfig(path=""), state=StateConfig(dir=""))

    def check() -> tuple[Body, asyncio.Event]:
        agent = Agent(config)
        return agent._communication_check, agent._wake_check

    def clock() -> tuple[Body, asyncio.Event]:
        agent = Agent(config)
        return agent._clock, agent._wake_clock

    async def main() -> list[bool]:
        return [await cancels_as_it_wakes(check), await cancels_as_it_wakes(clock)]
    assert asyncio.run(main()) == [True, True]
