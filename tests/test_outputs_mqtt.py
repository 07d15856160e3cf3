"""`type = "mqtt"`: each display's view back onto the broker for vendor HMIs, through the real
process and a real mosquitto: retained, QoS 1, per EVSE, only on change, replaced at start."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from agent.dev.broker import Mosquitto
from agent.process.mqtt import Connection
from agent.settings.config import MqttConfig
from tests.harness import EMULATED, MODULE_ID, AgentProcess, Everest, wait_until
from tests.tasks import cancelled
from tests.test_evse_integration import SESSIONS, Station, config

VIEWS = {i: f"cost_agent/{MODULE_ID}/evse/{i}/view" for i in (1, 2)}


def with_mqtt_outputs(tmp: Path, port: int) -> Path:
    path = config(tmp, port)
    path.write_text(path.read_text() + "".join(
        f'[[output]]\ntype = "mqtt"\nevse = {i}\n' for i in (1, 2)))
    return path


class Hmi:
    """A vendor HMI: subscribes to the view topics, keeps every (topic, view, retained)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.got: list[tuple[str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Hmi:
        ready = asyncio.Event()

        async def listen() -> None:
            async with Connection(MqttConfig(port=self.port), "", [f"cost_agent/{MODULE_ID}/#"],
                                  timeout_s=5.0) as conn:
                ready.set()
                async for topic, payload in conn.messages():
                    self.got.append((topic, json.loads(payload)))
        self._task = asyncio.create_task(listen())
        await asyncio.wait_for(ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def latest(self, i: int) -> dict[str, Any]:
        return next((v for t, v in reversed(self.got) if t == VIEWS[i]), {})


def test_each_evses_view_is_published_retained_to_its_own_topic(
        broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        sim = await Everest(broker.port).connect()
        station = Station(sim)
        beats = asyncio.create_task(station.heartbeats())
        agent = await AgentProcess(with_mqtt_outputs(tmp_path, broker.port)).start()
        try:
            async with Hmi(broker.port) as hmi:
                await wait_until(lambda: hmi.latest(1).get("link") == "up"
                                 and hmi.latest(2).get("link") == "up", what="both views up")
                station.event(1, "SessionStarted")
                station.info(1, 1000, 7400)
                sim.send("session_cost", {"session_id": SESSIONS[1], "status": "Running",
                                          "currency": {"code": "EUR", "decimals": 3},
                                          "cost_chunks": [{"cost": {"value": 1234}}]})
                await wait_until(lambda: hmi.latest(1).get("screen") == "charging",
                                 what="EVSE 1 charging on its topic")
                one, two = hmi.latest(1), hmi.latest(2)
                assert one["session_id"] == SESSIONS[1] and one["total"]["value"] == 1234
                assert one["evse"] == 1 and two["evse"] == 2
                assert two["screen"] == "price" and two["session_id"] is None
                # Only on change: EVSE 2's view was not sent again for EVSE 1's session.
                assert sum(1 for t, _ in hmi.got if t == VIEWS[2]) <= 2  # (price, link up)
            # Retained: an HMI that starts now gets each display's current view at once.
            async with Hmi(broker.port) as late:
                await wait_until(lambda: late.latest(1).get("screen") == "charging"
                                 and late.latest(2).get("screen") == "price",
                                 what="retained views")
            # The agent restarts: its first views replace the retained ones.
            assert await agent.terminate() == 0
            async with Hmi(broker.port) as hmi:
                # First the two retained views (of the old run, link up too), before the new
                # run is started; then a view the new run published for display 2.
                await wait_until(lambda: len(hmi.got) >= 2, what="the retained views")
                assert sorted(t for t, _ in hmi.got[:2]) == [VIEWS[1], VIEWS[2]]
                agent = await AgentProcess(with_mqtt_outputs(tmp_path, broker.port)).start()
                await wait_until(lambda: any(t == VIEWS[2] and v.get("link") == "up"
                                             for t, v in hmi.got[2:]),
                                 timeout=60 if EMULATED else 15, what="views of the new run")
        finally:
            await cancelled(beats)
            await agent.kill()
            await sim.close()
    asyncio.run(scenario())


class Recorder:
    """The broker as the output sees it (the real one is tested above): what was published."""

    def __init__(self) -> None:
        self.connection = 1
        self.up = True
        self.sent: list[tuple[str, bytes]] = []

    def publish_retained(self, topic: str, payload: bytes) -> bool:
        if self.up:
            self.sent.append((topic, payload))
        return self.up


def test_a_view_is_sent_once_per_connection_and_retried_while_down() -> None:
    from agent.model.view import View
    from agent.outputs.mqtt import MqttViewConfig, NotConnected, create

    broker = Recorder()
    output = create(MqttViewConfig())
    output.bind(broker, "cost_agent/m/view")

    async def scenario() -> None:
        await output.open()
        await output.show(View(screen="price", link="up", updated_at="1"))
        await output.show(View(screen="price", link="up", updated_at="2"))  # same content
        assert [t for t, _ in broker.sent] == ["cost_agent/m/view"]
        broker.connection = 2  # the broker came back (maybe without its retained messages)
        await output.show(View(screen="price", link="up", updated_at="3"))
        assert len(broker.sent) == 2
        broker.up = False
        with pytest.raises(NotConnected):  # the worker retries it with the newest view
            await output.show(View(screen="unavailable", link="down"))
    asyncio.run(scenario())
