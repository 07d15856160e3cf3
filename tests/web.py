"""The web display under test: a two-EVSE station with a web output, raw HTTP, an SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agent.dev.broker import free_port
from tests.harness import AgentProcess, Everest
from tests.tasks import cancelled
from tests.test_evse_integration import SESSIONS, Station, config


def web_config(tmp: Path, broker_port: int, listen: str, web: str = "") -> Path:
    """The two-EVSE station's config (file outputs) plus one web output with `web` keys."""
    path = config(tmp, broker_port)
    path.write_text(path.read_text()
                    + f'[[output]]\ntype = "web"\nlisten = "{listen}"\nidle_timeout_s = 2\n{web}\n')
    return path


class Reply:
    """An HTTP response as bytes came back: status, headers (lower-case names), body."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0] else 0
        self.headers = {k.strip().lower(): v.strip()
                        for k, _, v in (line.partition(":") for line in lines[1:])}

    def json(self) -> Any:
        return json.loads(self.body)


async def http(port: int, request: bytes, timeout: float = 10.0) -> Reply:
    """Send raw request bytes, read until the server closes or the response is complete."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = b""
        async with asyncio.timeout(timeout):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
                reply = Reply(data)
                length = reply.headers.get("content-length")
                if length is not None and len(reply.body) >= int(length) and b"\r\n\r\n" in data:
                    break
                if b"\r\n\r\n" in data and request.startswith(b"HEAD"):
                    break
        return Reply(data)
    finally:
        writer.close()


def get(path: str, host: str = "127.0.0.1", method: str = "GET", extra: str = "") -> bytes:
    """A request's bytes."""
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode()


class Events:
    """A page's event stream read through a raw socket: every `view` item it got, in order."""

    def __init__(self, port: int, path: str = "/events", retry: bool = False) -> None:
        self.port = port
        self.path = path
        # As the page's EventSource does: again after a 503 (max_clients streams open) or a
        # connection dropped before the answer (under a flood of silent connections the agent
        # drops the one that has waited longest for its request).
        self.retry = retry
        self.items: list[dict[str, Any]] = []
        self.pings = 0
        self.status = 0
        self.closed = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Events:
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        await cancelled(self._task)

    def latest(self, evse: int) -> dict[str, Any]:
        view: dict[str, Any] = next((i["view"] for i in reversed(self.items)
                                     if i["evse"] == evse), {})
        return view

    async def _read(self) -> None:
        while True:
            try:
                await self._stream()
            except (ConnectionError, asyncio.IncompleteReadError):
                if not self.retry or self.status:  # a stream, once answered, is not retried
                    raise
            else:
                if not (self.retry and self.status == 503):
                    return
            await asyncio.sleep(0.2)

    async def _stream(self) -> None:
        self.status, self.closed = 0, False
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(get(self.path).replace(b"Connection: close\r\n", b""))
            head = await reader.readuntil(b"\r\n\r\n")
            self.status = int(head.split()[1])
            buffer = b""
            while chunk := await reader.read(65536):
                buffer += chunk
                # Chunked transfer: the chunk size lines are not part of the events.
                while b"\n\n" in buffer:
                    block, _, buffer = buffer.partition(b"\n\n")
                    self._event(block)
        finally:
            self.closed = True
            writer.close()

    def _event(self, block: bytes) -> None:
        """One event: its `event:` name and its `data:` lines joined (as EventSource does)."""
        name, data = b"", []
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:]
            elif line.startswith(b"data: "):
                data.append(line[6:].split(b"\r\n")[0])  # a chunk size line may follow
        if name == b"view":
            self.items.append(json.loads(b"\n".join(data)))
        elif name == b"ping":
            self.pings += 1


async def both_up(port: int) -> list[dict[str, object]]:
    """The current views once both EVSEs' links are up."""
    async def views() -> list[dict[str, object]]:
        return list((await http(port, get("/views.json"))).json())
    async def ready() -> bool:
        try:
            found = await views()
        except OSError:
            return False
        return [v["evse"] for v in found] == [1, 2] and all(
            v["view"]["link"] == "up" for v in found)  # type: ignore[index]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not await ready():
        assert loop.time() < deadline, "web display never showed both links up"
        await asyncio.sleep(0.1)
    return await views()


@contextlib.asynccontextmanager
async def station(tmp: Path, broker_port: int, web: str = "", listen: str | None = None
                  ) -> AsyncIterator[tuple[Everest, Station, AgentProcess, int]]:
    """EVerest's side with heartbeats, and the agent serving the web display on a free port."""
    port = free_port()
    sim = await Everest(broker_port).connect()
    sta = Station(sim)
    beats = asyncio.create_task(sta.heartbeats())
    agent = await AgentProcess(web_config(tmp, broker_port, listen or f"127.0.0.1:{port}",
                                          web)).start()
    try:
        if listen is None:
            await both_up(port)
        yield sim, sta, agent, port
    finally:
        await cancelled(beats)
        await agent.kill()
        await sim.close()


def running_cost(evse: int, value: int) -> dict[str, Any]:
    """A Running session_cost of EVSE `evse`'s session, `value` EUR thousandths."""
    return {"session_id": SESSIONS[evse], "status": "Running",
            "currency": {"code": "EUR", "decimals": 3},
            "cost_chunks": [{"cost": {"value": value}}]}
