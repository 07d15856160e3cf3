"""Rendering a display State into the View every output receives (pure; cached by content)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import msgspec
from msgspec import UNSET

from agent.everest.session_cost import (
    ChargingPriceComponent,
    Currency,
    IdlePrice,
    MessageContent,
    Price,
    SessionCost,
)
from agent.model.currencies import amount_decimals, minor_unit
from agent.model.money import format_amount, format_unit_price, round_half_up
from agent.model.payment import payment_url
from agent.model.text import Chosen, choose, preferences
from agent.model.view import Live, LiveTotal, NextPeriod, Screen, Total, View

if TYPE_CHECKING:
    from fractions import Fraction

    from agent.model.state import DisplayConfig, State

_UNIT_SUFFIX = {"Energy": "/kWh", "Time": "/h"}
NextKey = tuple[str, tuple[ChargingPriceComponent, ...], IdlePrice | msgspec.UnsetType | None]


class Renderer:
    """Views for one `[display]` configuration and one EVSE (or the whole station)."""

    def __init__(self, config: DisplayConfig, evse: int | None, payment_template: str = "",
                 live_amount: Callable[[State], Fraction | None] = lambda state: None) -> None:
        self.config = config
        self._live_amount = live_amount  # the [[evse]] rules' (agent.model.evse)
        self.evse = evse
        self._payment_template = payment_template
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
        prefs = preferences(config.languages)
        self._chosen = lru_cache(maxsize=128)(lambda msgs: choose(msgs, prefs))
        self._idle_view = lru_cache(maxsize=64)(self._render_idle_view)
        self._price_texts = lru_cache(maxsize=128)(self._render_prices)

    def view(self, state: State, screen: Screen, updated_at: str) -> View:
        """The view of `state` on `screen`."""
        link: Literal["up", "down"] = "up" if state.link_up else "down"
        session = state.session
        live = _live(state)
        if session is None or screen == "tariff":
            source = state.tariff.messages if state.tariff is not None else (
                state.default_price.messages if state.default_price is not None else None)
            view: View = self._idle_view(screen, link, tuple(source or ()), state.preview,
                                         state.evse_id, state.meter_public_key, live,
                                         updated_at)
            return view
        code = self._code(session.currency)
        chosen: Chosen = self._chosen(tuple(state.session_text or ()))
        qr = session.qr_code if session.qr_code is not UNSET and session.qr_code else None
        nxt = session.next_period
        prices, idle, next_period = self._price_texts(
            _components(session.charging_price), session.idle_price,
            None if nxt is UNSET else (nxt.timestamp_from, _components(nxt.charging_price),
                                       nxt.idle_price), code,
            session.currency.decimals if session.currency.decimals is not UNSET else None)
        total = self._total(session, code)
        # The live meter is newer than the backend's reading of the same session.
        same = live is not None and state.evse_runs(session.session_id)
        return View(
            screen=screen, link=link, session_id=session.session_id, status=session.status,
            # A receipt is final: it is not stale when the link goes down after it.
            total=total, stale=screen == "unavailable",
            final=state.final if screen == "finished" else None,
            energy_wh=live.energy_wh if same and live is not None else state.energy_wh,
            prices=list(prices), idle_price=idle, next_period=next_period,
            message=chosen.text, language=chosen.language, qr_code=qr or chosen.qr_code,
            updated_at=updated_at, estimate=state.estimate, evse=self.evse,
            evse_id=state.evse_id, live=live, meter_public_key=state.meter_public_key,
            signed_meter=state.signed_for(session.session_id),
            live_total=self._live_total(state, total) if screen != "finished" else None)

    def _live_total(self, state: State, total: Total) -> LiveTotal | None:
        if not self.config.live_estimate:
            return None
        amount = self._live_amount(state)
        if amount is None:
            return None
        value = int(round_half_up(amount, total.decimals).scaleb(total.decimals))
        # The text is rounded once, from the exact amount, to the currency's minor unit.
        digits = minor_unit(total.currency)
        shown = int(round_half_up(amount, digits).scaleb(digits))
        text: str = self._amount(shown, digits, total.currency)
        return LiveTotal(value=value, decimals=total.decimals, currency=total.currency,
                         text=self.config.estimate_prefix + text)

    def _render_idle_view(self, screen: Screen, link: Literal["up", "down"],
                          messages: tuple[MessageContent, ...], preview: tuple[str, ...],
                          evse_id: str | None, meter_public_key: str | None,
                          live: Live | None, updated_at: str) -> View:
        chosen: Chosen = self._chosen(messages)
        pay = (payment_url(self._payment_template, evse_id, self.evse) if screen == "price"
               else None)
        return View(screen=screen, link=link, message=chosen.text or "",
                    language=chosen.language, qr_code=chosen.qr_code, preview=list(preview),
                    updated_at=updated_at, evse=self.evse, evse_id=evse_id, live=live,
                    payment_url=pay, meter_public_key=meter_public_key)

    def _render_prices(self, components: tuple[ChargingPriceComponent, ...],
                       idle_price: IdlePrice | msgspec.UnsetType | None, nxt: NextKey | None,
                       code: str | None, decimals: int | None,
                       ) -> tuple[tuple[str, ...], str | None, NextPeriod | None]:
        next_period = None
        if nxt is not None:
            later = self._prices(nxt[1], code, decimals)
            later_idle = self._idle(nxt[2], code, decimals)
            if later_idle is not None:
                later.append(f"idle {later_idle}")
            next_period = NextPeriod(from_=nxt[0], prices=later)
        return (tuple(self._prices(components, code, decimals)),
                self._idle(idle_price, code, decimals), next_period)

    def _code(self, currency: Currency, fallback: str | None = None) -> str | None:
        if currency.code is not UNSET:
            return currency.code
        return fallback if fallback is not None else self._fallback_code

    def _total(self, session: SessionCost, code: str | None) -> Total:
        decimals = amount_decimals(session.currency.decimals, code)
        value = session.total
        text: str = self._amount(value, decimals, code)
        return Total(value=value, decimals=decimals, currency=code, text=text)

    def _price(self, price: Price, session_code: str | None, suffix: str,
               session_decimals: int | None) -> str:
        code = self._code(price.currency, session_code)
        decimals = amount_decimals(price.currency.decimals, code, session_decimals)
        text: str = self._unit_price(price.value.value, decimals, code, suffix)
        return text

    def _prices(self, components: tuple[ChargingPriceComponent, ...],
                code: str | None, decimals: int | None) -> list[str]:
        return [self._price(c.price, code, _UNIT_SUFFIX.get(c.category or "", ""), decimals)
                for c in components if c.price is not UNSET]

    def _idle(self, idle: IdlePrice | msgspec.UnsetType | None, code: str | None,
              decimals: int | None) -> str | None:
        if idle is UNSET or idle is None or idle.hour_price is UNSET:
            return None
        text = self._price(idle.hour_price, code, "/h", decimals)
        grace = idle.grace_minutes
        return f"{text} after {grace} min" if grace is not UNSET and grace > 0 else text


def _live(state: State) -> Live | None:
    """Live values of the EVSE's running session; None outside a session."""
    info = state.live
    if info is None or (state.evse_session is None and not state.unnamed_session):
        return None
    return Live(energy_wh=info.charged_energy_wh, power_w=info.latest_total_w,
                duration_s=info.session_duration_s, state=info.state)


def _components(components: Sequence[ChargingPriceComponent | None] | msgspec.UnsetType,
                ) -> tuple[ChargingPriceComponent, ...]:
    """The price components that are set (EVerest writes one with no member as null)."""
    if components is UNSET:
        return ()
    return tuple(c for c in components if c is not None)
