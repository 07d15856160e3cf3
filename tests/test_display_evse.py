"""The display of one EVSE with EVerest's EVSE manager API: live values, the live total between
backend updates, and sessions that EVerest ends. Raw EVerest-shaped JSON in, view out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.everest.evse_manager import SessionEvent, decode_evse
from agent.everest.session_cost import decode
from agent.model.display import DisplayModel
from agent.model.state import DisplayConfig, Event, LinkChanged, State, Tick
from agent.model.view import View
from tests.everest_events import session_event

CONFIG = DisplayConfig(finished_hold_s=120, final_cost_wait_s=60)
MODEL = DisplayModel(CONFIG, evse=2)
UP = LinkChanged(up=True)
SID = "5e3c0a6e-2d4b-4d7e-9a51-3f0d8a7c1b22"


def everest(doc: Any) -> bytes:
    """JSON as EVerest prints it (4-space indent, sorted keys)."""
    return json.dumps(doc, indent=4, sort_keys=True).encode()


def event(kind: str, uuid: str = SID, token: str | None = None, **extra: Any) -> Event:
    msg = decode_evse("session_event", everest(session_event(kind, uuid, token, **extra)))
    assert isinstance(msg, SessionEvent)
    return msg


def info(energy_wh: int, power_w: int = 11000, duration_s: int = 60,
         state: str = "Charging") -> Event:
    doc = {"state": state, "charged_energy_wh": energy_wh, "discharged_energy_wh": 0,
           "latest_total_w": power_w, "session_duration_s": duration_s,
           "timestamp": "2026-11-21T10:00:00.000Z"}
    return decode_evse("session_info", everest(doc))  # type: ignore[return-value]


def cost(value: int, status: str = "Running", decimals: int = 3, code: str | None = "EUR",
         prices: list[tuple[str, int, int]] | None = None, **extra: Any) -> Event:
    currency: dict[str, Any] = {"decimals": decimals}
    if code:
        currency["code"] = code
    doc: dict[str, Any] = {"session_id": SID, "currency": currency, "status": status,
                           "cost_chunks": [{"cost": {"value": value}, "metervalue_to": 0}],
                           **extra}
    if prices is not None:
        doc["charging_price"] = [
            {"category": cat, "price": {"currency": {"decimals": dec}, "value": {"value": v}}}
            for cat, v, dec in prices]
    return decode("session_cost", everest(doc))  # type: ignore[return-value]


ENERGY = [("Energy", 390, 3)]               # 0.39 EUR/kWh
ENERGY_TIME = [("Energy", 390, 3), ("Time", 120, 2)]   # + 1.20 EUR/h


def run(events: list[tuple[float, Event]], model: DisplayModel = MODEL) -> tuple[State, View]:
    state = State()
    for now, ev in events:
        state = model.update(state, ev, now)
    return state, model.view(state)


START = [(0.0, UP), (0.0, event("SessionStarted")),
         (1.0, event("TransactionStarted", token="04E1A2B3", meter_wh=1000.0)),
         (2.0, event("ChargingStarted"))]


def test_live_values_and_evse_fields() -> None:
    _, view = run([*START, (3.0, decode_evse("evse_id", b'"DE*PNX*E12345*2"')),  # type: ignore[list-item]
                   (10.0, info(1500, power_w=7400, duration_s=3909))])
    assert (view.evse, view.evse_id) == (2, "DE*PNX*E12345*2")
    assert view.live is not None
    assert (view.live.energy_wh, view.live.power_w, view.live.duration_s, view.live.state) == (
        1500, 7400, 3909, "Charging")
    assert view.screen == "price" and view.live_total is None  # no cost yet: nothing to extrapolate


def test_live_is_null_outside_a_session() -> None:
    _, view = run([(0.0, UP), (1.0, info(0, power_w=0, state="Unplugged"))])
    assert view.live is None
    _, view = run([*START, (5.0, info(2000)), (9.0, event("SessionFinished"))])
    assert view.live is None


LIVE_CASES = [
    # (prices, decimals, code, cost value, E0, E, elapsed s, expected value, text)
    ("energy only", ENERGY, 3, "EUR", 1234, 1000, 3500, 600, 2209, "≈ 2.21 EUR"),
    ("energy + time", ENERGY_TIME, 3, "EUR", 1234, 1000, 3500, 1800, 2809, "≈ 2.81 EUR"),
    ("2 decimals", [("Energy", 39, 2)], 2, "EUR", 123, 0, 1000, 0, 162, "≈ 1.62 EUR"),
    ("5 decimals", [("Energy", 39000, 5)], 5, "EUR", 123456, 0, 1000, 0, 162456,
     "≈ 1.62 EUR"),
    ("no currency code (OCPP 1.6): the configured one", ENERGY, 3, None, 1000, 0, 1000, 0,
     1390, "≈ 1.39 EUR"),
    ("rounded half up for display only", [("Energy", 1, 3)], 3, "EUR", 0, 0, 500, 0, 1,
     "≈ 0.00 EUR"),
    ("the text is rounded once, from the exact amount", [("Energy", 1, 3)], 3, "EUR", 1234, 0,
     715, 0, 1235, "≈ 1.23 EUR"),
]


@pytest.mark.parametrize(("prices", "decimals", "code", "value", "e0", "e1", "elapsed",
                          "expected", "text"), [c[1:] for c in LIVE_CASES],
                         ids=[c[0] for c in LIVE_CASES])
def test_live_total_between_backend_updates(prices: list[tuple[str, int, int]], decimals: int,
                                            code: str | None, value: int, e0: int, e1: int,
                                            elapsed: float, expected: int, text: str) -> None:
    priced = cost(value, decimals=decimals, code=code, prices=prices)
    _, view = run([*START, (10.0, info(e0)), (20.0, priced), (20.0 + elapsed, info(e1))])
    assert view.screen == "charging"
    assert view.total is not None and view.total.value == value  # the backend's, untouched
    assert view.live_total is not None
    assert (view.live_total.value, view.live_total.decimals, view.live_total.text,
            view.live_total.estimated) == (expected, decimals, text, True)
    assert view.energy_wh == e1  # follows the live meter between cost updates


def test_each_session_cost_resets_the_base() -> None:
    _, view = run([*START, (10.0, info(1000)), (20.0, cost(1000, prices=ENERGY)),
                   (30.0, info(3000)), (40.0, cost(2000, prices=ENERGY)), (50.0, info(3000))])
    assert view.live_total is not None and view.live_total.value == 2000


def test_idle_fee_after_grace_while_the_evse_is_idle() -> None:
    idle = {"grace_minutes": 10, "hour_price": {"currency": {"decimals": 2},
                                                "value": {"value": 600}}}
    events = [*START, (10.0, info(1000)), (20.0, cost(5000, prices=ENERGY_TIME, idle_price=idle)),
              (80.0, info(1000, power_w=0, state="ChargingPausedEV"))]
    _, view = run([*events, (80.0 + 600, info(1000, power_w=0, state="ChargingPausedEV"))])
    # 60 s charging x 1.20/h = 0.02; no idle fee inside the 10 min grace
    assert view.live_total is not None and view.live_total.value == 5020
    _, view = run([*events, (80.0 + 600 + 1800, info(1000, power_w=0,
                                                     state="ChargingPausedEV"))])
    assert view.live_total is not None and view.live_total.value == 8020  # + 6.00/h x 0.5 h


@pytest.mark.parametrize("config", [DisplayConfig(live_estimate=False), CONFIG])
def test_no_live_total_when_off_or_not_charging(config: DisplayConfig) -> None:
    model = DisplayModel(config, evse=1)
    events = [*START, (10.0, info(1000)), (20.0, cost(1000, prices=ENERGY))]
    _, view = run([*events, (30.0, info(2000, state="Finished"))], model)
    assert view.live_total is None
    _, view = run([*events, (30.0, info(2000))], model)
    assert (view.live_total is None) is (not config.live_estimate)


def test_custom_estimate_prefix() -> None:
    model = DisplayModel(DisplayConfig(estimate_prefix="ca. "), evse=1)
    _, view = run([*START, (10.0, info(0)), (20.0, cost(0, prices=ENERGY)),
                   (30.0, info(1000))], model)
    assert view.live_total is not None and view.live_total.text == "ca. 0.39 EUR"


# ---- sessions that EVerest ends ----------------------------------------------------------------

RUNNING = [*START, (10.0, info(1000)), (20.0, cost(700, prices=ENERGY)), (25.0, info(2000))]


def test_transaction_finished_without_final_cost_ends_after_the_wait() -> None:
    state, view = run([*RUNNING, (100.0, event("TransactionFinished"))])
    assert view.screen == "charging"
    assert MODEL.next_deadline(state) == 160.0
    state = MODEL.update(state, Tick(), 160.0)
    view = MODEL.view(state)
    assert (view.screen, view.final, view.live_total) == ("finished", False, None)
    assert view.total is not None and view.total.value == 700
    assert MODEL.next_deadline(state) == 280.0
    assert MODEL.view(MODEL.update(state, Tick(), 280.0)).screen == "price"


def test_finished_arriving_later_replaces_the_unconfirmed_receipt() -> None:
    state, _ = run([*RUNNING, (100.0, event("TransactionFinished")), (160.0, Tick()),
                    (200.0, cost(950, "Finished", qr_code="https://r.example/9"))])
    view = MODEL.view(state)
    assert (view.screen, view.final, view.qr_code) == ("finished", True, "https://r.example/9")
    assert view.total is not None and view.total.value == 950


def test_finished_within_the_wait_is_final_at_once() -> None:
    state, view = run([*RUNNING, (100.0, event("TransactionFinished")),
                       (110.0, cost(800, "Finished"))])
    assert (view.screen, view.final) == ("finished", True)
    assert MODEL.next_deadline(state) == 230.0  # the hold, not the wait


def test_session_finished_after_the_hold_changes_nothing() -> None:
    state, _ = run([*RUNNING, (100.0, cost(800, "Finished")), (220.0, Tick())])
    assert MODEL.view(state).screen == "price"
    state = MODEL.update(state, event("SessionFinished"), 300.0)
    after = MODEL.view(state)
    # No receipt comes back and nothing is awaited; only the live values end with the session.
    assert (after.screen, after.total, after.final, after.live) == ("price", None, None, None)
    assert MODEL.next_deadline(state) is None


def test_car_unplugged_without_transaction_finished_also_waits_for_the_final() -> None:
    state, _ = run([*RUNNING, (100.0, event("SessionFinished"))])
    assert MODEL.next_deadline(state) == 160.0
    view = MODEL.view(MODEL.update(state, Tick(), 160.0))
    assert (view.screen, view.final) == ("finished", False)


def test_events_of_another_session_do_not_end_this_one() -> None:
    state, _ = run([*RUNNING, (100.0, event("TransactionFinished", uuid="other"))])
    assert MODEL.next_deadline(state) is None


def test_a_session_the_evse_reports_never_times_out() -> None:
    model = DisplayModel(DisplayConfig(session_timeout_s=300), evse=1)
    state, _ = run(RUNNING, model)
    for second in range(30, 1200, 60):  # session_info keeps coming; no session_cost for 20 min
        state = model.update(state, info(2000 + second), float(second))
        state = model.update(state, Tick(), float(second))
    assert model.view(state).screen == "charging"
    state = model.update(state, Tick(), 1200.0 + 300)  # EVerest goes silent: it times out
    assert (model.view(state).screen, model.view(state).final) == ("finished", False)


# ---- issue 16: sessions whose events were missed, late or out of order ---------------------

SID2 = "6f4d1b7f-3e5c-4e8f-8b62-4a1e9b8d2c33"


def cost_of(sid: str, value: int, status: str = "Running", **extra: Any) -> Event:
    doc: dict[str, Any] = {"session_id": sid, "currency": {"code": "EUR", "decimals": 3},
                           "status": status, "cost_chunks": [{"cost": {"value": value}}],
                           **extra}
    return decode("session_cost", everest(doc))  # type: ignore[return-value]


def id_token_tariff(text: str) -> Event:
    return decode("tariff_message", everest({  # type: ignore[return-value]
        "identifier_id": "04AABBCC", "identifier_type": "IdToken",
        "messages": [{"content": text}]}))


RECEIPT = [*RUNNING, (100.0, event("TransactionFinished")), (101.0, cost(900, "Finished")),
           (102.0, event("SessionFinished"))]


def test_an_authorization_elsewhere_shows_over_a_receipt_which_then_comes_back() -> None:
    """Bug 1: a driver authorizing at another EVSE wiped this EVSE's receipt for good."""
    state, view = run([*RECEIPT, (110.0, id_token_tariff("Welcome"))])
    assert (view.screen, view.message) == ("tariff", "Welcome")
    state = MODEL.update(state, Tick(), 110.0 + 60)  # tariff_hold_s later
    view = MODEL.view(state)
    assert (view.screen, view.session_id, view.final) == ("finished", SID, True)
    state = MODEL.update(state, Tick(), 101.0 + CONFIG.finished_hold_s)  # its own hold ends
    assert MODEL.view(state).screen == "price"


def test_only_a_new_session_on_the_evse_ends_its_receipt_early() -> None:
    """Bug 7: a receipt with the next session's live values ('finished/F1 with F2's 11 kW')."""
    _, view = run([*RECEIPT, (110.0, event("SessionStarted", SID2)), (111.0, info(300))])
    assert view.screen == "price" and view.session_id is None  # F1's receipt has gone
    assert view.live is not None and view.live.energy_wh == 300  # F2's, on the next screen


def test_a_repeated_finish_of_the_previous_session_changes_nothing() -> None:
    """Bug 7: a repeated SessionFinished(E1) cleared E2's live values for good."""
    second = [(200.0, event("SessionStarted", SID2)), (201.0, info(500)),
              (202.0, cost_of(SID2, 100)), (203.0, event("SessionFinished")),
              (204.0, info(600))]
    state, view = run([*RECEIPT, *second])
    assert (view.screen, view.session_id) == ("charging", SID2)
    assert view.live is not None and view.live.energy_wh == 600
    assert state.late_results == 1


def test_a_late_cost_of_the_previous_session_does_not_take_the_screen() -> None:
    """Bug 7: a late Running cost of E1 showed charging/E1 with E2's live values."""
    second = [(200.0, event("SessionStarted", SID2)), (201.0, info(500)),
              (202.0, cost_of(SID2, 100)), (203.0, cost(800))]
    state, view = run([*RECEIPT, *second])
    assert (view.screen, view.session_id) == ("charging", SID2)
    assert view.total is not None and view.total.value == 100
    assert state.late_results == 1


def test_a_session_whose_start_was_missed_shows_its_live_values_and_costs() -> None:
    """Bug 3: restarted without state mid-session, the live values were never shown."""
    _, view = run([(0.0, UP), (1.0, info(2500, power_w=7400)),
                   (2.0, cost(700, prices=ENERGY)), (3.0, info(2600, power_w=7400))])
    assert (view.screen, view.session_id) == ("charging", SID)
    assert view.live is not None and (view.live.energy_wh, view.live.power_w) == (2600, 7400)
    assert view.live_total is not None  # extrapolated from the cost like any session's


def test_a_session_tariff_before_its_first_cost_is_kept_for_it() -> None:
    """Bug 8: the TransactionId tariff text of a session was lost before its first cost."""
    tariff = decode("tariff_message", everest({
        "identifier_id": SID, "identifier_type": "TransactionId",
        "messages": [{"content": "Your tariff: 0.39 EUR/kWh"}]}))
    _, view = run([*START, (3.0, tariff), (4.0, cost(100))])  # type: ignore[list-item]
    assert view.message == "Your tariff: 0.39 EUR/kWh"


def test_a_wrongly_guessed_session_leaves_the_screen() -> None:
    """Bug 3: the costs went here by a guess; the session's events later name another EVSE."""
    from agent.model.state import SessionMoved

    _, view = run([(0.0, UP), (1.0, info(2500)), (2.0, cost(700)), (3.0, SessionMoved(SID))])
    assert view.screen == "price" and view.session_id is None


def test_unplugged_ends_the_live_values_of_a_session_whose_finish_was_missed() -> None:
    state, view = run([*RUNNING, (100.0, info(2000, power_w=0, state="Unplugged"))])
    assert view.live is None and state.evse_session is None
    assert state.final_wait_until == 100.0 + CONFIG.final_cost_wait_s  # the final cost may come


def test_the_meter_public_key_shows_on_every_screen_and_outlives_sessions() -> None:
    """Eichrecht: the meter's OCMF key, as published, before, during and after a session."""
    key = decode_evse("powermeter_public_key_ocmf", b'"3059301306072A8648CE3D0201"')
    _, view = run([(0.0, UP), (0.0, key)])  # type: ignore[list-item]
    assert (view.screen, view.meter_public_key) == ("price", "3059301306072A8648CE3D0201")
    _, view = run([(0.0, key), *START, (3.0, cost_of(SID, 500))])  # type: ignore[list-item]
    assert (view.screen, view.meter_public_key) == ("charging", "3059301306072A8648CE3D0201")
    _, view = run([(0.0, key), *START, (3.0, cost_of(SID, 500, "Finished"))])  # type: ignore[list-item]
    assert (view.screen, view.meter_public_key) == ("finished", "3059301306072A8648CE3D0201")
    assert run([*START])[1].meter_public_key is None  # nothing until EVerest publishes it


def test_a_cost_of_another_session_never_shows_over_the_evses_own_session() -> None:
    """EVerest's events say S3 runs here: an older session's cost changes nothing, even with
    nothing of S3 on screen yet, and S3's receipt then shows."""
    state, view = run([(0.0, event("SessionStarted", "S3")),
                       (1.0, cost_of("S1", 500)),
                       (2.0, event("SessionFinished", "S3")),
                       (3.0, cost_of("S3", 900, "Finished"))])
    assert view.screen == "finished" and view.session_id == "S3"
    assert state.late_results == 1
