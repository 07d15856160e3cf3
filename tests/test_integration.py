"""The real agent process against a real private mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import Any

import pytest

from agent.dev.broker import Mosquitto, free_port
from tests.harness import (
    EMULATED,
    AgentProcess,
    Everest,
    agent_config,
    cost,
    read_json,
    wait_until,
)

DEFAULT_PRICE = {"messages": [{"content": "0.39 EUR/kWh", "language": "en"}]}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def screen_is(view_path: Path, screen: str, **fields: Any) -> Any:
    def check() -> Any:
        view = read_json(view_path)
        if view is None or view["screen"] != screen:
            return None
        return view if all(view.get(k) == v for k, v in fields.items()) else None
    return check


def test_session_flow_through_file_output(broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        agent = await AgentProcess(agent_config(tmp_path, broker.port)).start()
        everest = await Everest(broker.port).connect()
        view_path = tmp_path / "display.json"
        try:
            await wait_until(screen_is(view_path, "price", link="up"), what="price screen")
            everest.heartbeat()
            everest.send("default_price", DEFAULT_PRICE)
            await wait_until(screen_is(view_path, "price", message="0.39 EUR/kWh"))
            everest.send("tariff_message", {"identifier_id": "TOK", "identifier_type": "IdToken",
                                            "messages": [{"content": "Yours: 0.35/kWh"}]})
            await wait_until(screen_is(view_path, "tariff", message="Yours: 0.35/kWh"))
            everest.send("session_cost", cost())
            view = await wait_until(screen_is(view_path, "charging"), what="charging")
            assert view["total"]["text"] == "0.29 EUR"
            assert view["energy_wh"] == 1200
            everest.send("session_cost", cost(status="Finished", value=4560,
                                              qr_code="https://r.example/x"))
            view = await wait_until(screen_is(view_path, "finished"), what="finished")
            assert (view["total"]["text"], view["qr_code"]) == ("4.56 EUR", "https://r.example/x")
            status = await wait_until(lambda: (s := read_json(tmp_path / "status.json"))
                                      and s["received"]["session_cost"] == 2 and s)
            assert status["received"]["default_price"] == 1
            assert status["rejected"]["session_cost"] == 0
            assert status["link"] == "up"
            assert await agent.terminate() == 0
        finally:
            await agent.kill()
            await everest.close()
    run(scenario())


@pytest.mark.parametrize("stop_check_on_exit", [False, True])
def test_communication_check_cadence_and_what_sigterm_publishes(
        broker: Mosquitto, tmp_path: Path, stop_check_on_exit: bool) -> None:
    async def scenario() -> None:
        everest = await Everest(broker.port).connect()
        agent = await AgentProcess(agent_config(
            tmp_path, broker.port, check_interval_s=0.5,
            stop_check_on_exit=stop_check_on_exit)).start()
        try:
            await wait_until(lambda: len(everest.checks) >= 5, what="5 communication checks")
            times = [t for t, payload in everest.checks if payload == b"true"]
            gaps = [b - a for a, b in itertools.pairwise(times)]
            # EVerest's default cfg_communication_check_to_s is 5 s.
            assert max(gaps) < 5.0
            assert all(payload == b"true" for _, payload in everest.checks)
            assert await agent.terminate() == 0
            if stop_check_on_exit:  # decommissioning: EVerest stops supervising for good
                await wait_until(lambda: everest.checks[-1][1] == b"false", timeout=3,
                                 what="final false")
            else:  # an ordinary stop must not blind EVerest to a later failure
                # The process is gone: only a check already on its way (a `true` published
                # before the signal, or a wrong `false` from the stop) can still arrive.
                await asyncio.sleep(3.0 if EMULATED else 1.0)
                assert all(payload == b"true" for _, payload in everest.checks)
        finally:
            await agent.kill()
            await everest.close()
    run(scenario())


def test_heartbeat_loss_and_return(broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        agent = await AgentProcess(agent_config(tmp_path, broker.port,
                                                heartbeat_timeout_s=1.0)).start()
        everest = await Everest(broker.port).connect()
        view_path = tmp_path / "display.json"
        beats = asyncio.create_task(everest.heartbeats(0.2))
        try:
            await wait_until(lambda: (s := read_json(tmp_path / "status.json"))
                             and (s["heartbeat"]["last_id"] or 0) >= 3, what="heartbeats seen")
            everest.send("session_cost", cost())
            await wait_until(screen_is(view_path, "charging", stale=False))
            beats.cancel()
            view = await wait_until(screen_is(view_path, "unavailable", link="down"),
                                    what="unavailable after heartbeat loss")
            assert view["stale"] is True
            assert view["total"]["text"] == "0.29 EUR"
            everest.beat = 0   # EVerest restarted: ids start again at 0
            beats = asyncio.create_task(everest.heartbeats(0.2))
            await wait_until(screen_is(view_path, "charging", link="up", stale=False),
                             what="charging after heartbeats return")
            status = await wait_until(lambda: (s := read_json(tmp_path / "status.json"))
                                      and s["heartbeat"]["restarts"] == 1 and s)
            assert status["heartbeat"]["last_id"] is not None
        finally:
            beats.cancel()
            await agent.kill()
            await everest.close()
    run(scenario())


def test_broker_killed_and_restarted_mid_session(own_broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        agent = await AgentProcess(agent_config(tmp_path, own_broker.port,
                                                heartbeat_timeout_s=0)).start()
        everest = await Everest(own_broker.port).connect()
        view_path = tmp_path / "display.json"
        try:
            await wait_until(screen_is(view_path, "price", link="up"))
            everest.send("session_cost", cost(value=1000))
            await wait_until(screen_is(view_path, "charging"))
            own_broker.stop()
            view = await wait_until(screen_is(view_path, "unavailable"), what="unavailable")
            assert view["total"]["text"] == "1.00 EUR" and view["stale"] is True
            await asyncio.sleep(1.0)   # the agent keeps retrying while the broker is gone
            own_broker.start()
            everest = await Everest(own_broker.port).connect()
            await wait_until(lambda: (v := read_json(view_path)) and v["link"] == "up",
                             what="link up again")
            everest.send("session_cost", cost(value=2500))
            view = await wait_until(lambda: (v := read_json(view_path))
                                    and v["total"]["text"] == "2.50 EUR" and v,
                                    what="the next session_cost after the restart")
            assert (view["screen"], view["stale"]) == ("charging", False)
            status = await wait_until(lambda: (s := read_json(tmp_path / "status.json"))
                                      and s["broker"]["reconnects"] >= 1 and s)
            assert status["broker"]["connected"] is True
            assert agent.proc is not None and agent.proc.returncode is None
        finally:
            await agent.kill()
            with contextlib.suppress(Exception):
                await everest.close()
    run(scenario())


def test_broker_absent_at_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        port = free_port()
        agent = await AgentProcess(agent_config(tmp_path, port)).start()
        view_path = tmp_path / "display.json"
        broker = Mosquitto(port)
        try:
            await wait_until(screen_is(view_path, "unavailable", link="down"))
            status = await wait_until(lambda: (s := read_json(tmp_path / "status.json"))
                                      and s["broker"]["last_error"] and s)
            assert status["broker"]["connected"] is False
            assert status["broker"]["last_error"] == "connection refused"
            await asyncio.sleep(1.0)
            assert agent.proc is not None and agent.proc.returncode is None
            broker.start()
            await wait_until(screen_is(view_path, "price", link="up"), what="connects later")
        finally:
            await agent.kill()
            broker.close()
    run(scenario())


def test_malformed_and_oversized_payloads_are_rejected(broker: Mosquitto,
                                                       tmp_path: Path) -> None:
    async def scenario() -> None:
        agent = await AgentProcess(agent_config(tmp_path, broker.port)).start()
        everest = await Everest(broker.port).connect()
        view_path = tmp_path / "display.json"
        try:
            await wait_until(screen_is(view_path, "price", link="up"))
            everest.send("session_cost", cost())
            await wait_until(screen_is(view_path, "charging"))
            before = view_path.read_bytes()
            everest.send("session_cost", b'{"session_id": "S1", "currency": {}, "sta')
            everest.send("session_cost", cost(status="Exploded"))
            everest.send("default_price", {"messages": [{"content": "x" * 5000}]})
            everest.send("heartbeat", b'"seven"')
            status = await wait_until(lambda: (s := read_json(tmp_path / "status.json"))
                                      and s["rejected"]["heartbeat"] == 1 and s)
            assert status["rejected"] == {"default_price": 1, "tariff_message": 0,
                                          "session_cost": 2, "heartbeat": 1}
            assert status["received"]["session_cost"] == 3
            assert status["last_rejection"]["topic"] == "heartbeat"
            assert view_path.read_bytes() == before
            log = agent.log()
            assert "rejected session_cost: malformed JSON" in log
            assert "exceeds 4096" in log
            assert agent.proc is not None and agent.proc.returncode is None
        finally:
            await agent.kill()
            await everest.close()
    run(scenario())


@pytest.mark.parametrize("down_s", [0.0, 3.5])
def test_persisted_receipt_restored_for_the_rest_of_its_hold(broker: Mosquitto, tmp_path: Path,
                                                             down_s: float) -> None:
    async def scenario() -> None:
        config = agent_config(tmp_path, broker.port, finished_hold_s=3, heartbeat_timeout_s=0)
        view_path = tmp_path / "display.json"
        everest = await Everest(broker.port).connect()
        agent = await AgentProcess(config).start()
        loop = asyncio.get_running_loop()
        try:
            await wait_until(screen_is(view_path, "price", link="up"))
            everest.send("default_price", DEFAULT_PRICE)
            everest.send("session_cost", cost(status="Finished", value=7770,
                                              qr_code="https://r.example/q",
                                              message=[{"content": "Thanks", "language": "en"}]))
            await wait_until(screen_is(view_path, "finished"))
            finished_at = loop.time()
            assert await agent.terminate() == 0
            # The hold (3 s) counts from the finish, not from the next start.
            await asyncio.sleep(max(0.0, finished_at + down_s - loop.time()))
            view_path.unlink()
            agent = await AgentProcess(config).start()   # EVerest sends nothing now
            view = await wait_until(lambda: read_json(view_path), what="first view")
            if down_s > 3:  # the hold ran out while the agent was down: not brought back
                # (the first view may be "unavailable" until the broker connection is up)
                assert view["screen"] != "finished" and view["message"] == "0.39 EUR/kWh"
                await wait_until(screen_is(view_path, "price", message="0.39 EUR/kWh"))
                return
            assert view["screen"] == "finished"
            assert (view["qr_code"], view["message"], view["total"]["text"]) == (
                "https://r.example/q", "Thanks", "7.77 EUR")
            await wait_until(screen_is(view_path, "price", message="0.39 EUR/kWh"),
                             what="restored default price after the hold")
        finally:
            await agent.kill()
            await everest.close()
    run(scenario())


def test_32bit_heartbeat_wrap_and_cleared_messages(broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        agent = await AgentProcess(agent_config(tmp_path, broker.port)).start()
        everest = await Everest(broker.port).connect()
        view_path = tmp_path / "display.json"
        try:
            await wait_until(screen_is(view_path, "price", link="up"))
            for beat in (2**32 - 2, 2**32 - 1, 0, 1):  # size_t on an armv7 board
                everest.send("heartbeat", beat)
                await asyncio.sleep(0.05)
            everest.send("session_cost", cost())
            await wait_until(screen_is(view_path, "charging"))
            everest.send("session_cost", b"")   # a retained message cleared at EVerest's start
            everest.send("default_price", b"")
            status = await wait_until(lambda: (s := read_json(tmp_path / "status.json"))
                                      and s["heartbeat"]["last_id"] == 1
                                      and s["cleared"]["default_price"] == 1 and s)
            assert (status["heartbeat"]["restarts"], status["heartbeat"]["wraps"]) == (0, 1)
            assert status["cleared"]["session_cost"] == 1
            assert status["rejected"] == dict.fromkeys(status["rejected"], 0)
            assert read_json(view_path)["screen"] == "charging"  # type: ignore[index]
        finally:
            await agent.kill()
            await everest.close()
    run(scenario())
