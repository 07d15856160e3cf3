"""Raw EVSE manager consumer API JSON in, typed message, Cleared or DecodeError out."""

from __future__ import annotations

import contextlib
import json
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET

from agent.everest.evse_manager import (
    EVSE_TOPICS,
    EvseId,
    EvseStateEnum,
    MeterPublicKey,
    SessionEvent,
    SessionEventEnum,
    SessionInfo,
    decode_evse,
)
from agent.everest.session_cost import CLEARED, DecodeError, Heartbeat
from tests.everest_events import session_event

TOKEN = (b'{"authorization_type":"RFID","id_token":{"type":"ISO14443","value":"04A1B2C3"},'
         b'"request_id":7,"prevalidated":false}')
METER = b'{"energy_Wh_import":{"total":1234.5,"L1":400.1},"timestamp":"2026-11-21T10:00:00Z"}'

# As EVerest prints it: 4-space indentation, keys sorted, every field the schema has.
SESSION_STARTED = b"""{
    "connector_id": 2,
    "event": "SessionStarted",
    "session_started": {
        "id_tag": {
            "authorization_type": "RFID",
            "id_token": {
                "type": "ISO14443",
                "value": "04A1B2C3"
            }
        },
        "logging_path": "/tmp/x",
        "meter_value": {
            "energy_Wh_import": {
                "total": 100.25
            },
            "timestamp": "2026-11-21T10:00:00.000Z"
        },
        "reason": "Authorized"
    },
    "timestamp": "2026-11-21T10:00:00.000Z",
    "uuid": "7d5c0b8e-2f4a-4e43-9a53-0c3f5c1f9a11"
}"""


def test_everest_printed_session_started() -> None:
    msg = decode_evse("session_event", SESSION_STARTED)
    assert isinstance(msg, SessionEvent)
    assert msg.uuid == "7d5c0b8e-2f4a-4e43-9a53-0c3f5c1f9a11"
    assert msg.event == "SessionStarted"
    assert msg.connector_id == 2
    assert msg.token is not None
    assert (msg.token.value, msg.token.type) == ("04A1B2C3", "ISO14443")


def _event(name: str, **parts: bytes) -> bytes:
    extra = b"".join(b',"' + k.encode() + b'":' + v for k, v in parts.items())
    return b'{"uuid":"S1","event":"' + name.encode() + b'","timestamp":"t"' + extra + b"}"


STARTED = b'{"reason":"EVConnected","meter_value":' + METER + b"}"

# (payload, token value or None, connector id)
EVENTS = [
    (_event("SessionStarted", session_started=STARTED), None, 1),  # no connector_id: 1
    (_event("SessionStarted", session_started=b'{"reason":"Authorized","meter_value":' + METER
            + b',"id_tag":' + TOKEN + b',"reservation_id":3}'), "04A1B2C3", 1),
    (_event("TransactionStarted", transaction_started=b'{"id_tag":' + TOKEN + b',"meter_value":'
            + METER + b"}", connector_id=b"3"), "04A1B2C3", 3),
    (_event("TransactionFinished", transaction_finished=b'{"meter_value":' + METER
            + b',"reason":"EVDisconnected","id_tag":' + TOKEN + b"}"), None, 1),
    (_event("SessionFinished", session_finished=b'{"meter_value":' + METER + b"}"), None, 1),
    (_event("ChargingStarted", charging_state_changed_event=b'{"meter_value":' + METER + b"}"),
     None, 1),
    (_event("Enabled", source=b'{"enable_source":"LocalAPI","enable_state":"Enable",'
            b'"enable_priority":5000}', vendor=b"[1,2]"), None, 1),
]


@pytest.mark.parametrize(("payload", "token", "connector"), EVENTS)
def test_session_events(payload: bytes, token: str | None, connector: int) -> None:
    msg = decode_evse("session_event", payload)
    assert isinstance(msg, SessionEvent)
    assert (msg.token.value if msg.token else None) == token
    assert msg.connector_id == connector


@pytest.mark.parametrize("name", get_args(SessionEventEnum))
def test_every_session_event_enum_value_decodes(name: str) -> None:
    msg = decode_evse("session_event", json.dumps(session_event(name, "S1", "AB12")).encode())
    assert isinstance(msg, SessionEvent)
    assert msg.event == name


INFO = (b'{"state":"Charging","charged_energy_wh":1500,"discharged_energy_wh":0,'
        b'"latest_total_w":11000,"session_duration_s":600,"timestamp":"2026-11-21T10:10:00Z",'
        b'"selected_protocol":"IEC61851-1","transaction_duration_s":590}')


def test_session_info() -> None:
    msg = decode_evse("session_info", INFO)
    assert msg == SessionInfo(state="Charging", charged_energy_wh=1500, discharged_energy_wh=0,
                              latest_total_w=11000, session_duration_s=600,
                              timestamp="2026-11-21T10:10:00Z")


@pytest.mark.parametrize("state", get_args(EvseStateEnum))
def test_every_evse_state_decodes(state: str) -> None:
    msg = decode_evse("session_info", INFO.replace(b"Charging", state.encode()))
    assert isinstance(msg, SessionInfo)
    assert msg.state == state


def test_discharging_power_is_negative() -> None:
    msg = decode_evse("session_info", INFO.replace(b"11000", b"-3000"))
    assert isinstance(msg, SessionInfo)
    assert msg.latest_total_w == -3000


@pytest.mark.parametrize(("payload", "expected"), [
    (b'"DE*PNX*E12345*1"', EvseId("DE*PNX*E12345*1")),
    (b'""', EvseId("")),
])
def test_evse_id(payload: bytes, expected: EvseId) -> None:
    assert decode_evse("evse_id", payload) == expected


# EVerest forwards the billing meter's public_key_ocmf string as a JSON string (forward_api_var).
KEY = "3059301306072A8648CE3D020106082A8648CE3D03010703420004" + "1F" * 64


def test_meter_public_key_is_kept_exactly_as_published() -> None:
    assert decode_evse("powermeter_public_key_ocmf", f'"{KEY}"'.encode()) == MeterPublicKey(KEY)


@pytest.mark.parametrize(("payload", "beat"), [
    (b"0", 0), (b" 42\n", 42), (b"4294967295", 2**32 - 1), (b"18446744073709551615", 2**64 - 1),
])
def test_heartbeat_is_a_uint64(payload: bytes, beat: int) -> None:
    assert decode_evse("heartbeat", payload) == Heartbeat(beat)


@pytest.mark.parametrize("topic", EVSE_TOPICS)
def test_zero_bytes_mean_cleared(topic: str) -> None:
    assert decode_evse(topic, b"") is CLEARED


INVALID: list[tuple[str, bytes]] = [
    ("session_event", b" "),  # whitespace is not a cleared message
    ("session_event", b'{"uuid":"S1","event":"Exploded","timestamp":"t"}'),
    ("session_event", b'{"event":"SessionStarted","timestamp":"t"}'),  # no uuid
    ("session_event", b'{"uuid":"S1","event":"SessionStarted"}'),  # no timestamp
    ("session_event", b'{"uuid":null,"event":"SessionStarted","timestamp":"t"}'),
    ("session_event", _event("SessionStarted", connector_id=b'"1"', session_started=STARTED)),
    # What EVerest never sends (everest_api_types evse_manager/API.hpp, auth/API.hpp):
    ("session_event", _event("SessionStarted")),  # SessionStarted always carries its object
    ("session_event", _event("SessionStarted", session_started=b"{}")),
    ("session_event", _event("SessionStarted", session_started=b'{"reason":"EVConnected"}')),
    ("session_event", _event("SessionStarted", session_started=b'{"meter_value":' + METER
                             + b"}")),  # reason is required
    ("session_event", _event("SessionStarted", session_started=STARTED.replace(
        b"EVConnected", b"Plugged"))),  # StartSessionReason: EVConnected, Authorized
    ("session_event", _event("SessionStarted", session_started=STARTED, connector_id=b"1" + b"0"
                             * 30)),  # int32_t
    ("session_event", _event("SessionStarted", session_started=STARTED,
                             connector_id=b"2147483648")),
    ("session_event", _event("SessionStarted", session_started=b'{"reason":"Authorized",'
                             b'"meter_value":' + METER + b',"id_tag":{"id_token":{"type":'
                             b'"ISO14443","value":"04A1"}}}')),  # authorization_type required
    ("session_event", _event("TransactionStarted", transaction_started=b'{"id_tag":' + TOKEN
                             + b"}")),  # meter_value is required there
    ("session_event", _event("TransactionFinished")),
    ("session_event", _event("SessionFinished", session_finished=b"{}")),
    ("session_event", _event("SessionFinished", session_finished=b'{"meter_value":'
                             b'{"energy_Wh_import":{"total":5}}}')),  # no meter timestamp
    ("session_event", b'{"uuid":"S1\\u0007","event":"ChargingStarted","timestamp":"t"}'),
    ("session_event", b'{"uuid":"' + b"x" * 65 + b'","event":"ChargingStarted","timestamp":"t"}'),
    ("session_event", _event("TransactionStarted", transaction_started=b'{"meter_value":'
                             + METER + b"}")),  # id_tag is required there
    ("session_event", _event("TransactionStarted", transaction_started=b'{"id_tag":'
                             + TOKEN.replace(b"ISO14443", b"Magic") + b"}")),
    ("session_event", _event("SessionFinished", session_finished=b'{"meter_value":'
                             b'{"energy_Wh_import":{"total":-1}}}')),
    ("session_event", _event("SessionFinished", session_finished=b'{"meter_value":'
                             b'{"energy_Wh_import":{"total":1e999}}}')),
    ("session_event", _event("SessionFinished", session_finished=b'{"meter_value":'
                             b'{"energy_Wh_import":{"total":"5"}}}')),
    ("session_info", INFO.replace(b"Charging", b"Flying")),
    ("session_info", INFO.replace(b"1500", b"1500.5")),  # the schema says integer
    ("session_info", INFO.replace(b"1500", b"-1")),
    ("session_info", INFO.replace(b'"session_duration_s":600,', b"")),
    ("session_info", INFO.replace(b"1500", b"4294968296")),  # int32_t
    ("session_info", INFO.replace(b"1500", b"2147483648")),
    ("session_info", INFO.replace(b"11000", b"-2147483649")),
    ("session_info", INFO.replace(b"600", b"18446744073709551616")),  # int64_t
    ("session_info", INFO.replace(b'"discharged_energy_wh":0,', b"")),  # required by EVerest
    ("evse_id", b'"DE*PNX*E1\\n2"'),  # shown on displays: printable only
    ("evse_id", b'"' + b"E" * 65 + b'"'),
    ("session_info", b"[]"),
    ("evse_id", b"DE*PNX*E12345*1"),  # not JSON
    ("evse_id", b"42"),
    ("powermeter_public_key_ocmf", b'""'),  # no key is not a key
    ("powermeter_public_key_ocmf", b'"3059\\u001b[2J"'),  # shown on displays: printable only
    ("powermeter_public_key_ocmf", b'"' + b"3" * 1025 + b'"'),
    ("powermeter_public_key_ocmf", b'{"key": "3059"}'),
    ("powermeter_public_key_ocmf", b"3059"),  # a bare number, not EVerest's JSON string
    ("heartbeat", b"-1"),
    ("heartbeat", b"18446744073709551616"),
    ("heartbeat", b"1.0"),
    ("heartbeat", b'"1"'),
    ("session_cost", b"{}"),  # not an EVSE manager topic
]


@pytest.mark.parametrize(("topic", "payload"), INVALID)
def test_invalid_payloads_raise_decode_error(topic: str, payload: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode_evse(topic, payload)
    assert info.value.topic == topic


def test_meter_energy_accepts_integers_and_floats() -> None:
    for raw, expected in ((b"1200", 1200.0), (b"1200.7", 1200.7), (b"1.2e3", 1200.0)):
        payload = _event("SessionFinished", session_finished=b'{"meter_value":{"timestamp":"t",'
                         b'"energy_Wh_import":{"total":' + raw + b"}}}")
        msg = decode_evse("session_event", payload)
        assert isinstance(msg, SessionEvent) and msg.session_finished is not UNSET
        assert msg.session_finished.meter_value.energy_Wh_import.total == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10)


@given(topic=st.sampled_from(EVSE_TOPICS), payload=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_decode_error(topic: str, payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_evse(topic, payload)


@given(extra=st.dictionaries(st.text(min_size=1).filter(
    lambda k: k not in {"uuid", "event", "timestamp", "connector_id", "session_started",
                        "transaction_started", "transaction_finished", "session_finished"}),
    json_values, max_size=4))
def test_unknown_fields_are_tolerated(extra: dict[str, Any]) -> None:
    doc: dict[str, Any] = {"uuid": "S1", "event": "ChargingStarted", "timestamp": "t", **extra}
    msg = decode_evse("session_event", json.dumps(doc).encode())
    assert isinstance(msg, SessionEvent)
    assert (msg.uuid, msg.event, msg.session_started) == ("S1", "ChargingStarted", UNSET)
