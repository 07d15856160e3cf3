"""Pricing API client against a real local HTTP server; [pricing] config validation."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest

from agent.pricing.client import PricingClient
from agent.pricing.settings import PricingConfig

FIXTURES = Path(__file__).parent / "fixtures" / "pricing"
RATE = (FIXTURES / "example1_rate.json").read_bytes()
TOKEN = "s3cr3t-T0KEN-4711"
EVSE = "DE*EEE*E000001"


@dataclass
class Behaviour:
    """What the fake API answers, and what it saw."""

    status: int = 200
    body: bytes = RATE
    delay: float = 0.0
    gate: threading.Event | None = None  # the answer waits until the test sets it
    headers: dict[str, str] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        b = self.server.behaviour
        b.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        if b.delay:
            time.sleep(b.delay)
        if b.gate is not None:
            b.gate.wait(10)
        try:
            self.send_response(b.status)
            for k, v in b.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(b.body)))
            self.end_headers()
            self.wfile.write(b.body)
        except OSError:
            pass  # the client gave up (timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour


@pytest.fixture
def api() -> Iterator[tuple[str, Behaviour]]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.behaviour = Behaviour()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/pricing/", server.behaviour
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def _client(tmp_path: Path, url: str, *, timeout: float = 2.0, token: str | None = TOKEN,
            **kw: Any) -> PricingClient:
    token_file = tmp_path / "token"
    if token is not None:
        token_file.write_text(f"  {token}\n")
    config = PricingConfig(api_url=url, evse_id=EVSE, token_file=str(token_file),
                           timeout_s=timeout, **kw)
    return PricingClient(config)


def _assert_no_token(client: PricingClient, caplog: pytest.LogCaptureFixture) -> None:
    assert TOKEN not in caplog.text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    assert TOKEN not in json.dumps(client.stats_dict())
    assert TOKEN not in repr(client)
    assert TOKEN not in str(client)


def test_ok_fetch_sends_token_and_is_never_the_stations_rate(
        tmp_path: Path, api: tuple[str, Behaviour], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url, behaviour = api
    client = _client(tmp_path, url)
    assert client.default_rate is None
    rate = asyncio.run(client.fetch("04A2B3C4"))
    assert rate is not None
    assert rate.cost_total == Decimal(36)
    assert client.default_rate is None  # one driver's Rate: never the station's
    path, headers = behaviour.seen[0]
    query = parse_qs(urlsplit(path).query)
    assert query == {"evseId": [EVSE], "tag_id": ["04A2B3C4"]}
    assert headers["x-api-token"] == TOKEN  # stripped of the file's whitespace
    stats = client.stats_dict()
    assert (stats["requests"], stats["ok"], stats["errors"]) == (1, 1, {})
    assert stats["source"] is None
    _assert_no_token(client, caplog)
    # Nothing of it is kept for the next start (it would price another driver's session).
    assert list(tmp_path.iterdir()) == [tmp_path / "token"]
    assert _client(tmp_path, url).default_rate is None


@pytest.mark.parametrize(("behaviour", "kind", "detail"), [
    (Behaviour(status=401, body=b'{"error":"unauthorized"}'), "http_status", "HTTP 401"),
    (Behaviour(status=500, body=b"oops"), "http_status", "HTTP 500"),
    (Behaviour(status=302, body=b"", headers={"Location": "http://127.0.0.1:1/x"}),
     "http_status", "HTTP 302"),
    (Behaviour(body=b"{not json"), "bad_json", "invalid JSON"),
    (Behaviour(body=b"<html>maintenance</html>"), "bad_json", "invalid JSON"),
    (Behaviour(body=b'{"priceStructure": {"energy": {"unit": "kWh", "elements": []}}}'),
     "schema", "priceStructure.energy.unit"),
    (Behaviour(body=b'{"rateName": "x"}'), "schema", "neither a Rate"),
    (Behaviour(body=b'{"priceStructure": {"energy": {"unit": "Wh", "elements": '
                    b'[{"intervalChange": 5, "intervalCosts": 1}, '
                    b'{"intervalChange": 5, "intervalCosts": 1}]}}}'),
     "schema", "elements[1].intervalChange"),
    (Behaviour(delay=1.0), "timeout", "no answer within 0.3 s"),
])
def test_errors_classified(tmp_path: Path, api: tuple[str, Behaviour], behaviour: Behaviour,
                           kind: str, detail: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url, served = api
    served.status, served.body, served.delay = behaviour.status, behaviour.body, behaviour.delay
    served.headers = behaviour.headers
    client = _client(tmp_path, url, timeout=0.3, structure_file=str(
        FIXTURES / "bare_structure.json"))
    station = client.default_rate
    assert station is not None
    assert asyncio.run(client.fetch("TAG1")) is None
    assert client.default_rate is station  # an error changes nothing of the station's Rate
    stats = client.stats_dict()
    assert stats["requests"] == 1
    assert stats["ok"] == 0
    assert stats["errors"] == {kind: 1}
    assert stats["last_error_kind"] == kind
    assert detail in stats["last_error"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # logged once per occurrence, with its kind
    assert f"({kind})" in warnings[0].getMessage()
    assert "TAG1" not in caplog.text
    _assert_no_token(client, caplog)


def test_network_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = _client(tmp_path, f"http://127.0.0.1:{port}/api/pricing/")
    assert asyncio.run(client.fetch("TAG1")) is None
    assert client.stats.errors == {"network": 1}
    _assert_no_token(client, caplog)


def test_errors_counted_per_occurrence(tmp_path: Path, api: tuple[str, Behaviour]) -> None:
    url, served = api
    served.status = 500
    client = _client(tmp_path, url)

    async def three() -> None:
        for _ in range(3):
            assert await client.fetch("T") is None

    asyncio.run(three())
    served.status = 200
    assert asyncio.run(client.fetch("T")) is not None
    assert client.stats.errors == {"http_status": 3}
    assert (client.stats.requests, client.stats.ok) == (4, 1)


def test_missing_token_file(tmp_path: Path, api: tuple[str, Behaviour],
                            caplog: pytest.LogCaptureFixture) -> None:
    url, served = api
    client = _client(tmp_path, url, token=None)
    assert asyncio.run(client.fetch("T")) is None
    assert served.seen == []
    assert client.stats.errors == {"token": 2}  # unreadable at start, absent at fetch
    assert "token" in repr(client)


def test_fetch_does_not_block_loop(tmp_path: Path, api: tuple[str, Behaviour]) -> None:
    url, served = api
    served.gate = threading.Event()
    client = _client(tmp_path, url)
    ticks: list[int] = []

    async def run() -> None:
        async def ticker() -> None:
            for i in range(5):
                ticks.append(i)
                await asyncio.sleep(0.01)
        fetch = asyncio.create_task(client.fetch("T"))
        await ticker()
        # The server holds its answer until now, so the loop ran while the request was out.
        assert not fetch.done()
        assert served.gate is not None
        served.gate.set()
        assert await fetch is not None

    asyncio.run(run())
    assert ticks == [0, 1, 2, 3, 4]


def test_no_api_uses_structure_file(tmp_path: Path) -> None:
    config = PricingConfig(structure_file=str(FIXTURES / "example2_rate_chf.json"))
    client = PricingClient(config)
    assert client.default_rate is not None
    assert client.default_rate.currency == "CHF"
    assert client.stats.source == "structure_file"
    assert asyncio.run(client.fetch("T")) is None
    assert client.stats.requests == 0


@pytest.mark.parametrize("content", [b"{broken", b'{"energy": {"unit": "kWh"}}'])
def test_bad_structure_file(tmp_path: Path, content: bytes,
                            caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "tariff.json").write_bytes(content)
    client = _client(tmp_path, "http://127.0.0.1:9/x",
                     structure_file=str(tmp_path / "tariff.json"))
    assert client.default_rate is None
    assert "ignoring structure_file" in caplog.text


# --- [pricing] config ---------------------------------------------------------------

def test_config_defaults_and_tolerance() -> None:
    config = msgspec.convert({"tolerance": "0.05"}, PricingConfig)
    assert config.tolerance == Decimal("0.05")
    assert (config.timeout_s, config.example_kwh) == (5.0, 20)
    assert not config.enabled
    assert msgspec.convert({"tolerance": 0.05}, PricingConfig).tolerance == Decimal("0.05")


@pytest.mark.parametrize(("data", "message"), [
    ({"timeout_s": 0}, "timeout_s"),
    ({"timeout_s": -1}, "timeout_s"),
    ({"example_kwh": 0}, "example_kwh"),
    ({"tolerance": "-0.01"}, "tolerance"),
    ({"tolerance": "NaN"}, "tolerance"),
    ({"api_url": "ftp://x/api", "evse_id": "E", "token_file": "t"}, "api_url"),
    ({"api_url": "https:///api", "evse_id": "E", "token_file": "t"}, "api_url"),
    ({"api_url": "https://u:p@x/api", "evse_id": "E", "token_file": "t"}, "credentials"),
    ({"api_url": "https://x.beenergised.cloud/api/pricing/", "evse_id": "E"}, "token_file"),
    ({"unknown": 1}, "unknown"),
])
def test_config_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(data, PricingConfig)


def test_token_file_with_a_second_line_never_reaches_a_header(
        tmp_path: Path, api: tuple[str, Behaviour], caplog: pytest.LogCaptureFixture) -> None:
    url, served = api
    client = _client(tmp_path, url, token=f"{TOKEN}\nX-Injected: 1")
    assert asyncio.run(client.fetch("T")) is None
    assert served.seen == []
    assert client.stats.errors == {"token": 2}
    assert "more than one line" in caplog.text
    _assert_no_token(client, caplog)


def test_exception_quoting_the_token_never_escapes_or_is_logged(
        tmp_path: Path, api: tuple[str, Behaviour], caplog: pytest.LogCaptureFixture) -> None:
    """Defense in depth: a header value http.client rejects (its error quotes the value)."""
    url, _ = api
    client = _client(tmp_path, url)
    client._token = f"{TOKEN}\r\nX-Injected: 1"  # as if the token file changed under us
    with caplog.at_level(logging.DEBUG):
        assert asyncio.run(client.fetch("T")) is None
    assert client.stats.errors == {"request": 1}  # not the network's fault
    _assert_no_token(client, caplog)
    assert "X-Injected" not in caplog.text


def test_a_programming_error_is_not_counted_as_a_network_error(
        tmp_path: Path, api: tuple[str, Behaviour], monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug surfaces (the runtime's task group then stops the agent with exit 1)."""
    url, _ = api
    client = _client(tmp_path, url)

    def broken(body: bytes) -> None:
        raise AttributeError("a bug in the agent")

    monkeypatch.setattr(client, "_parse", broken)
    with pytest.raises(AttributeError, match="a bug in the agent"):
        asyncio.run(client.fetch("T"))
    assert client.stats.errors == {}


def test_cancelled_fetch_returns_at_once_and_its_thread_touches_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/rates"
        client = _client(tmp_path, url, timeout=20.0)  # the server never answers

        async def main() -> None:
            fetch = asyncio.create_task(client.fetch("T"))
            loop = asyncio.get_running_loop()
            conn, _ = await loop.run_in_executor(None, server.accept)
            fetch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await fetch
            accepted.append(conn)

        accepted: list[socket.socket] = []
        asyncio.run(main())  # returned: nothing waited for the request's thread
        conn = accepted[0]
        with conn:
            conn.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            conn.setblocking(False)
            with pytest.raises(BlockingIOError):
                conn.recv(1, socket.MSG_PEEK)  # the request is still in flight, not closed
        # The server hung up: the abandoned thread fails and must leave no trace.
        for _ in range(500):
            if not any(t.name == "pricing-fetch" for t in threading.enumerate()):
                break
            time.sleep(0.01)
        assert not any(t.name == "pricing-fetch" for t in threading.enumerate())
    assert client.stats.errors == {} and client.stats.ok == 0
    assert "pricing API error" not in caplog.text
