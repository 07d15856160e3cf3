"""Issue 26 through the real process: an output or a disk that stops answering delays only
itself. Not MQTT, not the communication check, not the status file, not another output; and
SIGTERM still ends the agent within its stop limit, naming what held it."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from agent.dev.broker import Mosquitto
from tests.harness import EMULATED, Everest, agent_config, read_json, wait_until
from tests.procs import STALL_ENTRY, Agent

# The worker marks an output stuck after 5 s (agent.process.workers.STUCK_AFTER_S).
STUCK_WAIT_S = 30.0 if EMULATED else 15.0


def full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is full: the next blocking write to it waits for good."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"#" * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    return read_end, write_end


async def subscribed(everest: Everest) -> None:
    """The agent's first communication check: it goes out after its SUBSCRIBE."""
    await wait_until(lambda: everest.checks, timeout=60 if EMULATED else 15,
                     what="the agent's first communication check")


def view_message(tmp: Path) -> str:
    return str((read_json(tmp / "display.json") or {}).get("message") or "")


def price(text: str) -> dict[str, Any]:
    return {"messages": [{"content": text}]}


def received(tmp: Path, topic: str) -> int:
    doc = read_json(tmp / "status.json") or {}
    return int(doc.get("received", {}).get(topic, 0))


def test_a_console_on_a_pipe_nobody_reads_delays_nothing_else(broker: Mosquitto,
                                                              tmp_path: Path) -> None:
    read_end, write_end = full_pipe()
    config = agent_config(tmp_path, broker.port, heartbeat_timeout_s=0, check_interval_s=0.2,
                          extra='[[output]]\ntype = "console"\nname = "console"\n')
    agent = Agent(config, log_level=None, stdout=write_end)

    async def scenario() -> tuple[int, float]:
        everest = await Everest(broker.port).connect()
        await agent.start()
        os.close(write_end)  # the agent holds the only writer; nobody ever reads
        try:
            await subscribed(everest)
            everest.send("default_price", price("first"))
            await wait_until(lambda: view_message(tmp_path) == "first", what="first view")
            # The console has been stuck in its first write since the start.
            doc = await wait_until(
                lambda: (s := read_json(tmp_path / "status.json"))
                and s["outputs"]["console"]["stuck_s"] is not None and s,
                timeout=STUCK_WAIT_S, what="the console reported stuck")
            console = doc["outputs"]["console"]
            assert console["failing"] and console["last_error"].startswith("stuck"), console
            assert console["stuck_s"] >= 5, console
            # Meanwhile everything else goes on: the file output, the status file, MQTT.
            checks = len(everest.checks)
            everest.send("default_price", price("second"))
            await wait_until(lambda: view_message(tmp_path) == "second", what="second view")
            await wait_until(lambda: received(tmp_path, "default_price") == 2,
                             what="the status file rewritten after the stall")
            await wait_until(lambda: len(everest.checks) > checks + 2,
                             what="communication checks after the stall")
            stuck = read_json(tmp_path / "status.json")
            assert stuck is not None and stuck["outputs"]["console"]["stuck_s"] > 5
            assert stuck["outputs"]["console"]["ok"] == 0
            return await agent.timed_terminate(timeout=30)
        finally:
            await agent.kill()
            await everest.close()
            os.close(read_end)
    status, elapsed = asyncio.run(scenario())
    print(f"SIGTERM to exit with the console stuck: {elapsed:.3f} s")
    assert status == 0  # a clean stop: the console's thread is left to its write
    log = agent.log()
    assert log.count("output console: stuck: no answer for 5 s") == 1, log
    assert "stop overdue" not in log and "Traceback" not in log


def test_a_disk_that_stops_answering_holds_the_stop_no_longer_than_its_limit(
        broker: Mosquitto, tmp_path: Path) -> None:
    config = agent_config(tmp_path, broker.port, heartbeat_timeout_s=0,
                          extra="").read_text()
    config = config.replace("[watchdog]\n", "[watchdog]\nstop_limit_s = 2.0\n")
    (tmp_path / "agent.toml").write_text(config)
    stall_after = 8.0 if EMULATED else 2.0
    agent = Agent(tmp_path / "agent.toml", {"COST_AGENT_STALL_AFTER_S": str(stall_after)},
                  entry=(STALL_ENTRY,), log_level=None)
    snapshot = tmp_path / "state" / "display-state.json"

    async def scenario() -> tuple[int, float]:
        everest = await Everest(broker.port).connect()
        await agent.start()
        try:
            await subscribed(everest)
            everest.send("default_price", price("saved"))
            await wait_until(lambda: snapshot.exists() and "saved" in snapshot.read_text(),
                             timeout=stall_after * 0.8, what="the snapshot before the stall")
            await asyncio.sleep(stall_after)
            everest.send("default_price", price("unsaved"))  # its save hangs for good
            await wait_until(lambda: view_message(tmp_path) == "unsaved", what="the new view")
            await wait_until(lambda: received(tmp_path, "default_price") == 2,
                             what="the status file rewritten during the stall")
            return await agent.timed_terminate(timeout=30)
        finally:
            await agent.kill()
            await everest.close()
    status, elapsed = asyncio.run(scenario())
    print(f"SIGTERM to exit with the snapshot write hung: {elapsed:.3f} s")
    assert status == 1
    log = agent.log()
    overdue = [line for line in log.splitlines() if "stop overdue" in line]
    assert len(overdue) == 1, log
    assert ("stop overdue: the final snapshots not written within 2 s of the stop's start "
            "(watchdog.stop_limit_s); exiting without") in overdue[0]
    # The snapshot on disk is the last one written whole.
    assert "saved" in json.loads(snapshot.read_text())["default_price"]["messages"][0]["content"]
