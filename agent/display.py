"""The display model: a pure state machine from decoded messages, link changes and ticks to a view.

Time is the monotonic clock passed in by the caller; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Literal, assert_never

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
from agent.text import Chosen, choose, preferences
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
    # A Running/Idle session that hears nothing this long ends without a final cost (0: never).
    session_timeout_s: Annotated[float, Meta(ge=0)] = 0.0
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
    # An authorization tariff on screen until `tariff_until` (over a running session too).
    tariff: TariffMessage | None = None
    tariff_until: float | None = None
    session: SessionCost | None = None
    # Newest text for the session: from its session_cost or from a later tariff_message.
    session_text: list[MessageContent] | None = None
    energy_wh: int | None = None
    # Monotonic time of the newest message that named the session (for session_timeout_s).
    session_seen: float | None = None
    # The session ended at this monotonic time: the finished screen is held from here.
    ended_at: float | None = None
    # The end came as a Finished session_cost (False: final cost not received).
    final: bool = False
    # Finished results of other sessions that arrived while one was running (late news).
    late_results: int = 0
    preview: tuple[str, ...] = ()
    estimate: Estimate | None = None

    @property
    def running(self) -> bool:
        """A session is on and has not ended (status Running or Idle)."""
        return self.session is not None and self.ended_at is None


def _energy(msg: SessionCost, previous: int | None) -> int | None:
    chunks = msg.cost_chunks
    if chunks is not UNSET:
        # The newest chunk that is not null (EVerest writes a chunk with no member as null).
        last = next((c for c in reversed(chunks) if c is not None), None)
        if last is not None and last.metervalue_to is not UNSET and last.metervalue_to > 0:
            return last.metervalue_to
    # 0 or absent means the meter did not say; keep the last known reading of this session.
    return previous


def total_value(msg: SessionCost) -> int:
    """The session total in units of 10**-decimals: the sum of all chunks' cost values."""
    chunks = msg.cost_chunks
    if chunks is UNSET:
        return 0
    return sum(c.cost.value for c in chunks if c is not None and c.cost is not UNSET)


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
        # Rendering caches keyed on message content (frozen structs hash by value): EVerest
        # repeats the same texts and prices in every message of a session.
        prefs = self._prefs
        self._chosen = lru_cache(maxsize=128)(lambda msgs: choose(msgs, prefs))
        self._idle_view = lru_cache(maxsize=64)(self._render_idle_view)
        self._price_texts = lru_cache(maxsize=128)(self._render_prices)

    # ---- transitions -------------------------------------------------------------------

    def update(self, state: State, event: Event, now: float) -> State:
        """The state after `event` at monotonic time `now`."""
        match event:
            case SessionCost():
                return self._session_cost(state, event, now)
            case TariffMessage():
                return self._tariff(state, event, now)
            case DefaultPrice():
                return msgspec.structs.replace(state, default_price=event)
            case LinkChanged():
                if state.link_up == event.up:
                    return state
                return msgspec.structs.replace(state, link_up=event.up)
            case PricingChanged():
                return msgspec.structs.replace(state, preview=event.preview,
                                               estimate=event.estimate)
            case Tick():
                return self._expire(state, now)
            case _:
                assert_never(event)

    def _session_cost(self, state: State, msg: SessionCost, now: float) -> State:
        replace = msgspec.structs.replace
        same = state.session is not None and state.session.session_id == msg.session_id
        finished = msg.status == "Finished"
        if not same and finished and state.running:
            # Late news of an older session: the running one stays on screen.
            return replace(state, late_results=state.late_results + 1)
        if same and state.final and not finished:
            # A final receipt is final; a Running/Idle behind it arrived out of order.
            return replace(state, late_results=state.late_results + 1)
        text = state.session_text if same else None
        if msg.message is not UNSET and msg.message:
            text = msg.message
        ended_at = None
        if finished:
            # The hold counts from the (first) final cost, not from repeats of it.
            ended_at = state.ended_at if same and state.final else now
        # Another driver's tariff stays up while the running session is only updated.
        keep_tariff = same and state.running
        return replace(
            state, session=msg, session_text=text,
            tariff=state.tariff if keep_tariff else None,
            tariff_until=state.tariff_until if keep_tariff else None,
            energy_wh=_energy(msg, state.energy_wh if same else None), session_seen=now,
            ended_at=ended_at, final=finished, estimate=state.estimate if same else None)

    def _tariff(self, state: State, msg: TariffMessage, now: float) -> State:
        replace = msgspec.structs.replace
        kind = msg.identifier_type
        if kind in {"SessionId", "TransactionId"}:
            session = state.session
            if session is None or session.session_id not in (msg.identifier_id,
                                                             msg.ocpp_transaction_id):
                return state  # another session's text: nothing on this screen changes
            # The newest text for the session wins (e.g. an offline final cost message).
            seen = now if state.running else state.session_seen
            return replace(state, session_text=msg.messages, session_seen=seen)
        # IdToken, or no identifier at all (OCPP 1.6 SetUserPrice timeout fallback): a driver
        # just authorized. Over a running session it is another driver's: shown for the hold.
        until = now + self.config.tariff_hold_s
        if state.running:
            return replace(state, tariff=msg, tariff_until=until)
        # Otherwise it opens the tariff screen and ends the receipt of the previous session.
        return replace(state, tariff=msg, tariff_until=until, session=None, session_text=None,
                       energy_wh=None, session_seen=None, ended_at=None, final=False,
                       estimate=None)

    def end_session(self, state: State, now: float) -> State:
        """The running session ended without a final cost: its receipt, `final` false."""
        if not state.running:
            return state
        return msgspec.structs.replace(state, ended_at=now, final=False)

    def receipt(self, state: State, session: SessionCost, text: list[MessageContent] | None,
                final: bool, ended_at: float) -> State:
        """`state` showing a restored receipt that ended at monotonic time `ended_at`."""
        return msgspec.structs.replace(
            state, session=session, session_text=text, tariff=None, tariff_until=None,
            energy_wh=_energy(session, None), session_seen=ended_at, ended_at=ended_at,
            final=final, estimate=None)

    def _expire(self, state: State, now: float) -> State:
        replace = msgspec.structs.replace
        if state.tariff_until is not None and now >= state.tariff_until:
            state = replace(state, tariff=None, tariff_until=None)
        timeout = self._timeout_at(state)
        if timeout is not None and now >= timeout:
            state = self.end_session(state, timeout)
        if state.ended_at is not None and now >= state.ended_at + self.config.finished_hold_s:
            state = replace(state, session=None, session_text=None, energy_wh=None,
                            session_seen=None, ended_at=None, final=False, estimate=None)
        return state

    def _timeout_at(self, state: State) -> float | None:
        limit = self.config.session_timeout_s
        if limit <= 0 or not state.running or state.session_seen is None:
            return None
        return state.session_seen + limit

    def next_deadline(self, state: State) -> float | None:
        """The monotonic time at which a Tick will change the state, if any."""
        finished_until = (None if state.ended_at is None
                          else state.ended_at + self.config.finished_hold_s)
        deadlines = [t for t in (state.tariff_until, finished_until, self._timeout_at(state))
                     if t is not None]
        return min(deadlines) if deadlines else None

    # ---- rendering ---------------------------------------------------------------------

    def screen(self, state: State) -> Screen:
        """Which screen the state implies."""
        session = state.session
        if session is not None and state.ended_at is not None:
            return "finished"
        if not state.link_up:
            return "unavailable"
        if state.tariff is not None:
            return "tariff"
        if session is not None:
            return _STATUS_SCREEN[session.status]
        return "price"

    def view(self, state: State, updated_at: str = "") -> View:
        """The view for `state`; the caller stamps `updated_at` when the content changed."""
        screen = self.screen(state)
        link: Literal["up", "down"] = "up" if state.link_up else "down"
        session = state.session
        if session is None or screen == "tariff":
            source = state.tariff.messages if state.tariff is not None else (
                state.default_price.messages if state.default_price is not None else None)
            view: View = self._idle_view(screen, link, tuple(source or ()), state.preview,
                                         updated_at)
            return view
        code = self._code(session.currency)
        chosen: Chosen = self._chosen(tuple(state.session_text or ()))
        qr = session.qr_code if session.qr_code is not UNSET and session.qr_code else None
        nxt = session.next_period
        prices, idle, next_period = self._price_texts(
            _components(session.charging_price), session.idle_price,
            None if nxt is UNSET else (nxt.timestamp_from, _components(nxt.charging_price),
                                       nxt.idle_price), code)
        return View(
            screen=screen, link=link, session_id=session.session_id, status=session.status,
            # A receipt is final: it is not stale when the link goes down after it.
            total=self._total(session, code), stale=screen == "unavailable",
            final=state.final if screen == "finished" else None,
            energy_wh=state.energy_wh, prices=list(prices), idle_price=idle,
            next_period=next_period, message=chosen.text, language=chosen.language,
            qr_code=qr or chosen.qr_code, updated_at=updated_at, estimate=state.estimate)

    def _render_idle_view(self, screen: Screen, link: Literal["up", "down"],
                          messages: tuple[MessageContent, ...], preview: tuple[str, ...],
                          updated_at: str) -> View:
        chosen: Chosen = self._chosen(messages)
        return View(screen=screen, link=link, message=chosen.text or "",
                    language=chosen.language, qr_code=chosen.qr_code, preview=list(preview),
                    updated_at=updated_at)

    def _render_prices(self, components: tuple[ChargingPriceComponent, ...],
                       idle_price: IdlePrice | msgspec.UnsetType | None,
                       nxt: tuple[str, tuple[ChargingPriceComponent, ...],
                                  IdlePrice | msgspec.UnsetType | None] | None,
                       code: str | None) -> tuple[tuple[str, ...], str | None, NextPeriod | None]:
        next_period = None
        if nxt is not None:
            later = self._prices(nxt[1], code)
            later_idle = self._idle(nxt[2], code)
            if later_idle is not None:
                later.append(f"idle {later_idle}")
            next_period = NextPeriod(from_=nxt[0], prices=later)
        return tuple(self._prices(components, code)), self._idle(idle_price, code), next_period

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

    def _prices(self, components: tuple[ChargingPriceComponent, ...],
                code: str | None) -> list[str]:
        return [self._price(c.price, code, _UNIT_SUFFIX.get(c.category or "", ""))
                for c in components if c.price is not UNSET]

    def _idle(self, idle: IdlePrice | msgspec.UnsetType | None, code: str | None) -> str | None:
        if idle is UNSET or idle is None or idle.hour_price is UNSET:
            return None
        text = self._price(idle.hour_price, code, "/h")
        grace = idle.grace_minutes
        return f"{text} after {grace} min" if grace is not UNSET and grace > 0 else text



def _components(components: Sequence[ChargingPriceComponent | None] | msgspec.UnsetType,
                ) -> tuple[ChargingPriceComponent, ...]:
    """The price components that are set (EVerest writes one with no member as null)."""
    if components is UNSET:
        return ()
    return tuple(c for c in components if c is not None)
