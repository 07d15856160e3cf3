"""The display model: a pure state machine from decoded messages, link changes and ticks to a view.

Time is the monotonic clock passed in by the caller; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta

from agent.currencies import minor_unit
from agent.messages import (
    ChargingPriceComponent,
    Currency,
    DefaultPrice,
    IdlePrice,
    MessageContent,
    Price,
    SessionCost,
    TariffMessage,
)
from agent.money import MoneyFormat, format_amount, format_unit_price
from agent.text import choose, preferences
from agent.view import Estimate, NextPeriod, Screen, Total, View

_UNIT_SUFFIX = {"Energy": "/kWh", "Time": "/h"}
_STATUS_SCREEN: dict[str, Screen] = {"Running": "charging", "Idle": "idle",
                                     "Finished": "finished"}


class DisplayConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`[display]`: language preference, fallback currency, hold times, money format."""

    languages: list[str] = msgspec.field(default_factory=lambda: ["en"])
    currency: Annotated[str, Meta(pattern="^([A-Z]{3})?$")] = "EUR"
    tariff_hold_s: Annotated[float, Meta(ge=0)] = 60.0
    finished_hold_s: Annotated[float, Meta(ge=0)] = 120.0
    money: MoneyFormat = msgspec.field(default_factory=MoneyFormat)


class LinkChanged(msgspec.Struct, frozen=True, gc=False):
    """The runtime's verdict on the EVerest link (broker connection and heartbeats)."""

    up: bool


class Tick(msgspec.Struct, frozen=True, gc=False):
    """Time passed: hold timers may expire."""


class PricingChanged(msgspec.Struct, frozen=True, gc=False):
    """New local pricing output: preview lines for idle screens, estimate for the session."""

    preview: tuple[str, ...] = ()
    estimate: Estimate | None = None


Event = DefaultPrice | TariffMessage | SessionCost | LinkChanged | Tick | PricingChanged


class State(msgspec.Struct, frozen=True, gc=False):
    """Everything the display shows derives from this."""

    link_up: bool = False
    default_price: DefaultPrice | None = None
    tariff: TariffMessage | None = None
    tariff_until: float | None = None
    session: SessionCost | None = None
    # Newest text for the session: from its session_cost or from a later tariff_message.
    session_text: list[MessageContent] | None = None
    energy_wh: int | None = None
    finished_until: float | None = None
    preview: tuple[str, ...] = ()
    estimate: Estimate | None = None


def _energy(msg: SessionCost, previous: int | None) -> int | None:
    chunks = msg.cost_chunks
    if chunks is not UNSET and chunks:
        last = chunks[-1].metervalue_to
        if last is not UNSET and last > 0:
            return last
    # 0 or absent means the meter did not say; keep the last known reading of this session.
    return previous


def total_value(msg: SessionCost) -> int:
    """The session total in units of 10**-decimals: the sum of all chunks' cost values."""
    chunks = msg.cost_chunks
    if chunks is UNSET:
        return 0
    return sum(c.cost.value for c in chunks if c.cost is not UNSET)


class DisplayModel:
    """Applies events to State and renders Views, for one `[display]` configuration."""

    def __init__(self, config: DisplayConfig) -> None:
        self.config = config
        self._prefs = preferences(config.languages)
        self._fallback_code = config.currency or None
        # Per-model caches keyed on plain ints/strings: hashing the format struct on every
        # call would cost more than the formatting itself.
        fmt = config.money
        self._amount = lru_cache(maxsize=256)(
            lambda v, d, c: format_amount(v, d, c, fmt))
        self._unit_price = lru_cache(maxsize=256)(
            lambda v, d, c, suffix: format_unit_price(v, d, c, fmt) + suffix)

    # ---- transitions -------------------------------------------------------------------

    def update(self, state: State, event: Event, now: float) -> State:
        """The state after `event` at monotonic time `now`."""
        replace = msgspec.structs.replace
        if isinstance(event, SessionCost):
            return self._session_cost(state, event, now)
        if isinstance(event, TariffMessage):
            return self._tariff(state, event, now)
        if isinstance(event, DefaultPrice):
            return replace(state, default_price=event)
        if isinstance(event, LinkChanged):
            return state if state.link_up == event.up else replace(state, link_up=event.up)
        if isinstance(event, PricingChanged):
            return replace(state, preview=event.preview, estimate=event.estimate)
        return self._expire(state, now)

    def _session_cost(self, state: State, msg: SessionCost, now: float) -> State:
        same = state.session is not None and state.session.session_id == msg.session_id
        text = state.session_text if same else None
        if msg.message is not UNSET and msg.message:
            text = msg.message
        finished_until = None
        if msg.status == "Finished":
            already = same and state.finished_until is not None
            finished_until = state.finished_until if already else now + self.config.finished_hold_s
        return msgspec.structs.replace(
            state, session=msg, session_text=text, tariff=None, tariff_until=None,
            energy_wh=_energy(msg, state.energy_wh if same else None),
            finished_until=finished_until, estimate=state.estimate if same else None)

    def _tariff(self, state: State, msg: TariffMessage, now: float) -> State:
        session = state.session
        at_authorization = msg.identifier_type == "IdToken"
        if session is not None and not (at_authorization and session.status == "Finished"):
            # During or after a session the newest text wins (e.g. an offline final cost).
            return msgspec.structs.replace(state, session_text=msg.messages)
        # A new authorization ends the receipt of the previous session.
        return msgspec.structs.replace(
            state, tariff=msg, tariff_until=now + self.config.tariff_hold_s, session=None,
            session_text=None, energy_wh=None, finished_until=None, estimate=None)

    def _expire(self, state: State, now: float) -> State:
        if state.tariff_until is not None and now >= state.tariff_until:
            state = msgspec.structs.replace(state, tariff=None, tariff_until=None)
        if state.finished_until is not None and now >= state.finished_until:
            state = msgspec.structs.replace(state, session=None, session_text=None,
                                            energy_wh=None, finished_until=None, estimate=None)
        return state

    @staticmethod
    def next_deadline(state: State) -> float | None:
        """The monotonic time at which a Tick will change the state, if any."""
        deadlines = [t for t in (state.tariff_until, state.finished_until) if t is not None]
        return min(deadlines) if deadlines else None

    # ---- rendering ---------------------------------------------------------------------

    def screen(self, state: State) -> Screen:
        """Which screen the state implies."""
        session = state.session
        if session is not None and session.status == "Finished":
            return "finished"
        if not state.link_up:
            return "unavailable"
        if session is not None:
            return _STATUS_SCREEN[session.status]
        return "tariff" if state.tariff is not None else "price"

    def view(self, state: State, updated_at: str = "") -> View:
        """The view for `state`; the caller stamps `updated_at` when the content changed."""
        screen = self.screen(state)
        link: Literal["up", "down"] = "up" if state.link_up else "down"
        session = state.session
        if session is None:
            source = state.tariff.messages if state.tariff is not None else (
                state.default_price.messages if state.default_price is not None else None)
            chosen = choose(source, self._prefs)
            return View(screen=screen, link=link, message=chosen.text or "",
                        language=chosen.language, qr_code=chosen.qr_code,
                        preview=list(state.preview), updated_at=updated_at)
        code = self._code(session.currency)
        chosen = choose(state.session_text, self._prefs)
        qr = session.qr_code if session.qr_code is not UNSET and session.qr_code else None
        return View(
            screen=screen, link=link, session_id=session.session_id, status=session.status,
            total=self._total(session, code), stale=not state.link_up,
            energy_wh=state.energy_wh,
            prices=self._prices(session.charging_price, code),
            idle_price=self._idle(session.idle_price, code),
            next_period=self._next_period(session, code),
            message=chosen.text, language=chosen.language, qr_code=qr or chosen.qr_code,
            updated_at=updated_at, estimate=state.estimate)

    def _code(self, currency: Currency, fallback: str | None = None) -> str | None:
        if currency.code is not UNSET:
            return currency.code
        return fallback if fallback is not None else self._fallback_code

    def _total(self, session: SessionCost, code: str | None) -> Total:
        decimals = session.currency.decimals
        if decimals is UNSET:
            decimals = minor_unit(code)
        value = total_value(session)
        text: str = self._amount(value, decimals, code)
        return Total(value=value, decimals=decimals, currency=code, text=text)

    def _price(self, price: Price, session_code: str | None, suffix: str) -> str:
        code = self._code(price.currency, session_code)
        decimals = price.currency.decimals
        if decimals is UNSET:
            decimals = minor_unit(code)
        text: str = self._unit_price(price.value.value, decimals, code, suffix)
        return text

    def _prices(self, components: Sequence[ChargingPriceComponent] | msgspec.UnsetType,
                code: str | None) -> list[str]:
        if components is UNSET:
            return []
        return [self._price(c.price, code, _UNIT_SUFFIX.get(c.category or "", ""))
                for c in components if c.price is not UNSET]

    def _idle(self, idle: IdlePrice | msgspec.UnsetType, code: str | None) -> str | None:
        if idle is UNSET or idle.hour_price is UNSET:
            return None
        text = self._price(idle.hour_price, code, "/h")
        grace = idle.grace_minutes
        return f"{text} after {grace} min" if grace is not UNSET and grace > 0 else text

    def _next_period(self, session: SessionCost, code: str | None) -> NextPeriod | None:
        nxt = session.next_period
        if nxt is UNSET:
            return None
        prices = self._prices(nxt.charging_price, code)
        idle = self._idle(nxt.idle_price, code)
        if idle is not None:
            prices.append(f"idle {idle}")
        return NextPeriod(from_=nxt.timestamp_from, prices=prices)
