"""The EVSE manager API under fire: 10^4 hostile payloads on the four topics of two EVSE modules,
interleaved with a valid session on each. Every hostile payload is rejected and counted for its
module and topic; nothing hostile ever reaches a view; each EVSE shows only its own session.

Each hostile payload breaks the API by construction (a C++ integer width, an enum, a required
field, a type, JSON itself: docs/everest-facts.md), so the expected counts do not come from the
decoder under test.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from agent.core.display import Display
from agent.core.station import Station
from agent.everest.evse_manager import EVSE_TOPICS
from agent.settings.config import parse
from tests.everest_events import session_event

MODULES: Final = {1: "evse_a", 2: "evse_b"}
SESSIONS: Final = {1: "a7d3c7e0-0000-4000-8000-00000000000a",
                   2: "b7d3c7e0-0000-4000-8000-00000000000b"}
EVSE_IDS: Final = {1: "DE*PNX*E1*1", 2: "DE*PNX*E1*2"}
KEYS: Final = {i: "3059301306072A8648CE3D0201" + letter * 130 for i, letter in ((1, "A"), (2, "B"))}
MAX_ENERGY: Final = 10**6  # the largest valid charged_energy_wh sent
MAX_POWER: Final = 22_000
HOSTILE: Final = 10_000
CONFIG = parse("".join(f'[[evse]]\nid = {i}\nmodule_id = "{m}"\n' for i, m in MODULES.items())
               + '[state]\ndir = ""\n[status]\npath = ""\n')

INT32: Final = 2**31


def info(energy: int = 1000, power: int = 7400, **over: Any) -> dict[str, Any]:
    doc = {"state": "Charging", "charged_energy_wh": energy, "discharged_energy_wh": 0,
           "latest_total_w": power, "session_duration_s": 60, "timestamp": "t"}
    doc.update(over)
    return doc


def without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


def hostile_info(rng: random.Random) -> Any:
    field = rng.choice(["charged_energy_wh", "discharged_energy_wh", "latest_total_w",
                        "session_duration_s", "state", "timestamp"])
    if rng.random() < 0.2:
        return without(info(), field)  # every field is required by EVerest's SessionInfo
    wrong: dict[str, list[Any]] = {
        "charged_energy_wh": [INT32, 2**32 + 1000, -1, 10**30, 1.5, "5", None, True],
        "discharged_energy_wh": [INT32, -7, 2**63, "0", None],
        "latest_total_w": [INT32, -INT32 - 1, 2**64, 1e3, "7400", None],
        "session_duration_s": [2**63, 2**64, -1, 60.5, "60", None],
        "state": ["Flying", "charging", "", 3, None],
        "timestamp": [None, 5, "t" * 65],
    }
    return info(**{field: rng.choice(wrong[field])})


def hostile_event(rng: random.Random, uuid: str) -> Any:
    kind = rng.choice(["SessionStarted", "TransactionStarted", "TransactionFinished",
                       "SessionFinished", "ChargingStarted"])
    doc = session_event(kind, uuid, "TOKEN1")
    part = {"SessionStarted": "session_started", "TransactionStarted": "transaction_started",
            "TransactionFinished": "transaction_finished",
            "SessionFinished": "session_finished"}.get(kind, "")
    breaks: list[Callable[[], Any]] = [
        lambda: {**doc, "event": rng.choice(["Exploded", "sessionstarted", "", 7])},
        lambda: without(doc, "timestamp"),
        lambda: {**doc, "uuid": rng.choice([None, 42, "S\n1", "S\x07", "u" * 65])},
        lambda: {**doc, "connector_id": rng.choice([INT32, -INT32 - 1, 10**30, "1", 1.5])},
    ]
    if part:
        inner = doc[part]
        breaks += [
            lambda: without(doc, part),  # the object EVerest always attaches
            lambda: {**doc, part: {}},
            lambda: {**doc, part: without(inner, "meter_value")},
            lambda: {**doc, part: {**inner, "meter_value": {"timestamp": "t", "energy_Wh_import":
                                                            {"total": rng.choice(
                                                                [-1, 1e16, "5", None])}}}},
        ]
    if kind == "SessionStarted":
        breaks += [lambda: {**doc, part: {**doc[part], "reason": rng.choice(["Plugged", None])}},
                   lambda: {**doc, part: without(doc[part], "reason")}]
    if kind == "TransactionStarted":
        tag = doc[part]["id_tag"]
        breaks += [
            lambda: {**doc, part: without(doc[part], "id_tag")},
            lambda: {**doc, part: {**doc[part], "id_tag": without(tag, "authorization_type")}},
            lambda: {**doc, part: {**doc[part], "id_tag": {**tag, "id_token": {
                "value": "V" * 37, "type": "ISO14443"}}}},
            lambda: {**doc, part: {**doc[part], "id_tag": {**tag, "id_token": {
                "value": "V1", "type": "Magic"}}}},
        ]
    return rng.choice(breaks)()


def hostile(rng: random.Random, topic: str, uuid: str) -> bytes:
    """A payload that breaks `topic`'s message by construction."""
    if rng.random() < 0.1:  # not JSON at all, or cut short
        return rng.choice([b"{", b"\xff\xfe", b'{"state": "Charging"', b"nul", b" "])
    value: Any
    if topic == "session_info":
        value = hostile_info(rng)
    elif topic == "session_event":
        value = hostile_event(rng, uuid)
    elif topic == "evse_id":
        value = rng.choice([42, None, ["DE"], {"id": "DE"}, "E" * 65, "DE*\x1b[2J", "DE\n1"])
    elif topic == "powermeter_public_key_ocmf":
        value = rng.choice([42, None, "", ["30"], {"key": "30"}, "3059\n30", "30\x1b[2J",
                            "3" * 1025])
    else:
        value = rng.choice([-1, 2**64, 2**70, 1.0, "7", None, [1]])
    return json.dumps(value).encode()


def test_ten_thousand_hostile_payloads_change_nothing_shown() -> None:
    rng = random.Random(20261203)
    station = Station(CONFIG, 0.0)
    station.restore({}, "", None, 0.0, 0.0)
    panels = station.displays
    base = {i: CONFIG.evse[i - 1].base(CONFIG.everest.topic_prefix) + "e2m/" for i in MODULES}
    sent: dict[int, Counter[str]] = {i: Counter() for i in MODULES}
    now = 0.0

    def send(i: int, topic: str, payload: bytes) -> None:
        nonlocal now
        now += 0.01
        station.receive(base[i] + topic, payload, now, now)

    def valid(i: int, step: int) -> None:
        if step == 0:
            send(i, "evse_id", json.dumps(EVSE_IDS[i]).encode())
            send(i, "powermeter_public_key_ocmf", json.dumps(KEYS[i]).encode())
            send(i, "session_event", json.dumps(session_event("SessionStarted", SESSIONS[i],
                                                              f"TOK{i}")).encode())
        energy = min(MAX_ENERGY, step * 7)
        send(i, "session_info", json.dumps(info(energy, rng.randrange(MAX_POWER))).encode())
        send(i, "heartbeat", str(step).encode())

    for step in range(HOSTILE):
        for i in MODULES:
            if step % 50 == 0:
                valid(i, step // 50)
        i = rng.choice(list(MODULES))
        topic = rng.choice(EVSE_TOPICS)
        # a hostile event may name the other EVSE's session: it must not reach either screen
        send(i, topic, hostile(rng, topic, rng.choice([SESSIONS[1], SESSIONS[2], "BOGUS"])))
        sent[i][topic] += 1
        if step % 97 == 0:
            assert_nothing_hostile_shown(panels)
    assert_nothing_hostile_shown(panels)
    for i, module in MODULES.items():
        rejected = station.inbox.evse_counters[module].rejected
        assert {t: rejected[t] for t in EVSE_TOPICS} == {t: sent[i][t] for t in EVSE_TOPICS}
    # the valid ones all went through: each EVSE shows its own live session
    for i, panel in enumerate(panels, 1):
        assert panel.view is not None and panel.view.session_id is None  # no session_cost yet
        assert panel.state.evse_session == SESSIONS[i] and panel.view.evse_id == EVSE_IDS[i]
        assert panel.view.meter_public_key == KEYS[i]
        assert panel.view.live is not None and panel.view.live.energy_wh > 0


def assert_nothing_hostile_shown(panels: list[Display]) -> None:
    for i, panel in enumerate(panels, 1):
        view = panel.view
        if view is None:
            continue
        assert panel.state.evse_session in (None, SESSIONS[i])
        assert view.evse_id in (None, EVSE_IDS[i])
        assert view.meter_public_key in (None, KEYS[i])
        if view.live is not None:
            assert 0 <= view.live.energy_wh <= MAX_ENERGY
            assert 0 <= view.live.power_w < MAX_POWER
            assert view.live.duration_s == 60 and view.live.state == "Charging"
