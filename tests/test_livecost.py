"""Live cost: raw session_cost JSON plus live energy/time in, exact amounts out."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from typing import Any, cast, get_args

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET

from agent.everest.evse_manager import EvseStateEnum
from agent.everest.session_cost import SessionCost, decode
from agent.model.livecost import (
    LiveBase,
    Phase,
    live_total,
    phase_of,
    track_idle_since,
)
from agent.model.money import round_half_up

T0_AT = 1000.0  # monotonic seconds when the session_cost arrived


def cost(total: int, currency: dict[str, Any], prices: list[tuple[str, int, dict[str, Any]]],
         idle: tuple[int, int, dict[str, Any]] | None = None,
         status: str = "Running") -> SessionCost:
    """A session_cost decoded from raw JSON: one cumulative chunk plus the given prices."""
    doc: dict[str, Any] = {
        "session_id": "S1", "currency": currency, "status": status,
        "cost_chunks": [{"cost": {"value": total}, "metervalue_to": 1000}],
        "charging_price": [{"category": c, "price": {"currency": cur, "value": {"value": v}}}
                           for c, v, cur in prices]}
    if idle is not None:
        grace, value, cur = idle
        doc["idle_price"] = {"grace_minutes": grace,
                             "hour_price": {"currency": cur, "value": {"value": value}}}
    msg = decode("session_cost", json.dumps(doc).encode())
    assert isinstance(msg, SessionCost)
    return msg


def base_of(msg: SessionCost, fallback: str | None = "EUR", energy_wh: int = 1000) -> LiveBase:
    base = LiveBase.from_session_cost(msg, energy_wh, T0_AT, fallback)
    assert base is not None
    return base


D3 = {"decimals": 3}
EUR3 = {"code": "EUR", "decimals": 3}

# (session_cost, fallback code, energy Wh now, seconds since t0, expected total in major units)
CHARGING = [
    pytest.param(cost(1234, EUR3, [("Energy", 390, EUR3)]), None, 3500, 999, "2.209",
                 id="energy only: 1.234 + 0.39 x 2.5 kWh"),
    pytest.param(cost(1234, EUR3, [("Energy", 390, EUR3), ("Time", 1200, EUR3)]), None, 3500,
                 1800, "2.809", id="energy + time: + 1.20/h x 0.5 h"),
    pytest.param(cost(1234, D3, [("Energy", 390, D3), ("FlatFee", 500, D3), ("Other", 7, D3)]),
                 "EUR", 2000, 60, "1.624", id="flat fee and Other do not extrapolate"),
    pytest.param(cost(1000, D3, [("Energy", 300, D3), ("Energy", 50, D3)]), "EUR", 3000, 0,
                 "1.7", id="two energy components add up"),
    pytest.param(cost(150, {"code": "EUR", "decimals": 2},
                      [("Energy", 39000, {"decimals": 5}), ("Time", 120, {})]),
                 None, 2500, 900, "2.385",
                 id="price decimals 5 vs session 2; a price without decimals uses the session's"),
    pytest.param(cost(120, {}, [("Energy", 40, {})]), "JPY", 2500, 0, "180",
                 id="no code, no decimals: fallback JPY has 0 minor digits"),
    pytest.param(cost(120, {}, [("Energy", 40, {})]), "EUR", 2500, 0, "1.8",
                 id="no code, no decimals: fallback EUR has 2 minor digits"),
    pytest.param(cost(120, {}, [("Energy", 40, {})]), None, 2500, 0, "1.8",
                 id="no code at all: 2 digits"),
    pytest.param(cost(1000, {"code": "EUR"}, [("Energy", 30, {"code": "EUR", "decimals": 2})]),
                 None, 1500, 0, "10.15", id="session without decimals: ISO minor unit"),
    pytest.param(cost(1000, EUR3, [("Energy", 390, EUR3), ("Time", 500, {"code": "USD"})]),
                 None, 2000, 3600, "1.39", id="a price in another currency is ignored"),
    pytest.param(cost(1000, EUR3, [("Energy", 390, EUR3)]), None, 400, 0, "1",
                 id="energy below E0 (lagging sample) adds nothing"),
]


@pytest.mark.parametrize(("msg", "fallback", "energy", "elapsed", "expected"), CHARGING)
def test_charging(msg: SessionCost, fallback: str | None, energy: int, elapsed: float,
                  expected: str) -> None:
    base = base_of(msg, fallback)
    assert live_total(base, energy, T0_AT + elapsed, "charging") == Fraction(expected)


@pytest.mark.parametrize(("decimals", "total", "price", "expected"), [
    (2, 1234, 39, "12.34"), (3, 1234, 390, "1.234"), (4, 1234, 3900, "0.1234"),
    (5, 1234, 39000, "0.01234"),
])
def test_session_decimals_2_to_5(decimals: int, total: int, price: int, expected: str) -> None:
    cur = {"code": "EUR", "decimals": decimals}
    base = base_of(cost(total, cur, [("Energy", price, cur)]))
    assert base.total == Fraction(expected)
    # + 0.39/kWh x 1 kWh
    assert live_total(base, 2000, T0_AT, "charging") == Fraction(expected) + Fraction("0.39")


IDLE_COST = cost(5000, EUR3, [("Energy", 390, EUR3), ("Time", 1200, EUR3)],
                 idle=(10, 600, {"code": "EUR", "decimals": 2}))


@pytest.mark.parametrize(("idle_since", "now", "expected"), [
    pytest.param(T0_AT + 60, T0_AT + 60 + 300, "5.02",
                 id="in grace: 60 s charging x 1.20/h, no idle fee"),
    pytest.param(T0_AT + 60, T0_AT + 60 + 600, "5.02", id="grace just over"),
    pytest.param(T0_AT + 60, T0_AT + 60 + 600 + 1800, "8.02",
                 id="30 min after grace: + 6.00/h x 0.5 h"),
    pytest.param(T0_AT - 3600, T0_AT + 1800, "8",
                 id="idle before t0 and past grace: T0 holds the fee up to t0"),
    pytest.param(T0_AT - 300, T0_AT + 600, "5.5",
                 id="grace ends 300 s after t0: 300 s of idle fee"),
    pytest.param(None, T0_AT + 1200, "6", id="unknown start: idle since t0, 600 s billed"),
])
def test_idle(idle_since: float | None, now: float, expected: str) -> None:
    base = base_of(IDLE_COST)
    # Energy does not grow while idle; passing E0 keeps the energy term at zero.
    assert live_total(base, 1000, now, "idle", idle_since) == Fraction(expected)


def test_stopped_has_no_live_value() -> None:
    assert live_total(base_of(IDLE_COST), 5000, T0_AT + 60, "stopped") is None


@pytest.mark.parametrize("msg", [
    pytest.param(cost(1000, EUR3, [("Energy", 390, EUR3)], status="Finished"), id="Finished"),
    pytest.param(cost(1000, EUR3, []), id="no prices"),
    pytest.param(cost(1000, EUR3, [("FlatFee", 500, EUR3)]), id="flat fee only"),
    pytest.param(cost(1000, EUR3, [("Energy", 390, {"code": "USD"})]), id="foreign currency"),
])
def test_no_base_without_usable_price(msg: SessionCost) -> None:
    assert LiveBase.from_session_cost(msg, 1000, T0_AT, "EUR") is None


def test_idle_price_alone_is_a_known_price() -> None:
    base = base_of(cost(1000, EUR3, [], idle=(0, 600, {"decimals": 2})))
    assert live_total(base, 1000, T0_AT + 600, "idle", T0_AT) == Fraction("2")
    assert live_total(base, 9000, T0_AT + 600, "charging") == Fraction("1")


def test_zero_cost_chunks_and_missing_chunks_give_zero_total() -> None:
    raw = (b'{"session_id":"S","currency":{"decimals":2},"status":"Idle",'
           b'"charging_price":[{"category":"Energy","price":{"currency":{},'
           b'"value":{"value":25}}}]}')
    msg = decode("session_cost", raw)
    assert isinstance(msg, SessionCost)
    base = base_of(msg)
    assert base.total == 0
    assert live_total(base, 5000, T0_AT, "charging") == 1  # 0.25 x 4 kWh


def test_null_chunks_components_and_idle_price_are_skipped() -> None:
    # EVerest writes an element with no member set as JSON null (e.g. `"charging_price": [null]`).
    msg = cost(1000, EUR3, [("Energy", 390, EUR3)], idle=(0, 600, EUR3))
    assert msg.charging_price is not UNSET and msg.cost_chunks is not UNSET
    nulls = msgspec.structs.replace(
        msg, charging_price=cast(Any, [None, *msg.charging_price]),
        cost_chunks=cast(Any, [None, *msg.cost_chunks]), idle_price=cast(Any, None))
    base = base_of(nulls)
    assert (base.total, base.energy_per_kwh, base.idle_per_hour) == (
        Fraction(1), Fraction("0.39"), Fraction(0))
    only_nulls = msgspec.structs.replace(nulls, charging_price=cast(Any, [None]))
    assert LiveBase.from_session_cost(only_nulls, 0, T0_AT, "EUR") is None


@pytest.mark.parametrize(("state", "phase"), [
    *[(s, "stopped") for s in get_args(EvseStateEnum)
      if s not in ("Charging", "ChargingPausedEV", "ChargingPausedEVSE")],
    ("Charging", "charging"), ("ChargingPausedEV", "idle"), ("ChargingPausedEVSE", "idle"),
])
def test_phase_of_every_state(state: EvseStateEnum, phase: Phase) -> None:
    assert phase_of(state) == phase


@pytest.mark.parametrize(("previous", "state", "expected"), [
    (None, "Charging", None), (None, "ChargingPausedEV", 50.0), (20.0, "ChargingPausedEVSE", 20.0),
    (20.0, "Charging", None), (20.0, "Finished", None),
])
def test_track_idle_since(previous: float | None, state: EvseStateEnum,
                          expected: float | None) -> None:
    assert track_idle_since(previous, state, 50.0) == expected


@pytest.mark.parametrize(("amount", "digits", "expected"), [
    (Fraction("2.805"), 2, "2.81"), (Fraction("2.8049"), 2, "2.80"),
    (Fraction("-2.805"), 2, "-2.81"),
    (Fraction(1, 3), 2, "0.33"), (Fraction(2, 3), 4, "0.6667"), (Fraction(5, 2), 0, "3"),
    (Fraction(0), 3, "0.000"), (Fraction("123.4565"), 3, "123.457"),
])
def test_round_half_up(amount: Fraction, digits: int, expected: str) -> None:
    result = round_half_up(amount, digits)
    assert result == Decimal(expected)
    assert result.as_tuple().exponent == -digits


# ---- properties -------------------------------------------------------------------------------

prices = st.integers(0, 10**6)
decimals = st.integers(0, 6)


@st.composite
def bases(draw: st.DrawFn) -> LiveBase:
    def cur() -> dict[str, Any]:
        return draw(st.sampled_from([{}, {"decimals": draw(decimals)},
                                     {"code": "EUR", "decimals": draw(decimals)}]))
    msg = cost(draw(st.integers(0, 2**31 - 1)), {"code": "EUR", "decimals": draw(decimals)},
               [("Energy", draw(prices), cur()), ("Time", draw(prices), cur())],
               idle=(draw(st.integers(0, 120)), draw(prices), cur()))
    base = LiveBase.from_session_cost(msg, draw(st.integers(0, 10**7)),
                                      draw(st.floats(0, 1e7)), "EUR")
    assert base is not None
    return base


@given(base=bases(), phase=st.sampled_from(["charging", "idle"]))
def test_at_the_base_the_total_is_t0_exactly(base: LiveBase, phase: Phase) -> None:
    assert live_total(base, base.energy_wh, base.at, phase, base.at) == base.total


@given(base=bases(), e=st.lists(st.integers(0, 10**6), min_size=2, max_size=2),
       t=st.lists(st.floats(0, 1e6), min_size=2, max_size=2),
       idle_offset=st.floats(-1e5, 1e5), phase=st.sampled_from(["charging", "idle"]))
def test_monotonic_in_energy_and_time(base: LiveBase, e: list[int], t: list[float],
                                      idle_offset: float, phase: Phase) -> None:
    e_lo, e_hi = sorted(base.energy_wh + x for x in e)
    t_lo, t_hi = sorted(base.at + x for x in t)
    idle_since = base.at + idle_offset
    low = live_total(base, e_lo, t_lo, phase, idle_since)
    more_energy = live_total(base, e_hi, t_lo, phase, idle_since)
    later = live_total(base, e_lo, t_hi, phase, idle_since)
    assert low is not None and more_energy is not None and later is not None
    assert base.total <= low <= more_energy
    assert low <= later
