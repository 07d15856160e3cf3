"""What EVerest's C++ really publishes (shared/reference/README.md), as raw JSON in, view out.

Payloads are printed the way EVerest's codec prints them: 4-space indentation, sorted keys, an
IdlePrice / ChargingPriceComponent / SessionCostChunk with no member set written as `null`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.everest.session_cost import (
    CLEARED,
    DecodeError,
    DefaultPrice,
    SessionCost,
    TariffMessage,
    decode,
)
from agent.model.display import DisplayModel
from agent.model.state import DisplayConfig, Event, LinkChanged, State, Tick
from agent.model.view import encode_view

MODEL = DisplayModel(DisplayConfig(tariff_hold_s=60, finished_hold_s=120))
UP, DOWN = LinkChanged(up=True), LinkChanged(up=False)


def everest(doc: dict[str, Any]) -> bytes:
    """JSON as EVerest prints it."""
    return json.dumps(doc, indent=4, sort_keys=True).encode()


def cost_doc(session: str = "S1", status: str = "Running", value: int = 289,
             **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"session_id": session, "currency": {"decimals": 3}, "status": status,
                           "cost_chunks": [{"cost": {"value": value}, "metervalue_to": 1500}]}
    doc.update(extra)
    return doc


def cost(session: str = "S1", status: str = "Running", value: int = 289,
         **extra: Any) -> Event:
    msg = decode("session_cost", everest(cost_doc(session, status, value, **extra)))
    assert isinstance(msg, SessionCost)
    return msg


def tariff(text: str, kind: str | None, ident: str | None = None, **extra: Any) -> Event:
    doc: dict[str, Any] = {"messages": [{"content": text}], **extra}
    if kind is not None:
        doc["identifier_type"] = kind
    if ident is not None:
        doc["identifier_id"] = ident
    msg = decode("tariff_message", everest(doc))
    assert isinstance(msg, DefaultPrice | TariffMessage | SessionCost), msg  # an event, decoded
    return msg


def run(events: list[tuple[float, Event]], state: State | None = None,
        model: DisplayModel = MODEL) -> State:
    state = state or State()
    for now, event in events:
        state = model.update(state, event, now)
    return state


# ---- decoding: nulls, cleared payloads, int32 amounts ------------------------------------------

PRICE = {"currency": {"code": "EUR", "decimals": 2}, "value": {"value": 39}}

NULL_CASES = [
    # (extra fields of a Running session_cost, expected prices, idle text, total value)
    ({"idle_price": None}, [], None, 289),
    ({"charging_price": [None]}, [], None, 289),
    ({"charging_price": [None, {"category": "Energy", "price": PRICE}, None]},
     ["0.39 EUR/kWh"], None, 289),
    ({"cost_chunks": [None]}, [], None, 0),
    ({"cost_chunks": [{"cost": {"value": 100}}, None, {"cost": {"value": 50}}]}, [], None, 150),
    ({"next_period": {"charging_price": [None], "idle_price": None, "timestamp_from": ""}},
     [], None, 289),
    ({"idle_price": {"grace_minutes": 30, "hour_price": PRICE}, "charging_price": []},
     [], "0.39 EUR/h after 30 min", 289),
    ({"currency": {}, "charging_price": []}, [], None, 289),
]


@pytest.mark.parametrize(("extra", "prices", "idle", "total"), NULL_CASES)
def test_null_members_from_everest_codec_are_absent(extra: dict[str, Any], prices: list[str],
                                                    idle: str | None, total: int) -> None:
    view = MODEL.view(run([(0, UP), (1, cost(**extra))]))
    assert (view.screen, view.prices, view.idle_price) == ("charging", prices, idle)
    assert view.total is not None and view.total.value == total


def test_null_last_chunk_keeps_energy_of_the_chunk_before() -> None:
    state = run([(0, UP), (1, cost(cost_chunks=[{"cost": {"value": 7}, "metervalue_to": 900},
                                                None]))])
    assert MODEL.view(state).energy_wh == 900


@pytest.mark.parametrize("payload", [
    {"session_id": None, "currency": {}, "status": "Running"},
    {"session_id": "S", "currency": None, "status": "Running"},
    {"session_id": "S", "currency": {}, "status": "Running", "message": None},
    {"session_id": "S", "currency": {}, "status": "Running", "cost_chunks": None},
    {"session_id": "S", "currency": {}, "status": "Running", "charging_price": None},
    {"session_id": "S", "currency": {}, "status": "Running",
     "cost_chunks": [{"cost": None}]},
    {"session_id": "S", "currency": {}, "status": "Running",
     "charging_price": [{"price": None}]},
    {"session_id": "S", "currency": {}, "status": "Running", "message": [None]},
    {"session_id": "S", "currency": {}, "status": "Running", "qr_code": None},
])
def test_every_other_null_stays_a_type_error(payload: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        decode("session_cost", everest(payload))


@pytest.mark.parametrize("topic", ["default_price", "tariff_message", "session_cost",
                                   "heartbeat"])
def test_zero_bytes_mean_cleared_not_invalid(topic: str) -> None:
    assert decode(topic, b"") is CLEARED


def test_zero_bytes_on_an_unknown_topic_is_still_an_error() -> None:
    with pytest.raises(DecodeError):
        decode("no_such_topic", b"")


@pytest.mark.parametrize(("value", "ok"), [
    (2**31 - 1, True), (-(2**31), True), (2**31, False), (-(2**31) - 1, False),
    (10**30, False)])
def test_money_amount_is_int32(value: int, ok: bool) -> None:
    payload = everest(cost_doc(value=value))
    if ok:
        msg = decode("session_cost", payload)
        assert isinstance(msg, SessionCost)
    else:
        with pytest.raises(DecodeError, match=r"2147483647|-2147483648"):
            decode("session_cost", payload)


def test_driver_id_tag_is_not_decoded() -> None:
    doc = cost_doc(id_tag={"id_token": {"value": "04E1A2B3C4", "type": "ISO14443"},
                           "authorization_type": "RFID"})
    msg = decode("session_cost", everest(doc))
    assert isinstance(msg, SessionCost) and not hasattr(msg, "id_tag")
    assert b"04E1A2B3C4" not in encode_view(MODEL.view(run([(0, UP), (1, msg)])))


# ---- which session a message belongs to --------------------------------------------------------

RUNNING = [(0.0, UP), (1.0, cost("S1", message=[{"content": "A"}]))]

CORRELATION_CASES = [
    # (events after S1 is running, expected screen, message, session on screen)
    ("text for this session (SessionId)", [(2, tariff("B", "SessionId", "S1"))],
     "charging", "B", "S1"),
    ("text for this session (TransactionId)", [(2, tariff("B", "TransactionId", "S1"))],
     "charging", "B", "S1"),
    ("OCPP 1.6 names the session by ocpp_transaction_id",
     [(2, tariff("B", "SessionId", "other", ocpp_transaction_id="S1"))], "charging", "B", "S1"),
    ("text for another session changes nothing", [(2, tariff("B", "SessionId", "S9"))],
     "charging", "A", "S1"),
    ("another driver authorizes: tariff for the hold", [(2, tariff("T", "IdToken", "TOK"))],
     "tariff", "T", "S1"),
    ("... then the running session again", [(2, tariff("T", "IdToken", "TOK")), (62, Tick())],
     "charging", "A", "S1"),
    ("no identifier (1.6 SetUserPrice fallback) is like IdToken", [(2, tariff("T", None))],
     "tariff", "T", "S1"),
    ("late Finished of an older session is ignored", [(2, cost("S0", "Finished", 999))],
     "charging", "A", "S1"),
    ("Running of a new id starts a new session", [(2, cost("S2", value=10))],
     "charging", None, "S2"),
    ("Idle of a new id starts a new session", [(2, cost("S2", "Idle", value=10))],
     "idle", None, "S2"),
    ("update of the session keeps another driver's tariff up",
     [(2, tariff("T", "IdToken", "TOK")), (3, cost("S1", value=500))], "tariff", "T", "S1"),
    ("a new session ends the tariff hold",
     [(2, tariff("T", "IdToken", "TOK")), (3, cost("S2", value=1))], "charging", None, "S2"),
]


@pytest.mark.parametrize(("events", "screen", "message", "session"),
                         [c[1:] for c in CORRELATION_CASES], ids=[c[0] for c in CORRELATION_CASES])
def test_messages_correlate_by_identity(events: list[tuple[float, Event]], screen: str,
                                        message: str | None, session: str) -> None:
    state = run(RUNNING + events)
    view = MODEL.view(state)
    assert (view.screen, view.message) == (screen, message)
    assert state.session is not None and state.session.session_id == session


def test_running_total_untouched_by_other_drivers_tariff() -> None:
    state = run([*RUNNING, (2, tariff("T", "IdToken", "TOK")), (62, Tick())])
    view = MODEL.view(state)
    assert view.total is not None and view.total.value == 289


def test_late_results_are_counted() -> None:
    state = run([*RUNNING, (2, cost("S0", "Finished")), (3, cost("S-1", "Finished"))])
    assert state.late_results == 2


def test_idtoken_tariff_after_receipt_ends_it() -> None:
    state = run([(0, UP), (1, cost("S1", "Finished")), (2, tariff("Next", "IdToken", "TOK"))])
    view = MODEL.view(state)
    assert (view.screen, view.message, view.total) == ("tariff", "Next", None)


def test_final_receipt_ignores_a_running_update_behind_it() -> None:
    state = run([(0, UP), (1, cost("S1", "Finished", 400)), (2, cost("S1", "Running", 300))])
    view = MODEL.view(state)
    assert (view.screen, view.final) == ("finished", True)
    assert view.total is not None and view.total.value == 400


# ---- the end of a session ----------------------------------------------------------------------


def test_receipt_is_never_stale() -> None:
    view = MODEL.view(run([(0, UP), (1, cost("S1", "Finished")), (2, DOWN)]))
    assert (view.screen, view.link, view.stale, view.final) == ("finished", "down", False, True)


def test_unavailable_running_session_is_stale() -> None:
    view = MODEL.view(run([*RUNNING, (2, DOWN)]))
    assert (view.screen, view.stale, view.final) == ("unavailable", True, None)


TIMEOUT_MODEL = DisplayModel(DisplayConfig(finished_hold_s=120, session_timeout_s=600))


def test_silent_session_ends_without_final_cost() -> None:
    state = run([*RUNNING, (300, cost("S1", value=700))], model=TIMEOUT_MODEL)
    assert TIMEOUT_MODEL.next_deadline(state) == 900
    assert TIMEOUT_MODEL.view(run([(899, Tick())], state, TIMEOUT_MODEL)).screen == "charging"
    state = run([(900, Tick())], state, TIMEOUT_MODEL)
    view = TIMEOUT_MODEL.view(state)
    assert (view.screen, view.final, view.status) == ("finished", False, "Running")
    assert view.total is not None and view.total.value == 700
    assert TIMEOUT_MODEL.next_deadline(state) == 1020
    assert TIMEOUT_MODEL.view(run([(1020, Tick())], state, TIMEOUT_MODEL)).screen == "price"


def test_finished_after_timeout_replaces_unconfirmed_receipt() -> None:
    state = run([*RUNNING, (601, Tick()), (700, cost("S1", "Finished", 800))],
                model=TIMEOUT_MODEL)
    view = TIMEOUT_MODEL.view(state)
    assert (view.screen, view.final) == ("finished", True)
    assert view.total is not None and view.total.value == 800
    assert TIMEOUT_MODEL.next_deadline(state) == 820


def test_session_text_counts_as_news_for_the_timeout() -> None:
    state = run([*RUNNING, (500, tariff("B", "TransactionId", "S1"))], model=TIMEOUT_MODEL)
    assert TIMEOUT_MODEL.next_deadline(state) == 1100


def test_timeout_off_by_default() -> None:
    state = run(RUNNING)
    assert MODEL.next_deadline(state) is None
    assert MODEL.view(run([(10**7, Tick())], state)).screen == "charging"


@pytest.mark.parametrize("topic", ["session_cost", "tariff_message", "session_event"])
def test_a_rejected_payload_that_can_hold_a_token_is_not_quoted(
        topic: str, caplog: pytest.LogCaptureFixture) -> None:
    from agent.core.counters import Counters

    counters = Counters(0.0, (topic,))
    payload = everest({"id_tag": {"id_token": {"value": "04E1A2B3C4D5", "type": "ISO14443"}},
                       "status": "Broken"})
    with caplog.at_level("WARNING"):
        counters.reject(topic, "Invalid enum value 'Broken'", payload, 0.0, 0.0)
    assert counters.rejected[topic] == 1
    assert "04E1A2B3C4D5" not in caplog.text
    assert f"{len(payload)} bytes" in caplog.text


def test_other_rejected_payloads_are_quoted(caplog: pytest.LogCaptureFixture) -> None:
    from agent.core.counters import Counters

    counters = Counters(0.0)
    with caplog.at_level("WARNING"):
        counters.reject("heartbeat", "Expected `int`", b'"not a number"', 0.0, 0.0)
    assert "not a number" in caplog.text
