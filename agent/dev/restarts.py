"""Broker restarts against a running agent: the gaps EVerest sees between `true` checks.

Used by `bench/broker_restarts.py` (the 50-restart figure) and a short loop in the test suite.
"""

from __future__ import annotations

import asyncio
import itertools
import random

from agent.dev.broker import Mosquitto
from agent.lanes import Lane
from agent.process.mqtt import Connection, MqttError
from agent.settings.config import MqttConfig

RETRY_S = 0.02


class CheckWatcher:
    """Records when each `true` check arrives; reconnects at once whenever the broker returns."""

    def __init__(self, port: int, topic: str) -> None:
        self.config = MqttConfig(port=port, keepalive_s=5)
        self.topic = topic
        self.times: list[float] = []

    async def run(self) -> None:
        """Stay subscribed until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with Connection(self.config, "", [self.topic], timeout_s=0.5) as conn:
                    async for _, payload in conn.messages():
                        if payload == b"true":
                            self.times.append(loop.time())
            except MqttError:  # broker down or starting: try again at once
                await asyncio.sleep(RETRY_S)

    def largest_gap(self, start: float, end: float) -> float:
        """The longest time between two consecutive `true` checks seen in [start, end]."""
        times = [t for t in self.times if start <= t <= end]
        return max((b - a for a, b in itertools.pairwise(times)), default=end - start)


async def restart_gaps(broker: Mosquitto, watcher: CheckWatcher, restarts: int,
                       down_s: tuple[float, float], up_s: float = 2.5,
                       rng: random.Random | None = None) -> list[float]:
    """Kill and restart `broker` `restarts` times; the largest check gap around each restart."""
    rand = rng or random.Random(0)
    loop = asyncio.get_running_loop()
    lane = Lane("broker")
    gaps = []
    for _ in range(restarts):
        await asyncio.sleep(up_s)
        before = loop.time() - up_s + 0.5
        broker.stop()
        await asyncio.sleep(rand.uniform(*down_s))
        await lane.call(broker.start)
        await asyncio.sleep(up_s)
        gaps.append(watcher.largest_gap(before, loop.time()))
    return gaps
