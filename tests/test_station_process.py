"""A two-connector station through the real agent process and a real broker (issue 16):
receipts survive another driver's authorization, sessions whose start was missed are shown,
and after kill -9 each display comes back with its own session."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from agent.dev.broker import Mosquitto
from tests.harness import EMULATED, AgentProcess, Everest, wait_until
from tests.test_evse_integration import (
    MODULES,
    SESSIONS,
    Station,
    config,
    live_energy,
    on_screen,
    view,
)


def running_cost(i: int, value: int, status: str = "Running", **extra: Any) -> dict[str, Any]:
    return {"session_id": SESSIONS[i], "status": status,
            "currency": {"code": "EUR", "decimals": 3},
            "cost_chunks": [{"cost": {"value": value}}], **extra}


async def station_up(broker: Mosquitto) -> tuple[Everest, Station, asyncio.Task[None]]:
    sim = await Everest(broker.port).connect()
    station = Station(sim)
    return sim, station, asyncio.create_task(station.heartbeats())


async def both_up(tmp: Path) -> None:
    """Both EVSE links up in the views this agent process wrote."""
    await wait_until(lambda: view(tmp, 1).get("link") == "up" and view(tmp, 2).get("link") == "up",
                     what="both links up")


def forget_views(tmp: Path) -> None:
    """Before a restart: the old process's view files must not pass for the new one's."""
    for i in MODULES:
        (tmp / f"display{i}.json").unlink(missing_ok=True)


async def shown_on(tmp: Path, i: int, screen: str) -> dict[str, Any]:
    """EVSE i's view, once it is on `screen`."""
    shown: dict[str, Any] = await wait_until(
        lambda: (v := view(tmp, i)).get("screen") == screen and v, what=f"EVSE {i} {screen}")
    return shown


async def stop_station(beats: asyncio.Task[None], sim: Everest) -> None:
    beats.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await beats
    await sim.close()


async def stop(beats: asyncio.Task[None], agent: AgentProcess, sim: Everest) -> None:
    await stop_station(beats, sim)
    await agent.kill()


def test_an_authorization_at_the_other_connector_never_wipes_a_receipt(
        broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        sim, station, beats = await station_up(broker)
        agent = await AgentProcess(config(tmp_path, broker.port)).start()
        try:
            await both_up(tmp_path)
            station.event(1, "SessionStarted")
            station.info(1, 1000, 7400)
            sim.send("session_cost", running_cost(1, 500))
            await wait_until(on_screen(tmp_path, 1, "charging"), what="EVSE 1 charging")
            station.event(1, "TransactionFinished")
            station.event(1, "SessionFinished")
            sim.send("session_cost", running_cost(1, 900, "Finished",
                                                  qr_code="https://example.com/r/1"))
            await wait_until(on_screen(tmp_path, 1, "finished"), what="EVSE 1's receipt")
            # A driver authorizes; EVerest does not say at which connector.
            sim.send("tariff_message", {"identifier_id": "04AABBCC",
                                        "identifier_type": "IdToken",
                                        "messages": [{"content": "Welcome"}]})
            await wait_until(on_screen(tmp_path, 2, "tariff"), what="the tariff at EVSE 2")
            # The driver plugs in at EVSE 2. EVSE 1 shows the tariff over its receipt for the
            # tariff's hold (60 s); the receipt is not gone: the saved state still holds it,
            # and a restart shows it (before the fix it was wiped, and so was the snapshot).
            station.event(2, "SessionStarted", token="04AABBCC")
            sim.send("session_cost", running_cost(2, 100))
            await wait_until(on_screen(tmp_path, 2, "charging"), what="EVSE 2 charging")
            # Each display's file is written by its own worker: EVSE 1's may come later.
            await wait_until(on_screen(tmp_path, 1, "tariff"), timeout=60 if EMULATED else 15,
                             what="the tariff over EVSE 1's receipt")
            assert await agent.terminate() == 0
            forget_views(tmp_path)
            agent = await AgentProcess(config(tmp_path, broker.port)).start()
            await both_up(tmp_path)
            receipt = await wait_until(lambda: (v := view(tmp_path, 1)).get("session_id")
                                       == SESSIONS[1] and v, what="the receipt restored")
            assert receipt["qr_code"] == "https://example.com/r/1" and receipt["final"] is True
            assert await agent.terminate() == 0
        finally:
            await stop(beats, agent, sim)
    asyncio.run(scenario())


def test_sessions_started_while_the_agent_was_stopped_without_state(
        broker: Mosquitto, tmp_path: Path) -> None:
    """No state dir, no SessionStarted seen: session_info and the costs still show both."""
    async def scenario() -> None:
        sim, station, beats = await station_up(broker)
        for i in MODULES:  # before the agent runs: these events are gone for good (QoS 0)
            station.event(i, "SessionStarted")
        path = config(tmp_path, broker.port)
        path.write_text(path.read_text().replace(f'dir = "{tmp_path}/state"', 'dir = ""'))
        agent = await AgentProcess(path).start()
        try:
            await both_up(tmp_path)
            station.info(1, 1200, 7400)  # only EVSE 1 reports so far: its cost is its own
            sim.send("session_cost", running_cost(1, 700))
            assert (await shown_on(tmp_path, 1, "charging"))["session_id"] == SESSIONS[1]
            station.info(1, 1300, 7400)
            await wait_until(live_energy(tmp_path, 1, 1300), what="EVSE 1's live values")
            station.info(2, 800, 11000)
            station.event(2, "ChargingStarted")  # an event names EVSE 2's session at last
            sim.send("session_cost", running_cost(2, 300))
            assert (await shown_on(tmp_path, 2, "charging"))["session_id"] == SESSIONS[2]
            assert view(tmp_path, 1)["session_id"] == SESSIONS[1]
            assert await agent.terminate() == 0
        finally:
            await stop(beats, agent, sim)
    asyncio.run(scenario())


def test_after_kill_9_each_display_comes_back_with_its_own_session(
        broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        sim, station, beats = await station_up(broker)
        agent = await AgentProcess(config(tmp_path, broker.port)).start()
        try:
            await both_up(tmp_path)
            for i in MODULES:
                station.event(i, "SessionStarted")
                station.info(i, 1000 * i, 7400)
                sim.send("session_cost", running_cost(i, 100 * i))
            for i in MODULES:
                await wait_until(on_screen(tmp_path, i, "charging"), what=f"EVSE {i} charging")
            assert agent.proc is not None
            agent.proc.kill()  # kill -9: no stop, no final save
            await agent.proc.wait()
            forget_views(tmp_path)
            agent = await AgentProcess(config(tmp_path, broker.port)).start()
            await both_up(tmp_path)
            for i in (2, 1):  # only costs and live values come again; no event is repeated
                station.info(i, 1000 * i + 100, 7400)
                sim.send("session_cost", running_cost(i, 100 * i + 50))
            for i in MODULES:
                def back(i: int = i) -> dict[str, Any] | None:
                    shown = view(tmp_path, i)
                    total = shown.get("total") or {}
                    return shown if total.get("value") == 100 * i + 50 else None
                shown = await wait_until(back, what=f"EVSE {i} back")
                assert (shown["screen"], shown["session_id"]) == ("charging", SESSIONS[i])
                await wait_until(live_energy(tmp_path, i, 1000 * i + 100), what=f"live {i}")
            assert await agent.terminate() == 0
        finally:
            await stop(beats, agent, sim)
    asyncio.run(scenario())


def test_a_session_started_while_the_broker_was_down_is_shown(
        own_broker: Mosquitto, tmp_path: Path) -> None:
    """The broker was down at the SessionStarted (sent once, QoS 0): the session still shows."""
    async def scenario() -> None:
        sim, station, beats = await station_up(own_broker)
        agent = await AgentProcess(config(tmp_path, own_broker.port)).start()
        try:
            await both_up(tmp_path)
            await stop_station(beats, sim)
            own_broker.stop()  # EVerest's SessionStarted of EVSE 2 is published now: lost
            await shown_on(tmp_path, 2, "unavailable")
            own_broker.start()
            sim, station, beats = await station_up(own_broker)
            await both_up(tmp_path)
            station.info(2, 900, 11000)
            sim.send("session_cost", running_cost(2, 450))
            shown = await shown_on(tmp_path, 2, "charging")
            assert shown["session_id"] == SESSIONS[2] and shown["total"]["value"] == 450
            station.info(2, 1000, 11000)
            await wait_until(live_energy(tmp_path, 2, 1000), what="EVSE 2's live values")
            assert view(tmp_path, 1)["screen"] == "price"  # nothing of it on EVSE 1
            assert await agent.terminate() == 0
        finally:
            await stop(beats, agent, sim)
    asyncio.run(scenario())
