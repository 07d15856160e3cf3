"""Display model: EVerest-shaped JSON events in, views out, for every screen transition."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from agent.everest.session_cost import DecodeError, DefaultPrice, SessionCost, TariffMessage, decode
from agent.model.display import DisplayModel
from agent.model.money import MoneyFormat
from agent.model.state import DisplayConfig, Event, LinkChanged, State, Tick
from agent.model.view import View, encode_view

MODEL = DisplayModel(DisplayConfig(languages=["de", "en"], tariff_hold_s=60, finished_hold_s=120))


def ev(topic: str, doc: dict[str, Any]) -> Event:
    msg = decode(topic, json.dumps(doc).encode())
    assert isinstance(msg, DefaultPrice | TariffMessage | SessionCost), msg  # an event, decoded
    return msg


def cost(session: str = "S1", status: str = "Running", value: int = 289, decimals: int = 3,
         **extra: Any) -> Event:
    doc: dict[str, Any] = {"session_id": session, "currency": {"decimals": decimals},
                           "status": status,
                           "cost_chunks": [{"cost": {"value": value}, "metervalue_to": 1500,
                                            "timestamp_to": "2026-11-21T10:00:00Z"}]}
    doc.update(extra)
    return ev("session_cost", doc)


def tariff(text: str, kind: str | None = "IdToken", ident: str | None = None) -> Event:
    doc: dict[str, Any] = {"messages": [{"content": text, "language": "en"}]}
    if kind is not None:
        doc["identifier_type"] = kind
        doc["identifier_id"] = ident or ("TOKEN" if kind == "IdToken" else "S1")
    return ev("tariff_message", doc)


DEFAULT = ev("default_price", {"messages": [{"content": "0.39 EUR/kWh", "language": "en"},
                                            {"content": "0,39 EUR/kWh", "language": "de-DE"}]})
UP = LinkChanged(up=True)
DOWN = LinkChanged(up=False)


def run(events: list[tuple[float, Event]], state: State | None = None) -> tuple[State, View]:
    state = state or State()
    for now, event in events:
        state = MODEL.update(state, event, now)
    return state, MODEL.view(state)


def test_price_screen_before_and_after_default_price() -> None:
    _, view = run([(0, UP)])
    assert (view.screen, view.message, view.link) == ("price", "", "up")
    _, view = run([(0, UP), (1, DEFAULT)])
    assert (view.screen, view.message, view.language) == ("price", "0,39 EUR/kWh", "de-DE")


def test_authorization_tariff_is_held_then_price_returns() -> None:
    state, view = run([(0, UP), (0, DEFAULT), (10, tariff("Your tariff: 0.35 EUR/kWh"))])
    assert (view.screen, view.message) == ("tariff", "Your tariff: 0.35 EUR/kWh")
    assert MODEL.next_deadline(state) == 70
    state, view = run([(69.9, Tick())], state)
    assert view.screen == "tariff"
    _, view = run([(70, Tick())], state)
    assert (view.screen, view.message) == ("price", "0,39 EUR/kWh")


def test_session_start_ends_tariff_hold() -> None:
    _, view = run([(0, UP), (1, tariff("Tariff A")), (5, cost())])
    assert (view.screen, view.status, view.session_id) == ("charging", "Running", "S1")
    assert view.total is not None
    assert (view.total.value, view.total.decimals, view.total.currency, view.total.text) == (
        289, 3, "EUR", "0.29 EUR")
    assert view.energy_wh == 1500


def test_tariff_during_session_updates_message_newest_wins() -> None:
    state, view = run([(0, UP), (1, cost(message=[{"content": "A", "language": "en"}]))])
    assert view.message == "A"
    state, view = run([(2, tariff("B", "SessionId"))], state)
    assert (view.screen, view.message) == ("charging", "B")
    state, view = run([(3, cost(value=400))], state)   # no message: the newest text stays
    assert view.message == "B"
    _, view = run([(4, cost(message=[{"content": "C", "language": "en"}]))], state)
    assert view.message == "C"


@pytest.mark.parametrize(("status", "screen"), [("Running", "charging"), ("Idle", "idle"),
                                                 ("Finished", "finished")])
def test_status_maps_to_screen(status: str, screen: str) -> None:
    _, view = run([(0, UP), (1, cost(status=status))])
    assert view.screen == screen


def test_idle_is_not_the_end_and_finished_is_held() -> None:
    state, view = run([(0, UP), (1, cost()), (2, cost(status="Idle", value=300)),
                       (3, cost(value=350)),
                       (10, cost(status="Finished", value=400, qr_code="https://r/1"))])
    assert (view.screen, view.qr_code) == ("finished", "https://r/1")
    assert view.total is not None and view.total.text == "0.40 EUR"
    assert MODEL.next_deadline(state) == 130
    state, view = run([(20, cost(status="Finished", value=400))], state)  # repeat: same hold
    assert MODEL.next_deadline(state) == 130
    _, view = run([(130, Tick())], state)
    assert (view.screen, view.total, view.session_id) == ("price", None, None)


def test_new_session_id_starts_new_session() -> None:
    state, _ = run([(0, UP), (1, cost("S1", message=[{"content": "old", "language": "en"}]))])
    _, view = run([(2, cost("S2", value=10))], state)
    assert (view.session_id, view.message) == ("S2", None)
    assert view.total is not None and view.total.value == 10


def test_energy_zero_in_final_chunk_keeps_last_reading() -> None:
    final = ev("session_cost", {"session_id": "S1", "currency": {"decimals": 3},
                                "status": "Finished",
                                "cost_chunks": [{"cost": {"value": 500}, "metervalue_to": 0}]})
    _, view = run([(0, UP), (1, cost()), (2, final)])
    assert view.energy_wh == 1500
    _, view = run([(0, UP), (2, final)])
    assert view.energy_wh is None


def test_link_down_shows_unavailable_with_stale_total_and_returns() -> None:
    state, view = run([(0, UP), (1, cost()), (2, DOWN)])
    assert (view.screen, view.link, view.stale) == ("unavailable", "down", True)
    assert view.total is not None and view.total.text == "0.29 EUR"
    _, view = run([(3, UP)], state)
    assert (view.screen, view.link, view.stale) == ("charging", "up", False)


def test_link_down_without_session_and_finished_stays_finished() -> None:
    _, view = run([(0, UP), (1, DEFAULT), (2, DOWN)])
    assert (view.screen, view.total) == ("unavailable", None)
    _, view = run([(0, UP), (1, cost(status="Finished")), (2, DOWN)])
    assert (view.screen, view.link) == ("finished", "down")


def test_offline_fallback_message_then_late_finished_supersedes() -> None:
    state, view = run([(0, UP), (1, cost()), (5, tariff("Total cost 4.20 EUR", "TransactionId"))])
    assert view.message == "Total cost 4.20 EUR"
    _, view = run([(9, cost(status="Finished", value=4200,
                            message=[{"content": "Final 4.20 EUR", "language": "en"}]))], state)
    assert (view.screen, view.message) == ("finished", "Final 4.20 EUR")


def test_new_authorization_ends_receipt() -> None:
    state, _ = run([(0, UP), (1, cost(status="Finished"))])
    _, view = run([(2, tariff("Next driver"))], state)
    assert (view.screen, view.message, view.total) == ("tariff", "Next driver", None)


def test_prices_idle_fee_and_next_period() -> None:
    event = cost(currency={"code": "EUR", "decimals": 3},
                 charging_price=[
                     {"category": "Energy", "price": {"currency": {"decimals": 4},
                                                      "value": {"value": 3900}}},
                     {"category": "Time", "price": {"currency": {"code": "EUR", "decimals": 2},
                                                    "value": {"value": 120}}},
                     {"category": "FlatFee", "price": {"currency": {}, "value": {"value": 50}}}],
                 idle_price={"grace_minutes": 30,
                             "hour_price": {"currency": {"decimals": 0}, "value": {"value": 6}}},
                 next_period={"timestamp_from": "", "charging_price": [
                     {"category": "Energy", "price": {"currency": {"decimals": 3},
                                                      "value": {"value": 450}}}]})
    _, view = run([(0, UP), (1, event)])
    # The flat fee's currency has no decimals: it takes its session's (3), as the live cost does.
    assert view.prices == ["0.39 EUR/kWh", "1.20 EUR/h", "0.05 EUR"]
    assert view.idle_price == "6.00 EUR/h after 30 min"
    assert view.next_period is not None
    assert (view.next_period.from_, view.next_period.prices) == ("", ["0.45 EUR/kWh"])


def test_many_chunks_are_summed_and_currency_from_config() -> None:
    chunks = [{"cost": {"value": 125}, "category": "Energy"} for _ in range(100)]
    event = ev("session_cost", {"session_id": "S", "currency": {"decimals": 0},
                                "status": "Running", "cost_chunks": chunks})
    model = DisplayModel(DisplayConfig(currency="JPY", money=MoneyFormat(thousands_separator=",")))
    state = model.update(model.update(State(), UP, 0), event, 1)
    view = model.view(state)
    assert view.total is not None
    assert (view.total.value, view.total.currency, view.total.text) == (12500, "JPY", "12,500 JPY")


def test_html_language_and_qr_from_messages() -> None:
    event = cost(status="Finished", message=[
        {"content": "<p>Total&nbsp;<b>4.56&euro;</b></p>", "format": "HTML", "language": "EN"},
        {"content": "Gesamt 4,56 €", "format": "UTF8", "language": "de"},
        {"content": "https://receipt.example/abc", "format": "QRCODE"}])
    _, view = run([(0, UP), (1, event)])
    assert (view.message, view.language, view.qr_code) == (
        "Gesamt 4,56 €", "de", "https://receipt.example/abc")


def test_invalid_message_leaves_state_unchanged() -> None:
    state, before = run([(0, UP), (1, cost())])
    with pytest.raises(DecodeError):
        decode("session_cost", b'{"session_id":"S1","currency":{},"status":"Running","x":')
    assert MODEL.view(state) == before


def test_view_serializes_with_fixed_field_names() -> None:
    _, view = run([(0, UP), (1, cost(next_period={"timestamp_from": "2026-11-21T12:00:00Z",
                                                  "charging_price": []}))])
    doc = json.loads(encode_view(msgspec.structs.replace(view, updated_at="2026-11-21T10:00:00Z")))
    for key in ("screen", "link", "session_id", "status", "total", "stale", "energy_wh", "prices",
                "idle_price", "next_period", "message", "language", "qr_code", "updated_at"):
        assert key in doc
    assert doc["next_period"] == {"from": "2026-11-21T12:00:00Z", "prices": []}
    assert doc["total"] == {"value": 289, "decimals": 3, "currency": "EUR", "text": "0.29 EUR"}


@pytest.mark.parametrize(("session", "price", "shown"), [
    ({"code": "EUR", "decimals": 3}, {"decimals": 4}, "0.39 EUR/kWh"),  # its own decimals
    ({"code": "EUR", "decimals": 4}, {}, "0.39 EUR/kWh"),  # else its session's
    ({"code": "EUR"}, {}, "39.00 EUR/kWh"),  # else the currency's minor unit (EUR: 2)
    ({"code": "JPY"}, {}, "3,900 JPY/kWh"),  # (JPY: 0)
])
def test_a_price_takes_its_own_decimals_else_its_sessions_else_the_minor_unit(
        session: dict[str, Any], price: dict[str, Any], shown: str) -> None:
    event = cost(currency=session, charging_price=[
        {"category": "Energy", "price": {"currency": price, "value": {"value": 3900}}}])
    model = DisplayModel(DisplayConfig(money=MoneyFormat(thousands_separator=",")))
    view = model.view(model.update(model.update(State(), UP, 0), event, 1))
    assert view.prices == [shown]
