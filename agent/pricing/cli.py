"""`cost-agent price`: price a consumption under a local Rate/priceStructure file."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from agent.pricing.calc import Breakdown, Step, calculate, to_rate_json
from agent.pricing.structure import Dimension, Rate, StructureError, load_rate, plain

PROG = "cost-agent price"


def _amount(text: str) -> Decimal:
    """argparse type: a finite, non-negative decimal number (never via float)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    """The `price` subcommand's arguments."""
    p = argparse.ArgumentParser(
        prog=PROG, description="Price a consumption exactly under a be.ENERGISED Rate "
        "or bare priceStructure (JSON file).")
    p.add_argument("--structure", required=True, metavar="FILE", type=Path,
                   help="Rate or priceStructure JSON file")
    p.add_argument("--consumption", metavar="WH", type=_amount,
                   help="energy in Wh (without it and a duration nothing is calculated)")
    dur = p.add_mutually_exclusive_group()
    dur.add_argument("--duration", metavar="S", type=_amount, help="duration in seconds")
    dur.add_argument("--duration-minutes", metavar="M", type=_amount,
                     help="duration in minutes")
    p.add_argument("--json", action="store_true", help="print a Rate-shaped JSON object")
    return p


def main(argv: list[str]) -> int:
    """Run `price`; 0 on success, 2 on bad arguments or a bad structure."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits itself; callers want a return code
        return exc.code if isinstance(exc.code, int) else 2
    path: Path = args.structure
    try:
        rate = load_rate(path.read_bytes())
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror or exc}")
    except StructureError as exc:
        return _fail(f"{path}: {exc}")
    duration: Decimal | None = args.duration
    if args.duration_minutes is not None:
        duration = args.duration_minutes * 60  # exact: minutes to seconds
    breakdown: Breakdown | None = None
    if args.consumption is not None or duration is not None:
        consumption = args.consumption if args.consumption is not None else Decimal(0)
        try:
            breakdown = calculate(rate, consumption_wh=consumption, duration_s=duration)
        except (StructureError, ValueError) as exc:
            return _fail(f"{path}: {exc}")
    if args.json:
        sys.stdout.write(to_rate_json(rate, breakdown).decode() + "\n")
    else:
        sys.stdout.write(render(rate, breakdown))
    return 0


def _fail(message: str) -> int:
    """Print an argparse-style error and return exit status 2."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return 2


def render(rate: Rate, breakdown: Breakdown | None) -> str:
    """A readable breakdown: each element's range, rate and step cost, then totals."""
    cur = rate.currency or ""
    lines = [f"Tariff: {rate.rate_name or '(unnamed)'}" + (f" [{cur}]" if cur else "")]
    ps = rate.price_structure
    for name, dim, per, steps in (
            ("Energy", ps.energy, "kWh", breakdown.energy_steps if breakdown else None),
            ("Time", ps.time, "min", breakdown.time_steps if breakdown else None)):
        lines.extend(_render_dimension(name, dim, per, cur, steps))
    if rate.session_fee is not None:
        waive = []
        if rate.session_fee_grace_period is not None:
            waive.append(f"under {plain(rate.session_fee_grace_period)} s")
        if rate.session_fee_energy_threshold is not None:
            waive.append(f"below {plain(rate.session_fee_energy_threshold)} Wh")
        note = f" (waived {' or '.join(waive)})" if waive else ""
        lines.append(f"Session fee: {plain(rate.session_fee)} {cur}{note}".rstrip())
    if breakdown is None:
        lines.append("No consumption or duration given: nothing calculated.")
        return "\n".join(lines) + "\n"
    b = breakdown
    dur = "-" if b.duration_s is None else f"{plain(b.duration_s)} s"
    lines.append(f"Consumption: {plain(b.consumption_wh)} Wh, duration: {dur}")
    local = b.local_currency or cur
    for label, value, unit in (
            ("costPower", b.cost_power, cur), ("costTime", b.cost_time, cur),
            ("costSessionFee", b.cost_session_fee, cur), ("costTotal", b.cost_total, cur),
            ("costTotalLocalCurrency", b.cost_total_local, local)):
        lines.append(f"{label:<24}{plain(value):>16} {unit}".rstrip())
    lines.append(f"{'currencyConversionRate':<24}{plain(b.conversion_rate):>16}")
    return "\n".join(lines) + "\n"


def _render_dimension(name: str, dim: Dimension | None, per: str, cur: str,
                      steps: tuple[Step, ...] | None) -> list[str]:
    """Lines for one dimension: range, rate and (when calculated) the step cost."""
    if dim is None or not dim.elements:
        return [f"{name}: no elements"]
    unit = dim.unit
    tax = f", tax {plain(dim.tax)}" if dim.tax is not None else ""
    lines = [f"{name} ({unit}{tax}):"]
    start = Decimal(0)
    last = len(dim.elements) - 1
    for i, element in enumerate(dim.elements):
        end = None if i == last else plain(element.interval_change)
        span = f"{plain(start)} {unit} and up" if end is None else f"{plain(start)}-{end} {unit}"
        price = f"{plain(element.interval_costs)} {cur}/{per}".replace(" /", " per ")
        row = f"  [{i}] {span:<22} {price:<20}"
        if steps is not None:
            row += f" step {plain(steps[i].step_costs)}"
        lines.append(row.rstrip())
        start = element.interval_change
    return lines
