"""Test harness: the real agent process, an EVerest stand-in on the broker, polling helpers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gmqtt import Client

from agent.dev.simulator import Simulator

# Set by scripts/arm.sh: the suite runs as ARM code under qemu-user, several times slower than
# a board. Requirements stated in wall time (stop within 1 s, reconnect inside EVerest's 5 s) are
# for the board and the native run; under emulation their tests keep every other assertion.
EMULATED = os.environ.get("COST_AGENT_EXPECT_QEMU_USER") == "1"

MODULE_ID = "cost_test"
BASE = f"everest_api/1/session_cost_consumer/{MODULE_ID}/"
REPO = Path(__file__).resolve().parent.parent


def agent_config(tmp: Path, port: int, *, heartbeat_timeout_s: float = 3.0,
                 check_interval_s: float = 0.5, finished_hold_s: float = 120,
                 stop_check_on_exit: bool = False, extra: str = "") -> Path:
    """Write an agent config using a file output under `tmp`; returns its path."""
    path = tmp / "agent.toml"
    path.write_text(f"""
[everest]
module_id = "{MODULE_ID}"
[mqtt]
host = "127.0.0.1"
port = {port}
reconnect_max_s = 0.5
max_payload_bytes = 4096
[watchdog]
communication_check_interval_s = {check_interval_s}
heartbeat_timeout_s = {heartbeat_timeout_s}
stop_check_on_exit = {"true" if stop_check_on_exit else "false"}
[display]
tariff_hold_s = 60
finished_hold_s = {finished_hold_s}
[status]
path = "{tmp}/status.json"
interval_s = 0.2
[state]
dir = "{tmp}/state"
[[output]]
type = "file"
path = "{tmp}/display.json"
{extra}
""")
    return path


async def wait_until(predicate: Callable[[], Any], timeout: float = 15.0,
                     what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON document at `path`, or None while it does not exist yet."""
    try:
        doc: dict[str, Any] = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    return doc


class AgentProcess:
    """`python -m agent run --config ...` as a child process."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.extra_env = env or {}
        self.stderr_path = config.parent / "agent.stderr"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> AgentProcess:
        """Start the agent."""
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        env.update(self.extra_env)
        with self.stderr_path.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agent", "--log-level", "debug", "run", "--config",
                str(self.config), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=err, cwd=REPO, env=env)
        return self

    async def terminate(self) -> int:
        """SIGTERM and wait for the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 10)

    async def kill(self) -> None:
        """Make sure the process is gone."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def log(self) -> str:
        """Everything the agent logged so far."""
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""


class Everest(Simulator):
    """EVerest's side on the broker (the simulator), also recording every communication check."""

    def __init__(self, port: int) -> None:
        super().__init__("127.0.0.1", port, MODULE_ID, client_id="")
        self.checks: list[tuple[float, bytes]] = []

    def _message(self, client: Client, topic: str, payload: bytes, qos: int, prop: Any) -> int:
        self.checks.append((asyncio.get_running_loop().time(), payload))
        return super()._message(client, topic, payload, qos, prop)

    async def connect(self) -> Everest:  # type: ignore[override]
        """Connect, and let SUBACK arrive before the test relies on the subscription."""
        await super().connect()
        await asyncio.sleep(0.1)
        return self

    def send(self, topic: str, payload: Any) -> None:
        """Publish JSON (dict/int) or raw bytes on e2m/<topic>."""
        self.publish(topic, payload)


def cost(session: str = "S1", status: str = "Running", value: int = 289,
         **extra: Any) -> dict[str, Any]:
    """An OCPP 1.6-shaped session_cost (one cumulative chunk, 3 decimals, no currency code)."""
    doc: dict[str, Any] = {"session_id": session, "currency": {"decimals": 3}, "status": status,
                           "cost_chunks": [{"cost": {"value": value}, "metervalue_to": 1200}]}
    doc.update(extra)
    return doc
