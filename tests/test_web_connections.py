"""The web display's connections one by one (issue 26): one deadline covers a request's head and
body, a connection holding an unfinished request can be evicted like an idle one, a half-closed
socket still gets its answer, and a route that raises answers 500 on its own connection only.

The web output runs in this process (a route is made to raise, as a bug would), on a real
socket; the clients are raw sockets doing what the test says, byte by byte."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from agent.dev.broker import free_port
from agent.outputs.web.config import WebConfig
from agent.outputs.web.server import WebOutput
from tests.harness import EMULATED
from tests.web import Reply

# Bounds on how long the server may take; generous, they are not what is measured.
WAIT_S = 30.0 if EMULATED else 10.0
HEAD = b"GET /views.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@contextlib.asynccontextmanager
async def serving(max_clients: int = 1, idle_timeout_s: float = 60.0
                  ) -> AsyncIterator[tuple[WebOutput, int, asyncio.Task[None]]]:
    port = free_port()
    output = WebOutput(WebConfig(listen=f"127.0.0.1:{port}", max_clients=max_clients,
                                 idle_timeout_s=idle_timeout_s))
    task = asyncio.create_task(output.serve())
    try:
        for _ in range(500):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.01)
        yield output, port, task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def ask(port: int, request: bytes, half_close: bool = False) -> Reply:
    """Send `request`, read the whole answer (the server closes after it: Connection: close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        if half_close:
            writer.write_eof()  # our side is done; the answer must still come
        await writer.drain()
        async with asyncio.timeout(WAIT_S):
            return Reply(await reader.read(-1))
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """The server ended the connection (end of file or reset) within WAIT_S."""
    try:
        async with asyncio.timeout(WAIT_S):
            while await reader.read(4096):
                pass
    except ConnectionError:
        pass
    return True


def test_connections_withholding_their_bodies_never_lock_the_page_out() -> None:
    async def scenario() -> None:
        async with serving(max_clients=1) as (output, port, _):
            held = []
            for _ in range(1 + 16):  # max_clients + 16: every connection the output allows
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(HEAD + b"Content-Length: 1\r\n\r\n")  # and never the byte
                await writer.drain()
                held.append((reader, writer))
            await asyncio.sleep(0.2)
            reply = await ask(port, HEAD + b"Connection: close\r\n\r\n")
            assert reply.status == 200, "the page was locked out"
            assert await closed_by_server(held[0][0])  # the one waiting longest went
            assert output.stats.refused >= 1
            for _, writer in held:
                writer.close()
    asyncio.run(scenario())


def test_a_body_never_sent_ends_at_the_request_deadline() -> None:
    async def scenario() -> None:
        async with serving(idle_timeout_s=0.5) as (_, port, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(HEAD + b"Content-Length: 1\r\n\r\n")
            await writer.drain()
            assert await closed_by_server(reader)
            writer.close()
    asyncio.run(scenario())


def test_a_head_sent_one_byte_a_second_ends_at_the_request_deadline() -> None:
    async def scenario() -> None:
        async with serving(idle_timeout_s=1.0) as (_, port, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = HEAD + b"Connection: close\r\n\r\n"

            async def trickle() -> None:
                with contextlib.suppress(ConnectionError):
                    for byte in request:  # ~50 s in all: far past the 1 s deadline
                        writer.write(bytes([byte]))
                        await writer.drain()
                        await asyncio.sleep(1.0)
            sending = asyncio.create_task(trickle())
            try:
                assert await closed_by_server(reader)
            finally:
                sending.cancel()
                writer.close()
    asyncio.run(scenario())


def test_a_half_closed_connection_still_gets_its_answer() -> None:
    async def scenario() -> None:
        async with serving() as (_, port, _):
            reply = await ask(port, HEAD + b"\r\n", half_close=True)
            assert reply.status == 200 and reply.json() == []
    asyncio.run(scenario())


def test_a_route_that_raises_answers_500_there_and_the_output_serves_on(
        caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with serving() as (output, port, task):
            site = output.site
            assert site is not None
            real = site.route

            def route(target: str) -> object:
                if target == "/views.json":
                    raise KeyError("a bug in a route")
                return real(target)
            site.route = route  # type: ignore[method-assign,assignment]
            for _ in range(3):
                failed = await ask(port, HEAD + b"Connection: close\r\n\r\n")
                assert failed.status == 500 and failed.body == b"500\n"
            page = await ask(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   b"Connection: close\r\n\r\n")
            assert page.status == 200 and b"<html" in page.body
            assert not task.done()
            assert output.stats.failed == 3
            assert output.stats.last_error == "KeyError: 'a bug in a route'"
    with caplog.at_level(logging.ERROR, logger="agent.outputs.web.server"):
        asyncio.run(scenario())
    logged = [r for r in caplog.records if "serving a request failed" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
