"""Exact cost of a consumption/duration under a be.ENERGISED priceStructure.

Element i prices what lies between the previous element's `intervalChange`
(0 for the first) and its own; the last element is open-ended. Energy:
`stepCosts = Wh in range / 1000 * intervalCosts`. Time: `stepCosts = minutes in
range * intervalCosts`, computed from seconds as `seconds * intervalCosts / 60`
so nothing is rounded before the division. Everything is `Decimal`; the only
roundings are a time share whose division by 60 does not terminate (half-up to
12 decimal places) and `costTotalLocalCurrency` (half-up to 4 decimal places).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    getcontext,
    localcontext,
)
from typing import Any, Literal

import msgspec

from agent.pricing.structure import (
    Dimension,
    Element,
    Rate,
    StructureError,
    plain,
    validate,
)

# 100 digits: Wh/kWh products of any sane tariff stay exact, so only the
# explicit quantizations below ever round.
_CTX = Context(prec=100, rounding=ROUND_HALF_UP,
               traps=[InvalidOperation, DivisionByZero, Overflow])
_TIME_PLACES = Decimal("1E-12")
_LOCAL_PLACES = Decimal("1E-4")
_WH_PER_KWH = Decimal(1000)
_S_PER_MIN = Decimal(60)

Kind = Literal["energy", "time"]


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One element's share: range in the element's unit (Wh or min), `end` None = open."""

    dimension: Kind
    index: int
    start: Decimal
    end: Decimal | None
    interval_costs: Decimal
    used: Decimal  # Wh for energy, seconds for time (seconds keep it exact)
    step_costs: Decimal


class Breakdown(msgspec.Struct, frozen=True, kw_only=True):
    """The result of `calculate`: per-element steps and totals."""

    energy_steps: tuple[Step, ...]
    time_steps: tuple[Step, ...]
    cost_power: Decimal
    cost_time: Decimal
    cost_session_fee: Decimal
    cost_total: Decimal
    cost_total_local: Decimal
    currency: str | None
    local_currency: str | None
    conversion_rate: Decimal
    consumption_wh: Decimal
    duration_s: Decimal | None

    @property
    def steps(self) -> tuple[Step, ...]:
        """Energy steps followed by time steps."""
        return self.energy_steps + self.time_steps


def _amount(name: str, value: Decimal | int) -> Decimal:
    """Accept an int or a finite non-negative Decimal; float and bool are refused."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise TypeError(f"{name}: expected int or Decimal, got {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{name}: must be a finite number, 0 or more, got {value}")
    return amount


def _steps(dim: Dimension | None, kind: Kind, amount: Decimal) -> tuple[Step, ...]:
    """Split `amount` (Wh, or seconds for time) over the dimension's elements."""
    if dim is None:
        return ()
    # Boundaries in the amount's unit: minutes become seconds (exact, * 60).
    scale = Decimal(1) if kind == "energy" else _S_PER_MIN
    steps: list[Step] = []
    start = Decimal(0)
    last = len(dim.elements) - 1
    for i, element in enumerate(dim.elements):
        end = None if i == last else element.interval_change
        lo = start * scale
        hi = amount if end is None else min(amount, end * scale)
        used = max(Decimal(0), hi - lo)
        steps.append(Step(dimension=kind, index=i, start=start, end=end,
                          interval_costs=element.interval_costs, used=used,
                          step_costs=_share(kind, used, element)))
        start = element.interval_change
    return tuple(steps)


def _share(kind: Kind, used: Decimal, element: Element) -> Decimal:
    """The element's cost for `used` Wh (price per kWh) or seconds (price per min)."""
    product = used * element.interval_costs
    if kind == "energy":
        return product / _WH_PER_KWH  # dividing by 10**3 is always exact
    ctx = getcontext()
    ctx.clear_flags()
    share = product / _S_PER_MIN
    if ctx.flags[Inexact]:  # non-terminating, e.g. 1 s at 1/min
        share = share.quantize(_TIME_PLACES)
    return share


def _session_fee(rate: Rate, consumption: Decimal, duration: Decimal | None) -> Decimal:
    """The session fee unless waived by the grace period or the energy threshold."""
    fee = rate.session_fee
    if fee is None:
        return Decimal(0)
    grace = rate.session_fee_grace_period
    if grace is not None and duration is not None and duration < grace:
        return Decimal(0)
    threshold = rate.session_fee_energy_threshold
    if threshold is not None and consumption < threshold:
        return Decimal(0)
    return fee


def calculate(rate: Rate, *, consumption_wh: Decimal | int = 0,
              duration_s: Decimal | int | None = None) -> Breakdown:
    """Price a consumption (Wh) and optional duration (s) exactly under `rate`."""
    validate(rate)
    consumption = _amount("consumption_wh", consumption_wh)
    duration = None if duration_s is None else _amount("duration_s", duration_s)
    ps = rate.price_structure
    dims = [d for d in (ps.energy, ps.time) if d is not None and d.elements]
    if not dims and rate.session_fee is None:
        raise StructureError("priceStructure: no elements to calculate with")
    with localcontext(_CTX):
        energy = _steps(ps.energy, "energy", consumption)
        # No duration given: like the API, the time part is not charged.
        time = _steps(ps.time, "time", duration or Decimal(0))
        cost_power = sum((s.step_costs for s in energy), Decimal(0))
        cost_time = sum((s.step_costs for s in time), Decimal(0))
        fee = _session_fee(rate, consumption, duration)
        total = cost_power + cost_time + fee
        local = (total / rate.conversion_rate).quantize(_LOCAL_PLACES)
    return Breakdown(
        energy_steps=energy, time_steps=time, cost_power=cost_power,
        cost_time=cost_time, cost_session_fee=fee, cost_total=total,
        cost_total_local=local, currency=rate.currency,
        local_currency=rate.local_currency, conversion_rate=rate.conversion_rate,
        consumption_wh=consumption, duration_s=duration)


def _num(value: Decimal | None) -> msgspec.Raw | None:
    """A Decimal as a raw JSON number in plain notation (no exponent, no float)."""
    return None if value is None else msgspec.Raw(plain(value).encode())


def _dimension_json(dim: Dimension, steps: Sequence[Step] | None) -> dict[str, Any]:
    """One dimension with computed (or null) stepCosts."""
    elements = [
        {"intervalChange": _num(e.interval_change),
         "stepCosts": _num(steps[i].step_costs) if steps is not None else None,
         "intervalCosts": _num(e.interval_costs)}
        for i, e in enumerate(dim.elements)]
    out: dict[str, Any] = {"unit": dim.unit, "elements": elements}
    if dim.tax is not None:
        out["tax"] = _num(dim.tax)
    return out


def to_rate_json(rate: Rate, breakdown: Breakdown | None) -> bytes:
    """A Rate-shaped JSON object with computed costs (null when `breakdown` is None)."""
    b = breakdown
    out: dict[str, Any] = {}
    if rate.rate_name is not None:
        out["rateName"] = rate.rate_name
    if rate.cost_id is not None:
        out["costId"] = rate.cost_id
    out |= {
        "currency": rate.currency,
        "localCurrency": rate.local_currency,
        "costTotalLocalCurrency": _num(b.cost_total_local) if b else None,
        "currencyConversionRate": _num(rate.conversion_rate),
        "costTotal": _num(b.cost_total) if b else None,
        "costTime": _num(b.cost_time) if b else None,
        "costPower": _num(b.cost_power) if b else None,
        "costSessionFee": _num(b.cost_session_fee) if b else None,
    }
    for key, value in (("sessionFee", rate.session_fee),
                       ("sessionFeeGracePeriod", rate.session_fee_grace_period),
                       ("sessionFeeEnergyThreshold", rate.session_fee_energy_threshold)):
        if value is not None:
            out[key] = _num(value)
    ps: dict[str, Any] = {}
    if rate.price_structure.energy is not None:
        ps["energy"] = _dimension_json(rate.price_structure.energy,
                                       b.energy_steps if b else None)
    if rate.price_structure.time is not None:
        ps["time"] = _dimension_json(rate.price_structure.time, b.time_steps if b else None)
    out["priceStructure"] = ps
    return msgspec.json.encode(out)
