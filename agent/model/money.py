"""Money arithmetic on integers in minor units and its display text; no float anywhere."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from agent.model.currencies import minor_unit
from agent.structs import Settings

if TYPE_CHECKING:
    from fractions import Fraction

# Unit prices (per kWh, per hour) keep up to this many digits: 0.3950 EUR/kWh is a real tariff.
UNIT_PRICE_DIGITS = 4


class MoneyFormat(Settings, kw_only=True):
    """How amounts are written: `4.56 EUR` by default."""

    decimal_separator: str = "."
    thousands_separator: str = ""
    template: str = "{amount} {code}"

    def __post_init__(self) -> None:
        try:
            self.template.format(amount="1", code="EUR")
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"template: use only {{amount}} and {{code}} ({exc})") from None


DEFAULT_FORMAT = MoneyFormat()
# decimals and digits are bounded (<= 18 by schema, <= 4 for currencies), so a table suffices.
_POW10: tuple[int, ...] = tuple(10**i for i in range(40))


def rescale(value: int, decimals: int, digits: int) -> int:
    """`value` at 10**-decimals re-expressed at 10**-digits, rounded half away from zero."""
    if digits >= decimals:
        return value * _POW10[digits - decimals]
    factor = _POW10[decimals - digits]
    magnitude = (abs(value) + factor // 2) // factor
    return magnitude if value >= 0 else -magnitude


def _digits_text(scaled: int, digits: int, fmt: MoneyFormat) -> str:
    """`scaled` (an integer at 10**-digits) as text with the configured separators."""
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), _POW10[digits])
    whole_text = str(whole)
    if fmt.thousands_separator:
        whole_text = f"{whole:,}".replace(",", fmt.thousands_separator)
    if digits == 0:
        return sign + whole_text
    return f"{sign}{whole_text}{fmt.decimal_separator}{frac:0{digits}d}"


def _apply(fmt: MoneyFormat, amount: str, code: str | None) -> str:
    return fmt.template.format(amount=amount, code=code or "").strip()


def format_amount(value: int, decimals: int, code: str | None,
                  fmt: MoneyFormat = DEFAULT_FORMAT) -> str:
    """A total as shown: rounded half-up to the currency's ISO 4217 minor unit."""
    digits = minor_unit(code)
    return _apply(fmt, _digits_text(rescale(value, decimals, digits), digits, fmt), code)


def format_unit_price(value: int, decimals: int, code: str | None,
                      fmt: MoneyFormat = DEFAULT_FORMAT) -> str:
    """A unit price with up to 4 decimals, trailing zeros trimmed down to the minor unit."""
    minor = minor_unit(code)
    digits = max(minor, UNIT_PRICE_DIGITS)
    scaled = rescale(value, decimals, digits)
    while digits > minor and scaled % 10 == 0:
        scaled //= 10
        digits -= 1
    return _apply(fmt, _digits_text(scaled, digits, fmt), code)


def format_decimal(amount: Decimal, code: str | None, fmt: MoneyFormat = DEFAULT_FORMAT) -> str:
    """A Decimal amount (e.g. a local estimate) rounded half-up to the minor unit."""
    digits = minor_unit(code)
    scaled = int(amount.scaleb(digits).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return _apply(fmt, _digits_text(scaled, digits, fmt), code)


def to_decimal(value: int, decimals: int) -> Decimal:
    """The exact amount `value * 10**-decimals`."""
    return Decimal(value).scaleb(-decimals)


def round_half_up(amount: Fraction, digits: int) -> Decimal:
    """`amount` rounded to `digits` decimals, halves away from zero (as Decimal ROUND_HALF_UP)."""
    scaled = amount * 10**digits
    magnitude = (2 * abs(scaled.numerator) + scaled.denominator) // (2 * scaled.denominator)
    return Decimal(magnitude if scaled >= 0 else -magnitude).scaleb(-digits)
