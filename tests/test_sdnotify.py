"""systemd notification protocol, received on a real datagram socket from the real process."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from agent.dev.broker import Mosquitto
from tests.harness import AgentProcess, agent_config, wait_until


def test_ready_status_watchdog_and_stopping(broker: Mosquitto, tmp_path: Path) -> None:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.setblocking(False)
    received: list[str] = []

    def drain() -> list[str]:
        while True:
            try:
                received.extend(sock.recv(4096).decode().split("\n"))
            except BlockingIOError:
                return received

    async def scenario() -> None:
        agent = await AgentProcess(agent_config(tmp_path, broker.port, heartbeat_timeout_s=0),
                                   env={"NOTIFY_SOCKET": str(sock_path),
                                        "WATCHDOG_USEC": "300000"}).start()
        try:
            await wait_until(lambda: "READY=1" in drain(), what="READY=1")
            await wait_until(lambda: "STATUS=running, link up" in drain(), what="link status")
            await wait_until(lambda: drain().count("WATCHDOG=1") >= 3, what="watchdog pings")
            assert await agent.terminate() == 0
            assert "STOPPING=1" in drain()
        finally:
            await agent.kill()
            sock.close()
    asyncio.run(scenario())
