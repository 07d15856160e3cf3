"""The broker link through the real process: restarts of the broker, and a duplicate client id."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

from agent.dev.broker import Mosquitto
from agent.dev.restarts import CheckWatcher, restart_gaps
from tests.harness import BASE, EMULATED, MODULE_ID, read_json, wait_until
from tests.procs import Agent

# EVerest raises CommunicationFault after 5 s without a check; the agent's target is 4 s.
GAP_LIMIT_S = 4.0


def production_config(tmp: Path, port: int, extra_mqtt: str = "") -> Path:
    """The shipped defaults (pacing, check interval, timeouts), only paths and port changed."""
    path = tmp / "agent.toml"
    path.write_text(f"""
[everest]
module_id = "{MODULE_ID}"
[mqtt]
port = {port}
{extra_mqtt}
[status]
path = "{tmp}/status.json"
interval_s = 0.2
[state]
dir = ""
""")
    return path


def test_broker_restarts_keep_check_gaps_below_4s(own_broker: Mosquitto, tmp_path: Path) -> None:
    agent = Agent(production_config(tmp_path, own_broker.port), log_level=None)
    watcher = CheckWatcher(own_broker.port, BASE + "m2e/communication_check")
    restarts = 5

    async def scenario() -> list[float]:
        task = asyncio.create_task(watcher.run())
        await agent.start()
        try:
            await wait_until(lambda: len(watcher.times) >= 2, what="checks arriving")
            # up_s 2: each window holds a check from before the kill (interval 1 s).
            gaps = await restart_gaps(own_broker, watcher, restarts, (0.5, 2.0), up_s=2.0,
                                      rng=random.Random(10))
            # The status file is written periodically: wait for it to show the last reconnect.
            def reconnected() -> bool:
                doc = read_json(tmp_path / "status.json")
                return (doc is not None and doc["broker"]["reconnects"] >= restarts
                        and bool(doc["broker"]["connected"]))
            await wait_until(reconnected, timeout=60 if EMULATED else 15,
                             what=f"status showing connected after {restarts} reconnects")
            assert (await agent.timed_terminate())[0] == 0
            return gaps
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await agent.kill()
    gaps = asyncio.run(scenario())
    print(f"largest gap between true checks per broker restart: {[round(g, 2) for g in gaps]}")
    assert len(gaps) == restarts
    if not EMULATED:  # a wall-time requirement of the board (see tests/harness.py)
        assert max(gaps) < GAP_LIMIT_S, gaps
    assert "Traceback" not in agent.log()


def test_two_agents_with_one_client_id_do_not_fight(broker: Mosquitto, tmp_path: Path) -> None:
    # The same config copied to a second board: the broker drops the older connection each
    # time the other one connects, so each connection is lost at once.
    agents = []
    for name in ("a", "b"):
        tmp = tmp_path / name
        tmp.mkdir()
        config = production_config(tmp, broker.port, 'client_id = "charger-7"')
        agents.append(Agent(config, log_level=None))
    seconds = 5.0

    def connects(agent: Agent) -> int:
        doc = read_json(agent.config.parent / "status.json")
        return int(doc["broker"]["connects"]) if doc else 0

    async def scenario() -> list[int]:
        try:
            for agent in agents:
                await agent.start()
            await wait_until(lambda: all(connects(a) >= 1 for a in agents),
                             what="both agents connected once")
            await asyncio.sleep(seconds)
            counts = [connects(a) for a in agents]
            for agent in agents:
                assert agent.proc is not None and agent.proc.returncode is None
                assert (await agent.timed_terminate())[0] == 0
            return counts
        finally:
            for agent in agents:
                await agent.kill()
    counts = asyncio.run(scenario())
    print(f"connections per agent in {seconds:g} s with one client id: {counts}")
    # Backing off after a connection lost at once: about 2 per second while EVerest's check
    # timeout lasts, fewer after (the agent before the pacer made 465 in 3 s).
    assert max(counts) <= 20, counts
    for agent in agents:
        assert "Traceback" not in agent.log()
