"""What the display shows from a local price structure: a price preview and a session estimate."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from msgspec import UNSET

from agent.everest.session_cost import SessionCost
from agent.model.currencies import amount_decimals
from agent.model.money import MoneyFormat, format_decimal, format_unit_price, to_decimal
from agent.model.view import Estimate
from agent.pricing.calc import Breakdown, calculate
from agent.pricing.structure import Rate

_UNIT_PLACES = Decimal("1E-4")


def _unit(amount: Decimal, code: str | None, fmt: MoneyFormat) -> str:
    scaled = int(amount.quantize(_UNIT_PLACES, rounding=ROUND_HALF_UP).scaleb(4))
    return format_unit_price(scaled, 4, code, fmt)


def preview_lines(rate: Rate, example_kwh: int, fallback_code: str | None,
                  fmt: MoneyFormat) -> tuple[str, ...]:
    """Effective kWh price at the example consumption, every other fee, and the example."""
    code = rate.currency or fallback_code
    example_wh = example_kwh * 1000
    result = calculate(rate, consumption_wh=example_wh)
    lines: list[str] = []
    if result.energy_steps:
        lines.append(_unit(result.cost_power / example_kwh, code, fmt) + "/kWh")
    time = rate.price_structure.time
    if time is not None:
        start = Decimal(0)
        for element in time.elements:
            if element.interval_costs > 0:
                after = f" after {start.normalize():f} min" if start else ""
                lines.append(f"{_unit(element.interval_costs, code, fmt)}/min{after}")
            start = element.interval_change
    if rate.session_fee:
        lines.append(f"{format_decimal(rate.session_fee, code, fmt)} per session")
    lines.append(f"{example_kwh} kWh = {format_decimal(result.cost_total, code, fmt)}")
    return tuple(lines)


def _seconds_between(start: str, end: str) -> Decimal | None:
    try:
        delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    except (ValueError, TypeError):
        return None
    seconds = Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 10**6
    return seconds if seconds >= 0 else None


def session_usage(msg: SessionCost) -> tuple[int, Decimal | None] | None:
    """Energy (Wh) and duration (s) of a session so far, from its chunks; None when unknown."""
    if msg.cost_chunks is UNSET:
        return None
    chunks = [c for c in msg.cost_chunks if c is not None]  # null chunks carry nothing
    if not chunks:
        return None
    first, last = chunks[0], chunks[-1]
    if last.metervalue_to is UNSET or last.metervalue_to <= 0:
        return None
    start_wh = first.metervalue_from if first.metervalue_from is not UNSET else 0
    energy = last.metervalue_to - start_wh
    if energy < 0:
        return None
    duration = None
    if first.timestamp_from is not UNSET and last.timestamp_to is not UNSET:
        duration = _seconds_between(first.timestamp_from, last.timestamp_to)
    return energy, duration


def estimate(rate: Rate, msg: SessionCost, fallback_code: str | None,
             fmt: MoneyFormat) -> tuple[Estimate, Breakdown] | None:
    """The local cost estimate for the energy and duration the session_cost reports."""
    usage = session_usage(msg)
    if usage is None:
        return None
    energy, duration = usage
    result = calculate(rate, consumption_wh=energy, duration_s=duration)
    code = rate.currency or fallback_code
    value = result.cost_total.quantize(_UNIT_PLACES, rounding=ROUND_HALF_UP)
    return Estimate(value=f"{value.normalize():f}", currency=code,
                    text=format_decimal(result.cost_total, code, fmt)), result


def backend_total(msg: SessionCost, fallback_code: str | None) -> Decimal:
    """What the backend charges so far, as an exact Decimal in major units."""
    code = msg.currency.code if msg.currency.code is not UNSET else fallback_code
    return to_decimal(msg.total, amount_decimals(msg.currency.decimals, code))
