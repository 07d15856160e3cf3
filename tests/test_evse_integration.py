"""A two-connector station through the real process: two EVSE manager API modules on a real
mosquitto, two file outputs, each display showing its own session and live values."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.dev.broker import Mosquitto
from agent.process.mqtt import Connection
from agent.settings.config import MqttConfig
from tests.everest_events import session_event
from tests.harness import BASE, MODULE_ID, AgentProcess, Everest, read_json, wait_until

EVSE_BASE = "everest_api/1/evse_manager_consumer/{}/"
MODULES = {1: "evse_manager_consumer_1", 2: "evse_manager_consumer_2"}
SESSIONS = {1: "0f4a5b7c-0000-4000-8000-000000000001", 2: "0f4a5b7c-0000-4000-8000-000000000002"}


def config(tmp: Path, port: int) -> Path:
    path = tmp / "agent.toml"
    evses = "".join(f'[[evse]]\nid = {i}\nmodule_id = "{m}"\n' for i, m in MODULES.items())
    outputs = "".join(f'[[output]]\ntype = "file"\npath = "{tmp}/display{i}.json"\nevse = {i}\n'
                      for i in MODULES)
    path.write_text(f"""
[everest]
module_id = "{MODULE_ID}"
[mqtt]
port = {port}
reconnect_max_s = 0.5
[watchdog]
communication_check_interval_s = 0.5
heartbeat_timeout_s = 1.5
[display]
final_cost_wait_s = 1
finished_hold_s = 60
[status]
path = "{tmp}/status.json"
interval_s = 0.2
[state]
dir = "{tmp}/state"
{evses}{outputs}""")
    return path


def everest(doc: Any) -> bytes:
    return json.dumps(doc, indent=4, sort_keys=True).encode()


class Station:
    """EVerest's side: the session cost API (Everest) plus the two EVSE modules."""

    def __init__(self, sim: Everest) -> None:
        self.sim = sim
        self.beats = {1: 0, 2: 0}
        self.alive = {1: True, 2: True}

    def evse(self, i: int, topic: str, doc: Any) -> None:
        self.sim.client.publish(EVSE_BASE.format(MODULES[i]) + "e2m/" + topic, everest(doc),
                                qos=0)

    def event(self, i: int, kind: str, token: str | None = None, **extra: Any) -> None:
        self.evse(i, "session_event", session_event(kind, SESSIONS[i], token, **extra))

    def info(self, i: int, energy_wh: int, power_w: int) -> None:
        self.evse(i, "session_info", {"state": "Charging", "charged_energy_wh": energy_wh,
                                      "discharged_energy_wh": 0, "latest_total_w": power_w,
                                      "session_duration_s": 65, "timestamp": "x"})

    async def heartbeats(self) -> None:
        while True:
            self.sim.heartbeat()
            for i in MODULES:
                if self.alive[i]:
                    self.evse(i, "heartbeat", self.beats[i])
                    self.beats[i] += 1
            await asyncio.sleep(0.3)


async def _watch_checks(port: int, seen: dict[str, int]) -> None:
    topic = "everest_api/1/+/+/m2e/communication_check"
    async with Connection(MqttConfig(port=port), "", [topic], timeout_s=2.0) as conn:
        async for name, payload in conn.messages():
            if payload == b"true":
                seen[name] = seen.get(name, 0) + 1


def view(tmp: Path, i: int) -> dict[str, Any]:
    return read_json(tmp / f"display{i}.json") or {}


def live_energy(tmp: Path, i: int, energy_wh: int) -> Callable[[], dict[str, Any] | None]:
    """A predicate: EVSE i's view once its live energy reads `energy_wh`."""
    def check() -> dict[str, Any] | None:
        shown = view(tmp, i)
        live = shown.get("live") or {}
        return shown if live.get("energy_wh") == energy_wh else None
    return check


def on_screen(tmp: Path, i: int, screen: str) -> Callable[[], bool]:
    """A predicate: EVSE i's view is on `screen`."""
    return lambda: view(tmp, i).get("screen") == screen


def test_two_connectors_each_show_their_own_session(broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        checks: dict[str, int] = {}
        watcher = asyncio.create_task(_watch_checks(broker.port, checks))
        sim = await Everest(broker.port).connect()
        station = Station(sim)
        beats = asyncio.create_task(station.heartbeats())
        agent = await AgentProcess(config(tmp_path, broker.port)).start()
        try:
            await wait_until(lambda: view(tmp_path, 1).get("link") == "up"
                             and view(tmp_path, 2).get("link") == "up", what="both links up")
            station.evse(1, "evse_id", "DE*PNX*E12345*1")
            station.evse(2, "evse_id", "DE*PNX*E12345*2")
            station.evse(2, "powermeter_public_key_ocmf", "3059301306072A8648CE3D0201AB")
            for i in MODULES:
                station.event(i, "SessionStarted")
                station.event(i, "ChargingStarted")
                station.info(i, 1000 * i, 7400 * i)
            # One station-wide topic: the costs of both sessions arrive interleaved.
            for i in (2, 1):
                sim.send("session_cost", {
                    "session_id": SESSIONS[i], "status": "Running",
                    "currency": {"code": "EUR", "decimals": 3},
                    "cost_chunks": [{"cost": {"value": 1000 * i}}],
                    "charging_price": [{"category": "Energy", "price": {
                        "currency": {"decimals": 3}, "value": {"value": 390}}}]})
            for i in MODULES:
                await wait_until(on_screen(tmp_path, i, "charging"), what=f"EVSE {i} charging")
                station.info(i, 1000 * i + 2000, 7400 * i)
            for i in MODULES:
                shown = await wait_until(live_energy(tmp_path, i, 1000 * i + 2000),
                                         what=f"EVSE {i} live")
                assert (shown["evse"], shown["evse_id"]) == (i, f"DE*PNX*E12345*{i}")
                # Eichrecht: EVSE 2's meter key on its own display only
                assert shown["meter_public_key"] == (
                    "3059301306072A8648CE3D0201AB" if i == 2 else None)
                assert shown["session_id"] == SESSIONS[i]
                assert shown["total"]["value"] == 1000 * i
                # + 0.39 EUR/kWh x 2 kWh since the backend's total
                assert shown["live_total"]["value"] == 1000 * i + 780
                assert shown["live_total"]["text"].startswith("≈ ")
            # EVSE 1's transaction ends without a final cost: receipt with final false.
            station.event(1, "TransactionFinished")
            shown = await wait_until(lambda: view(tmp_path, 1).get("screen") == "finished"
                                     and view(tmp_path, 1), what="EVSE 1 finished")
            assert shown["final"] is False and shown["total"]["value"] == 1000
            assert view(tmp_path, 2)["screen"] == "charging"
            # EVSE 2's module goes silent: only its display becomes unavailable.
            station.alive[2] = False
            await wait_until(lambda: view(tmp_path, 2).get("screen") == "unavailable",
                             what="EVSE 2 unavailable")
            assert view(tmp_path, 1)["screen"] == "finished"
            status = await wait_until(lambda: (s := read_json(tmp_path / "status.json"))
                                      and s.get("evse") and s["evse"]["2"]["link"] == "down"
                                      and s)
            assert status["evse"]["1"]["link"] == "up"
            assert status["evse"]["1"]["received"]["session_info"] >= 2
            assert status["evse"]["1"]["communication_checks_sent"] > 0
            for module in MODULES.values():
                assert checks.get(EVSE_BASE.format(module) + "m2e/communication_check", 0) > 0
            assert checks.get(BASE + "m2e/communication_check", 0) > 0
            assert await agent.terminate() == 0
        finally:
            beats.cancel()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await agent.kill()
            await sim.close()
    asyncio.run(scenario())
