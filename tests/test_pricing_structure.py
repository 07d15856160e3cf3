"""Rate / priceStructure decoding and validation."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from agent.pricing.structure import BadJsonError, StructureError, load_rate, plain

FIXTURES = Path(__file__).parent / "fixtures" / "pricing"


def _bare(energy: list[dict[str, object]] | None = None, *, unit: str = "Wh",
          time: list[dict[str, object]] | None = None, time_unit: str = "min") -> bytes:
    """A bare priceStructure document."""
    doc: dict[str, object] = {}
    if energy is not None:
        doc["energy"] = {"unit": unit, "elements": energy}
    if time is not None:
        doc["time"] = {"unit": time_unit, "elements": time}
    return json.dumps(doc).encode()


def test_full_rate_fields_exact() -> None:
    rate = load_rate((FIXTURES / "example2_rate_chf.json").read_bytes())
    assert rate.rate_name == "Standard-Verkaufstarif eMSP"
    assert rate.cost_id == 2020
    assert (rate.currency, rate.local_currency) == ("CHF", "EUR")
    assert rate.currency_conversion_rate == Decimal("1.0642")
    assert rate.cost_total_local_currency == Decimal("48.863")
    energy = rate.price_structure.energy
    assert energy is not None
    assert [e.interval_costs for e in energy.elements] == [
        Decimal("0"), Decimal("65.65"), Decimal("0.65")]
    assert energy.elements[2].step_costs == Decimal("51.93435")


def test_null_costs_accepted() -> None:
    rate = load_rate((FIXTURES / "no_consumption_rate.json").read_bytes())
    assert rate.cost_total is None
    assert rate.price_structure.energy is not None
    assert all(e.step_costs is None for e in rate.price_structure.energy.elements)


def test_bare_structure_and_defaults() -> None:
    rate = load_rate((FIXTURES / "bare_structure.json").read_bytes())
    assert rate.currency is None
    assert rate.conversion_rate == Decimal(1)
    assert rate.price_structure.energy is not None
    assert len(rate.price_structure.energy.elements) == 4


def test_tax_carried() -> None:
    rate = load_rate((FIXTURES / "example3_rate_tax.json").read_bytes())
    assert rate.price_structure.energy is not None
    assert rate.price_structure.time is not None
    assert rate.price_structure.energy.tax == Decimal("1.87")
    assert rate.price_structure.time.tax == Decimal("1.24")


def test_unknown_fields_tolerated_and_strings_numeric() -> None:
    doc = {"rateName": "x", "futureField": {"a": 1}, "costId": "abc",
           "priceStructure": {"energy": {"unit": "Wh", "elements": [
               {"intervalChange": "100", "intervalCosts": "0.30", "extra": True}]}}}
    rate = load_rate(json.dumps(doc).encode())
    assert rate.price_structure.energy is not None
    assert rate.price_structure.energy.elements[0].interval_costs == Decimal("0.30")


def test_numbers_never_go_through_float() -> None:
    data = b'{"energy":{"unit":"Wh","elements":[{"intervalChange":1,' \
           b'"intervalCosts":0.1000000000000000055511151231257827}]}}'
    rate = load_rate(data)
    assert rate.price_structure.energy is not None
    assert rate.price_structure.energy.elements[0].interval_costs == Decimal(
        "0.1000000000000000055511151231257827")


E = "priceStructure.energy.elements"
T = "priceStructure.time.elements"


@pytest.mark.parametrize(("data", "message"), [
    (_bare([{"intervalChange": 100, "intervalCosts": 0},
            {"intervalChange": 101, "intervalCosts": 1},
            {"intervalChange": 101, "intervalCosts": 1}]),
     f"{E}[2].intervalChange: must be greater than 101"),
    (_bare([{"intervalChange": 100, "intervalCosts": 0},
            {"intervalChange": 50, "intervalCosts": 1}]),
     f"{E}[1].intervalChange: must be greater than 100"),
    (_bare([{"intervalChange": -1, "intervalCosts": 0}]),
     f"{E}[0].intervalChange: must be 0 or more"),
    (_bare([{"intervalChange": 1, "intervalCosts": "-0.1"}]),
     f"{E}[0].intervalCosts: must be 0 or more"),
    (_bare(time=[{"intervalChange": 1, "intervalCosts": 1, "stepCosts": -2}]),
     f"{T}[0].stepCosts: must be 0 or more"),
    (_bare([{"intervalChange": 1, "intervalCosts": "abc"}]),
     f"{E}[0].intervalCosts: Invalid decimal string"),
    (_bare([{"intervalChange": "NaN", "intervalCosts": 1}]),
     f"{E}[0].intervalChange: must be a finite number"),
    (_bare([{"intervalChange": "Infinity", "intervalCosts": 1}]),
     f"{E}[0].intervalChange: must be a finite number"),
    (_bare([{"intervalChange": True, "intervalCosts": 1}]),
     f"{E}[0].intervalChange: Expected `decimal`, got `bool`"),
    (_bare([{"intervalCosts": 1}]),
     f"{E}[0]: Object missing required field `intervalChange`"),
    (_bare([], unit="kWh"), "priceStructure.energy.unit: expected 'Wh', got 'kWh'"),
    (_bare(time=[], time_unit="s"), "priceStructure.time.unit: expected 'min', got 's'"),
    (_bare(time=[], time_unit="Wh"), "priceStructure.time.unit: expected 'min'"),
    (b'{"priceStructure": null}', "priceStructure: Expected `object`, got `null`"),
    (b'{"priceStructure": {}, "currencyConversionRate": 0}',
     "currencyConversionRate: must be greater than 0"),
    (b'{"priceStructure": {}, "sessionFee": -1}', "sessionFee: must be 0 or more"),
    (b'{"priceStructure": {}, "sessionFeeGracePeriod": "x"}',
     "sessionFeeGracePeriod: Invalid decimal string"),
    (b'{"priceStructure": {"energy": {"unit": "Wh", "elements": [], "tax": -1}}}',
     "priceStructure.energy.tax: must be 0 or more"),
    (b"{}", "neither a Rate"),
    (b"[1, 2]", "Expected `object`, got `array`"),
])
def test_rejected(data: bytes, message: str) -> None:
    with pytest.raises(StructureError) as info:
        load_rate(data)
    assert message in str(info.value)


@pytest.mark.parametrize("data", [b"{", b"", b"not json", b'{"energy": 0.1.2}'])
def test_bad_json_is_its_own_error(data: bytes) -> None:
    with pytest.raises(BadJsonError, match="invalid JSON"):
        load_rate(data)


def test_structure_error_is_value_error() -> None:
    assert issubclass(StructureError, ValueError)


@pytest.mark.parametrize(("value", "text"), [
    ("36.0000", "36"), ("1E+2", "100"), ("0.0000001", "0.0000001"), ("-0", "0"),
    ("51.93435", "51.93435"), ("0", "0"), ("0.000", "0"), ("12", "12"),
])
def test_plain(value: str, text: str) -> None:
    assert plain(Decimal(value)) == text
