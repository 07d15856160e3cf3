"""Process-level helpers for the runtime tests: any entry point and log level, sd_notify socket."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

from tests.harness import REPO, AgentProcess

FAULT_ENTRY = str(REPO / "tests" / "fault_entry.py")
STALL_ENTRY = str(REPO / "tests" / "stall_entry.py")


class Agent(AgentProcess):
    """AgentProcess with a choice of entry point (`-m agent` or tests/fault_entry.py) and level.

    `log_level=None` runs at the command's default level, as systemd starts it.
    """

    def __init__(self, config: Path, env: dict[str, str] | None = None, *,
                 entry: tuple[str, ...] = ("-m", "agent"), log_level: str | None = "debug",
                 stdout: int = asyncio.subprocess.DEVNULL) -> None:
        super().__init__(config, env)
        self.entry = entry
        self.log_level = log_level
        self.stdout = stdout  # a descriptor of the test's (a pipe nobody reads), or DEVNULL

    async def start(self) -> Agent:
        """Start the agent (NOTIFY_SOCKET/WATCHDOG_USEC only when given in `env`)."""
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        env.update(self.extra_env)
        level = ["--log-level", self.log_level] if self.log_level else []
        with self.stderr_path.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *self.entry, *level, "run", "--config", str(self.config),
                stdin=asyncio.subprocess.DEVNULL, stdout=self.stdout,
                stderr=err, cwd=REPO, env=env)
        return self

    async def exit_status(self, timeout: float = 10.0) -> int:
        """Wait (bounded) for the process to end on its own."""
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def timed_terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; (exit status, seconds from the signal to the exit)."""
        assert self.proc is not None
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(self.proc.wait(), timeout)
        return status, time.monotonic() - sent

    def sigkill(self) -> None:
        """SIGKILL now (as a power cut or the OOM killer would); reap with kill()."""
        assert self.proc is not None
        self.proc.kill()


class NotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET; keeps every field in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.fields: list[str] = []

    def env(self, watchdog_usec: int | None = None) -> dict[str, str]:
        """Environment for the agent: this socket, and WatchdogSec when given."""
        env = {"NOTIFY_SOCKET": str(self.path)}
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        return env

    def drain(self) -> list[str]:
        """Every field received so far (one datagram may carry several)."""
        while True:
            try:
                self.fields.extend(self.sock.recv(4096).decode().split("\n"))
            except BlockingIOError:
                return self.fields

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
