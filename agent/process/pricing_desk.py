"""The local be.ENERGISED pricing beside EVerest's session cost API: what a display gets with
each message (the running estimate, the price preview), and one Rate fetch per authorization,
run as a task of the agent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from agent.everest.session_cost import DefaultPrice, SessionCost, TariffMessage
from agent.model.state import Event, PricingChanged
from agent.process.panel import Panel

if TYPE_CHECKING:
    from agent.pricing.live import LivePricing

Apply = Callable[[Panel, Event, float, bool], None]
# Starts a named task in the agent's task group; None while the agent is not running.
Spawn = Callable[[str, Callable[[], Awaitable[None]]], "asyncio.Task[None] | None"]


class PricingDesk:
    """Joins the local pricing to the session cost messages of every display."""

    def __init__(self, pricing: LivePricing, panels: Sequence[Panel],
                 clock: Callable[[], float], apply: Apply, spawn: Spawn) -> None:
        self.pricing = pricing
        self.panels = panels
        self.clock = clock
        self.apply = apply
        self.spawn = spawn
        self._fetch: asyncio.Task[None] | None = None
        self._fetched_for: TariffMessage | None = None
        self._fetch_keys: list[int | None] = []  # the EVSEs that tariff went to

    def preview(self, panel: Panel) -> PricingChanged:
        """The price preview `panel` shows before any message (at start)."""
        return PricingChanged(preview=self.pricing.preview(key(panel)))

    def deliver(self, panel: Panel, msg: SessionCost | TariffMessage | DefaultPrice,
                now: float) -> None:
        """Apply `msg` to `panel` with what the local pricing adds, then publish once."""
        self.apply(panel, msg, now, False)
        evse = key(panel)
        if isinstance(msg, SessionCost):
            estimate = self.pricing.estimate(msg, evse)
            self.apply(panel, PricingChanged(preview=self.pricing.preview(evse, msg.session_id),
                                             estimate=estimate), now, False)
        elif isinstance(msg, TariffMessage) and msg.identifier_type == "IdToken" and (
                msg.identifier_id):
            if msg is not self._fetched_for:
                # One fetch per authorization, asked at the first EVSE the tariff goes to; its
                # Rate is for every EVSE the tariff went to (the driver's is not known yet).
                self._fetched_for, self._fetch_keys = msg, []
                self._fetch_rate(msg.identifier_id, panel.state.evse_id or "", self._fetch_keys)
            self._fetch_keys.append(evse)
        panel.publish()

    def _fetch_rate(self, tag_id: str, evse_id: str, keys: list[int | None]) -> None:
        """Ask the pricing API for this token's Rate in the background (newest token wins)."""
        if not self.pricing.config.api_url:
            return
        if self._fetch is not None:
            self._fetch.cancel()
        self._fetch = self.spawn("pricing-fetch",
                                 lambda: self._authorized(tag_id, evse_id, keys))

    async def _authorized(self, tag_id: str, evse_id: str, keys: list[int | None]) -> None:
        if await self.pricing.authorize(tag_id, evse_id, keys):
            for panel in (p for p in self.panels if key(p) in keys):
                session = panel.state.session
                preview = self.pricing.preview(key(panel),
                                               session.session_id if session else None)
                self.apply(panel, PricingChanged(preview=preview, estimate=panel.state.estimate),
                           self.clock(), True)


def key(panel: Panel) -> int | None:
    """Which EVSE a panel shows, for the pricing (None: the display of the whole station)."""
    return panel.evse.id if panel.evse is not None else None
