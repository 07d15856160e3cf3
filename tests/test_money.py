"""Money text: integers in, rounded display text out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agent.model.currencies import CODES, minor_unit
from agent.model.money import MoneyFormat, format_amount, format_decimal, format_unit_price, rescale

TOTALS = [
    (1005, 3, "EUR", "1.01 EUR"),      # half-up, not banker's rounding
    (1004, 3, "EUR", "1.00 EUR"),
    (289, 3, "EUR", "0.29 EUR"),       # OCPP truncation artefact
    (456, 2, "EUR", "4.56 EUR"),
    (123456, 5, "EUR", "1.23 EUR"),
    (500, 0, "JPY", "500 JPY"),
    (5005, 1, "JPY", "501 JPY"),
    (1234, 3, "KWD", "1.234 KWD"),
    (12345, 4, "CLF", "1.2345 CLF"),
    (7, 0, "EUR", "7.00 EUR"),
    (-1005, 3, "EUR", "-1.01 EUR"),    # refunds round away from zero like charges
    (123456789, 2, "EUR", "1234567.89 EUR"),
    (0, 18, None, "0.00"),
]


@pytest.mark.parametrize(("value", "decimals", "code", "text"), TOTALS)
def test_totals_round_half_up_to_minor_unit(value: int, decimals: int, code: str | None,
                                            text: str) -> None:
    assert format_amount(value, decimals, code) == text


UNIT_PRICES = [
    (390, 3, "EUR", "0.39 EUR"),
    (3950, 4, "EUR", "0.395 EUR"),
    (12345, 5, "EUR", "0.1235 EUR"),
    (120, 2, "EUR", "1.20 EUR"),
    (6, 0, "EUR", "6.00 EUR"),
    (30, 0, "JPY", "30 JPY"),
    (305, 1, "JPY", "30.5 JPY"),
    (1, 5, "EUR", "0.00 EUR"),
    (5, 5, "EUR", "0.0001 EUR"),
]


@pytest.mark.parametrize(("value", "decimals", "code", "text"), UNIT_PRICES)
def test_unit_prices_keep_up_to_four_decimals(value: int, decimals: int, code: str,
                                              text: str) -> None:
    assert format_unit_price(value, decimals, code) == text


def test_format_is_configurable() -> None:
    fmt = MoneyFormat(decimal_separator=",", thousands_separator=".", template="{amount} {code}")
    assert format_amount(123456789, 2, "EUR", fmt) == "1.234.567,89 EUR"
    assert format_amount(1999, 2, "EUR", MoneyFormat(template="€{amount}")) == "€19.99"


def test_bad_template_is_rejected() -> None:
    with pytest.raises(ValueError, match="template"):
        MoneyFormat(template="{price}")


def test_every_schema_currency_has_a_minor_unit() -> None:
    assert len(CODES) == 170
    assert {minor_unit(c) for c in CODES} == {0, 2, 3, 4}
    assert (minor_unit("EUR"), minor_unit("JPY"), minor_unit("KWD"), minor_unit("CLF")) == (
        2, 0, 3, 4)


def test_rescale_and_decimal_formatting() -> None:
    assert rescale(15, 1, 0) == 2
    assert rescale(-15, 1, 0) == -2
    assert rescale(2, 0, 3) == 2000
    assert format_decimal(Decimal("8.395"), "EUR") == "8.40 EUR"
    assert format_decimal(Decimal("48.863"), "CHF") == "48.86 CHF"
