"""A simulated multi-EVSE station: EVerest's EVSE manager consumer API next to the session costs.

`station_schedule` builds the whole run as data (what to publish at which tick, one tick being
one simulated second); `play_station` publishes it in real time. Per EVSE: heartbeat every tick,
evse_id, session events, session_info every tick while a session runs (AC power ramp, plateau,
taper, EV-full pause), and on the station-wide session cost topic an IdToken tariff_message and a
Running session_cost every 10 ticks. Sessions are staggered across EVSEs; the last session of a
run ends without a Finished session_cost (EVerest may drop a late OCPP 1.6 FinalCost).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

COST_INTERVAL = 10  # ticks between Running session_costs, like a backend's RunningCost interval
STAGGER = 15  # ticks between the first sessions of neighbouring EVSEs
RAMP = 3  # ticks from 25 % to full power
IDLE = 8  # ticks paused by the EV (full) before the cable is pulled
GAP = 10  # ticks unplugged between two sessions of one EVSE
ENERGY_PRICE = 390  # 0.390 per kWh at 3 decimals
TIME_PRICE = 1200  # 1.200 per hour of charging at 3 decimals
RECEIPT_URL = "https://receipts.example.com/r/"


class Step(NamedTuple):
    """Publish `payload` on e2m/`topic` of `module` (None: the session cost module) at `tick`."""

    tick: int
    module: str | None
    topic: str
    payload: Any


def everest_json(doc: Any) -> bytes:
    """JSON as EVerest prints it: 4-space indentation, keys in alphabetical order."""
    return json.dumps(doc, indent=4, sort_keys=True).encode()


def evse_module_id(index: int) -> str:
    """Module id of EVSE `index` (1-based): `evse_manager_consumer_1`, ..."""
    return f"evse_manager_consumer_{index}"


def evse_base(topic_prefix: str, module_id: str) -> str:
    """Topic base of one EVSE manager consumer module."""
    return f"{topic_prefix}everest_api/1/evse_manager_consumer/{module_id}/"


def meter_public_key(index: int) -> str:
    """A made-up OCMF public key for EVSE `index`'s meter (DER, EC P-256, in hex)."""
    point = hashlib.sha512(f"meter {index}".encode()).hexdigest()[:128].upper()
    return "3059301306072A8648CE3D020106082A8648CE3D03010703420004" + point


def power_w(index: int, tick: int, charge_ticks: int) -> int:
    """AC power at charging tick `tick`: 11 kW (odd EVSEs) or 7.4 kW, ramp and end taper."""
    peak = 11000 if index % 2 else 7400
    if tick < RAMP:
        return peak * (tick + 1) // (RAMP + 1)
    taper_from = charge_ticks * 3 // 4
    if tick >= taper_from:
        left = charge_ticks - tick
        # Down to ~20 % of the peak at the end, as a battery nearing full draws less.
        return peak // 5 + (peak - peak // 5) * left // max(1, charge_ticks - taper_from)
    return peak


def _token(index: int, session: int) -> dict[str, Any]:
    return {"authorization_type": "RFID",
            "id_token": {"type": "ISO14443", "value": f"04A1B2{index:02X}{session:02X}"}}


def _texts(en: str, de: str) -> list[dict[str, str]]:
    return [{"content": en, "format": "UTF8", "language": "en"},
            {"content": de, "format": "UTF8", "language": "de"}]


def _component(category: str, value: int) -> dict[str, Any]:
    return {"category": category, "price": {"currency": {"decimals": 3}, "value": {"value": value}}}


class _Session:
    """Builds the steps of one session on one EVSE."""

    def __init__(self, index: int, number: int, sid: str, start: int, at: datetime,
                 charge_ticks: int, register_wh: float) -> None:
        self.index, self.number, self.sid, self.start = index, number, sid, start
        self.module = evse_module_id(index)
        self.at, self.charge_ticks = at, charge_ticks
        self.register = register_wh
        self.energy = 0.0  # Wh charged so far (float, as a meter integrates)
        self.reported = 0  # charged_energy_wh lags one meter sample
        self.steps: list[Step] = []

    def stamp(self, tick: int) -> str:
        return (self.at + timedelta(seconds=tick)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def meter(self, tick: int) -> dict[str, Any]:
        return {"energy_Wh_import": {"total": round(self.register + self.energy, 2)},
                "timestamp": self.stamp(tick)}

    def event(self, tick: int, name: str, **data: Any) -> None:
        doc = {"connector_id": 1, "event": name, "timestamp": self.stamp(tick),
               "uuid": self.sid, **data}
        self.steps.append(Step(tick, self.module, "session_event", doc))

    def info(self, tick: int, state: str, power: int) -> None:
        self.steps.append(Step(tick, self.module, "session_info", {
            "charged_energy_wh": self.reported, "discharged_energy_wh": 0,
            "latest_total_w": power, "selected_protocol": "IEC61851-1",
            "session_duration_s": tick - self.start, "state": state,
            "timestamp": self.stamp(tick)}))

    def cost(self, tick: int, status: str, charged_s: int, **extra: Any) -> None:
        wh = self.reported
        value = wh * ENERGY_PRICE // 1000 + charged_s * TIME_PRICE // 3600
        self.steps.append(Step(tick, None, "session_cost", {
            "charging_price": [_component("Energy", ENERGY_PRICE), _component("Time", TIME_PRICE)],
            "cost_chunks": [{"category": "Energy", "cost": {"value": value},
                             "metervalue_from": 0, "metervalue_to": wh,
                             "timestamp_from": self.stamp(self.start),
                             "timestamp_to": self.stamp(tick)}],
            "currency": {"decimals": 3},
            "idle_price": {"grace_minutes": 30, "hour_price": {"currency": {"decimals": 2},
                                                               "value": {"value": 600}}},
            "session_id": self.sid, "status": status, **extra}))

    def build(self, final_cost: bool) -> list[Step]:
        t = self.start
        token = _token(self.index, self.number)
        self.steps.append(Step(t, self.module, "evse_id", f"DE*PNX*E12345*{self.index}"))
        self.event(t, "SessionStarted", session_started={
            "id_tag": token, "meter_value": self.meter(t), "reason": "Authorized"})
        self.info(t, "Preparing", 0)
        self.steps.append(Step(t, None, "tariff_message", {
            "identifier_id": token["id_token"]["value"], "identifier_type": "IdToken",
            "messages": _texts("Your tariff: 0.39 EUR/kWh + 1.20 EUR/h",
                               "Ihr Tarif: 0,39 EUR/kWh + 1,20 EUR/h")}))
        self.event(t + 2, "TransactionStarted",
                   transaction_started={"id_tag": token, "meter_value": self.meter(t + 2)})
        self.info(t + 2, "Preparing", 0)
        begin = t + 3
        self.event(begin, "ChargingStarted",
                   charging_state_changed_event={"meter_value": self.meter(begin)})
        for k in range(self.charge_ticks):
            power = power_w(self.index, k, self.charge_ticks)
            self.energy += power / 3600  # one tick is one second
            self.info(begin + k, "Charging", power)
            self.reported = int(self.energy)
            if k and k % COST_INTERVAL == 0:
                self.cost(begin + k, "Running", k)
        pause = begin + self.charge_ticks
        self.event(pause, "ChargingPausedEV",
                   charging_state_changed_event={"meter_value": self.meter(pause)})
        for k in range(IDLE):
            self.info(pause + k, "ChargingPausedEV", 0)
            self.reported = int(self.energy)
        self.cost(pause + IDLE // 2, "Running", self.charge_ticks)
        end = pause + IDLE
        self.event(end, "StoppingCharging")
        self.event(end, "TransactionFinished", transaction_finished={
            "meter_value": self.meter(end), "reason": "EVDisconnected"})
        self.event(end, "SessionFinished", session_finished={"meter_value": self.meter(end)})
        self.info(end, "Unplugged", 0)
        if final_cost:
            self.cost(end + 1, "Finished", self.charge_ticks, qr_code=RECEIPT_URL + self.sid[:8])
        return self.steps


def station_schedule(evses: int, at: datetime, *, sessions: int = 2, charge_ticks: int = 120,
                     seed: int = 0, first_beat: int = 0) -> list[Step]:
    """Every step of one run, sorted by tick (stable: same-tick steps keep their order)."""
    if evses < 1 or sessions < 1 or charge_ticks < RAMP + 1:
        raise ValueError("need at least one EVSE, one session and a few charging ticks")
    rng = random.Random(seed)
    length = 3 + charge_ticks + IDLE + 2
    plans = []
    for index in range(1, evses + 1):
        for number in range(sessions):
            start = 1 + (index - 1) * STAGGER + number * (length + GAP)
            sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            plans.append((start, index, number, sid))
    last = max(plans)
    steps = [Step(0, None, "default_price", {"messages": _texts(
        "0.39 EUR/kWh + 1.20 EUR/h", "0,39 EUR/kWh + 1,20 EUR/h")})]
    for index in range(1, evses + 1):
        steps.append(Step(0, evse_module_id(index), "evse_id", f"DE*PNX*E12345*{index}"))
        steps.append(Step(0, evse_module_id(index), "powermeter_public_key_ocmf",
                          meter_public_key(index)))
        steps.append(Step(0, evse_module_id(index), "session_info", {
            "charged_energy_wh": 0, "discharged_energy_wh": 0, "latest_total_w": 0,
            "session_duration_s": 0, "state": "Unplugged",
            "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z")}))
    for plan in plans:
        start, index, number, sid = plan
        register = 1_000_000.0 * index + 12_345.67 + number * 50_000
        steps += _Session(index, number, sid, start, at, charge_ticks, register).build(
            final_cost=plan != last)
    end = max(s.tick for s in steps) + 1
    modules = [evse_module_id(i) for i in range(1, evses + 1)]
    for tick in range(end + 1):
        steps += [Step(tick, module, "heartbeat", first_beat + tick) for module in modules]
    return sorted(steps, key=lambda s: s.tick)


Publish = Callable[[str | None, str, bytes], None]


async def play_station(publish: Publish, steps: list[Step], tick_s: float) -> None:
    """Publish `steps` at tick x `tick_s` seconds via `publish(module, topic, bytes)`."""
    loop = asyncio.get_running_loop()
    begin = loop.time()
    for step in steps:
        delay = begin + step.tick * tick_s - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        publish(step.module, step.topic, everest_json(step.payload))
