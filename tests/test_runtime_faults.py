"""Issue 10 through the real process: what systemd and the journal see when the agent fails,
stops, or meets an output, a pricing API or a broker that misbehaves."""

from __future__ import annotations

import asyncio
import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from agent.dev.broker import Mosquitto
from agent.dev.pty import PtyTap
from agent.outputs.registry import ENTRY_POINT_GROUP
from tests.harness import EMULATED, Everest, agent_config, read_json, wait_until
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
    assert " ERROR agent.process.crew: task clock failed; stopping the agent" in line
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
    assert "INFO agent.process.runtime: stopped" in log
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


def plugin_agent(tmp_path: Path, port: int, plugin_path: str, name: str, fail: str) -> Agent:
    """The agent with a file output and the test plugin `name` failing as `fail` says."""
    config = agent_config(tmp_path, port, heartbeat_timeout_s=0, extra=f"""
[[output]]
type = "testsink"
name = "{name}"
path = "{tmp_path}/sink.jsonl"
fail = "{fail}"
""")
    return Agent(config, {"PYTHONPATH": plugin_path}, log_level=None)


def test_plugin_output_exception_stays_with_that_output(
        broker: Mosquitto, tmp_path: Path, plugin_path: str) -> None:
    agent = plugin_agent(tmp_path, broker.port, plugin_path, "flaky", fail="show")
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


def test_a_plugin_that_swallows_the_stop_is_named_and_the_agent_still_exits(
        broker: Mosquitto, tmp_path: Path, plugin_path: str) -> None:
    sink = tmp_path / "sink.jsonl"
    agent = plugin_agent(tmp_path, broker.port, plugin_path, "deaf", fail="deaf")

    async def scenario() -> None:
        await agent.start()
        try:
            await wait_until(lambda: sink.exists() and sink.stat().st_size > 0,
                             what="the plugin showing a view (and then hanging)")
            assert agent.proc is not None
            agent.proc.terminate()
            # Not a clean stop: a task held it past the limit (5 s), then gave in.
            assert await agent.exit_status(timeout=30.0) == 1
        finally:
            await agent.kill()
    asyncio.run(scenario())
    overdue = [line for line in agent.log().splitlines() if "stop overdue" in line]
    assert len(overdue) == 1, agent.log()
    assert " ERROR agent.process.crew: stop overdue: task output:deaf still running" in overdue[0]
    assert "__init__.py:" in overdue[0] and "in show" in overdue[0]  # where the plugin waits
    assert "stopped after a failure (exit status 1)" in agent.log()


# ---- 5. SIGTERM exits within 1 s whatever is in flight -----------------------------------

class _Silent(http.server.BaseHTTPRequestHandler):
    """Takes the request and never answers (until the test ends)."""

    release: ClassVar[threading.Event]
    paths: ClassVar[list[str]]

    def do_GET(self) -> None:
        self.paths.append(self.path)
        self.release.wait(30)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def silent_api() -> Iterator[tuple[str, type[_Silent]]]:
    """A pricing API that accepts the connection and the request and then says nothing."""
    handler: type[_Silent] = type("Handler", (_Silent,),
                                  {"release": threading.Event(), "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/rates", handler
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _view_message(tmp: Path) -> str:
    view = read_json(tmp / "display.json") or {}
    return str(view.get("message") or "")


async def _written_after(status: Path, uptime_s: float) -> tuple[float, dict[str, Any]]:
    """The outputs of the first status document the agent wrote at or after `uptime_s` of
    its own time (with its uptime), however far its writes lag behind the test's clock."""
    def sample() -> tuple[float, dict[str, Any]] | None:
        doc = read_json(status)
        if doc is None or doc["uptime_s"] < uptime_s:
            return None
        return float(doc["uptime_s"]), doc["outputs"]
    found: tuple[float, dict[str, Any]] = await wait_until(
        sample, timeout=60 if EMULATED else 15, what=f"a status written at {uptime_s} s")
    return found


async def _settled(status: Path, output: str, key: str,
                   apart_s: float) -> tuple[float, dict[str, Any]]:
    """`output`'s stats once `key` reads the same in two status documents written at least
    `apart_s` apart (agent time); with the uptime of the second."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (60 if EMULATED else 15)
    uptime, outputs = await _written_after(status, 0)
    while True:
        later, now = await _written_after(status, uptime + apart_s)
        if now[output][key] == outputs[output][key]:
            return later, now[output]
        assert loop.time() < deadline, f"{output} {key} still moving: {now[output]}"
        uptime, outputs = later, now


def test_sigterm_exits_within_1s_with_everything_in_flight(
        broker: Mosquitto, tmp_path: Path, silent_api: tuple[str, type[_Silent]]) -> None:
    url, api = silent_api
    tap = PtyTap()  # nobody reads it: once its buffer is full, every write waits
    hook_pid = tmp_path / "hook.pid"
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[everest]
module_id = "cost_test"
[mqtt]
port = {broker.port}
max_payload_bytes = 262144
[watchdog]
communication_check_interval_s = 0.1
heartbeat_timeout_s = 0
stop_check_on_exit = false
[status]
path = "{tmp_path}/status.json"
interval_s = 0.1
[state]
dir = "{tmp_path}/state"
[pricing]
api_url = "{url}"
evse_id = "DE*ABC*E1"
token_file = "{tmp_path}/token"
timeout_s = 30
[[output]]
type = "exec"
name = "hook"
argv = ["/bin/sh", "-c", "echo $$ > {hook_pid}; exec sleep 30"]
timeout_s = 60
[[output]]
type = "serial"
name = "lcd"
device = "{tap.path}"
template = "{{message}}"
write_timeout_s = 60
refresh_s = 0
[[output]]
type = "file"
name = "file"
path = "{tmp_path}/display.json"
""")
    agent = Agent(config, log_level=None)
    status_path = tmp_path / "status.json"

    async def scenario() -> float:
        everest = await Everest(broker.port).connect()
        await agent.start()
        try:
            await wait_until(lambda: (s := read_json(status_path)) and s["link"] == "up",
                             what="link up")
            pid = int(await wait_until(lambda: hook_pid.exists() and hook_pid.read_text(),
                                       what="the hook running"))
            everest.send("default_price", {"messages": [{"content": "x" * 200_000}]})
            await wait_until(lambda: len(_view_message(tmp_path)) == 200_000,
                             what="the big view on the file output")
            # A smaller view shown before may still be counted, and the status file lags:
            # take `before` once `ok` holds across writes 3 status intervals apart.
            uptime, before = await _settled(status_path, "lcd", "ok", apart_s=0.3)
            lcd = (await _written_after(status_path, uptime + 0.3))[1]["lcd"]
            # The serial write is stalled: neither done nor failed (a 200 kB frame is far
            # beyond what an unread pty buffers, about 12 kB on Linux).
            assert (lcd["ok"], lcd["failed"]) == (before["ok"], 0), (before, lcd)
            everest.send("tariff_message", {"identifier_id": "TAG", "identifier_type": "IdToken",
                                            "messages": [{"content": "Welcome"}]})
            await wait_until(lambda: api.paths, what="the pricing request in flight")
            assert _alive(pid)
            everest.checks.clear()
            loop = asyncio.get_running_loop()
            signalled = loop.time()
            status, elapsed = await agent.timed_terminate(timeout=5)
            assert status == 0
            await asyncio.sleep(0.5)  # anything published during the stop has arrived by now
            late = [round(t - signalled, 3) for t, _ in everest.checks if t > signalled]
            # At most one check already on its way when the signal came; none published during
            # the stop (the check loop would still run while outputs are flushed). Emulated,
            # the test process itself is slow to timestamp what arrives.
            on_its_way_s = 1.0 if EMULATED else 0.1
            assert len(late) <= 1 and all(d < on_its_way_s for d in late), late
            assert all(payload == b"true" for _, payload in everest.checks)
            assert not _alive(pid), "the hook's process group was killed"
            return elapsed
        finally:
            await agent.kill()
            await everest.close()
            tap.close()
    elapsed = asyncio.run(scenario())
    print(f"SIGTERM to exit with pricing, exec and serial in flight: {elapsed:.3f} s")
    assert elapsed < (1.0 if not EMULATED else 5.0)  # see tests/harness.py
    log = agent.log()
    assert "Traceback" not in log and "failed" not in log


# ---- 6. gmqtt's own log lines stay out of stderr ----------------------------------------

GMQTT_NOISE = ("[MqttPackageHandler]", "[CONNECTION", "[CONNACK", "Traceback", "CONNACK 0x",
               "gmqtt", "permanent")


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto that lets in only `agent` with the password `right`."""
    with Mosquitto().require_passwords(tmp_path, {"agent": "right"}) as broker:
        yield broker


@pytest.mark.parametrize("credentials", ["none", "wrong password"])
def test_refused_connack_is_one_agent_line_and_no_gmqtt_output(
        password_broker: Mosquitto, tmp_path: Path, credentials: str) -> None:
    (tmp_path / "password").write_text("wrong\n")
    mqtt = ('username = "agent"\npassword_file = "' + str(tmp_path / "password") + '"'
            if credentials == "wrong password" else "")
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[everest]
module_id = "cost_test"
[mqtt]
port = {password_broker.port}
{mqtt}
[status]
path = "{tmp_path}/status.json"
interval_s = 0.1
[state]
dir = ""
""")
    agent = Agent(config, log_level=None)  # the default level, as systemd runs it

    async def scenario() -> None:
        await agent.start()
        try:
            await wait_until(lambda: (s := read_json(tmp_path / "status.json"))
                             and s["broker"]["last_error"], what="a refused connection")
            await asyncio.sleep(1.5)  # the fast pacing makes many more attempts meanwhile
            doc = read_json(tmp_path / "status.json")
            assert doc is not None and doc["broker"]["connects"] == 0
            assert (await agent.timed_terminate())[0] == 0
        finally:
            await agent.kill()
    asyncio.run(scenario())
    log = agent.log()
    refused = re.compile(
        rf" WARNING agent\.process\.link: broker 127\.0\.0\.1:{password_broker.port}: "
        r"(not authorised \(CONNACK 5\)|bad user name or password \(CONNACK 4\)); "
        r"retrying in \d+\.\d s$")
    lines = [line for line in log.splitlines() if "CONNACK" in line]
    assert len(lines) == 1 and refused.search(lines[0]), log
    for noise in GMQTT_NOISE:
        assert noise not in log, noise


def test_a_failure_without_uvloop_has_no_chained_import_error(tmp_path: Path) -> None:
    # On armv7 boards uvloop is usually absent: the loop must not start inside the except block
    # of its import, or every traceback carries "ImportError: uvloop" as its context.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "uvloop.py").write_text("raise ImportError('uvloop is not installed')\n")
    config = agent_config(tmp_path, 1, heartbeat_timeout_s=0)
    result = subprocess.run([sys.executable, str(FAULT_ENTRY), "run", "--config", str(config)],
                            env={**os.environ, "PYTHONPATH": str(shadow),
                                 "COST_AGENT_FAULT_AFTER_S": "1"},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.count("Traceback") == 1
    assert "uvloop" not in result.stderr
