"""The local be.ENERGISED pricing beside EVerest's session cost API: what a display gets with
each message (the running estimate, the price preview), and one Rate fetch per authorization
(an effect: the shell fetches, then hands the answer back)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from agent.core.display import Display
from agent.core.effects import Effects, FetchRate
from agent.everest.session_cost import DefaultPrice, SessionCost, TariffMessage
from agent.model.state import PricingChanged

if TYPE_CHECKING:
    from agent.pricing.live import LivePricing


class PricingDesk:
    """Joins the local pricing to the session cost messages of every display."""

    def __init__(self, pricing: LivePricing, displays: Sequence[Display]) -> None:
        self.pricing = pricing
        self.displays = displays
        self._fetch: FetchRate | None = None
        self._fetched_for: TariffMessage | None = None

    def preview(self, display: Display) -> PricingChanged:
        """The price preview `display` shows before any message (at start)."""
        return PricingChanged(preview=self.pricing.preview(display.key))

    def deliver(self, display: Display, msg: SessionCost | TariffMessage | DefaultPrice,
                now: float, fx: Effects) -> bool:
        """Apply `msg` to `display` with what the local pricing adds; True when it changed."""
        changed = display.apply(msg, now, fx)
        if isinstance(msg, SessionCost):
            estimate = self.pricing.estimate(msg, display.key)
            changed |= display.apply(
                PricingChanged(preview=self.pricing.preview(display.key, msg.session_id),
                               estimate=estimate), now, fx)
        elif isinstance(msg, TariffMessage) and msg.identifier_type == "IdToken" and (
                msg.identifier_id) and self.pricing.config.api_url:
            if msg is not self._fetched_for or self._fetch is None:
                # One fetch per authorization, asked at the first EVSE the tariff goes to; its
                # Rate is for every EVSE the tariff went to (the driver's is not known yet).
                self._fetched_for = msg
                self._fetch = FetchRate(msg.identifier_id, display.state.evse_id or "", [])
                fx.fetch = self._fetch  # the newest authorization wins
            self._fetch.keys.append(display.key)
        return changed

    def rate_fetched(self, keys: Sequence[int | None], now: float, fx: Effects) -> list[Display]:
        """The pricing API answered for `keys`: their previews follow the driver's Rate."""
        changed = []
        for display in (d for d in self.displays if d.key in keys):
            session = display.state.session
            preview = self.pricing.preview(display.key, session.session_id if session else None)
            if display.apply(PricingChanged(preview=preview, estimate=display.state.estimate),
                             now, fx):
                changed.append(display)
        return changed
