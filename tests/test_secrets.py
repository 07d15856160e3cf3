"""Secrets (MQTT password, pricing API token) never reach stderr, the status file, or the
process's /proc/PID/cmdline and environ: the real agent, on every error path we can provoke."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from agent.dev.broker import Mosquitto
from tests.harness import MODULE_ID, AgentProcess, Everest, read_json, wait_until

PASSWORD = "pw-SECRET-31337"
TOKEN = "tok-SECRET-4711"
EVEREST_PASSWORD = "everest-pw"


class _Api(BaseHTTPRequestHandler):
    """Answers 500 (its reason quoting the token), then hangs up, alternately; records tokens."""

    tokens: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.tokens.append(self.headers.get("x-api-token", ""))
        if len(self.tokens) % 2:
            self.send_response(500, f"broken {self.headers.get('x-api-token')}")
            self.end_headers()
        else:
            self.close_connection = True
            self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    _Api.tokens = []
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/rates"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto that lets in only `agent`/PASSWORD and `everest`/EVEREST_PASSWORD."""
    broker = Mosquitto().require_passwords(tmp_path, {"agent": PASSWORD,
                                                      "everest": EVEREST_PASSWORD})
    with broker:
        yield broker


def config(tmp: Path, port: int, api_url: str, password: str) -> Path:
    (tmp / "password").write_text(password + "\n")
    (tmp / "token").write_text(TOKEN + "\n")
    path = tmp / "agent.toml"
    path.write_text(f"""
[everest]
module_id = "{MODULE_ID}"
[mqtt]
port = {port}
username = "agent"
password_file = "{tmp}/password"
reconnect_max_s = 0.5
[status]
path = "{tmp}/status.json"
interval_s = 0.2
[state]
dir = "{tmp}/state"
[pricing]
api_url = "{api_url}"
evse_id = "DE*ABC*E1"
token_file = "{tmp}/token"
timeout_s = 2
[[output]]
type = "file"
path = "{tmp}/display.json"
""")
    return path


def assert_no_secret(agent: AgentProcess, tmp: Path,
                     secrets: tuple[str, ...] = (PASSWORD, TOKEN)) -> None:
    """Nothing the agent shows or exposes holds the password or the token."""
    assert agent.proc is not None
    exposed = [agent.log(), (tmp / "status.json").read_text()]
    if agent.proc.returncode is None:
        for name in ("cmdline", "environ"):
            exposed.append(Path(f"/proc/{agent.proc.pid}/{name}").read_bytes().decode(
                errors="replace"))
    for text in exposed:
        for secret in secrets:
            assert secret not in text


def test_no_secret_on_api_errors(auth_broker: Mosquitto, api: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        agent = await AgentProcess(config(tmp_path, auth_broker.port, api, PASSWORD)).start()
        everest = Everest(auth_broker.port)
        everest.client.set_auth_credentials("everest", EVEREST_PASSWORD)
        await everest.connect()
        status = tmp_path / "status.json"
        try:
            await wait_until(lambda: (s := read_json(status)) and s["broker"]["connected"],
                             what="agent connected with its password")
            for tag in ("TAG1", "TAG2"):  # a 500 answer, then a dropped connection
                everest.send("tariff_message", {"identifier_id": tag,
                                                "identifier_type": "IdToken", "messages": []})
                await asyncio.sleep(0.3)
            doc = await wait_until(
                lambda: (s := read_json(status)) and sum(s["pricing"]["errors"].values()) >= 2
                and s, what="two pricing errors")
            assert set(doc["pricing"]["errors"]) == {"http_status", "network"}
            assert _Api.tokens == [TOKEN, TOKEN]  # the token was really used
            assert_no_secret(agent, tmp_path)
            assert await agent.terminate() == 0
            assert_no_secret(agent, tmp_path)
            assert "Traceback" not in agent.log()
        finally:
            await agent.kill()
            await everest.close()
    asyncio.run(scenario())


def test_no_secret_when_the_broker_refuses_the_password(
        auth_broker: Mosquitto, api: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        wrong = PASSWORD[::-1]
        agent = await AgentProcess(config(tmp_path, auth_broker.port, api, wrong)).start()
        status = tmp_path / "status.json"
        try:
            await wait_until(lambda: (s := read_json(status)) and s["broker"]["last_error"],
                             what="a refused connection")
            assert_no_secret(agent, tmp_path, (wrong, TOKEN))
            assert await agent.terminate() == 0
            assert_no_secret(agent, tmp_path, (wrong, TOKEN))
        finally:
            await agent.kill()
    asyncio.run(scenario())
