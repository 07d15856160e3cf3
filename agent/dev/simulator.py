"""Plays EVerest's side on a broker (demo, tests): session costs; with --evses also the EVSEs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from gmqtt import Client
from gmqtt.mqtt.constants import MQTTv311

from agent.dev.station import evse_base, play_station, station_schedule

log = logging.getLogger(__name__)

RECEIPT_URL = "https://receipts.example.com/r/8F3A2C"


def _texts(en: str, de: str) -> list[dict[str, str]]:
    return [{"content": en, "language": "en", "format": "UTF8"},
            {"content": de, "language": "de", "format": "UTF8"}]


def session_cost(session_id: str, status: str, cost_value: int, energy_wh: int,
                 **extra: Any) -> dict[str, Any]:
    """An OCPP-style session_cost: one cumulative chunk, 3 decimals, no currency code."""
    doc: dict[str, Any] = {
        "session_id": session_id, "currency": {"decimals": 3}, "status": status,
        "cost_chunks": [{"timestamp_from": "2026-11-21T09:00:00Z",
                         "timestamp_to": "2026-11-21T09:30:00Z", "metervalue_from": 0,
                         "metervalue_to": energy_wh, "cost": {"value": cost_value},
                         "category": "Energy"}],
        "charging_price": [
            {"category": "Energy", "price": {"currency": {"decimals": 3},
                                             "value": {"value": 390}}},
            {"category": "FlatFee", "price": {"currency": {"decimals": 2},
                                              "value": {"value": 50}}}],
        "idle_price": {"grace_minutes": 30, "hour_price": {"currency": {"decimals": 2},
                                                           "value": {"value": 600}}},
    }
    doc.update(extra)
    return doc


def scenario(step_s: float) -> list[tuple[float, str, dict[str, Any]]]:
    """(delay before, topic, payload) for one session from price to receipt."""
    sid = "demo-session-1"
    steps: list[tuple[float, str, dict[str, Any]]] = [
        (0.5, "default_price", {"messages": _texts("0.39 EUR/kWh + 0.50 EUR per session",
                                                   "0,39 EUR/kWh + 0,50 EUR je Ladevorgang")}),
        (step_s * 2, "tariff_message", {"identifier_id": "04A1B2C3", "identifier_type": "IdToken",
                                        "messages": _texts("Your tariff: 0.35 EUR/kWh",
                                                           "Ihr Tarif: 0,35 EUR/kWh")}),
    ]
    for i in range(1, 7):
        energy = i * 1800
        steps.append((step_s, "session_cost",
                      session_cost(sid, "Running", 500 + energy * 390 // 1000, energy)))
    energy = 6 * 1800
    total = 500 + energy * 390 // 1000
    steps.append((step_s, "session_cost", session_cost(sid, "Idle", total, energy)))
    steps.append((step_s * 2, "session_cost", session_cost(sid, "Idle", total, energy)))
    steps.append((step_s, "session_cost", session_cost(
        sid, "Finished", total, energy, qr_code=RECEIPT_URL,
        message=_texts(f"Total {total // 1000}.{total % 1000 // 10:02d} EUR. Thank you!",
                       f"Gesamt {total // 1000},{total % 1000 // 10:02d} EUR. Danke!"))))
    return steps


class CheckWatch(msgspec.Struct):
    """What the simulator saw of the agent's communication_check."""

    received_true: int = 0
    received_false: int = 0
    late: int = 0
    longest_gap_s: float = 0.0
    last_true_at: float | None = None


class Simulator:
    """EVerest stand-in: heartbeats every second, a scripted session, communication check watch."""

    def __init__(self, host: str, port: int, module_id: str, topic_prefix: str = "",
                 heartbeat_s: float = 1.0, check_timeout_s: float = 5.0,
                 client_id: str | None = None, display_module: str | None = None) -> None:
        self.host, self.port = host, port
        self.base = f"{topic_prefix}everest_api/1/session_cost_consumer/{module_id}/"
        # EVerest's display_message API module too (`[display_messages]` of the agent).
        self.display_base = (f"{topic_prefix}everest_api/1/display_message/{display_module}/"
                             if display_module else None)
        self.display_replies: list[bytes] = []
        self.topic_prefix = topic_prefix
        self.evse_beat = 0  # the EVSE modules' heartbeat counter, continued across station runs
        self.heartbeat_s = heartbeat_s
        self.check_timeout_s = check_timeout_s
        self.watch = CheckWatch()
        # An empty client id makes gmqtt pick a random one (several stand-ins on one broker).
        self.client = Client(f"everest-sim-{module_id}" if client_id is None else client_id)
        self.client.on_message = self._message
        self.client.on_connect = self._connected
        self.beat = 0
        self._started = 0.0

    def _connected(self, client: Client, flags: int, rc: int, properties: Any) -> None:
        client.subscribe(self.base + "m2e/communication_check", qos=0)
        if self.display_base:
            client.subscribe(self.display_base + "m2e/reply/#", qos=0)

    def _message(self, client: Client, topic: str, payload: bytes, qos: int,
                 properties: Any) -> int:
        now = asyncio.get_running_loop().time()
        if self.display_base and topic.startswith(self.display_base + "m2e/reply/"):
            self.display_replies.append(payload)
            return 0
        if payload == b"true":
            previous = self.watch.last_true_at if self.watch.last_true_at is not None else (
                self._started)
            gap = now - previous
            self.watch.longest_gap_s = max(self.watch.longest_gap_s, gap)
            if gap > self.check_timeout_s:
                self.watch.late += 1
            self.watch.received_true += 1
            self.watch.last_true_at = now
        elif payload == b"false":
            self.watch.received_false += 1
        return 0

    async def connect(self) -> None:
        """Connect to the broker (the agent's broker)."""
        self._started = asyncio.get_running_loop().time()
        await self.client.connect(self.host, self.port, keepalive=30, version=MQTTv311)

    def publish(self, topic: str, payload: dict[str, Any] | int | bytes) -> None:
        """Publish one EVerest message (QoS 0, not retained, as EVerest does); bytes go raw."""
        data = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
        self.client.publish(self.base + "e2m/" + topic, data, qos=0)

    def heartbeat(self) -> None:
        """Publish the next heartbeat id (0, 1, 2, ...), on the display module's API too."""
        self.publish("heartbeat", self.beat)
        if self.display_base:
            self.client.publish(self.display_base + "e2m/heartbeat", str(self.beat), qos=0)
        self.beat += 1

    def set_display_message(self, *messages: dict[str, Any]) -> None:
        """A SetDisplayMessage from the CSMS, framed as EVerest's AsyncApiRequestReply does."""
        assert self.display_base is not None, "Simulator(display_module=...) first"
        reply_to = f"{self.display_base}m2e/reply/{uuid.uuid4()}"
        request = {"headers": {"replyTo": reply_to}, "payload": list(messages)}
        self.client.publish(self.display_base + "e2m/set_display_message",
                            msgspec.json.encode(request), qos=0)

    async def heartbeats(self, interval_s: float | None = None) -> None:
        """Publish heartbeats every `interval_s` (default heartbeat_s) until cancelled."""
        while True:
            self.heartbeat()
            await asyncio.sleep(self.heartbeat_s if interval_s is None else interval_s)

    async def play(self, step_s: float = 2.0) -> None:
        """Run the scripted session once."""
        for delay, topic, payload in scenario(step_s):
            await asyncio.sleep(delay)
            log.info("EVerest -> %s (%s)", topic, payload.get("status", "") if isinstance(
                payload, dict) else "")
            self.publish(topic, payload)

    async def play_station(self, evses: int, tick_s: float = 1.0, *, seed: int = 0,
                           charge_ticks: int = 120) -> None:
        """Run one staggered round of sessions on `evses` EVSEs (see agent.dev.station)."""
        steps = station_schedule(evses, datetime.now(UTC), charge_ticks=charge_ticks,
                                 seed=seed, first_beat=self.evse_beat)
        self.evse_beat = 1 + max(s.payload for s in steps if s.topic == "heartbeat")
        log.info("EVerest station: %d EVSE(s), %d messages", evses, len(steps))
        await play_station(self.publish_station, steps, tick_s)

    def publish_station(self, module: str | None, topic: str, data: bytes) -> None:
        """Publish one station step: on an EVSE module's API, or (None) the session cost one."""
        if module is None:
            self.publish(topic, data)
        else:
            self.client.publish(evse_base(self.topic_prefix, module) + "e2m/" + topic, data, qos=0)

    def verdict(self) -> tuple[bool, str]:
        """Whether communication_check arrived in time, as a sentence."""
        w = self.watch
        ok = w.received_true > 0 and w.late == 0
        text = (f"communication_check: {w.received_true} x true, {w.received_false} x false, "
                f"longest gap {w.longest_gap_s:.2f} s (limit {self.check_timeout_s:.1f} s): "
                f"{'in time' if ok else 'LATE or missing'}")
        return ok, text

    async def close(self) -> None:
        """Disconnect."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.client.disconnect()


async def simulate(host: str, port: int, module_id: str, topic_prefix: str = "",
                   step_s: float = 2.0, repeat: bool = False, evses: int = 0) -> int:
    """`cost-agent simulate`: play sessions against a broker; exit status from the verdict.

    With `evses` > 0 a station with that many EVSE manager modules is played instead of the
    scripted single session, one simulated second lasting `step_s` / 2 real seconds.
    """
    sim = Simulator(host, port, module_id, topic_prefix)
    await sim.connect()
    beats = asyncio.create_task(sim.heartbeats(), name="sim-heartbeats")
    run = 0
    try:
        while True:
            if evses > 0:
                await sim.play_station(evses, step_s / 2, seed=run)
            else:
                await sim.play(step_s)
            run += 1
            ok, text = sim.verdict()
            log.info("%s", text)
            if not repeat:
                return 0 if ok else 1
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
        await sim.close()
