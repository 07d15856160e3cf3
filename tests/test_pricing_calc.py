"""Exact cost calculation: the document's examples, hand-computed rules, properties."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.pricing.calc import calculate, to_rate_json
from agent.pricing.structure import (
    Dimension,
    Element,
    PriceStructure,
    Rate,
    StructureError,
    load_rate,
)

FIXTURES = Path(__file__).parent / "fixtures" / "pricing"
D = Decimal


def _fixture(name: str) -> Rate:
    return load_rate((FIXTURES / name).read_bytes())


def _elements(pairs: list[tuple[str, str]]) -> list[Element]:
    return [Element(interval_change=D(c), interval_costs=D(p)) for c, p in pairs]


def _rate(energy: list[tuple[str, str]] | None = None,
          time: list[tuple[str, str]] | None = None, **kw: Any) -> Rate:
    """A Rate from (intervalChange, intervalCosts) pairs."""
    ps = PriceStructure(
        energy=None if energy is None else Dimension(unit="Wh", elements=_elements(energy)),
        time=None if time is None else Dimension(unit="min", elements=_elements(time)))
    return Rate(price_structure=ps, **kw)


DOC1 = [("100", "0"), ("101", "40.4"), ("102", "0.4"), ("100000", "0.4")]


# --- the source document's examples -------------------------------------------------

@pytest.mark.parametrize(("fixture", "consumption", "duration"), [
    ("example1_rate.json", 90000, 1000),
    ("example2_rate_chf.json", 80000, 1),
    ("example3_rate_tax.json", 80000, 1),
])
def test_document_examples(fixture: str, consumption: int, duration: int) -> None:
    rate = _fixture(fixture)
    b = calculate(rate, consumption_wh=consumption, duration_s=duration)
    assert rate.price_structure.energy is not None
    # The document's own stepCosts and totals are the expected values.
    assert [s.step_costs for s in b.energy_steps] == [
        e.step_costs for e in rate.price_structure.energy.elements]
    assert b.cost_power == rate.cost_power
    assert b.cost_time == rate.cost_time == 0
    assert b.cost_total == rate.cost_total
    assert b.cost_total_local == rate.cost_total_local_currency
    assert (b.currency, b.local_currency) == (rate.currency, rate.local_currency)


def test_example1_values() -> None:
    b = calculate(_fixture("example1_rate.json"), consumption_wh=90000, duration_s=1000)
    assert [s.step_costs for s in b.energy_steps] == [D(0), D("0.0404"), D("0.0004"),
                                                       D("35.9592")]
    assert b.cost_total == D(36)
    assert b.cost_total_local == D(36)


def test_example2_values() -> None:
    b = calculate(_fixture("example2_rate_chf.json"), consumption_wh=80000, duration_s=1)
    assert [s.step_costs for s in b.energy_steps] == [D(0), D("0.06565"), D("51.93435")]
    assert [s.used for s in b.energy_steps] == [D(100), D(1), D(79899)]
    assert b.cost_total == D(52)
    assert b.currency == "CHF"
    assert str(b.cost_total_local) == "48.8630"


def test_example_json_output_matches_document() -> None:
    rate = _fixture("example2_rate_chf.json")
    out = json.loads(to_rate_json(rate, calculate(rate, consumption_wh=80000)),
                     parse_float=Decimal, parse_int=Decimal)
    doc = json.loads((FIXTURES / "example2_rate_chf.json").read_bytes(),
                     parse_float=Decimal, parse_int=Decimal)
    for key in ("currency", "localCurrency", "currencyConversionRate", "costTotal",
                "costTime", "costPower", "costTotalLocalCurrency", "priceStructure"):
        assert out[key] == doc[key], key
    assert out["costSessionFee"] == 0


# --- hand-computed rules ------------------------------------------------------------

@pytest.mark.parametrize(("pairs", "wh", "steps", "total"), [
    (DOC1, 0, ["0", "0", "0", "0"], "0"),
    (DOC1, 100, ["0", "0", "0", "0"], "0"),  # exactly at the first intervalChange
    (DOC1, 101, ["0", "0.0404", "0", "0"], "0.0404"),
    (DOC1, 102, ["0", "0.0404", "0.0004", "0"], "0.0408"),
    (DOC1, "101.5", ["0", "0.0404", "0.0002", "0"], "0.0406"),
    (DOC1, 100000, ["0", "0.0404", "0.0004", "39.9592"], "40"),
    (DOC1, 100001, ["0", "0.0404", "0.0004", "39.9596"], "40.0004"),  # last is open-ended
    ([("0", "0.30")], 1234, ["0.3702"], "0.3702"),  # one element, from 0
    ([("500", "0.5")], 1000, ["0.5"], "0.5"),  # one element: open-ended from 0
    ([("1000", "0.2"), ("2000", "0.3")], 1000, ["0.2", "0"], "0.2"),
    ([("1000", "0.2"), ("2000", "0.3")], 5000, ["0.2", "1.2"], "1.4"),
])
def test_energy_boundaries(pairs: list[tuple[str, str]], wh: int | str, steps: list[str],
                           total: str) -> None:
    b = calculate(_rate(pairs), consumption_wh=D(wh))
    assert [s.step_costs for s in b.energy_steps] == [D(x) for x in steps]
    assert b.cost_power == b.cost_total == D(total)


@pytest.mark.parametrize(("pairs", "seconds", "steps", "total"), [
    ([("60", "0"), ("240", "0.10")], 3600, ["0", "0"], "0"),  # exactly at 60 min
    ([("60", "0"), ("240", "0.10")], 3660, ["0", "0.1"], "0.1"),
    ([("60", "0"), ("240", "0.10")], 7290, ["0", "6.15"], "6.15"),
    ([("60", "0"), ("240", "0.10")], 7261, ["0", "6.101666666667"], "6.101666666667"),
    ([("10", "1"), ("20", "2"), ("30", "3")], 1500, ["10", "20", "15"], "45"),
    ([("10", "1"), ("20", "2"), ("30", "3")], 3000, ["10", "20", "90"], "120"),  # open
    ([("10", "1")], 1, ["0.016666666667"], "0.016666666667"),  # 1 s at 1/min
    ([("10", "1")], 30, ["0.5"], "0.5"),
    ([("10", "1")], 0, ["0"], "0"),
])
def test_time_only(pairs: list[tuple[str, str]], seconds: int, steps: list[str],
                   total: str) -> None:
    b = calculate(_rate(time=pairs), consumption_wh=123456, duration_s=seconds)
    assert [s.step_costs for s in b.time_steps] == [D(x) for x in steps]
    assert b.cost_time == b.cost_total == D(total)
    assert b.cost_power == 0


def test_time_not_charged_without_duration() -> None:
    b = calculate(_rate(DOC1, time=[("0", "0.05")]), consumption_wh=102)
    assert b.cost_time == 0
    assert b.duration_s is None
    assert b.cost_total == D("0.0408")


def test_energy_and_time_add_up() -> None:
    b = calculate(_rate([("0", "0.40")], time=[("30", "0"), ("31", "0.2")]),
                  consumption_wh=20000, duration_s=3600)
    assert (b.cost_power, b.cost_time, b.cost_total) == (D(8), D(6), D(14))
    assert [s.dimension for s in b.steps] == ["energy", "time", "time"]


FEE: dict[str, Any] = {"session_fee": D("1.50")}


@pytest.mark.parametrize(("extra", "wh", "seconds", "fee"), [
    (FEE, 0, None, "1.50"),  # no grace, no threshold: always charged
    (FEE, 0, 0, "1.50"),
    ({**FEE, "session_fee_grace_period": D(180)}, 1000, 179, "0"),
    ({**FEE, "session_fee_grace_period": D(180)}, 1000, 180, "1.50"),  # at the boundary
    ({**FEE, "session_fee_grace_period": D(180)}, 1000, None, "1.50"),  # unknown duration
    ({**FEE, "session_fee_energy_threshold": D(200)}, 199, 3600, "0"),
    ({**FEE, "session_fee_energy_threshold": D(200)}, 200, 3600, "1.50"),
    ({**FEE, "session_fee_grace_period": D(180), "session_fee_energy_threshold": D(200)},
     5000, 100, "0"),
    ({**FEE, "session_fee_grace_period": D(180), "session_fee_energy_threshold": D(200)},
     100, 5000, "0"),
    ({**FEE, "session_fee_grace_period": D(180), "session_fee_energy_threshold": D(200)},
     5000, 5000, "1.50"),
])
def test_session_fee(extra: dict[str, Any], wh: int, seconds: int | None,
                     fee: str) -> None:
    b = calculate(_rate([("0", "0.40")], **extra), consumption_wh=wh, duration_s=seconds)
    assert b.cost_session_fee == D(fee)
    assert b.cost_total == b.cost_power + D(fee)


def test_session_fee_only_rate_is_calculable() -> None:
    b = calculate(_rate([], **FEE), consumption_wh=10)
    assert b.cost_total == D("1.50")


@pytest.mark.parametrize(("wh", "rate", "local"), [
    (20000, "1.0642", "9.3967"),  # 10 / 1.0642 = 9.39672...
    ("2000.1", "1", "1.0001"),  # 1.00005: half-up, not half-even
    ("2000.3", "1", "1.0002"),  # 1.00015
    (20000, "0.5", "20.0000"),
    (0, "1.0642", "0"),
])
def test_currency_conversion(wh: int | str, rate: str, local: str) -> None:
    b = calculate(_rate([("0", "0.5")], currency="CHF", local_currency="EUR",
                        currency_conversion_rate=D(rate)), consumption_wh=D(wh))
    assert b.cost_total_local == D(local)
    assert b.cost_total_local.as_tuple().exponent == -4
    assert (b.currency, b.local_currency, b.conversion_rate) == ("CHF", "EUR", D(rate))


@pytest.mark.parametrize("rate", [_rate([]), _rate([], time=[]), _rate()])
def test_empty_structure_rejected_when_calculating(rate: Rate) -> None:
    with pytest.raises(StructureError, match="priceStructure: no elements"):
        calculate(rate, consumption_wh=1)


def test_unvalidated_rate_rejected() -> None:
    with pytest.raises(StructureError, match=r"energy\.elements\[1\]\.intervalChange"):
        calculate(_rate([("10", "1"), ("5", "1")]), consumption_wh=1)


@pytest.mark.parametrize(("kwargs", "exc"), [
    ({"consumption_wh": 1.5}, TypeError),
    ({"consumption_wh": True}, TypeError),
    ({"duration_s": 2.0}, TypeError),
    ({"consumption_wh": -1}, ValueError),
    ({"duration_s": D(-1)}, ValueError),
    ({"consumption_wh": D("NaN")}, ValueError),
    ({"consumption_wh": D("Infinity")}, ValueError),
])
def test_bad_amounts(kwargs: dict[str, Any], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        calculate(_rate(DOC1), **kwargs)


def test_json_without_calculation_has_nulls_and_tax() -> None:
    rate = _fixture("example3_rate_tax.json")
    out = json.loads(to_rate_json(rate, None))
    assert out["costTotal"] is None
    assert out["costTotalLocalCurrency"] is None
    assert all(e["stepCosts"] is None for e in out["priceStructure"]["energy"]["elements"])
    assert out["priceStructure"]["energy"]["tax"] == 1.87
    assert out["priceStructure"]["time"]["tax"] == 1.24


def test_json_numbers_plain() -> None:
    rate = _rate([("0", "0.0000001")], time=[("1E+2", "1")])
    text = to_rate_json(rate, calculate(rate, consumption_wh=10, duration_s=1)).decode()
    assert "E" not in text.replace("EUR", "")
    assert '"stepCosts":0.000000001' in text
    assert '"intervalChange":100' in text
    assert '"costTime":0.016666666667' in text


# --- properties ---------------------------------------------------------------------

price = st.integers(0, 100000).map(lambda n: D(n) / 1000)  # up to 100.000 per unit
amount = st.integers(0, 10**7).map(lambda n: D(n) / 10)  # Wh with one decimal


@st.composite
def energy_rates(draw: st.DrawFn) -> Rate:
    """Random ascending energy structures, 1 to 6 elements."""
    steps = draw(st.lists(st.integers(1, 50000), min_size=1, max_size=6))
    first = draw(st.integers(0, 1000))
    changes = [first + sum(steps[:i]) for i in range(len(steps))]
    costs = draw(st.lists(price, min_size=len(changes), max_size=len(changes)))
    return _rate([(str(c), str(p)) for c, p in zip(changes, costs, strict=True)])


def _oracle_share(rate: Rate, lo: Fraction, hi: Fraction) -> list[Fraction]:
    """Independent per-element cost of the consumption between lo and hi (Fractions)."""
    assert rate.price_structure.energy is not None
    elements = rate.price_structure.energy.elements
    out: list[Fraction] = []
    start = Fraction(0)
    for i, e in enumerate(elements):
        end = None if i == len(elements) - 1 else Fraction(e.interval_change)
        a, b = max(lo, start), hi if end is None else min(hi, end)
        out.append(max(Fraction(0), b - a) * Fraction(e.interval_costs) / 1000)
        start = Fraction(e.interval_change)
    return out


@given(energy_rates(), amount, amount)
def test_cost_never_decreases(rate: Rate, a: Decimal, b: Decimal) -> None:
    lo, hi = sorted((a, b))
    assert calculate(rate, consumption_wh=lo).cost_total <= calculate(
        rate, consumption_wh=hi).cost_total


@given(energy_rates(), amount, st.integers(0, 1000))
def test_split_shares_sum_to_total(rate: Rate, total: Decimal, permille: int) -> None:
    split = (total * permille / 1000).quantize(D("0.0001"))  # anywhere in [0, total]
    full = calculate(rate, consumption_wh=total)
    first = calculate(rate, consumption_wh=split)
    rest = _oracle_share(rate, Fraction(split), Fraction(total))
    for s_full, s_first, r in zip(full.energy_steps, first.energy_steps, rest, strict=True):
        assert Fraction(s_full.step_costs) == Fraction(s_first.step_costs) + r
    assert Fraction(full.cost_total) == Fraction(first.cost_total) + sum(rest)
    assert full.cost_power == sum((s.step_costs for s in full.energy_steps), D(0))


@given(energy_rates(), amount)
def test_exact_against_fractions(rate: Rate, wh: Decimal) -> None:
    b = calculate(rate, consumption_wh=wh)
    assert Fraction(b.cost_total) == sum(_oracle_share(rate, Fraction(0), Fraction(wh)))


@given(st.lists(st.integers(1, 120), min_size=1, max_size=5), st.data())
def test_time_cost_never_decreases(gaps: list[int], data: st.DataObject) -> None:
    changes = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    costs = data.draw(st.lists(price, min_size=len(gaps), max_size=len(gaps)))
    rate = _rate(time=[(str(c), str(p)) for c, p in zip(changes, costs, strict=True)])
    a, b = sorted(data.draw(st.lists(st.integers(0, 36000), min_size=2, max_size=2)))
    assert calculate(rate, duration_s=a).cost_time <= calculate(rate, duration_s=b).cost_time
