"""Raw EVerest JSON in, typed message or typed rejection out."""

from __future__ import annotations

import pytest
from msgspec import UNSET

from agent.everest.session_cost import (
    DecodeError,
    DefaultPrice,
    Heartbeat,
    SessionCost,
    TariffMessage,
    decode,
    encode_communication_check,
)

OCPP16_RUNNING = (
    b'{"session_id":"5f1c","currency":{"decimals":3},"status":"Running",'
    b'"cost_chunks":[{"timestamp_to":"2026-11-21T10:00:00Z","metervalue_to":1234,'
    b'"cost":{"value":289}}]}'
)


def test_ocpp16_running_cost_without_currency_code() -> None:
    msg = decode("session_cost", OCPP16_RUNNING)
    assert isinstance(msg, SessionCost)
    assert msg.currency.code is UNSET
    assert msg.currency.decimals == 3
    assert msg.cost_chunks is not UNSET
    chunk = msg.cost_chunks[0]
    assert chunk is not None and chunk.metervalue_to == 1234


VALID = [
    ("default_price", b'{"messages":[{"content":"0.39 EUR/kWh","language":"en"}]}', DefaultPrice),
    ("default_price", b'{"messages":[]}', DefaultPrice),
    ("tariff_message",
     b'{"messages":[{"content":"<b>0.40</b>","format":"HTML","language":"de-DE"}],'
     b'"identifier_id":"TOKEN1","identifier_type":"IdToken"}', TariffMessage),
    ("tariff_message", b'{"messages":[{"content":"x"}],"ocpp_transaction_id":"t1"}',
     TariffMessage),
    ("session_cost",
     b'{"session_id":"s","currency":{"code":"EUR","decimals":5},"status":"Idle",'
     b'"next_period":{"timestamp_from":"","charging_price":[]},"vendor_extra":{"a":[1]}}',
     SessionCost),
    ("session_cost",
     b'{"session_id":"s","currency":{},"status":"Finished","qr_code":"https://r.example/1",'
     b'"id_tag":{"id_token":{"value":"04A1B2C3","type":"ISO14443"},'
     b'"authorization_type":"RFID","unknown":true}}', SessionCost),
    ("heartbeat", b"0", Heartbeat),
    ("heartbeat", b"18446744073709551615", Heartbeat),
]


@pytest.mark.parametrize(("topic", "payload", "kind"), VALID)
def test_valid_payloads_decode(topic: str, payload: bytes, kind: type) -> None:
    assert isinstance(decode(topic, payload), kind)


INVALID = [
    ("session_cost", b'{"currency":{},"status":"Running"}', "session_id"),
    ("session_cost", b'{"session_id":"s","currency":{},"status":"Paused"}', "Invalid enum"),
    ("session_cost", b'{"session_id":"s","currency":{"decimals":19},"status":"Running"}',
     "<= 18"),
    ("session_cost", b'{"session_id":"s","currency":{"decimals":-1},"status":"Running"}',
     ">= 0"),
    ("session_cost", b'{"session_id":"s","currency":{"code":"EURO"},"status":"Running"}',
     "Invalid enum"),
    ("session_cost", b'{"session_id":"s","currency":{"code":null},"status":"Running"}', "null"),
    ("session_cost",
     b'{"session_id":"s","currency":{},"status":"Running","cost_chunks":[{"cost":{"value":"1"}}]}',
     "Expected `int`, got `str`"),
    ("session_cost",
     b'{"session_id":"s","currency":{},"status":"Running","cost_chunks":[{"category":"Beer"}]}',
     "Invalid enum"),
    ("tariff_message", b'{"messages":[{"content":"x","format":"PDF"}]}', "Invalid enum"),
    ("tariff_message", b'{"messages":[],"identifier_type":"Plate"}', "Invalid enum"),
    ("tariff_message", b'{"identifier_id":"x"}', "messages"),
    ("default_price", b'{"messages":[{"language":"en"}]}', "content"),
    ("default_price", b"[]", "Expected `object`"),
    ("default_price", b'{"messages":[', "malformed"),
    ("default_price", b"\xff\xfe", "malformed"),
    ("heartbeat", b"-1", ">= 0"),
    ("heartbeat", b"18446744073709551616", "2**64"),
    ("heartbeat", b'"42"', "Expected `int`"),
    ("heartbeat", b"4.2", "Expected `int`"),
    ("communication_check", b"true", "unknown topic"),
]


@pytest.mark.parametrize(("topic", "payload", "reason"), INVALID)
def test_invalid_payloads_raise_typed_error(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(topic, payload)
    assert info.value.topic == topic
    assert reason in info.value.reason


def test_communication_check_payloads_are_json_literals() -> None:
    assert encode_communication_check(True) == b"true"
    assert encode_communication_check(False) == b"false"
