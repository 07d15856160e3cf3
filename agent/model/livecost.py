"""Live cost between backend updates: the newest session_cost total extrapolated with its prices.

live_total = T0 + energy_price x (E - E0)/1000 + time_price x charging_s/3600
                 + idle_price x billable_idle_s/3600

T0 is the backend's total when the session_cost arrived at monotonic time t0 with the EVSE's
energy at E0 Wh. Everything is exact (Fraction, in major currency units);
`money.round_half_up` makes the display value. Pure: no clock, no I/O; times are monotonic
seconds passed in by the caller.

Which EVSE states count as what (take `state` from session_info: EVerest publishes it on every
session event too, so events need no separate mapping):
- charging: `Charging`. Energy and the Time price accrue.
- idle: `ChargingPausedEV`, `ChargingPausedEVSE` (plugged in, transaction running, no power;
  an EV that is full pauses like this). The Time price stops at the start of idleness; the idle
  hour price accrues once `grace_minutes` have passed since idleness began.
- stopped: every other state (Unknown, Unplugged, Disabled, Preparing, Reserved, AuthRequired,
  AuthTimeout, Finished, FinishedEV, FinishedEVSE): no transaction is billing, so there is no
  live value and the backend's total (or final cost) is what to show.

Known approximations, corrected by the next session_cost: a pause and resume within one backend
interval counts the pause as charging time; idle fees accrued since t0 disappear from the
estimate if charging resumes; `next_period` price changes are not applied.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

from msgspec import UNSET

from agent.everest.evse_manager import EvseStateEnum
from agent.everest.session_cost import Price, SessionCost
from agent.model.currencies import amount_decimals
from agent.structs import Record

Phase = Literal["charging", "idle", "stopped"]

_PHASES: dict[str, Phase] = {
    "Charging": "charging",
    "ChargingPausedEV": "idle",
    "ChargingPausedEVSE": "idle",
}
_ZERO = Fraction(0)


def phase_of(state: EvseStateEnum) -> Phase:
    """Whether an EVSE in `state` is charging, idle (plugged in, paused) or stopped."""
    return _PHASES.get(state, "stopped")


def track_idle_since(previous: float | None, state: EvseStateEnum, now: float) -> float | None:
    """When the current idle period began, after seeing `state` at `now` (None unless idle)."""
    if phase_of(state) != "idle":
        return None
    return now if previous is None else previous


class LiveBase(Record):
    """The starting point of the extrapolation: one session_cost and where the EVSE stood then."""

    session_id: str
    total: Fraction  # T0, major units
    energy_wh: int  # E0
    at: float  # t0, monotonic seconds
    energy_per_kwh: Fraction
    time_per_hour: Fraction
    idle_per_hour: Fraction
    grace_s: int
    code: str | None  # the session's currency code, else the configured fallback

    @classmethod
    def from_session_cost(cls, msg: SessionCost, energy_wh: int, at: float,
                          fallback_code: str | None) -> LiveBase | None:
        """The base for `msg`, or None when it is Finished or carries no usable price."""
        if msg.status == "Finished":
            return None
        own_code = msg.currency.code if msg.currency.code is not UNSET else None
        code = own_code or fallback_code
        session_decimals = (msg.currency.decimals if msg.currency.decimals is not UNSET
                            else None)
        total = Fraction(msg.total, 10**amount_decimals(msg.currency.decimals, code))
        known = False
        rates = {"Energy": _ZERO, "Time": _ZERO}
        for component in msg.charging_price if msg.charging_price is not UNSET else []:
            if component is None or component.category not in rates or component.price is UNSET:
                continue  # FlatFee is already in T0; Other has no unit to extrapolate by
            amount = _amount(component.price, session_decimals, own_code, code)
            if amount is not None:
                # Several components of one category (e.g. energy + grid fee) add up.
                rates[str(component.category)] += amount
                known = True
        idle, grace_s = _ZERO, 0
        idle_price = msg.idle_price
        if idle_price is not UNSET and idle_price is not None and (
                idle_price.hour_price is not UNSET):
            amount = _amount(idle_price.hour_price, session_decimals, own_code, code)
            if amount is not None:
                idle, known = amount, True
                minutes = idle_price.grace_minutes
                grace_s = max(0, minutes) * 60 if minutes is not UNSET else 0
        if not known:
            return None
        return cls(session_id=msg.session_id, total=total, energy_wh=energy_wh, at=at,
                   energy_per_kwh=rates["Energy"], time_per_hour=rates["Time"],
                   idle_per_hour=idle, grace_s=grace_s, code=code)


def _amount(price: Price, session_decimals: int | None, own_code: str | None,
            code: str | None) -> Fraction | None:
    """A unit price in major units, or None when it is in another currency than the session."""
    price_code = price.currency.code if price.currency.code is not UNSET else None
    if price_code is not None and own_code is not None and price_code != own_code:
        return None
    decimals = amount_decimals(price.currency.decimals, price_code or code, session_decimals)
    return Fraction(price.value.value, 10**decimals)


def live_total(base: LiveBase, energy_wh: int, now: float, phase: Phase,
               idle_since: float | None = None) -> Fraction | None:
    """The exact live total at `now` with `energy_wh` charged, or None when `phase` is stopped.

    `idle_since` (from track_idle_since) matters only when idle; when unknown, idleness is taken
    to have begun at the base's arrival. Energy below E0 (a lagging sample) adds nothing.
    """
    if phase == "stopped":
        return None
    start = Fraction(base.at)
    end = Fraction(now)
    idle_from = start if idle_since is None else Fraction(idle_since)
    charging_end = end if phase == "charging" else min(end, idle_from)
    charging_s = max(_ZERO, charging_end - start)
    energy = max(0, energy_wh - base.energy_wh)
    total = (base.total + base.energy_per_kwh * energy / 1000
             + base.time_per_hour * charging_s / 3600)
    if phase == "idle":
        # The backend's T0 already holds what was billed up to t0.
        billable_from = max(start, idle_from + base.grace_s)
        total += base.idle_per_hour * max(_ZERO, end - billable_from) / 3600
    return total
