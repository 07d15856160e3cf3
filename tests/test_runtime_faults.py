"""Issue 10 through the real process: what systemd and the journal see when the agent fails,
stops, or meets an output, a pricing API or a broker that misbehaves."""

from __future__ import annotations

import asyncio
import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from agent.dev.broker import Mosquitto
from agent.dev.pty import PtyTap
from agent.outputs.registry import ENTRY_POINT_GROUP
from tests.harness import Everest, agent_config, read_json, wait_until
from tests.procs import FAULT_ENTRY, Agent, NotifySocket

PLUGIN_SRC = Path(__file__).parent / "plugin_pkg"
TOKEN = "tok-faults-0123456789"


# ---- 1. a task that fails: exit status 1, one log line, systemd told --------------------

def test_task_failure_exits_1_with_one_folded_log_line_and_starves_the_watchdog(
        broker: Mosquitto, tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {**notify.env(watchdog_usec=300_000), "COST_AGENT_FAULT_AFTER_S": "2"}
    agent = Agent(agent_config(tmp_path, broker.port, heartbeat_timeout_s=0), env,
                  entry=(FAULT_ENTRY,), log_level=None)

    async def scenario() -> None:
        await agent.start()
        try:
            # Drain as systemd does: the socket's queue holds only a few datagrams.
            await wait_until(lambda: notify.drain() and agent.proc is not None
                             and agent.proc.returncode is not None, what="the exit")
            assert await agent.exit_status() == 1
        finally:
            await agent.kill()
            notify.drain()
            notify.close()
    asyncio.run(scenario())

    log = agent.log()
    failures = [line for line in log.splitlines() if "injected fault" in line]
    assert len(failures) == 1, log
    line = failures[0]
    # One line: the task's name, the traceback folded in, the exception at its end.
    assert " ERROR agent.runtime: task clock failed; stopping the agent" in line
    assert "Traceback (most recent call last): | " in line
    assert "fault_entry.py" in line and "_clock" in line
    assert line.endswith("RuntimeError: injected fault in the clock loop")
    assert log.count("Traceback") == 1
    assert "stopped after a failure (exit status 1)" in log

    fields = notify.fields
    assert "READY=1" in fields
    failed = fields.index("STATUS=failed: task clock")
    assert fields[:failed].count("WATCHDOG=1") >= 3  # pinged every 0.1 s until the fault
    assert "STOPPING=1" in fields[failed - 1:failed + 1]  # in the same datagram
    # The failed task's group cancels the pinger: systemd's watchdog is starved from here on
    # (one ping may still run in the same loop turn as the failure, before the cancel).
    assert fields[failed:].count("WATCHDOG=1") <= 1
    # Nothing claims "running" once the agent is going down.
    assert not [f for f in fields[failed:] if f.startswith("STATUS=running")]


def test_clean_sigterm_exits_0_and_says_stopping(broker: Mosquitto, tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {**notify.env(watchdog_usec=300_000), "COST_AGENT_FAULT_AFTER_S": "600"}
    agent = Agent(agent_config(tmp_path, broker.port, heartbeat_timeout_s=0), env,
                  entry=(FAULT_ENTRY,), log_level=None)

    async def scenario() -> None:
        await agent.start()
        try:
            await wait_until(lambda: notify.drain().count("WATCHDOG=1") >= 3, what="pings")
            assert (await agent.timed_terminate())[0] == 0
        finally:
            await agent.kill()
            notify.drain()
            notify.close()
    asyncio.run(scenario())
    assert "STOPPING=1" in notify.fields
    assert not [f for f in notify.fields if f.startswith("STATUS=failed")]
    log = agent.log()
    assert "INFO agent.runtime: stopped" in log
    assert "failed" not in log and "Traceback" not in log


@pytest.fixture
def plugin_path(tmp_path: Path) -> str:
    """PYTHONPATH under which the agent process finds tests/plugin_pkg as an installed plugin."""
    site = tmp_path / "site"
    info = site / "cost_agent_testsink-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cost-agent-testsink\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ntestsink = cost_agent_testsink\n")
    return f"{site}:{PLUGIN_SRC}"


def test_plugin_output_exception_stays_with_that_output(
        broker: Mosquitto, tmp_path: Path, plugin_path: str) -> None:
    config = agent_config(tmp_path, broker.port, heartbeat_timeout_s=0, extra=f"""
[[output]]
type = "testsink"
name = "flaky"
path = "{tmp_path}/sink.jsonl"
fail = "show"
""")
    agent = Agent(config, {"PYTHONPATH": plugin_path}, log_level=None)
    view_path = tmp_path / "display.json"

    async def scenario() -> None:
        await agent.start()
        everest = await Everest(broker.port).connect()
        try:
            await wait_until(lambda: (v := read_json(view_path)) and v["link"] == "up",
                             what="the file output shows the link up")
            everest.send("default_price", {"messages": [{"content": "0.42 EUR/kWh"}]})
            await wait_until(lambda: (v := read_json(view_path))
                             and v["message"] == "0.42 EUR/kWh", what="the next view")
            status = await wait_until(
                lambda: (s := read_json(tmp_path / "status.json"))
                and s["outputs"]["flaky"]["failed"] >= 2 and s, what="failures counted")
            assert "display rejected the view" in status["outputs"]["flaky"]["last_error"]
            assert agent.proc is not None and agent.proc.returncode is None
            assert (await agent.timed_terminate())[0] == 0
        finally:
            await agent.kill()
            await everest.close()
    asyncio.run(scenario())
    log = agent.log()
    assert "output flaky: RuntimeError: testsink: display rejected the view" in log
    assert "Traceback" not in log and "task " not in log
