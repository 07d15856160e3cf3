"""EVerest's display_message API through the real agent process and a real mosquitto: requests
framed exactly as EVerest's C++ frames them (AsyncApiRequestReply), replies on the reply topic,
messages of two EVSEs' sessions each on its own display, and messages across a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

from agent.dev.broker import Mosquitto
from agent.process.mqtt import Connection
from agent.settings.config import MqttConfig
from tests.harness import EMULATED, AgentProcess, Everest, read_json, wait_until
from tests.tasks import cancelled
from tests.test_evse_integration import SESSIONS, Station, config

MODULE = "display"
BASE = f"everest_api/1/display_message/{MODULE}/"


def with_display_messages(tmp: Path, port: int) -> Path:
    path = config(tmp, port)
    path.write_text(path.read_text() + f'[display_messages]\nmodule_id = "{MODULE}"\n'
                    "cycle_s = 1\n")
    return path


def shown(tmp: Path, evse: int) -> dict[str, Any] | None:
    """The backend message EVSE `evse`'s display shows now (its view's display_message)."""
    view = read_json(tmp / f"display{evse}.json") or {}
    message: dict[str, Any] | None = view.get("display_message")
    return message


def shows(tmp: Path, evse: int, message_id: int) -> bool:
    """EVSE `evse`'s display shows the backend message `message_id` now."""
    return (shown(tmp, evse) or {}).get("id") == message_id


class DisplayMessageApi:
    """EVerest's display_message_API module: requests out, replies in, heartbeats."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.replies: dict[str, bytes] = {}
        self.checks = 0
        self.beat = 0

    async def request(self, name: str, payload: Any = None,
                      reply_to: str | None = None) -> bytes | None:
        """Publish like AsyncApiRequestReply::create() and wait for the reply (None: none
        within 3 s, 15 under emulation)."""
        topic = reply_to or f"{BASE}m2e/reply/{uuid.uuid4()}"
        doc: dict[str, Any] = {"headers": {"replyTo": topic}}
        if payload:
            doc["payload"] = payload  # EVerest leaves an empty payload out
        self.conn.publish(BASE + "e2m/" + name, json.dumps(doc).encode())
        try:
            await wait_until(lambda: topic in self.replies, timeout=15 if EMULATED else 3,
                             what=f"the reply to {name}")
        except AssertionError:
            return None
        return self.replies[topic]

    async def listen(self) -> None:
        async for topic, payload in self.conn.messages():
            if "/m2e/reply/" in topic:
                self.replies[topic] = payload
            elif topic == BASE + "m2e/communication_check" and payload == b"true":
                self.checks += 1

    async def heartbeats(self) -> None:
        while True:
            self.conn.publish(BASE + "e2m/heartbeat", str(self.beat).encode())
            self.beat += 1
            await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def running(broker: Mosquitto, tmp: Path
                  ) -> AsyncIterator[tuple[Everest, Station, DisplayMessageApi, AgentProcess]]:
    """The station, EVerest's display_message module and the agent, all links up."""
    sim = await Everest(broker.port).connect()
    station = Station(sim)
    async with Connection(MqttConfig(port=broker.port), "", ["everest_api/1/display_message/#"],
                          timeout_s=5.0) as conn:
        api = DisplayMessageApi(conn)
        tasks = [asyncio.create_task(station.heartbeats()), asyncio.create_task(api.listen()),
                 asyncio.create_task(api.heartbeats())]
        agent = await AgentProcess(with_display_messages(tmp, broker.port)).start()
        try:
            await wait_until(lambda: all((read_json(tmp / f"display{i}.json") or {}).get(
                "link") == "up" for i in (1, 2)), what="both displays up")
            await wait_until(lambda: api.checks > 0, what="the module's communication check")
            yield sim, station, api, agent
        finally:
            await cancelled(*tasks)
            await agent.kill()
            await sim.close()


def test_set_get_clear_round_trip_as_everest_frames_it(broker: Mosquitto,
                                                       tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(broker, tmp_path) as (_, _, api, agent):
            notice = {"id": 11, "priority": "AlwaysFront",
                      "message": {"content": "<b>Maintenance</b> at 22:00", "format": "HTML"},
                      "qr_code": "https://status.example.com/11"}
            assert await api.request("set_display_message", [notice]) == b'{"status":"Accepted"}'
            for i in (1, 2):  # no binding: every display, over its own screen
                await wait_until(partial(shows, tmp_path, i, 11), what=f"the notice on display {i}")
                assert shown(tmp_path, i) == {"id": 11, "text": "Maintenance at 22:00",
                                              "qr_code": "https://status.example.com/11",
                                              "priority": "AlwaysFront"}
            got = json.loads(await api.request("get_display_message") or b"{}")
            assert got == {"messages": [notice]}
            filtered = await api.request("get_display_message", {"id": [12]})
            assert filtered == b'{"messages":[]}'
            assert await api.request("clear_display_message", {"id": 11}) == (
                b'{"status":"Accepted"}')
            await wait_until(lambda: shown(tmp_path, 1) is None and shown(tmp_path, 2) is None,
                             what="the notice gone")
            assert await api.request("clear_display_message", {"id": 11}) == (
                b'{"status":"Unknown"}')
            # Malformed: answered (EVerest would otherwise wait 550 s), counted, nothing shown.
            bad = json.loads(await api.request("set_display_message",
                                               [{"id": "11", "message": {"content": "x"}}])
                             or b"{}")
            assert bad["status"] == "Rejected" and "id" in bad["status_info"]
            assert await api.request("set_display_message", [{"message": {"content": "x"}}]) == (
                b'{"status":"Rejected","status_info":"id is required (get and clear name '
                b'messages by id)"}')
            # A reply topic outside this module's: no answer there, nothing applied.
            foreign = "everest_api/1/evse_manager_consumer/x/e2m/session_event"
            assert await api.request("set_display_message", [notice], reply_to=foreign) is None
            await asyncio.sleep(0.3)
            assert shown(tmp_path, 1) is None
            status = read_json(tmp_path / "status.json") or {}
            desk = status["display_messages"]
            assert desk["module_id"] == MODULE and desk["link"] == "up"
            assert desk["rejected"]["set_display_message"] == 2
            assert desk["received"]["heartbeat"] > 0 and desk["messages"] == 0
            assert "Traceback" not in agent.log()
    asyncio.run(scenario())


def test_messages_of_two_sessions_each_on_their_own_display(broker: Mosquitto,
                                                            tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(broker, tmp_path) as (_, station, api, _):
            for i in (1, 2):
                station.event(i, "SessionStarted")
                station.event(i, "TransactionStarted", token=f"0400000{i}")
            station.info(1, 1000, 7400)
            station.info(2, 2000, 7400)
            await wait_until(lambda: all((read_json(tmp_path / f"display{i}.json") or {}).get(
                "live") is not None for i in (1, 2)), what="both sessions live")
            for i in (2, 1):  # interleaved, each bound to its transaction (OCPP 2.0.1)
                reply = await api.request("set_display_message", [{
                    "id": 20 + i, "priority": "InFront", "identifier_id": SESSIONS[i],
                    "identifier_type": "TransactionId",
                    "message": {"content": f"Hello driver {i}"}}])
                assert reply == b'{"status":"Accepted"}'
            for i in (1, 2):
                await wait_until(partial(shows, tmp_path, i, 20 + i),
                                 what=f"driver {i}'s message on display {i}")
            for _ in range(6):  # through several turns: never the other's message
                await asyncio.sleep(0.25)
                assert (shown(tmp_path, 1) or {}).get("id") in (21, None)
                assert (shown(tmp_path, 2) or {}).get("id") in (22, None)
            unknown = json.loads(await api.request("set_display_message", [{
                "id": 30, "identifier_id": "no-such-transaction",
                "identifier_type": "TransactionId", "message": {"content": "x"}}]) or b"{}")
            assert unknown["status"] == "UnknownTransaction"
            # EVSE 1's session ends: its message goes with it; EVSE 2's stays.
            station.event(1, "TransactionFinished")
            station.event(1, "SessionFinished")
            await wait_until(lambda: shown(tmp_path, 1) is None, what="message 21 gone")
            got = json.loads(await api.request("get_display_message") or b"{}")
            assert [m["id"] for m in got["messages"]] == [22]
            assert (shown(tmp_path, 2) or {}).get("id") == 22
    asyncio.run(scenario())


def test_messages_survive_a_restart_until_they_expire_or_are_cleared(
        broker: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(broker, tmp_path) as (_, _, api, agent):
            for mid, priority in ((41, "InFront"), (42, "AlwaysFront")):
                assert await api.request("set_display_message", [{
                    "id": mid, "priority": priority, "timestamp_to": "2099-01-01T00:00:00Z",
                    "message": {"content": f"Notice {mid}", "language": "en"}}]) == (
                    b'{"status":"Accepted"}')
            await wait_until(lambda: (shown(tmp_path, 1) or {}).get("id") == 42,
                             what="the AlwaysFront notice")
            assert await agent.terminate() == 0
            (tmp_path / "display1.json").unlink()
            checks = api.checks
            restarted = await AgentProcess(with_display_messages(tmp_path, broker.port)).start()
            try:
                # Shown from the state file at start, before the broker link is up.
                await wait_until(lambda: (shown(tmp_path, 1) or {}).get("id") == 42,
                                 what="the notice again after the restart")
                # EVerest's requests are heard once the agent is subscribed: its first check.
                await wait_until(lambda: api.checks > checks, what="the restarted agent's check")
                # That check may still be the old agent's (on its way at the stop), and a request
                # (QoS 0) before the subscription goes unheard: ask again until answered.
                loop = asyncio.get_running_loop()
                deadline = loop.time() + (60 if EMULATED else 15)
                while (answer := await api.request("get_display_message")) is None:
                    assert loop.time() < deadline, "no answer from the restarted agent"
                got = json.loads(answer)
                assert [m["id"] for m in got["messages"]] == [41, 42]
            finally:
                await restarted.kill()
    asyncio.run(scenario())
