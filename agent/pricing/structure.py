"""be.ENERGISED Rate / priceStructure as msgspec Structs, decoded without float.

A Rate (as `GET /api/pricing/` returns it) carries a `priceStructure` with an
`energy` dimension (unit `Wh`, `intervalCosts` per kWh) and a `time` dimension
(unit `min`, `intervalCosts` per minute). Each dimension holds elements
`{intervalChange, intervalCosts, stepCosts}` in strictly ascending
`intervalChange` order; `stepCosts` and the `cost*` fields are `null` when the
API was asked without a consumption. Unknown Rate fields (`rateName`, `costId`,
anything the API adds later) are tolerated.

Session fee (not defined by the API document; the agent's own extension, flat
camelCase fields on the Rate so a local tariff file stays Rate-shaped):

- `sessionFee`: amount in `currency` added once per session;
- `sessionFeeGracePeriod`: seconds; the fee is waived when a duration is known
  and shorter than this;
- `sessionFeeEnergyThreshold`: Wh; the fee is waived when the consumption is
  below this.

Numbers are JSON numbers or numeric strings, decoded straight into `Decimal`
(msgspec never goes through float for a `Decimal` field).
"""

from __future__ import annotations

import re
from decimal import Decimal

import msgspec

ENERGY_UNIT = "Wh"
TIME_UNIT = "min"


class StructureError(ValueError):
    """A Rate or priceStructure that cannot be priced; the message names the element."""


class BadJsonError(StructureError):
    """The document is not JSON at all (as opposed to JSON of the wrong shape)."""


class Element(msgspec.Struct, rename="camel", kw_only=True):
    """One price interval: `intervalCosts` applies up to `intervalChange`."""

    interval_change: Decimal
    interval_costs: Decimal
    step_costs: Decimal | None = None


class Dimension(msgspec.Struct, kw_only=True):
    """The energy or time part of a priceStructure."""

    unit: str
    elements: list[Element] = msgspec.field(default_factory=list)
    tax: Decimal | None = None


class PriceStructure(msgspec.Struct, kw_only=True):
    """Energy and time dimensions; either may be absent."""

    energy: Dimension | None = None
    time: Dimension | None = None


class Rate(msgspec.Struct, rename="camel", kw_only=True):
    """The API's Rate object (unknown fields ignored) plus the session-fee extension."""

    price_structure: PriceStructure
    rate_name: str | None = None
    cost_id: int | str | None = None
    currency: str | None = None
    local_currency: str | None = None
    currency_conversion_rate: Decimal | None = None
    cost_total_local_currency: Decimal | None = None
    cost_total: Decimal | None = None
    cost_time: Decimal | None = None
    cost_power: Decimal | None = None
    cost_session_fee: Decimal | None = None
    session_fee: Decimal | None = None
    session_fee_grace_period: Decimal | None = None
    session_fee_energy_threshold: Decimal | None = None

    @property
    def conversion_rate(self) -> Decimal:
        """`currencyConversionRate`, 1 when the Rate does not give one."""
        rate = self.currency_conversion_rate
        return Decimal(1) if rate is None else rate


_RATE_DECODER = msgspec.json.Decoder(Rate)
_BARE_DECODER = msgspec.json.Decoder(PriceStructure)
_PROBE_DECODER = msgspec.json.Decoder(dict[str, msgspec.Raw])
_PATH_RE = re.compile(r"^(?P<msg>.*) - at `\$\.?(?P<path>.*)`$")


def load_rate(data: bytes) -> Rate:
    """Decode and validate a full Rate or a bare priceStructure (JSON bytes)."""
    try:
        probe = _PROBE_DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise StructureError(_where(exc, "")) from None
    except msgspec.DecodeError as exc:
        raise BadJsonError(f"invalid JSON: {exc}") from None
    full = "priceStructure" in probe
    if not full and not {"energy", "time"} & probe.keys():
        raise StructureError("neither a Rate (priceStructure) nor a priceStructure (energy, time)")
    try:
        if full:
            rate = _RATE_DECODER.decode(data)
        else:
            rate = Rate(price_structure=_BARE_DECODER.decode(data))
    except msgspec.ValidationError as exc:
        raise StructureError(_where(exc, "" if full else "priceStructure")) from None
    validate(rate)
    return rate


def _where(exc: msgspec.ValidationError, prefix: str) -> str:
    """Turn msgspec's "msg - at `$.a.b`" into "a.b: msg", under `prefix`."""
    text = str(exc)
    match = _PATH_RE.match(text)
    if match is None:
        return f"{prefix}: {text}" if prefix else text
    path = match["path"]
    if prefix:
        path = f"{prefix}.{path}" if path and not path.startswith("[") else prefix + path
    return f"{path}: {match['msg']}" if path else match["msg"]


def validate(rate: Rate) -> None:
    """Check units, order and signs; raise StructureError naming the element."""
    _check_dimension(rate.price_structure.energy, "energy", ENERGY_UNIT)
    _check_dimension(rate.price_structure.time, "time", TIME_UNIT)
    _check_number("currencyConversionRate", rate.currency_conversion_rate, positive=True)
    _check_number("sessionFee", rate.session_fee)
    _check_number("sessionFeeGracePeriod", rate.session_fee_grace_period)
    _check_number("sessionFeeEnergyThreshold", rate.session_fee_energy_threshold)
    # The API's own results may be carried through; they only need to be sane numbers.
    for name in ("costTotalLocalCurrency", "costTotal", "costTime", "costPower",
                 "costSessionFee"):
        _check_number(name, getattr(rate, _snake(name)))


def _check_dimension(dim: Dimension | None, name: str, unit: str) -> None:
    """Validate one dimension's unit and elements."""
    if dim is None:
        return
    where = f"priceStructure.{name}"
    if dim.unit != unit:
        raise StructureError(f"{where}.unit: expected {unit!r}, got {dim.unit!r}")
    _check_number(f"{where}.tax", dim.tax)
    previous: Decimal | None = None
    for i, element in enumerate(dim.elements):
        at = f"{where}.elements[{i}]"
        _check_number(f"{at}.intervalChange", element.interval_change)
        _check_number(f"{at}.intervalCosts", element.interval_costs)
        _check_number(f"{at}.stepCosts", element.step_costs)
        if previous is not None and element.interval_change <= previous:
            raise StructureError(
                f"{at}.intervalChange: must be greater than {plain(previous)}"
                f" (elements[{i - 1}]), got {plain(element.interval_change)}")
        previous = element.interval_change


def _check_number(where: str, value: Decimal | None, *, positive: bool = False) -> None:
    """Reject NaN, infinities and negatives (and zero when `positive`)."""
    if value is None:
        return
    if not value.is_finite():
        raise StructureError(f"{where}: must be a finite number, got {value}")
    if value < 0 or (positive and value == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise StructureError(f"{where}: must be {bound}, got {plain(value)}")


def _snake(camel: str) -> str:
    """costTotalLocalCurrency -> cost_total_local_currency."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def plain(value: Decimal) -> str:
    """Fixed-point text without exponent or trailing zeros (for messages and JSON)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


