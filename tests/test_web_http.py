"""The web display's HTTP through a raw socket, against the real agent process and broker: what
it serves, what it refuses (methods, foreign Host, oversized requests), and that idle, stalled or
too many clients never delay the agent or the other pages."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.dev.broker import Mosquitto
from tests.harness import EMULATED, read_json, wait_until
from tests.test_evse_integration import SESSIONS
from tests.web import Events, both_up, get, http, running_cost, station

SAFETY = {"content-security-policy": "default-src 'self'; frame-ancestors 'none'",
          "x-content-type-options": "nosniff"}


def web_stats(tmp: Path) -> dict[str, int]:
    """The web output's counters in the agent's status file (it is the third output)."""
    status = read_json(tmp / "status.json") or {}
    web: dict[str, int] = status.get("outputs", {}).get("web[2]", {})
    return web


def test_the_page_its_assets_and_the_views_are_served_with_the_safety_headers(
        broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (sim, sta, _, port):
            views = await both_up(port)
            assert [v["evse"] for v in views] == [1, 2]
            page = await http(port, get("/"))
            assert page.status == 200 and page.headers["content-type"].startswith("text/html")
            assert b'<script src="/static/app.js"' in page.body
            assert SAFETY.items() <= page.headers.items()
            for path, kind in [("/static/app.js", "text/javascript"),
                               ("/static/style.css", "text/css"),
                               ("/static/custom.css", "text/css"),
                               ("/config.json", "application/json")]:
                reply = await http(port, get(path))
                assert reply.status == 200 and reply.headers["content-type"].startswith(kind)
                assert SAFETY.items() <= reply.headers.items()
            head = await http(port, get("/", method="HEAD"))
            assert head.status == 200 and head.body == b""
            assert int(head.headers["content-length"]) == len(page.body)
            assert (await http(port, get("/evse/2"))).body == page.body
            for missing in ("/evse/3", "/evse/x", "/nothing", "/static/../agent.toml",
                            "/qr/1/receipt.svg", "/qr/9/payment.svg", "/status.json"):
                assert (await http(port, get(missing))).status == 404, missing
            # A receipt QR exists once EVSE 1's session finished with one.
            sta.event(1, "SessionStarted")
            sim.send("session_cost", {**running_cost(1, 5000), "status": "Finished",
                                      "qr_code": "https://receipts.example/r/77"})
            await wait_until(lambda: (read_json(tmp_path / "display1.json") or {}).get(
                "screen") == "finished", what="EVSE 1 finished")
            code = await http(port, get("/qr/1/receipt.svg"))
            assert code.status == 200 and code.headers["content-type"] == "image/svg+xml"
            assert code.body.startswith(b"<svg") and b"viewBox" in code.body
            assert (await http(port, get("/qr/2/receipt.svg"))).status == 404
    asyncio.run(scenario())


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"])
def test_only_get_and_head_are_served(broker: Mosquitto, tmp_path: Path, method: str) -> None:
    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (_, _, _, port):
            await both_up(port)
            reply = await http(port, get("/views.json", method=method,
                                         extra="Content-Length: 2\r\n")[:-4] + b"\r\n\r\n{}")
            assert reply.status == 405 and reply.headers["allow"] == "GET, HEAD"
            assert b"evse" not in reply.body
    asyncio.run(scenario())


def test_a_page_reached_by_a_foreign_host_name_is_refused(broker: Mosquitto,
                                                          tmp_path: Path) -> None:
    """DNS rebinding: a site whose name points at the charger must not read its views."""
    async def scenario() -> None:
        async with station(tmp_path, broker.port,
                           web='allowed_hosts = ["kiosk.station.lan"]') as (_, _, _, port):
            await both_up(port)
            for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.2",
                         "localhost.attacker.example"):
                reply = await http(port, get("/views.json", host=host))
                assert reply.status == 421, host
                assert b"evse" not in reply.body
            for host in ("localhost", f"localhost:{port}", f"127.0.0.1:{port}", "[::1]:80",
                         "kiosk.station.lan", "KIOSK.station.lan:8080"):
                assert (await http(port, get("/views.json", host=host))).status == 200, host
            no_host = b"GET /views.json HTTP/1.1\r\nConnection: close\r\n\r\n"
            assert (await http(port, no_host)).status == 400
    asyncio.run(scenario())


def test_oversized_requests_are_refused(broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (_, _, _, port):
            await both_up(port)
            big_headers = "".join(f"X-Pad-{i}: {'a' * 200}\r\n" for i in range(60))
            assert (await http(port, get("/", extra=big_headers))).status == 431
            assert (await http(port, get("/" + "a" * 3000))).status == 414
            assert (await http(port, get("/" + "a" * 20000))).status == 414
            body = get("/", extra="Content-Length: 5\r\n") + b"hello"
            assert (await http(port, body)).status == 413
            assert (await http(port, b"NONSENSE\r\n\r\n")).status == 400
            # Still serving after all that.
            assert (await http(port, get("/views.json"))).status == 200
    asyncio.run(scenario())


def test_the_event_stream_sends_every_view_on_connect_then_each_change(
        broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (sim, sta, _, port):
            await both_up(port)
            async with Events(port) as page, Events(port, "/events?evse=2") as one:
                await wait_until(lambda: page.latest(1) and page.latest(2) and one.latest(2),
                                 what="current views on connect")
                assert page.status == one.status == 200
                sta.event(1, "SessionStarted")
                sta.info(1, 1500, 7400)
                sim.send("session_cost", running_cost(1, 2345))
                await wait_until(lambda: page.latest(1).get("total", {}) and
                                 page.latest(1)["total"]["value"] == 2345,
                                 what="EVSE 1's new cost on the stream")
                assert page.latest(1)["session_id"] == SESSIONS[1]
                assert page.latest(2)["session_id"] is None
                # The one-EVSE stream carries EVSE 2's views only.
                assert {item["evse"] for item in one.items} == {2}
    asyncio.run(scenario())


def test_at_most_max_clients_streams(broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with station(tmp_path, broker.port, web="max_clients = 2") as (_, _, _, port):
            await both_up(port)
            async with Events(port) as first, Events(port) as second:
                await wait_until(lambda: first.items and second.items, what="two streams")
                refused = await http(port, get("/events"))
                assert refused.status == 503
            # Both closed: a new page gets its stream (retrying, as the page does, while the
            # agent has not yet seen the others go).
            async with Events(port, retry=True) as third:
                await wait_until(lambda: third.items, what="a stream after the others left")
    asyncio.run(scenario())


async def shown(page: Events, send: Callable[[], None], energy_wh: int, what: str) -> None:
    """Wait until EVSE 1's live energy on `page` is `energy_wh`, sending it again every 2 s.

    EVerest's session_info is QoS 0: after a burst the broker drops what overflows its queue
    towards a slow (emulated) agent, the last message included; EVerest itself sends the next
    one a second later. The page must never have been dropped meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30.0
    while (page.latest(1).get("live") or {}).get("energy_wh") != energy_wh:
        assert not page.closed, f"the good page was dropped: {what}"
        assert loop.time() < deadline, f"timed out: {what}"
        send()
        with contextlib.suppress(AssertionError):
            await wait_until(lambda: (page.latest(1).get("live") or {}).get(
                "energy_wh") == energy_wh, timeout=2.0)


def test_idle_and_stalled_clients_delay_neither_the_agent_nor_other_pages(
        broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with station(tmp_path, broker.port) as (sim, sta, agent, port):
            await both_up(port)
            # A page that asks for the stream and then never reads a byte.
            stalled = socket.socket()
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect(("127.0.0.1", port))
            stalled.sendall(get("/events").replace(b"Connection: close\r\n", b""))
            # 100 connections that say nothing.
            idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
            started, begun = len(sim.checks), asyncio.get_running_loop().time()
            async with Events(port, retry=True) as page:
                await wait_until(lambda: page.latest(1), what="the good page's first views")
                sta.event(1, "SessionStarted")

                def clients() -> int | None:
                    return web_stats(tmp_path).get("clients")
                # Many changes, until the stalled page's buffers are full and it is dropped.
                energy = 0
                while clients() != 1:
                    energy += 1
                    assert energy < 20000, "the stalled page was never dropped"
                    sta.info(1, energy, 7400)
                    if energy % 50 == 0:
                        await asyncio.sleep(0.05)
                await shown(page, lambda: sta.info(1, energy, 7400), energy,
                            what="the good page kept updating")
                # Idle connections are closed after idle_timeout_s (2 s here).
                for reader, _ in idle[-5:]:
                    async with asyncio.timeout(10):
                        assert await reader.read() == b""
                await shown(page, lambda: sta.info(1, 5000, 7400), 5000,
                            what="the good page still updating")
            for _, writer in idle:
                writer.close()
            stalled.close()
            # EVerest heard the agent's communication checks all along (every 0.5 s; EVerest
            # raises its CommunicationFault after 5 s of silence).
            loop = asyncio.get_running_loop()
            await wait_until(lambda: sim.checks[-1][0] > loop.time() - 1.0,
                             what="a communication check after the flood")
            times = [begun, *(t for t, _ in sim.checks[started:])]
            if not EMULATED:  # under qemu the test's own process pauses for seconds
                assert max(b - a for a, b in itertools.pairwise(times)) < 5.0
            assert "Traceback" not in agent.log()
    asyncio.run(scenario())


def test_a_unix_socket_serves_the_same(broker: Mosquitto, tmp_path: Path) -> None:
    path = tmp_path / "web.sock"

    async def scenario() -> None:
        async with station(tmp_path, broker.port, listen=f"unix:{path}"):
            reader, writer = None, None
            for _ in range(200):
                try:
                    reader, writer = await asyncio.open_unix_connection(str(path))
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            assert reader is not None and writer is not None
            writer.write(get("/views.json", host="localhost"))
            data = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert data.startswith(b"HTTP/1.1 200") and b'"evse":2' in data
    asyncio.run(scenario())
